/*
 * The exported API of the rv64 machine (see symbols.ts for the TypeScript view).
 *
 * Ownership: rv64_create() returns a machine the caller owns until rv64_destroy(). Every pointer
 * returned by the functions below (RAM, exit records, register blocks, counters) is owned by the
 * machine and valid until rv64_destroy(); the caller never frees them. Hart indices and guest
 * addresses from the caller are checked.
 *
 * Layer: the top; calls cpu.c, mmu.c and trap.c, and the paging mechanism through m->paging.
 * The paging exports (rv64_paging_mode, the shadow and queue functions) are in shadow.c.
 */
#include "rv64.h"
#include "jit.h"
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>


static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static rv64_hart *hart(rv64_machine *m, int i) {
  if (!m || i < 0 || i >= m->nharts) return NULL;
  return m->harts[i];
}

static void hart_reset(rv64_hart *h) {
  memset(h->x, 0, sizeof h->x);
  memset(h->f, 0, sizeof h->f);
  h->pc = 0;
  h->priv = 1;
  h->mstatus = (2ULL << 32) | (2ULL << 34);
  h->misa = (2ULL << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) |
            (1 << 18) | (1 << 20);
  /* like OpenSBI: delegate every delegable exception and the supervisor interrupts */
  h->medeleg = (1 << EXC_INSN_MISALIGNED) | (1 << EXC_INSN_ACCESS) | (1 << EXC_ILLEGAL) |
               (1 << EXC_BREAKPOINT) | (1 << EXC_LOAD_MISALIGNED) | (1 << EXC_LOAD_ACCESS) |
               (1 << EXC_STORE_MISALIGNED) | (1 << EXC_STORE_ACCESS) | (1 << EXC_ECALL_U) |
               (1 << EXC_INSN_PAGE) | (1 << EXC_LOAD_PAGE) | (1 << EXC_STORE_PAGE);
  h->mideleg = (1 << IRQ_SSI) | (1 << IRQ_STI) | (1 << IRQ_SEI);
  h->mie = h->mip = 0;
  h->mtvec = h->mscratch = h->mepc = h->mcause = h->mtval = 0;
  h->mcounteren = 7;
  h->scounteren = 0;
  h->menvcfg = h->senvcfg = 0;
  h->stvec = h->sscratch = h->sepc = h->scause = h->stval = h->satp = 0;
  h->fflags = h->frm = 0;
  h->timer_deadline = ~0ULL;
  h->res_valid = 0;
  h->pend_load = 0;
  h->halted = 0;
  h->tlb_dirty = (1u << (3 * TM_COUNT)) - 1; /* clear every set, whatever it held */
  rv64_tlb_flush(h);
  rv64_update_modes(h);
}

/*
 * Creates a machine with `nharts` harts (1..64). flags bit 0: `time` counts retired
 * instructions (`ipt` instructions per tick) instead of the host clock. Returns NULL on failure.
 */
VMON_EXPORT rv64_machine *rv64_create(int nharts, int flags, int ipt) {
  if (nharts < 1 || nharts > 64) return NULL;
  rv64_machine *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->nharts = nharts;
  m->clock_icount = flags & 1;
  m->icount_shift = ipt > 0 ? (uint64_t)ipt : 10;
  m->t0_ns = mono_ns();
  m->harts = calloc((size_t)nharts, sizeof *m->harts);
  if (!m->harts) { free(m); return NULL; }
  for (int i = 0; i < nharts; i++) {
    rv64_hart *h = aligned_alloc(64, (sizeof(rv64_hart) + 63) & ~(size_t)63);
    if (!h) {
      for (int k = 0; k < i; k++) free(m->harts[k]);
      free(m->harts);
      free(m);
      return NULL;
    }
    memset(h, 0, sizeof *h);
    h->m = m;
    h->id = i;
    h->sh_as = -1;
    h->started = i == 0;
    m->harts[i] = h;
    hart_reset(h);
    memset(h->counters, 0, sizeof h->counters);
  }
  return m;
}

/* `bytes` of zeroed memory that costs nothing until written (MAP_NORESERVE: no swap reserved),
   or NULL. Owned by the caller, released with munmap(p, bytes). */
static void *lazy_zeroed(uint64_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Frees the machine and everything it owns (RAM included). Idempotent for NULL. */
VMON_EXPORT void rv64_destroy(rv64_machine *m) {
  if (!m) return;
  if (m->paging) m->paging->release(m);
  rv64_jit_release(m);
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    uint64_t pages = r->size >> 12;
    for (uint64_t k = 0; k < pages; k++) free(r->dec[k]);
    munmap(r->dec, pages * sizeof(insn_t *));
    munmap(r->dec_gen, pages * sizeof(uint32_t));
    munmap(r->flags, pages);
    munmap(r->host, r->size);
  }
  for (int i = 0; i < m->nharts; i++) free(m->harts[i]);
  free(m->harts);
  free(m);
}

/*
 * Adds a RAM region at guest physical `gpa` of `size` bytes (both multiples of 4 KiB, no
 * overlap). Returns the host mapping (owned by the machine until rv64_destroy) or NULL.
 */
VMON_EXPORT uint8_t *rv64_add_ram(rv64_machine *m, uint64_t gpa, uint64_t size, int readonly) {
  if (!m || m->nregions >= MAX_REGIONS || !size || (gpa & 0xfff) || (size & 0xfff)) return NULL;
  if (gpa + size < gpa || size > (1ULL << 40)) return NULL;
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    if (gpa < r->gpa + r->size && r->gpa < gpa + size) return NULL;
  }
  /* RAM and the per-page arrays are lazy anonymous mappings: nothing is touched up front, so a
     page the guest never uses costs no host memory (a 1 TiB guest's arrays alone are 3.25 GiB of
     address space); munmap'ed in rv64_destroy. */
  void *p = lazy_zeroed(size);
  if (!p) return NULL;
  uint64_t pages = size >> 12;
  rv64_region r = {gpa, size, p, lazy_zeroed(pages), lazy_zeroed(pages * sizeof(insn_t *)),
                   lazy_zeroed(pages * sizeof(uint32_t)), readonly, NULL, NULL, NULL};
  /* the paging mechanism's per-page state last: it frees its own arrays when it fails */
  if (!r.flags || !r.dec || !r.dec_gen || (m->paging && m->paging->region_added(m, &r) < 0)) {
    if (r.flags) munmap(r.flags, pages);
    if (r.dec) munmap(r.dec, pages * sizeof(insn_t *));
    if (r.dec_gen) munmap(r.dec_gen, pages * sizeof(uint32_t));
    munmap(p, size);
    return NULL;
  }
  m->regions[m->nregions++] = r;
  return p;
}

/* The exit record of hart `i` (layout in rv64.h), or NULL. */
VMON_EXPORT rv64_exit *rv64_exit_record(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  return h ? &h->exit : NULL;
}

/* The register block of hart `i`: x0..x31, a scratch slot, f0..f31, pc (66 u64), or NULL. */
VMON_EXPORT uint64_t *rv64_registers(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  return h ? h->x : NULL;
}

/* The counters of hart `i` (CNT_* order in rv64.h), or NULL. */
VMON_EXPORT uint64_t *rv64_counters(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  return h ? h->counters : NULL;
}

/* Runs hart `i` for at most `budget` instructions; returns the exit kind (-1 for a bad hart). */
VMON_EXPORT int rv64_run(rv64_machine *m, int i, uint32_t budget) {
  rv64_hart *h = hart(m, i);
  if (!h) return -1;
  h->x[0] = 0;
  return rv64_run_hart(h, budget);
}

/*
 * Ends the running slice soon (rv64_run_hart looks every CHUNK = 262144 instructions) so the monitor can
 * deliver host input (packets). Safe to call from any thread; never blocks. `arg` is the machine.
 */
static void rv64_kick(void *arg) {
  __atomic_store_n(&((rv64_machine *)arg)->kick, 1, __ATOMIC_RELEASE);
}

/* The address of rv64_kick, for C code of other libraries that end slices (ffi/net). */
VMON_EXPORT void *rv64_kick_function(void) { return (void *)rv64_kick; }

/* Reads a CSR without privilege checks. Unknown CSRs (and bad harts) read as 0. */
VMON_EXPORT uint64_t rv64_get_csr(rv64_machine *m, int i, int csr) {
  rv64_hart *h = hart(m, i);
  uint64_t v = 0;
  if (!h || csr < 0 || csr > 0xfff || rv64_csr_read(h, csr, &v, 0) < 0) return 0;
  return v;
}

/* Writes a CSR without privilege checks. Returns 0, or -1 for an unknown CSR or bad hart. */
VMON_EXPORT int rv64_set_csr(rv64_machine *m, int i, int csr, uint64_t value) {
  rv64_hart *h = hart(m, i);
  if (!h || csr < 0 || csr > 0xfff) return -1;
  return rv64_csr_write(h, csr, value, 0);
}

/* Sets the privilege level (0 user, 1 supervisor, 3 machine). Returns 0 or -1. */
VMON_EXPORT int rv64_set_priv(rv64_machine *m, int i, int priv) {
  rv64_hart *h = hart(m, i);
  if (!h || (priv != 0 && priv != 1 && priv != 3)) return -1;
  h->priv = priv;
  rv64_update_modes(h);
  return 0;
}

/* The privilege level of hart `i`, or -1. */
VMON_EXPORT int rv64_get_priv(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  return h ? h->priv : -1;
}

/* Sets the supervisor timer deadline (time ticks, ~0 for none) and clears STIP. */
VMON_EXPORT void rv64_set_timer(rv64_machine *m, int i, uint64_t deadline) {
  rv64_hart *h = hart(m, i);
  if (!h) return;
  h->timer_deadline = deadline;
  h->mip &= ~(1ULL << IRQ_STI);
}

/* Sets (level 1) or clears a pending interrupt: bit 1 SSIP, 5 STIP, 9 SEIP, 3 MSIP, 11 MEIP. */
VMON_EXPORT int rv64_set_irq(rv64_machine *m, int i, int bit, int level) {
  rv64_hart *h = hart(m, i);
  if (!h || (bit != 1 && bit != 3 && bit != 5 && bit != 7 && bit != 9 && bit != 11)) return -1;
  if (level) h->mip |= 1ULL << bit;
  else h->mip &= ~(1ULL << bit);
  return 0;
}

/* Flushes hart `i`'s TLB: everything when `all`, else the page of `va`. */
VMON_EXPORT void rv64_flush_tlb(rv64_machine *m, int i, int all, uint64_t va) {
  rv64_hart *h = hart(m, i);
  if (!h) return;
  if (all) rv64_tlb_flush(h);
  else rv64_tlb_flush_va(h, va);
  /* a remote fence is a flush for the queued strategy too: exit before the next instruction */
  if (h->exit_on_sfence == 1 ||
      (h->exit_on_sfence && m->paging && m->paging->flush_exit(h, all, va))) {
    h->flush_pending = 1;
    h->exit.addr = all ? 0 : va;
  }
}

/* Starts (1) or stops (0) hart `i` (SBI HSM). Starting clears the halted state. */
VMON_EXPORT void rv64_set_started(rv64_machine *m, int i, int started) {
  rv64_hart *h = hart(m, i);
  if (!h) return;
  h->started = started != 0;
  h->halted = 0;
  h->pend_load = 0;
  h->irq_defer = 0;
}

/* Bit 0: started; bit 1: halted in WFI. -1 for a bad hart. */
VMON_EXPORT int rv64_hart_state(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  return h ? (h->started ? 1 : 0) | (h->halted ? 2 : 0) : -1;
}

/* 1 when hart `i` would make progress: started, and not halted or an enabled interrupt is pending. */
VMON_EXPORT int rv64_runnable(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  if (!h || !h->started) return 0;
  if (!h->halted) return 1;
  if (h->timer_deadline != ~0ULL && rv64_time(m) >= h->timer_deadline) h->mip |= 1ULL << IRQ_STI;
  return (h->mip & h->mie) != 0;
}

/*
 * Time ticks until hart `i`'s timer fires (0 when due), or -1 when no timer is set. In icount
 * mode with every started hart halted, advances time to the earliest deadline first.
 */
VMON_EXPORT double rv64_ticks_to_deadline(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  if (!h || h->timer_deadline == ~0ULL) return -1;
  uint64_t t = rv64_time(m);
  if (m->clock_icount && t < h->timer_deadline) {
    int all_idle = 1;
    uint64_t earliest = ~0ULL;
    for (int k = 0; k < m->nharts; k++) {
      rv64_hart *o = m->harts[k];
      if (o->started && !o->halted) all_idle = 0;
      if (o->started && o->timer_deadline < earliest) earliest = o->timer_deadline;
    }
    if (all_idle && earliest > t && earliest != ~0ULL) {
      m->vtime_extra += earliest - t;
      t = earliest;
    }
  }
  return t >= h->timer_deadline ? 0 : (double)(h->timer_deadline - t);
}

/* The current value of the `time` CSR. */
VMON_EXPORT uint64_t rv64_time_now(rv64_machine *m) {
  return m ? rv64_time(m) : 0;
}

/*
 * Write-protects (on = 1) or unprotects guest physical pages [gpa, gpa + size). A guest store
 * to a protected page is not performed and exits with VMON_EXIT_PAGING / VMON_PAGING_WRITE_PROTECTED.
 * Returns the number of pages changed, or -1 when the range is not RAM.
 */
VMON_EXPORT int rv64_write_protect(rv64_machine *m, uint64_t gpa, uint64_t size, int on) {
  if (!m || !size) return -1;
  int n = 0;
  for (uint64_t a = gpa & ~0xfffULL; a < gpa + size; a += 0x1000) {
    rv64_region *r = rv64_find_region(m, a);
    if (!r) return -1;
    uint64_t page = (a - r->gpa) >> 12;
    if (on) {
      r->flags[page] |= PAGE_WP;
      rv64_store_tlb_drop_gpage(m, a);
    } else {
      r->flags[page] &= (uint8_t)~PAGE_WP;
    }
    n++;
  }
  return n;
}

/*
 * Enables exits after sfence.vma (bit 0 of `which`) and after satp writes (bit 1); with bit 2
 * they happen only while page-table pages are queued (queued strategy).
 */
VMON_EXPORT void rv64_set_paging_exits(rv64_machine *m, int i, int which) {
  rv64_hart *h = hart(m, i);
  if (!h) return;
  int how = (which & 4) ? 2 : 1;
  h->exit_on_sfence = (which & 1) ? how : 0;
  h->exit_on_satp = (which & 2) ? how : 0;
}

/*
 * Steps over the instruction at pc without executing it (the monitor performed a store that
 * exited with VMON_PAGING_WRITE_PROTECTED itself). Returns the length stepped, or -1.
 */
VMON_EXPORT int rv64_skip_instruction(rv64_machine *m, int i) {
  rv64_hart *h = hart(m, i);
  uint64_t gpa;
  if (!h) return -1;
  if (rv64_translate(h, h->pc, ACC_FETCH, h->fetch_mode, &gpa)) return -1;
  rv64_region *r = rv64_find_region(m, gpa);
  if (!r || gpa - r->gpa + 2 > r->size) return -1;
  int len = (r->host[gpa - r->gpa] & 3) == 3 ? 4 : 2;
  h->pc += (uint64_t)len;
  h->counters[CNT_INSTRET]++; /* the monitor performed it: retired, as under every strategy */
  return len;
}

/* Forgets every decoded instruction (the monitor rewrote guest code). */
VMON_EXPORT void rv64_invalidate_code(rv64_machine *m) {
  if (!m) return;
  m->dec_gen++;
  for (int i = 0; i < m->nharts; i++) m->harts[i]->fvpage = ~0ULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Snapshots: the machine's state as a flat blob of little-endian u64 words (docs/DESIGN.md,  */
/* "Snapshots"). Architectural state and what the monitor left pending between exits is      */
/* saved; derived state (TLBs, decode pages, translated code, shadow tables and the page     */
/* queue) is not: rv64_state_load drops it, and rv64_state_save drops it in the running      */
/* machine too, so that the machine that goes on and a restored one run identically.          */
/* A field added to rv64_hart that survives between runs must be added to STATE_HART_FIELDS  */
/* (and STATE_VERSION bumped).                                                                */

#define STATE_MAGIC 0x5441545334365652ULL /* "RV64STAT" */
#define STATE_VERSION 1
#define STATE_HEAD_WORDS 9
#define STATE_HART_FIELDS(X)                                                                  \
  X(priv) X(started) X(halted) X(mstatus) X(misa) X(medeleg) X(mideleg) X(mie) X(mip)          \
  X(mtvec) X(mscratch) X(mepc) X(mcause) X(mtval) X(mcounteren) X(scounteren) X(menvcfg)       \
  X(senvcfg) X(stvec) X(sscratch) X(sepc) X(scause) X(stval) X(satp) X(fflags) X(frm)          \
  X(timer_deadline) X(instret_base) X(res_addr) X(res_valid) X(pend_load) X(pend_rd)           \
  X(pend_size) X(pend_signed) X(pend_fp) X(pend_len) X(exit_on_sfence) X(exit_on_satp)         \
  X(pt_bypass) X(pt_hold) X(flush_pending) X(irq_defer)
#define STATE_COUNT_FIELD(f) +1
#define STATE_SCALARS (0 STATE_HART_FIELDS(STATE_COUNT_FIELD))
#define STATE_EXIT_WORDS ((sizeof(rv64_exit) + 7) / 8)
#define STATE_HART_WORDS (33 + 32 + 1 + 1 + CNT_COUNT + STATE_SCALARS + STATE_EXIT_WORDS)

/* The block translator's switch (jit.c) and the paging mode switch (shadow.c), exported there. */
int rv64_jit_config(rv64_machine *m, int on, double cache_bytes, int threshold);
int rv64_paging_mode(rv64_machine *m, int mode);

static size_t state_words(const rv64_machine *m) {
  return STATE_HEAD_WORDS + PC_COUNT + (size_t)m->nharts * STATE_HART_WORDS;
}

/* Drops every cache the machine rebuilds by itself, leaving it as a fresh machine with the same
   architectural state would be. Returns 0, or -1 when the paging mechanism is out of memory. */
static int state_drop_derived(rv64_machine *m) {
  double jit_size = 0;
  int jit_threshold = 0;
  if (m->jit) {
    jit_size = (double)m->jit->size;
    jit_threshold = (int)m->jit->threshold;
    rv64_jit_release(m);
  }
  /* decode pages exist only while dec_bytes > 0 (a fresh machine skips the per-page arrays,
     whose untouched pages would all be faulted in by the scan) */
  for (int i = 0; m->dec_bytes && i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    for (uint64_t k = 0; k < r->size >> 12; k++) {
      if (r->dec[k]) { free(r->dec[k]); r->dec[k] = NULL; }
      if (r->flags[k] & PAGE_CODE) r->flags[k] &= (uint8_t)~PAGE_CODE;
    }
  }
  m->dec_gen = 0;
  m->dec_bytes = 0;
  int rc = 0;
  if (m->paging_mode != PMODE_WIRED) {
    uint64_t keep[PC_COUNT];
    memcpy(keep, m->pcounters, sizeof keep);
    rc = rv64_paging_mode(m, m->paging_mode) == 0 ? 0 : -1;
    memcpy(m->pcounters, keep, sizeof keep);
  }
  m->sh_clock = 0;
  for (int i = 0; i < m->nharts; i++) {
    rv64_hart *h = m->harts[i];
    h->sh_as = -1;
    h->tlb_dirty = (1u << (3 * TM_COUNT)) - 1;
    rv64_tlb_flush(h);
    h->fvpage = ~0ULL;
    h->fdec = NULL;
    h->fhost = NULL;
    rv64_update_modes(h);
  }
  if (jit_size > 0 && rv64_jit_config(m, 1, jit_size, jit_threshold) != 1) rc = -1;
  return rc;
}

/*
 * The monitor is about to write [gpa, gpa + size) of RAM in bulk (a snapshot restore): asks the
 * kernel to back every 2 MiB-aligned block of it with a huge page (MADV_HUGEPAGE), so that the
 * writes fault once per 2 MiB instead of once per 4 KiB page. A hint: returns 0, or -1 when the
 * range is not inside one RAM region (nothing done). Never fails otherwise.
 */
VMON_EXPORT int rv64_ram_hint_bulk(rv64_machine *m, uint64_t gpa, uint64_t size) {
  if (!m || !size) return -1;
  rv64_region *r = rv64_find_region(m, gpa);
  if (!r || gpa + size < gpa || gpa + size > r->gpa + r->size) return -1;
  uintptr_t lo = (uintptr_t)(r->host + (gpa - r->gpa)) & ~(uintptr_t)0x1fffff;
  uintptr_t hi = ((uintptr_t)(r->host + (gpa - r->gpa) + size) + 0x1fffff) & ~(uintptr_t)0x1fffff;
  uintptr_t rlo = (uintptr_t)r->host, rhi = (uintptr_t)r->host + r->size;
  if (lo < rlo) lo = rlo;
  if (hi > rhi) hi = rhi;
  if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
  return 0;
}

/* Bytes of the state blob of machine `m` (0 for NULL). */
VMON_EXPORT uint32_t rv64_state_size(rv64_machine *m) {
  return m ? (uint32_t)(state_words(m) * 8) : 0;
}

/*
 * Writes the machine's state into `out` (caller-owned, `len` bytes, written during the call
 * only), then drops the derived state of this machine as rv64_state_load does. Call only
 * between runs. Returns the bytes written, or -1 (bad arguments, `len` too small), -2 (the
 * paging mechanism could not be set up again: out of memory).
 */
VMON_EXPORT int rv64_state_save(rv64_machine *m, uint8_t *out, uint32_t len) {
  if (!m || !out || len < state_words(m) * 8) return -1;
  uint64_t *p = (uint64_t *)(void *)out; /* callers pass 8-byte aligned buffers */
  *p++ = STATE_MAGIC;
  *p++ = STATE_VERSION;
  *p++ = (uint64_t)m->nharts;
  *p++ = (uint64_t)m->clock_icount;
  *p++ = m->icount_shift;
  *p++ = rv64_time(m);
  *p++ = m->vtime_extra;
  *p++ = (uint64_t)m->paging_mode;
  *p++ = PC_COUNT;
  for (int k = 0; k < PC_COUNT; k++) *p++ = m->pcounters[k];
  for (int i = 0; i < m->nharts; i++) {
    rv64_hart *h = m->harts[i];
    memcpy(p, h->x, sizeof h->x); p += 33;
    memcpy(p, h->f, sizeof h->f); p += 32;
    *p++ = h->pc;
    *p++ = CNT_COUNT;
    for (int k = 0; k < CNT_COUNT; k++) *p++ = h->counters[k];
#define STATE_SAVE_FIELD(f) *p++ = (uint64_t)h->f;
    STATE_HART_FIELDS(STATE_SAVE_FIELD)
#undef STATE_SAVE_FIELD
    memset(p, 0, STATE_EXIT_WORDS * 8);
    memcpy(p, &h->exit, sizeof h->exit);
    p += STATE_EXIT_WORDS;
  }
  int n = (int)((uint8_t *)p - out);
  return state_drop_derived(m) == 0 ? n : -2;
}

/*
 * Loads a state blob written by rv64_state_save into machine `m` (same hart count, clock and
 * paging mode, RAM regions added), between runs. `in` is caller-owned, read during the call
 * only. Returns 0, or: -1 bad arguments or length, -2 not a state blob of this version, -3 hart
 * count differs, -4 clock differs, -5 paging mode differs, -6 a value is out of range,
 * -7 the paging mechanism could not be set up again (out of memory).
 */
VMON_EXPORT int rv64_state_load(rv64_machine *m, const uint8_t *in, uint32_t len) {
  if (!m || !in || len != state_words(m) * 8) return -1;
  const uint64_t *p = (const uint64_t *)(const void *)in;
  if (p[0] != STATE_MAGIC || p[1] != STATE_VERSION) return -2;
  if (p[2] != (uint64_t)m->nharts) return -3;
  if (p[3] != (uint64_t)m->clock_icount || p[4] != m->icount_shift) return -4;
  if (p[7] != (uint64_t)m->paging_mode) return -5;
  if (p[8] != PC_COUNT) return -6;
  /* check every hart before changing anything */
  for (int i = 0; i < m->nharts; i++) {
    const uint64_t *q = p + STATE_HEAD_WORDS + PC_COUNT + (size_t)i * STATE_HART_WORDS;
    uint64_t priv = q[66 + 1 + CNT_COUNT];
    if (q[66] != CNT_COUNT || (priv != 0 && priv != 1 && priv != 3)) return -6;
  }
  uint64_t saved_time = p[5];
  m->vtime_extra = p[6];
  p += STATE_HEAD_WORDS;
  for (int k = 0; k < PC_COUNT; k++) m->pcounters[k] = *p++;
  for (int i = 0; i < m->nharts; i++) {
    rv64_hart *h = m->harts[i];
    memcpy(h->x, p, sizeof h->x); p += 33;
    memcpy(h->f, p, sizeof h->f); p += 32;
    h->pc = *p++;
    p++; /* CNT_COUNT, checked */
    for (int k = 0; k < CNT_COUNT; k++) h->counters[k] = *p++;
#define STATE_LOAD_FIELD(f) h->f = (__typeof__(h->f))*p++;
    STATE_HART_FIELDS(STATE_LOAD_FIELD)
#undef STATE_LOAD_FIELD
    memcpy(&h->exit, p, sizeof h->exit);
    h->exit.detail[sizeof h->exit.detail - 1] = 0;
    p += STATE_EXIT_WORDS;
    h->x[0] = 0;
  }
  /* the host clock goes on from the saved time (the icount clock is made of saved values) */
  if (!m->clock_icount) m->t0_ns = mono_ns() - saved_time * 100;
  return state_drop_derived(m) == 0 ? 0 : -7;
}
