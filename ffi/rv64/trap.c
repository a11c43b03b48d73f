/*
 * The bottom layer of the hart: raising traps (to S or M mode, or a Shutdown exit when no M-mode
 * firmware would take them), the translation modes derived from priv/mstatus/satp, and the
 * detail text of fatal exits. Calls no other file of this folder.
 */
#include "rv64.h"
#include <stdarg.h>
#include <stdio.h>

void rv64_set_exit_detail(rv64_hart *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->exit.detail, sizeof h->exit.detail, fmt, ap);
  va_end(ap);
}

void rv64_update_modes(rv64_hart *h) {
  int bare = (h->satp >> 60) == 0;
  int eff = h->priv;
  if (h->priv == 3 && (h->mstatus & MS_MPRV)) eff = (int)((h->mstatus & MS_MPP) >> MS_MPP_SHIFT);
  h->fetch_mode = (h->priv == 3 || bare) ? TM_M : (h->priv == 0 ? TM_U : TM_S);
  if (eff == 3 || bare) h->ls_mode = TM_M;
  else if (eff == 0) h->ls_mode = TM_U;
  else h->ls_mode = (h->mstatus & MS_SUM) ? TM_SSUM : TM_S;
  h->fvpage = ~0ULL;
}

void rv64_trap(rv64_hart *h, uint64_t cause, uint64_t tval) {
  int irq = (int)(cause >> 63);
  uint64_t code = cause & ~(1ULL << 63);
  uint64_t deleg = irq ? h->mideleg : h->medeleg;
  h->counters[irq ? CNT_INTERRUPTS : CNT_TRAPS]++;
  h->pt_bypass = 0; /* an approved store that did not run yet is asked for again */
  if (h->priv <= 1 && code < 64 && ((deleg >> code) & 1)) {
    uint64_t s = h->mstatus;
    h->sepc = h->pc;
    h->scause = cause;
    h->stval = tval;
    s = (s & ~MS_SPIE) | ((s & MS_SIE) ? MS_SPIE : 0);
    s &= ~MS_SIE;
    s = (s & ~MS_SPP) | (h->priv ? MS_SPP : 0);
    h->mstatus = s;
    h->priv = 1;
    uint64_t base = h->stvec & ~3ULL;
    h->pc = ((h->stvec & 3) == 1 && irq) ? base + 4 * code : base;
    if (!irq && h->pc == h->sepc) {
      /* the handler's first instruction faulted: with SIE now clear it would fault forever */
      rv64_update_modes(h);
      h->exit.kind = VMON_EXIT_SHUTDOWN;
      h->exit.code = (uint32_t)code;
      h->exit.pc = h->pc;
      rv64_set_exit_detail(h, "exception %llu at its own trap vector 0x%llx (tval 0x%llx)",
                           (unsigned long long)code, (unsigned long long)h->pc,
                           (unsigned long long)tval);
      return;
    }
  } else {
    if (h->mtvec == 0) {
      /* no machine-mode firmware: the monitor plays it, so this trap ends the guest */
      h->exit.kind = VMON_EXIT_SHUTDOWN;
      h->exit.code = (uint32_t)code;
      h->exit.pc = h->pc;
      rv64_set_exit_detail(h, "unhandled %s %llu at pc 0x%llx (tval 0x%llx, privilege %d)",
                           irq ? "interrupt" : "exception", (unsigned long long)code,
                           (unsigned long long)h->pc, (unsigned long long)tval, h->priv);
      return;
    }
    uint64_t s = h->mstatus;
    h->mepc = h->pc;
    h->mcause = cause;
    h->mtval = tval;
    s = (s & ~MS_MPIE) | ((s & MS_MIE) ? MS_MPIE : 0);
    s &= ~MS_MIE;
    s = (s & ~MS_MPP) | ((uint64_t)h->priv << MS_MPP_SHIFT);
    h->mstatus = s;
    h->priv = 3;
    uint64_t base = h->mtvec & ~3ULL;
    h->pc = ((h->mtvec & 3) == 1 && irq) ? base + 4 * code : base;
  }
  rv64_update_modes(h);
}
