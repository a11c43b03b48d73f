/*
 * The hart: CSRs and interrupts (privileged spec 1.12 subset), system instructions, and the
 * interpreter loop over decoded instructions.
 *
 * Layer: calls mmu.c (slow paths of loads, stores, atomics and fetches), fpu.c, decode.c and
 * trap.c. The paging mechanism is reached only through m->paging->flush_exit, on sfence.vma and
 * satp writes with exits "while queued". The fast paths (TLB hits in LOADN/STOREN, fetch_fast)
 * are inline here and call nothing.
 */
#include "rv64.h"
#include "jit.h"
#include <time.h>

/* Instructions between timer/interrupt/kick checks (at block points, the rule above
   rv64_run_hart). Not guest-visible under clock=icount (the timer bounds a chunk exactly, other
   interrupts become pending or enabled only at rule-1 points or between runs); with the host
   clock a due timer or a kick is seen within a chunk (about 50 us of translated code). 8192 cost
   about 3% of cpuloop in chunk ends and clock reads with the translator on, 65536 about 0.7%
   more than this (cpuloop 400M in the guest, 4 alternating pairs: 676.6-689.9 vs 679.7-697.6 ms;
   bench:net unchanged within its noise). */
#define CHUNK 262144

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t rv64_time(rv64_machine *m) {
  if (m->clock_icount) {
    uint64_t sum = 0;
    for (int i = 0; i < m->nharts; i++)
      if (m->harts[i]) sum += m->harts[i]->counters[CNT_INSTRET];
    return sum / m->icount_shift + m->vtime_extra;
  }
  return (now_ns() - m->t0_ns) / 100; /* 10 MHz */
}

/* ---------------------------------------------------------------------------------------- */
/* interrupts                                                                                */

/* Returns the interrupt to take now (number + 1) or 0. */
int rv64_pending_irq(rv64_hart *h) {
  uint64_t pend = h->mip & h->mie;
  if (!pend) return 0;
  uint64_t m_en = (h->priv < 3 || (h->mstatus & MS_MIE)) ? pend & ~h->mideleg : 0;
  uint64_t s_en = (h->priv < 1 || (h->priv == 1 && (h->mstatus & MS_SIE))) ? pend & h->mideleg : 0;
  uint64_t en = m_en ? m_en : s_en;
  if (!en) return 0;
  static const int order[6] = {IRQ_MEI, IRQ_MSI, IRQ_MTI, IRQ_SEI, IRQ_SSI, IRQ_STI};
  for (int i = 0; i < 6; i++)
    if (en & (1ULL << order[i])) return order[i] + 1;
  return 0;
}

static void timer_update(rv64_hart *h) {
  if (h->timer_deadline != ~0ULL && rv64_time(h->m) >= h->timer_deadline) h->mip |= 1ULL << IRQ_STI;
}

/* clock=icount: the exact number of instructions still to retire before `time` reaches the
   hart's timer deadline (0 when it has), from time = sum of instret / icount_shift + vtime_extra.
   Exact, not rounded to a tick: a block bounded by it ends at the same instruction whatever
   count it started from. */
static uint64_t timer_left(rv64_hart *h) {
  rv64_machine *m = h->m;
  if (h->timer_deadline <= m->vtime_extra) return 0;
  uint64_t ticks = h->timer_deadline - m->vtime_extra, sum = 0;
  if (ticks > UINT64_MAX / m->icount_shift) return UINT64_MAX;
  for (int i = 0; i < m->nharts; i++)
    if (m->harts[i]) sum += m->harts[i]->counters[CNT_INSTRET];
  return ticks * m->icount_shift > sum ? ticks * m->icount_shift - sum : 0;
}

/* ---------------------------------------------------------------------------------------- */
/* CSRs                                                                                      */

#define SSTATUS_MASK (MS_SIE | MS_SPIE | MS_SPP | MS_FS | MS_SUM | MS_MXR | (3ULL << 32))
#define MSTATUS_WMASK (MS_SIE | MS_MIE | MS_SPIE | MS_MPIE | MS_SPP | MS_MPP | MS_FS | MS_MPRV | \
                       MS_SUM | MS_MXR | MS_TVM | MS_TW | MS_TSR)
#define MIP_MASK 0xaaaULL
#define MEDELEG_MASK 0xb1ffULL

static uint64_t status_read(rv64_hart *h) {
  uint64_t s = h->mstatus;
  if ((s & MS_FS) == MS_FS) s |= MS_SD;
  return s;
}

static void status_write(rv64_hart *h, uint64_t v) {
  uint64_t old = h->mstatus;
  if (((v & MS_MPP) >> MS_MPP_SHIFT) == 2) v &= ~MS_MPP;
  h->mstatus = (old & ~MSTATUS_WMASK) | (v & MSTATUS_WMASK);
  if ((old ^ h->mstatus) & MS_MXR) rv64_tlb_flush(h);
  rv64_update_modes(h);
}

static int counter_ok(rv64_hart *h, int bit) {
  if (h->priv < 3 && !((h->mcounteren >> bit) & 1)) return 0;
  if (h->priv == 0 && !((h->scounteren >> bit) & 1)) return 0;
  return 1;
}

int rv64_csr_read(rv64_hart *h, int csr, uint64_t *val, int check) {
  if (check && h->priv < ((csr >> 8) & 3)) return -1;
  uint64_t v = 0;
  switch (csr) {
    case 0x001: case 0x002: case 0x003:
      if (check && !(h->mstatus & MS_FS)) return -1;
      v = csr == 1 ? h->fflags : csr == 2 ? h->frm : (h->frm << 5) | h->fflags;
      break;
    case 0xc00: case 0xc02:
      if (check && !counter_ok(h, csr & 3)) return -1;
      v = h->counters[CNT_INSTRET] + h->instret_base;
      break;
    case 0xc01:
      if (check && !counter_ok(h, 1)) return -1;
      v = rv64_time(h->m);
      break;
    case 0x100: v = status_read(h) & (SSTATUS_MASK | MS_SD); break;
    case 0x104: v = h->mie & h->mideleg; break;
    case 0x105: v = h->stvec; break;
    case 0x106: v = h->scounteren; break;
    case 0x10a: v = h->senvcfg; break;
    case 0x140: v = h->sscratch; break;
    case 0x141: v = h->sepc; break;
    case 0x142: v = h->scause; break;
    case 0x143: v = h->stval; break;
    case 0x144: v = h->mip & h->mideleg; break;
    case 0x180:
      if (check && h->priv == 1 && (h->mstatus & MS_TVM)) return -1;
      v = h->satp;
      break;
    case 0xf11: case 0xf12: case 0xf13: case 0xf15: v = 0; break;
    case 0xf14: v = (uint64_t)h->id; break;
    case 0x300: v = status_read(h); break;
    case 0x301: v = h->misa; break;
    case 0x302: v = h->medeleg; break;
    case 0x303: v = h->mideleg; break;
    case 0x304: v = h->mie; break;
    case 0x305: v = h->mtvec; break;
    case 0x306: v = h->mcounteren; break;
    case 0x30a: v = h->menvcfg; break;
    case 0x340: v = h->mscratch; break;
    case 0x341: v = h->mepc; break;
    case 0x342: v = h->mcause; break;
    case 0x343: v = h->mtval; break;
    case 0x344: v = h->mip; break;
    case 0xb00: case 0xb02: v = h->counters[CNT_INSTRET] + h->instret_base; break;
    case 0x320: v = 0; break;
    default:
      if ((csr >= 0xc03 && csr <= 0xc1f)) {
        if (check && !counter_ok(h, csr & 31)) return -1;
        v = 0;
      } else if ((csr >= 0x3a0 && csr <= 0x3ef) || (csr >= 0xb03 && csr <= 0xb1f) ||
                 (csr >= 0x323 && csr <= 0x33f)) {
        v = 0;
      } else {
        return -1;
      }
  }
  *val = v;
  return 0;
}

int rv64_csr_write(rv64_hart *h, int csr, uint64_t v, int check) {
  if (check && (h->priv < ((csr >> 8) & 3) || (csr >> 10) == 3)) return -1;
  switch (csr) {
    case 0x001: case 0x002: case 0x003:
      if (check && !(h->mstatus & MS_FS)) return -1;
      if (csr == 1) h->fflags = v & 31;
      else if (csr == 2) h->frm = v & 7;
      else { h->fflags = v & 31; h->frm = (v >> 5) & 7; }
      h->mstatus |= MS_FS;
      break;
    case 0x100: status_write(h, (h->mstatus & ~SSTATUS_MASK) | (v & SSTATUS_MASK)); break;
    case 0x104: h->mie = (h->mie & ~h->mideleg) | (v & h->mideleg & MIP_MASK); break;
    case 0x105: h->stvec = (v & 3) >= 2 ? v & ~3ULL : v; break;
    case 0x106: h->scounteren = v & 0xffffffffULL; break;
    case 0x10a: h->senvcfg = 0; break;
    case 0x140: h->sscratch = v; break;
    case 0x141: h->sepc = v & ~1ULL; break;
    case 0x142: h->scause = v; break;
    case 0x143: h->stval = v; break;
    case 0x144: {
      uint64_t m = h->mideleg & (1ULL << IRQ_SSI);
      h->mip = (h->mip & ~m) | (v & m);
      break;
    }
    case 0x180: {
      uint64_t mode = v >> 60;
      if (check && h->priv == 1 && (h->mstatus & MS_TVM)) return -1;
      if (mode != 0 && mode != 8 && mode != 9) break; /* unsupported mode: no effect */
      h->satp = v & ~(0xffffULL << 44);               /* no ASID bits */
      h->sh_as = -1;
      rv64_tlb_flush(h);
      rv64_update_modes(h);
      break;
    }
    case 0x300: status_write(h, v); break;
    case 0x301: break;
    case 0x302: h->medeleg = v & MEDELEG_MASK; break;
    case 0x303: h->mideleg = v & 0x222ULL; break;
    case 0x304: h->mie = v & MIP_MASK; break;
    case 0x305: h->mtvec = (v & 3) >= 2 ? v & ~3ULL : v; break;
    case 0x306: h->mcounteren = v & 0xffffffffULL; break;
    case 0x30a: h->menvcfg = 0; break;
    case 0x340: h->mscratch = v; break;
    case 0x341: h->mepc = v & ~1ULL; break;
    case 0x342: h->mcause = v; break;
    case 0x343: h->mtval = v; break;
    case 0x344: {
      uint64_t m = (1ULL << IRQ_SSI) | (1ULL << IRQ_STI) | (check ? 0 : (1ULL << IRQ_SEI));
      h->mip = (h->mip & ~m) | (v & m);
      break;
    }
    case 0xb00: case 0xb02: h->instret_base = v - h->counters[CNT_INSTRET]; break;
    case 0x320: break;
    default:
      if ((csr >= 0x3a0 && csr <= 0x3ef) || (csr >= 0xb03 && csr <= 0xb1f) ||
          (csr >= 0x323 && csr <= 0x33f))
        break;
      return -1;
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* the interpreter                                                                           */

static int complete_pending(rv64_hart *h) {
  if (!h->pend_load) return 0;
  uint64_t v = h->exit.data;
  int sz = h->pend_size;
  if (sz < 8) {
    v &= (1ULL << (8 * sz)) - 1;
    if (h->pend_signed && (v >> (8 * sz - 1)) & 1) v |= ~((1ULL << (8 * sz)) - 1);
  }
  if (h->pend_fp) {
    h->f[h->pend_rd] = sz == 4 ? (v | 0xffffffff00000000ULL) : v;
    h->mstatus |= MS_FS;
  } else {
    h->x[h->pend_rd] = v;
  }
  h->pc += h->pend_len;
  h->pend_load = 0;
  return 1;
}

static int exec_system(rv64_hart *h, const insn_t *d); /* below */

/* The ops compressed instructions expand to (besides EBREAK and ILLEGAL, which end the block
   anyway). In the decode cache, a compressed instruction carries OPC_<op> instead of OP_<op>:
   its handler steps by 2 while OP_<op>'s steps by 4, so no handler reads len to find the next
   slot. Only the interpreter's decode cache holds OPC_* values. */
#define RV64_COPS(X)                                                                         \
  X(ADDI) X(ADDIW) X(LUI) X(SRLI) X(SRAI) X(ANDI) X(SLLI) X(SUB) X(XOR) X(OR) X(AND) X(SUBW) \
  X(ADDW) X(ADD) X(JAL) X(JALR) X(BEQ) X(BNE) X(LW) X(LD) X(SW) X(SD) X(FLD) X(FSD)
#define RV64_CENUM(name) OPC_##name,
enum { OPC_BEFORE_ = OP_COUNT - 1, RV64_COPS(RV64_CENUM) OPC_END };
#undef RV64_CENUM

/* The cache op of a decoded instruction (OPC_* for compressed forms). */
static inline uint16_t cache_op(const insn_t *w) {
  if (w->len != 2) return w->op;
  switch (w->op) {
#define RV64_CCASE(name) case OP_##name: return OPC_##name;
    RV64_COPS(RV64_CCASE)
#undef RV64_CCASE
    default: return w->op;
  }
}

/*
 * The common case of rv64_fetch_page inline: pc's page is in the fetch TLB, lies in the first
 * RAM region, and its decode page is current (allocated, of this decode generation, still a
 * code page). Switches the fetch page and returns 1; 0 sends the caller to rv64_fetch_page,
 * which handles everything else (walks, other regions, new or stale decode pages).
 */
static inline int fetch_fast(rv64_hart *h, uint64_t pc) {
  const tlb_entry *e = &h->tlb_fetch[h->fetch_mode][(pc >> 12) & (TLB_SIZE - 1)];
  if (e->tag != (pc & ~0xfffULL)) return 0;
  rv64_machine *m = h->m;
  const rv64_region *r = &m->regions[0];
  uint64_t off = e->gpage - r->gpa;
  if (unlikely(m->nregions < 1 || off >= r->size)) return 0;
  uint64_t page = off >> 12;
  insn_t *d = r->dec[page];
  if (!d || r->dec_gen[page] != m->dec_gen || !(r->flags[page] & PAGE_CODE)) return 0;
  h->fvpage = pc & ~0xfffULL;
  h->fdec = d;
  h->fhost = r->host + off;
  return 1;
}

/*
 * Runs instructions until at least `chunk` have executed (checked at taken branches, jumps and
 * page ends), an exit, or a state change that needs an interrupt check (CSR writes, xRET,
 * fence.i). Returns an exit kind or VMON_EXIT_NONE; *done gets the number of instructions executed.
 *
 * Dispatch is threaded (computed goto over decoded slots). Sequential flow advances the slot
 * pointer; each decode page ends with sentinel slots (OP_REFETCH) that send execution through
 * the page check, so only jumps, taken branches and page ends translate the pc.
 */
/* no-gcse/no-crossjumping: keep one dispatch jump per handler (merged tails predict badly) */
__attribute__((optimize("no-gcse", "no-crossjumping")))
static int exec_block(rv64_hart *h, uint64_t chunk, uint64_t *done) {
#define RV64_LABEL(name) [OP_##name] = &&L_##name,
#define RV64_CLABEL(name) [OPC_##name] = &&LC_##name,
  static const void *const labels[OPC_END] = {RV64_OPS(RV64_LABEL) RV64_COPS(RV64_CLABEL)};
#undef RV64_LABEL
#undef RV64_CLABEL
  uint64_t *const X = h->x;
  const int jit = h->m->jit != NULL; /* jumps look for translated code (jit.h) */
  /* With the translator every taken jump goes through `jump` (which looks for translated code);
     without it, JUMP's fast path is the interpreter's alone (one compare, as before). */
  const uint64_t fast_chunk = jit ? 0 : chunk;
  uint64_t pc = h->pc;
  uint64_t cnt = 0;
  h->blk_counted = 0; /* of cnt, what CNT_INSTRET holds (rv64_jit_csr moves it too) */
  int ret = VMON_EXIT_NONE;
  const insn_t *d;
  insn_t tmp[3];

#define SAVE() (h->pc = pc)
#define RELOAD() (pc = h->pc)
  /* The load/store TLB sets of the current mode; reloaded after traps and system instructions
     (the only ways ls_mode changes inside a block). The fast path's single compare
     tag == page of the access's last byte also rejects accesses that cross a page: the entry
     indexed by the first byte's page can only hold that page's tag. */
  const tlb_entry *TL, *TS;
#define MODES() (TL = h->tlb_load[h->ls_mode], TS = h->tlb_store[h->ls_mode])
  MODES();
#define DISPATCH() goto *labels[d->op]
/* Handlers step by a constant: 4-byte instructions use NEXT(), the compressed forms have their
   own handlers (OPC_*) that use NEXTN(2). The slot pointer then never waits for a load of len. */
#define NEXTN(n)                                                                             \
  do {                                                                                       \
    pc += (n);                                                                               \
    d += (n) / 2;                                                                            \
    cnt++;                                                                                   \
    DISPATCH();                                                                              \
  } while (0)
#define NEXT() NEXTN(4)
/* A jump to the current fetch page, or to a page fetch_fast can switch to, dispatches from here
   (one indirect branch per jump site predicts better than a shared one); the chunk end and
   everything else go through `jump`. */
#define JUMP(target)                                                                         \
  do {                                                                                       \
    pc = (target);                                                                           \
    cnt++;                                                                                   \
    if (likely(cnt < fast_chunk) &&                                                          \
        likely((pc & ~0xfffULL) == h->fvpage || fetch_fast(h, pc))) {                        \
      d = &h->fdec[(pc >> 1) & (DEC_SLOTS - 1)];                                             \
      DISPATCH();                                                                            \
    }                                                                                        \
    goto jump;                                                                               \
  } while (0)
#define AFTER_TRAP() do { cnt++; RELOAD(); MODES(); if (unlikely(h->exit.kind)) { ret = (int)h->exit.kind; goto out; } goto jump; } while (0)
#define TRAP(cause, tval) do { SAVE(); rv64_trap(h, (cause), (tval)); AFTER_TRAP(); } while (0)
#define ILLEGAL() TRAP(EXC_ILLEGAL, d->raw)
#define FS_CHECK() do { if (unlikely(!(h->mstatus & MS_FS))) ILLEGAL(); } while (0)

#define LOAD(ctype, size, rdst, box) LOADN(ctype, size, rdst, box, 4)
#define LOADN(ctype, size, rdst, box, n)                                                    \
  do {                                                                                       \
    uint64_t va = X[d->rs1] + (uint64_t)(int64_t)d->imm;                                     \
    const tlb_entry *e = &TL[(va >> 12) & (TLB_SIZE - 1)];                                   \
    if (likely(e->tag == ((va + (size) - 1) & ~0xfffULL))) {                                 \
      ctype v;                                                                               \
      memcpy(&v, (const void *)(e->addend + (uintptr_t)va), size);                           \
      rdst = (uint64_t)(v) | (box);                                                          \
    } else {                                                                                 \
      uint64_t v;                                                                            \
      SAVE();                                                                                \
      int s = rv64_load_slow(h, va, size, &v);                                               \
      if (s == MEM_TRAP) AFTER_TRAP();                                                       \
      if (s == MEM_EXIT) {                                                                   \
        h->pend_load = 1; h->pend_size = size; h->pend_signed = (ctype)-1 < (ctype)1;        \
        h->pend_fp = &(rdst) != &X[d->rd]; h->pend_rd = d->rd; h->pend_len = d->len;         \
        ret = VMON_EXIT_MMIO; goto out;                                                           \
      }                                                                                      \
      rdst = (uint64_t)(ctype)v | (box);                                                     \
    }                                                                                        \
    NEXTN(n);                                                                                \
  } while (0)

#define STORE(size, val) STOREN(size, val, 4)
#define STOREN(size, val, n)                                                                \
  do {                                                                                       \
    uint64_t va = X[d->rs1] + (uint64_t)(int64_t)d->imm, sv = (val);                         \
    const tlb_entry *e = &TS[(va >> 12) & (TLB_SIZE - 1)];                                   \
    if (likely(e->tag == ((va + (size) - 1) & ~0xfffULL))) {                                 \
      memcpy((void *)(e->addend + (uintptr_t)va), &sv, size);                                \
    } else {                                                                                 \
      SAVE();                                                                                \
      int s = rv64_store_slow(h, va, size, sv);                                              \
      if (s == MEM_TRAP) AFTER_TRAP();                                                       \
      if (s == MEM_EXIT) {                                                                   \
        if (h->exit.kind == VMON_EXIT_MMIO) { pc += d->len; cnt++; }                              \
        ret = (int)h->exit.kind; goto out;                                                   \
      }                                                                                      \
    }                                                                                        \
    NEXTN(n);                                                                                \
  } while (0)

#define BRANCHN(cond, n) do { if (cond) JUMP(pc + (uint64_t)(int64_t)d->imm); NEXTN(n); } while (0)
#define BRANCH(cond) BRANCHN(cond, 4)

/* AMOs and SC read rd and rs2 before rv64_amo_ptr: a store to this code page can clear the
   decode page, slot d included (store_prepare, mmu.c), and then d reads as zeros. */
#define AMO_W(expr)                                                                          \
  do {                                                                                       \
    const unsigned amo_rd = d->rd;                                                           \
    uint32_t b = (uint32_t)X[d->rs2];                                                        \
    SAVE();                                                                                  \
    uint8_t *p = rv64_amo_ptr(h, X[d->rs1], 4);                                              \
    if (!p) { if (h->exit.kind == VMON_EXIT_PAGING) { ret = VMON_EXIT_PAGING; goto out; } AFTER_TRAP(); } \
    int32_t a;                                                                               \
    memcpy(&a, p, 4);                                                                        \
    uint32_t r = (expr);                                                                     \
    if (unlikely(h->pt_hold)) { h->pt_hold = 0; h->exit.data = r; ret = VMON_EXIT_PAGING; goto out; } \
    memcpy(p, &r, 4);                                                                        \
    X[amo_rd] = (uint64_t)(int64_t)a;                                                        \
    NEXT();                                                                                  \
  } while (0)

#define AMO_D(expr)                                                                          \
  do {                                                                                       \
    const unsigned amo_rd = d->rd;                                                           \
    uint64_t b = X[d->rs2];                                                                  \
    SAVE();                                                                                  \
    uint8_t *p = rv64_amo_ptr(h, X[d->rs1], 8);                                              \
    if (!p) { if (h->exit.kind == VMON_EXIT_PAGING) { ret = VMON_EXIT_PAGING; goto out; } AFTER_TRAP(); } \
    int64_t a;                                                                               \
    memcpy(&a, p, 8);                                                                        \
    uint64_t r = (expr);                                                                     \
    if (unlikely(h->pt_hold)) { h->pt_hold = 0; h->exit.data = r; ret = VMON_EXIT_PAGING; goto out; } \
    memcpy(p, &r, 8);                                                                        \
    X[amo_rd] = (uint64_t)a;                                                                 \
    NEXT();                                                                                  \
  } while (0)

#define H_LUI(n) X[d->rd] = (uint64_t)(int64_t)d->imm; NEXTN(n);
#define H_ADDI(n) X[d->rd] = X[d->rs1] + (uint64_t)(int64_t)d->imm; NEXTN(n);
#define H_ANDI(n) X[d->rd] = X[d->rs1] & (uint64_t)(int64_t)d->imm; NEXTN(n);
#define H_SLLI(n) X[d->rd] = X[d->rs1] << d->imm; NEXTN(n);
#define H_SRLI(n) X[d->rd] = X[d->rs1] >> d->imm; NEXTN(n);
#define H_SRAI(n) X[d->rd] = (uint64_t)((int64_t)X[d->rs1] >> d->imm); NEXTN(n);
#define H_ADD(n) X[d->rd] = X[d->rs1] + X[d->rs2]; NEXTN(n);
#define H_SUB(n) X[d->rd] = X[d->rs1] - X[d->rs2]; NEXTN(n);
#define H_XOR(n) X[d->rd] = X[d->rs1] ^ X[d->rs2]; NEXTN(n);
#define H_OR(n) X[d->rd] = X[d->rs1] | X[d->rs2]; NEXTN(n);
#define H_AND(n) X[d->rd] = X[d->rs1] & X[d->rs2]; NEXTN(n);
#define H_ADDIW(n) X[d->rd] = (uint64_t)(int64_t)(int32_t)(X[d->rs1] + (uint64_t)(int64_t)d->imm); NEXTN(n);
#define H_ADDW(n) X[d->rd] = (uint64_t)(int64_t)(int32_t)(X[d->rs1] + X[d->rs2]); NEXTN(n);
#define H_SUBW(n) X[d->rd] = (uint64_t)(int64_t)(int32_t)(X[d->rs1] - X[d->rs2]); NEXTN(n);
#define H_JAL(n) X[d->rd] = pc + (n); JUMP(pc + (uint64_t)(int64_t)d->imm);
#define H_JALR(n) { uint64_t t = (X[d->rs1] + (uint64_t)(int64_t)d->imm) & ~1ULL; X[d->rd] = pc + (n); JUMP(t); }
#define H_BEQ(n) BRANCHN(X[d->rs1] == X[d->rs2], n);
#define H_BNE(n) BRANCHN(X[d->rs1] != X[d->rs2], n);
#define H_LW(n) LOADN(int32_t, 4, X[d->rd], 0, n);
#define H_LD(n) LOADN(int64_t, 8, X[d->rd], 0, n);
#define H_SW(n) STOREN(4, X[d->rs2], n);
#define H_SD(n) STOREN(8, X[d->rs2], n);
#define H_FLD(n) FS_CHECK(); h->mstatus |= MS_FS; LOADN(uint64_t, 8, h->f[d->rd], 0, n);
#define H_FSD(n) FS_CHECK(); STOREN(8, h->f[d->rs2], n);

jump:
  if (unlikely(cnt >= chunk)) goto out;
  if (unlikely((pc & ~0xfffULL) != h->fvpage) && !fetch_fast(h, pc)) {
    SAVE();
    int s = rv64_fetch_page(h, pc);
    if (s != MEM_OK) {
      if (s == MEM_TRAP) AFTER_TRAP();
      RELOAD();
      ret = (int)h->exit.kind;
      goto out;
    }
  }
  d = &h->fdec[(pc >> 1) & (DEC_SLOTS - 1)];
  if (unlikely(jit)) goto jit_try;
  DISPATCH();

jit_try: { /* translated code at pc (jit.h); it returns where the interpreter goes on */
    const void *code = rv64_jit_lookup(h, pc);
    if (!code) DISPATCH();
    SAVE();
    int a = rv64_jit_run(h, code, &cnt, &chunk);
    RELOAD();
    if (a == JIT_A_JUMP) goto jump;
    if (a == JIT_A_OUT) { MODES(); ret = (int)h->exit.kind; goto out; }
    d = &h->fdec[(pc >> 1) & (DEC_SLOTS - 1)];
    if (a == JIT_A_CONTINUE) goto jit_try;
    DISPATCH();
  }

L_REFETCH:
  goto jump;

L_UNDECODED: {
    insn_t *w = &h->fdec[(pc >> 1) & (DEC_SLOTS - 1)];
    uint32_t off = (uint32_t)(pc & 0xfff), raw;
    const uint8_t *host = h->fhost;
    uint16_t lo;
    memcpy(&lo, host + off, 2);
    const uint8_t *snap = DEC_SNAP(h->fdec) + off;
    if ((lo & 3) == 3 && off == 0xffe) {
      w->op = OP_CROSS;
      w->len = 4;
    } else if ((lo & 3) == 3) {
      memcpy(&raw, host + off, 4);
      if (memcmp(snap, &raw, 4) != 0) DEC_SNAP_OK(h->fdec) = 0;
      rv64_decode(raw, w);
    } else {
      if (memcmp(snap, &lo, 2) != 0) DEC_SNAP_OK(h->fdec) = 0;
      rv64_decode(lo, w);
      w->op = cache_op(w);
    }
    h->counters[CNT_DECODED]++;
    d = w;
    DISPATCH();
  }

L_CROSS: {
    uint32_t raw;
    SAVE();
    if (rv64_fetch_cross(h, pc, &raw) != MEM_OK) AFTER_TRAP();
    rv64_decode(raw, &tmp[0]);
    tmp[0].op = cache_op(&tmp[0]); /* the bytes may have become a compressed instruction */
    tmp[1].op = tmp[2].op = OP_REFETCH;
    d = &tmp[0];
    DISPATCH();
  }

L_ILLEGAL: ILLEGAL();
L_LUI: H_LUI(4);
LC_LUI: H_LUI(2);
L_AUIPC: X[d->rd] = pc + (uint64_t)(int64_t)d->imm; NEXT();
L_JAL: H_JAL(4);
LC_JAL: H_JAL(2);
L_JALR: H_JALR(4);
LC_JALR: H_JALR(2);
L_BEQ: H_BEQ(4);
LC_BEQ: H_BEQ(2);
L_BNE: H_BNE(4);
LC_BNE: H_BNE(2);
L_BLT: BRANCH((int64_t)X[d->rs1] < (int64_t)X[d->rs2]);
L_BGE: BRANCH((int64_t)X[d->rs1] >= (int64_t)X[d->rs2]);
L_BLTU: BRANCH(X[d->rs1] < X[d->rs2]);
L_BGEU: BRANCH(X[d->rs1] >= X[d->rs2]);
L_LB: LOAD(int8_t, 1, X[d->rd], 0);
L_LH: LOAD(int16_t, 2, X[d->rd], 0);
L_LW: H_LW(4);
LC_LW: H_LW(2);
L_LD: H_LD(4);
LC_LD: H_LD(2);
L_LBU: LOAD(uint8_t, 1, X[d->rd], 0);
L_LHU: LOAD(uint16_t, 2, X[d->rd], 0);
L_LWU: LOAD(uint32_t, 4, X[d->rd], 0);
L_SB: STORE(1, X[d->rs2]);
L_SH: STORE(2, X[d->rs2]);
L_SW: H_SW(4);
LC_SW: H_SW(2);
L_SD: H_SD(4);
LC_SD: H_SD(2);
L_ADDI: H_ADDI(4);
LC_ADDI: H_ADDI(2);
L_SLTI: X[d->rd] = (int64_t)X[d->rs1] < (int64_t)d->imm; NEXT();
L_SLTIU: X[d->rd] = X[d->rs1] < (uint64_t)(int64_t)d->imm; NEXT();
L_XORI: X[d->rd] = X[d->rs1] ^ (uint64_t)(int64_t)d->imm; NEXT();
L_ORI: X[d->rd] = X[d->rs1] | (uint64_t)(int64_t)d->imm; NEXT();
L_ANDI: H_ANDI(4);
LC_ANDI: H_ANDI(2);
L_SLLI: H_SLLI(4);
LC_SLLI: H_SLLI(2);
L_SRLI: H_SRLI(4);
LC_SRLI: H_SRLI(2);
L_SRAI: H_SRAI(4);
LC_SRAI: H_SRAI(2);
L_ADD: H_ADD(4);
LC_ADD: H_ADD(2);
L_SUB: H_SUB(4);
LC_SUB: H_SUB(2);
L_SLL: X[d->rd] = X[d->rs1] << (X[d->rs2] & 63); NEXT();
L_SLT: X[d->rd] = (int64_t)X[d->rs1] < (int64_t)X[d->rs2]; NEXT();
L_SLTU: X[d->rd] = X[d->rs1] < X[d->rs2]; NEXT();
L_XOR: H_XOR(4);
LC_XOR: H_XOR(2);
L_SRL: X[d->rd] = X[d->rs1] >> (X[d->rs2] & 63); NEXT();
L_SRA: X[d->rd] = (uint64_t)((int64_t)X[d->rs1] >> (X[d->rs2] & 63)); NEXT();
L_OR: H_OR(4);
LC_OR: H_OR(2);
L_AND: H_AND(4);
LC_AND: H_AND(2);
L_FENCE: NEXT();
L_ADDIW: H_ADDIW(4);
LC_ADDIW: H_ADDIW(2);
L_SLLIW: X[d->rd] = (uint64_t)(int64_t)(int32_t)((uint32_t)X[d->rs1] << d->imm); NEXT();
L_SRLIW: X[d->rd] = (uint64_t)(int64_t)(int32_t)((uint32_t)X[d->rs1] >> d->imm); NEXT();
L_SRAIW: X[d->rd] = (uint64_t)(int64_t)((int32_t)X[d->rs1] >> d->imm); NEXT();
L_ADDW: H_ADDW(4);
LC_ADDW: H_ADDW(2);
L_SUBW: H_SUBW(4);
LC_SUBW: H_SUBW(2);
L_SLLW: X[d->rd] = (uint64_t)(int64_t)(int32_t)((uint32_t)X[d->rs1] << (X[d->rs2] & 31)); NEXT();
L_SRLW: X[d->rd] = (uint64_t)(int64_t)(int32_t)((uint32_t)X[d->rs1] >> (X[d->rs2] & 31)); NEXT();
L_SRAW: X[d->rd] = (uint64_t)(int64_t)((int32_t)X[d->rs1] >> (X[d->rs2] & 31)); NEXT();
L_MUL: X[d->rd] = X[d->rs1] * X[d->rs2]; NEXT();
L_MULH: X[d->rd] = (uint64_t)(((__int128)(int64_t)X[d->rs1] * (__int128)(int64_t)X[d->rs2]) >> 64); NEXT();
L_MULHSU: X[d->rd] = (uint64_t)(((__int128)(int64_t)X[d->rs1] * (__int128)(unsigned __int128)X[d->rs2]) >> 64); NEXT();
L_MULHU: X[d->rd] = (uint64_t)(((unsigned __int128)X[d->rs1] * X[d->rs2]) >> 64); NEXT();
L_DIV: {
    int64_t a = (int64_t)X[d->rs1], b = (int64_t)X[d->rs2];
    X[d->rd] = b == 0 ? ~0ULL : (a == INT64_MIN && b == -1) ? (uint64_t)a : (uint64_t)(a / b);
    NEXT();
  }
L_DIVU: { uint64_t b = X[d->rs2]; X[d->rd] = b ? X[d->rs1] / b : ~0ULL; NEXT(); }
L_REM: {
    int64_t a = (int64_t)X[d->rs1], b = (int64_t)X[d->rs2];
    X[d->rd] = b == 0 ? (uint64_t)a : (a == INT64_MIN && b == -1) ? 0 : (uint64_t)(a % b);
    NEXT();
  }
L_REMU: { uint64_t b = X[d->rs2]; X[d->rd] = b ? X[d->rs1] % b : X[d->rs1]; NEXT(); }
L_MULW: X[d->rd] = (uint64_t)(int64_t)(int32_t)((uint32_t)X[d->rs1] * (uint32_t)X[d->rs2]); NEXT();
L_DIVW: {
    int32_t a = (int32_t)X[d->rs1], b = (int32_t)X[d->rs2];
    X[d->rd] = (uint64_t)(int64_t)(b == 0 ? -1 : (a == INT32_MIN && b == -1) ? a : a / b);
    NEXT();
  }
L_DIVUW: {
    uint32_t a = (uint32_t)X[d->rs1], b = (uint32_t)X[d->rs2];
    X[d->rd] = (uint64_t)(int64_t)(int32_t)(b ? a / b : 0xffffffffu);
    NEXT();
  }
L_REMW: {
    int32_t a = (int32_t)X[d->rs1], b = (int32_t)X[d->rs2];
    X[d->rd] = (uint64_t)(int64_t)(b == 0 ? a : (a == INT32_MIN && b == -1) ? 0 : a % b);
    NEXT();
  }
L_REMUW: {
    uint32_t a = (uint32_t)X[d->rs1], b = (uint32_t)X[d->rs2];
    X[d->rd] = (uint64_t)(int64_t)(int32_t)(b ? a % b : a);
    NEXT();
  }
L_LR_W:
L_LR_D: {
    int size = d->op == OP_LR_W ? 4 : 8;
    uint64_t va = X[d->rs1], gpa;
    const uint8_t *p;
    if (va & (uint64_t)(size - 1)) TRAP(EXC_LOAD_MISALIGNED, va);
    const tlb_entry *e = &h->tlb_load[h->ls_mode][(va >> 12) & (TLB_SIZE - 1)];
    if (likely(e->tag == (va & ~0xfffULL))) {
      p = (const uint8_t *)(e->addend + (uintptr_t)va);
    } else {
      int c = rv64_translate(h, va, ACC_LOAD, h->ls_mode, &gpa);
      if (c) TRAP((uint64_t)(c - 1), va);
      rv64_region *r = rv64_find_region(h->m, gpa);
      if (!r || gpa - r->gpa + (uint64_t)size > r->size) TRAP(EXC_LOAD_ACCESS, va);
      p = r->host + (gpa - r->gpa);
    }
    if (size == 4) { int32_t v; memcpy(&v, p, 4); X[d->rd] = (uint64_t)(int64_t)v; }
    else { uint64_t v; memcpy(&v, p, 8); X[d->rd] = v; }
    h->res_addr = va;
    h->res_valid = 1;
    NEXT();
  }
L_SC_W:
L_SC_D: {
    int size = d->op == OP_SC_W ? 4 : 8;
    uint64_t va = X[d->rs1];
    if (va & (uint64_t)(size - 1)) TRAP(EXC_STORE_MISALIGNED, va);
    if (h->res_valid && h->res_addr == va) {
      const unsigned sc_rd = d->rd; /* before rv64_amo_ptr (see AMO_W) */
      const uint64_t v = X[d->rs2];
      SAVE();
      uint8_t *p = rv64_amo_ptr(h, va, size);
      if (!p) { if (h->exit.kind == VMON_EXIT_PAGING) { ret = VMON_EXIT_PAGING; goto out; } AFTER_TRAP(); }
      if (unlikely(h->pt_hold)) {
        h->pt_hold = 0;
        h->exit.data = size == 4 ? (uint32_t)v : v;
        ret = VMON_EXIT_PAGING;
        goto out;
      }
      memcpy(p, &v, (size_t)size);
      X[sc_rd] = 0;
    } else {
      X[d->rd] = 1;
    }
    h->res_valid = 0;
    NEXT();
  }
L_AMOSWAP_W: AMO_W(b);
L_AMOADD_W: AMO_W((uint32_t)a + b);
L_AMOXOR_W: AMO_W((uint32_t)a ^ b);
L_AMOAND_W: AMO_W((uint32_t)a & b);
L_AMOOR_W: AMO_W((uint32_t)a | b);
L_AMOMIN_W: AMO_W(a < (int32_t)b ? (uint32_t)a : b);
L_AMOMAX_W: AMO_W(a > (int32_t)b ? (uint32_t)a : b);
L_AMOMINU_W: AMO_W((uint32_t)a < b ? (uint32_t)a : b);
L_AMOMAXU_W: AMO_W((uint32_t)a > b ? (uint32_t)a : b);
L_AMOSWAP_D: AMO_D(b);
L_AMOADD_D: AMO_D((uint64_t)a + b);
L_AMOXOR_D: AMO_D((uint64_t)a ^ b);
L_AMOAND_D: AMO_D((uint64_t)a & b);
L_AMOOR_D: AMO_D((uint64_t)a | b);
L_AMOMIN_D: AMO_D(a < (int64_t)b ? (uint64_t)a : b);
L_AMOMAX_D: AMO_D(a > (int64_t)b ? (uint64_t)a : b);
L_AMOMINU_D: AMO_D((uint64_t)a < b ? (uint64_t)a : b);
L_AMOMAXU_D: AMO_D((uint64_t)a > b ? (uint64_t)a : b);
L_FLW: FS_CHECK(); h->mstatus |= MS_FS; LOAD(uint32_t, 4, h->f[d->rd], 0xffffffff00000000ULL);
L_FLD: H_FLD(4);
LC_FLD: H_FLD(2);
L_FSW: FS_CHECK(); STORE(4, h->f[d->rs2]);
L_FSD: H_FSD(4);
LC_FSD: H_FSD(2);
L_FENCE_I: L_ECALL: L_EBREAK: L_SRET: L_MRET: L_WFI: L_SFENCE_VMA: L_CSRRW: L_CSRRS: L_CSRRC:
L_CSRRWI: L_CSRRSI: L_CSRRCI: {
    /* system instructions run out of line; the block ends when state changed */
    SAVE();
    h->counters[CNT_INSTRET] += cnt - h->blk_counted;
    h->blk_counted = cnt;
    int k = exec_system(h, d);
    if (k < 0) { RELOAD(); ILLEGAL(); }
    cnt++;
    RELOAD();
    MODES();
    if (h->exit.kind) { ret = (int)h->exit.kind; goto out; }
    if (k == 1) goto out; /* state changed: check interrupts */
    goto jump;
  }
L_FMADD_S: L_FMSUB_S: L_FNMSUB_S: L_FNMADD_S: L_FADD_S: L_FSUB_S: L_FMUL_S: L_FDIV_S:
L_FSQRT_S: L_FSGNJ_S: L_FSGNJN_S: L_FSGNJX_S: L_FMIN_S: L_FMAX_S: L_FCVT_W_S:
L_FCVT_WU_S: L_FMV_X_W: L_FEQ_S: L_FLT_S: L_FLE_S: L_FCLASS_S: L_FCVT_S_W: L_FCVT_S_WU:
L_FMV_W_X: L_FCVT_L_S: L_FCVT_LU_S: L_FCVT_S_L: L_FCVT_S_LU:
L_FMADD_D: L_FMSUB_D: L_FNMSUB_D: L_FNMADD_D: L_FADD_D: L_FSUB_D: L_FMUL_D: L_FDIV_D:
L_FSQRT_D: L_FSGNJ_D: L_FSGNJN_D: L_FSGNJX_D: L_FMIN_D: L_FMAX_D: L_FCVT_W_D:
L_FCVT_WU_D: L_FMV_X_D: L_FEQ_D: L_FLT_D: L_FLE_D: L_FCLASS_D: L_FCVT_D_W: L_FCVT_D_WU:
L_FMV_D_X: L_FCVT_L_D: L_FCVT_LU_D: L_FCVT_D_L: L_FCVT_D_LU: L_FCVT_S_D: L_FCVT_D_S:
  FS_CHECK();
  if (rv64_fp_exec(h, d) < 0) ILLEGAL();
  NEXT();

out:
  h->pc = pc;
  h->counters[CNT_INSTRET] += cnt - h->blk_counted;
  h->blk_counted = cnt;
  *done = cnt;
  return ret;
#undef SAVE
#undef RELOAD
#undef MODES
#undef DISPATCH
#undef NEXT
#undef NEXTN
#undef LOADN
#undef STOREN
#undef BRANCHN
#undef JUMP
#undef AFTER_TRAP
#undef TRAP
#undef ILLEGAL
#undef LOAD
#undef STORE
#undef BRANCH
#undef AMO_W
#undef AMO_D
#undef FS_CHECK
}

/*
 * System instructions. h->pc is the instruction's pc. Returns -1 for illegal, 0 to continue the
 * block, 1 to end it; sets h->pc to the next pc (or a trap target) and may fill h->exit.
 */
static int exec_system(rv64_hart *h, const insn_t *d) {
  uint64_t pc = h->pc;
  switch (d->op) {
    case OP_FENCE_I:
      h->m->dec_gen++;
      h->fvpage = ~0ULL;
      h->pc = pc + d->len;
      return 1;
    case OP_ECALL:
      if (h->priv == 1) {
        h->exit.kind = VMON_EXIT_HYPERCALL;
        h->exit.nr = h->x[17];
        h->exit.fid = h->x[16];
        for (int i = 0; i < 6; i++) h->exit.args[i] = h->x[10 + i];
        h->exit.pc = pc;
        h->counters[CNT_SBI]++;
        h->pc = pc + 4;
        return 1;
      }
      rv64_trap(h, h->priv == 0 ? EXC_ECALL_U : EXC_ECALL_M, 0);
      return 1;
    case OP_EBREAK:
      rv64_trap(h, EXC_BREAKPOINT, pc);
      return 1;
    case OP_SRET: {
      if (h->priv == 0 || (h->priv == 1 && (h->mstatus & MS_TSR))) return -1;
      uint64_t s = h->mstatus;
      h->priv = (s & MS_SPP) ? 1 : 0;
      s = (s & ~MS_SIE) | ((s & MS_SPIE) ? MS_SIE : 0);
      s |= MS_SPIE;
      s &= ~MS_SPP;
      s &= ~MS_MPRV;
      h->mstatus = s;
      h->pc = h->sepc;
      rv64_update_modes(h);
      return 1;
    }
    case OP_MRET: {
      if (h->priv != 3) return -1;
      uint64_t s = h->mstatus;
      h->priv = (int)((s & MS_MPP) >> MS_MPP_SHIFT);
      s = (s & ~MS_MIE) | ((s & MS_MPIE) ? MS_MIE : 0);
      s |= MS_MPIE;
      s &= ~MS_MPP;
      if (h->priv != 3) s &= ~MS_MPRV;
      h->mstatus = s;
      h->pc = h->mepc;
      rv64_update_modes(h);
      return 1;
    }
    case OP_WFI:
      if (h->priv == 0 || (h->priv == 1 && (h->mstatus & MS_TW))) return -1;
      h->pc = pc + 4;
      timer_update(h);
      if (h->mip & h->mie) return 1;
      if (h->m->clock_icount && h->timer_deadline != ~0ULL && (h->mie & (1ULL << IRQ_STI))) {
        /* deterministic time: idle time jumps to the deadline */
        uint64_t t = rv64_time(h->m);
        if (t < h->timer_deadline) h->m->vtime_extra += h->timer_deadline - t;
        h->mip |= 1ULL << IRQ_STI;
        return 1;
      }
      h->halted = 1;
      h->exit.kind = VMON_EXIT_HALT;
      h->exit.pc = pc;
      return 1;
    case OP_SFENCE_VMA:
      if (h->priv == 0 || (h->priv == 1 && (h->mstatus & MS_TVM))) return -1;
      if (d->rs1 == 0) rv64_tlb_flush(h);
      else rv64_tlb_flush_va(h, h->x[d->rs1]);
      h->pc = pc + 4;
      if (h->exit_on_sfence == 1 ||
          (h->exit_on_sfence && h->m->paging && h->m->paging->flush_exit(h, d->rs1 == 0, h->x[d->rs1]))) {
        h->exit.kind = VMON_EXIT_PAGING;
        h->exit.code = VMON_PAGING_SFENCE;
        h->exit.addr = d->rs1 ? h->x[d->rs1] : 0;
        h->exit.data = d->rs2 ? h->x[d->rs2] : 0;
        h->exit.size = 0;
        h->exit.is_write = 0;
        h->exit.pc = pc;
        h->counters[CNT_PAGING_EXITS]++;
      }
      return 1;
    default: { /* CSR instructions */
      int csr = d->imm & 0xfff;
      int imm_form = d->op >= OP_CSRRWI;
      uint64_t src = imm_form ? d->rs1 : h->x[d->rs1];
      int kind = imm_form ? d->op - OP_CSRRWI : d->op - OP_CSRRW; /* 0 W, 1 S, 2 C */
      int do_write = kind == 0 || d->rs1 != 0;
      int do_read = !(kind == 0 && d->rd == 32);
      uint64_t old = 0, nv;
      uint64_t satp_before = h->satp;
      if (do_write && (csr >> 10) == 3) return -1;
      if (do_read || kind != 0) {
        if (rv64_csr_read(h, csr, &old, 1) < 0) return -1;
      } else if (h->priv < ((csr >> 8) & 3)) {
        return -1;
      }
      if (do_write) {
        nv = kind == 0 ? src : kind == 1 ? (old | src) : (old & ~src);
        if (rv64_csr_write(h, csr, nv, 1) < 0) return -1;
      }
      h->x[d->rd] = old;
      h->pc = pc + 4;
      if (do_write && csr == 0x180 &&
          (h->exit_on_satp == 1 ||
           (h->exit_on_satp && h->m->paging && h->m->paging->flush_exit(h, 1, 0)))) {
        h->exit.kind = VMON_EXIT_PAGING;
        h->exit.code = VMON_PAGING_SATP;
        h->exit.addr = satp_before;
        h->exit.data = h->satp;
        h->exit.size = 0;
        h->exit.is_write = 1;
        h->exit.pc = pc;
        h->counters[CNT_PAGING_EXITS]++;
      }
      return do_write ? 1 : 0;
    }
  }
}

/*
 * The length of the chunk rv64_run_hart starts with `remaining` instructions of its budget left
 * (rule 2): CHUNK at most, and under clock=icount no further than the timer's deadline, exactly,
 * so that the block end does not depend on where the chunk started.
 */
static uint64_t next_chunk(rv64_hart *h, uint64_t remaining) {
  uint64_t chunk = remaining < CHUNK ? remaining : CHUNK;
  if (h->m->clock_icount && h->timer_deadline != ~0ULL && !(h->mip & (1ULL << IRQ_STI))) {
    uint64_t left = timer_left(h);
    if (left < chunk) chunk = left ? left : 1;
  }
  return chunk;
}

/*
 * A CSR instruction on a CSR of jit_csr_inline (jit.h) for translated code (rv64_jit.csr), which
 * passes the count of its exec_block call through this instruction and the address of its chunk
 * limit; h->pc is the instruction's pc and the guest registers are in h->x. It runs the instruction
 * as exec_block would and, where that would return to rv64_run_hart (a point of rule 1), does
 * what rv64_run_hart then does, as long as that is only to start a new chunk:
 *   0: done; go on (the limit may have moved: the new chunk counted from here),
 *   1: done; leave with JIT_A_OUT: rv64_run_hart runs the checks (an interrupt to take, the
 *      budget used up, a kick, an exit, or a state change other than sstatus.SIE),
 *   2: not run; leave before it, the interpreter runs it (from U-mode: it raises the trap).
 */
int rv64_jit_csr(rv64_hart *h, const insn_t *d, uint64_t cnt, uint64_t *limit) {
  if (h->priv < 1 || !jit_csr_inline(d->imm & 0xfff)) return 2;
  uint64_t before = h->mstatus, fvpage = h->fvpage;
  int fetch_mode = h->fetch_mode, ls_mode = h->ls_mode;
  /* CNT_INSTRET as the interpreter has it when exec_system runs: through the previous one */
  h->counters[CNT_INSTRET] += cnt - 1 - h->blk_counted;
  h->blk_counted = cnt - 1;
  int k = exec_system(h, d);
  if (k < 0) return 2; /* not reached for these CSRs from S or M mode: nothing was written */
  h->counters[CNT_INSTRET]++;
  h->blk_counted = cnt;
  if (h->exit.kind) return 1;
  if (k == 0) return cnt >= *limit ? 1 : 0; /* a block point (exec_block's `jump`) */
  /* a point of rule 1: exec_block would return; rv64_run_hart would then go on unless ... */
  if ((before ^ h->mstatus) & ~MS_SIE || fetch_mode != h->fetch_mode || ls_mode != h->ls_mode)
    return 1;
  h->fvpage = fvpage; /* only SIE changed: the fetch page is what exec_block would switch to */
  if (cnt >= h->blk_remaining) return 1;                            /* the budget is used up */
  if (__atomic_load_n(&h->m->kick, __ATOMIC_RELAXED)) return 1;      /* it takes the kick */
  timer_update(h);
  if (rv64_pending_irq(h)) return 1;                                 /* it takes an interrupt */
  /* a new chunk from here, as its exec_block would count */
  *limit = h->blk_limit = cnt + next_chunk(h, h->blk_remaining - cnt);
  return 0;
}

/*
 * Where interrupts are taken: the rule every engine that runs guest code here follows (the block
 * translator included). Under clock=icount guest time is the retired-instruction count, and a
 * guest-visible event must happen at the same count whatever the paging strategy, the exits and
 * the slices, so the points where pending interrupts are checked (and an enabled one taken)
 * depend on the guest's execution only:
 *
 *  1. after a system instruction that ends the block (exec_system returned 1: CSR writes, xRET,
 *     WFI, ecall, fence.i, sfence.vma), also when it exits (an SBI call, a paging flush exit);
 *  2. at the first "block point" at which the block has run `chunk` instructions or more, where
 *     a block point is the boundary after a taken branch or jump, after sequential execution
 *     reached the end of a decode page or crossed a page, after a trap was raised, or after a
 *     system instruction that did not end the block (`jump:` and JUMP in exec_block);
 *     `chunk` never exceeds timer_left(), so a timer interrupt is taken at the first block
 *     point at or after the exact count at which it became due, never later, never earlier;
 *  3. at the start of a run (after an exit or a slice end), except after a paging exit in the
 *     middle of a store, AMO or SC (VMON_PAGING_PT_WRITE, VMON_PAGING_WRITE_PROTECTED): such exits
 *     happen under some strategies only, so the hart first runs on to the next point of 1 or 2
 *     (h->irq_defer; chunk 1 when an interrupt is already due). Other exits (MMIO, SBI calls,
 *     halts) happen under every strategy at the same instruction; slices end at points of 2.
 *
 * A translated block must end only at such points (never on a count alone in straight-line
 * code, never at an untaken branch), count instructions as exec_block does, and return its exits
 * through this function (which sets irq_defer from the exit code). A translated CSR write passes
 * its point of 1 without returning only through rv64_jit_csr, which does there what this loop
 * does (h->blk_remaining, h->blk_limit and h->blk_counted carry the loop's state).
 */
int rv64_run_hart(rv64_hart *h, uint64_t budget) {
  h->exit.kind = VMON_EXIT_NONE;
  h->exit.detail[0] = 0;
  complete_pending(h);
  if (unlikely(h->flush_pending)) {
    h->flush_pending = 0;
    h->exit.kind = VMON_EXIT_PAGING;
    h->exit.code = VMON_PAGING_SFENCE;
    h->exit.size = 0;
    h->exit.is_write = 0;
    h->exit.data = 0;
    h->exit.pc = h->pc;
    h->counters[CNT_PAGING_EXITS]++;
    return VMON_EXIT_PAGING;
  }
  if (budget == 0) { h->exit.kind = VMON_EXIT_INTERRUPTED; return VMON_EXIT_INTERRUPTED; }
  if (!h->started) { h->exit.kind = VMON_EXIT_HALT; return VMON_EXIT_HALT; }
  if (h->halted) {
    timer_update(h);
    if (!(h->mip & h->mie)) { h->exit.kind = VMON_EXIT_HALT; return VMON_EXIT_HALT; }
    h->halted = 0;
  }
  h->fvpage = ~0ULL;
  if (unlikely(h->pc & 1)) { /* only the monitor can set an odd pc */
    rv64_trap(h, EXC_INSN_MISALIGNED, h->pc);
    if (h->exit.kind) return (int)h->exit.kind;
  }
  uint64_t remaining = budget;
  int k = VMON_EXIT_NONE;
  if (h->m->jit && !h->m->jit->csr) h->m->jit->csr = rv64_jit_csr; /* jit.h: rv64_jit.csr */
  int defer = h->irq_defer; /* rule 3: no check before the next point of rule 1 or 2 */
  h->irq_defer = 0;
  while (remaining) {
    if (!defer) {
      timer_update(h);
      int irq = rv64_pending_irq(h);
      if (irq) {
        rv64_trap(h, (1ULL << 63) | (uint64_t)(irq - 1), 0);
        if (h->exit.kind) { k = (int)h->exit.kind; break; }
      }
    }
    uint64_t chunk = next_chunk(h, remaining);
    if (defer && rv64_pending_irq(h)) chunk = 1;
    defer = 0;
    uint64_t done = 0;
    h->blk_remaining = remaining;
    k = exec_block(h, chunk, &done);
    remaining -= done < remaining ? done : remaining;
    if (k) break;
    /* rv64_kick (api.c) from another thread: end the slice so the monitor delivers host input */
    if (unlikely(__atomic_load_n(&h->m->kick, __ATOMIC_RELAXED)) &&
        __atomic_exchange_n(&h->m->kick, 0, __ATOMIC_ACQ_REL))
      break;
  }
  if (k != VMON_EXIT_PAGING) h->res_valid = 0; /* an SC that exited re-executes with its reservation */
  /* rule 3: a paging exit inside a store/AMO/SC is no check point */
  h->irq_defer = k == VMON_EXIT_PAGING && (h->exit.code == VMON_PAGING_PT_WRITE ||
                                           h->exit.code == VMON_PAGING_WRITE_PROTECTED);
  if (!k) k = VMON_EXIT_INTERRUPTED;
  h->exit.kind = (uint32_t)k;
  h->exit.pc = h->pc;
  return k;
}
