/*
 * Guest physical memory, Sv39/Sv48 translation, the software TLBs and the slow paths of loads,
 * stores, atomics and instruction fetch (MMIO exits, write-protection exits, code-page tracking).
 *
 * Layer: calls trap.c only. The paging mechanism (shadow.c) is reached through the hooks of
 * m->paging (rv64_paging_ops), set by rv64_paging_mode: on a TLB miss (xlate) and on an approved
 * store to a protected page-table page. The fast paths (TLB hits, in cpu.c) never call it.
 */
#include "rv64.h"
#include <stdlib.h>

#define DEC_PAGE_BYTES (DEC_SLOTS * sizeof(insn_t))
#define DEC_LIMIT_BYTES (512ULL << 20)

rv64_region *rv64_find_region(rv64_machine *m, uint64_t gpa) {
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    if (gpa >= r->gpa && gpa - r->gpa < r->size) return r;
  }
  return NULL;
}

static void tlb_clear(tlb_entry *t, int n) {
  for (int i = 0; i < n; i++) t[i].tag = ~0ULL;
}

_Static_assert(offsetof(rv64_hart, tlb_load) ==
                   offsetof(rv64_hart, tlb_fetch) + sizeof(tlb_entry) * TM_COUNT * TLB_SIZE &&
               offsetof(rv64_hart, tlb_store) ==
                   offsetof(rv64_hart, tlb_load) + sizeof(tlb_entry) * TM_COUNT * TLB_SIZE,
               "TLB sets are contiguous");

void rv64_tlb_flush(rv64_hart *h) {
  tlb_entry *all = &h->tlb_fetch[0][0];
  for (uint32_t d = h->tlb_dirty; d; d &= d - 1)
    tlb_clear(all + (size_t)__builtin_ctz(d) * TLB_SIZE, TLB_SIZE);
  h->tlb_dirty = 0;
  h->fvpage = ~0ULL;
  h->counters[CNT_TLB_FLUSHES]++;
}

void rv64_tlb_flush_va(rv64_hart *h, uint64_t va) {
  uint64_t tag = va & ~0xfffULL;
  unsigned idx = (unsigned)(va >> 12) & (TLB_SIZE - 1);
  for (int mode = 0; mode < TM_COUNT; mode++) {
    if (h->tlb_fetch[mode][idx].tag == tag) h->tlb_fetch[mode][idx].tag = ~0ULL;
    if (h->tlb_load[mode][idx].tag == tag) h->tlb_load[mode][idx].tag = ~0ULL;
    if (h->tlb_store[mode][idx].tag == tag) h->tlb_store[mode][idx].tag = ~0ULL;
  }
  h->fvpage = ~0ULL;
  h->counters[CNT_TLB_FLUSHES]++;
}

/* Removes every store-TLB entry (all harts) that maps guest physical page `gpage`. */
void rv64_store_tlb_drop_gpage(rv64_machine *m, uint64_t gpage) {
  for (int i = 0; i < m->nharts; i++) {
    rv64_hart *h = m->harts[i];
    if (!h) continue;
    for (int mode = 0; mode < TM_COUNT; mode++) {
      if (!((h->tlb_dirty >> (2 * TM_COUNT + mode)) & 1)) continue;
      tlb_entry *t = h->tlb_store[mode];
      for (int k = 0; k < TLB_SIZE; k++)
        if (t[k].tag != ~0ULL && t[k].gpage == gpage) t[k].tag = ~0ULL;
    }
  }
}

static uint8_t *ram_ptr(rv64_machine *m, uint64_t gpa, int len) {
  rv64_region *r = rv64_find_region(m, gpa);
  if (!r || gpa - r->gpa + (uint64_t)len > r->size) return NULL;
  return r->host + (gpa - r->gpa);
}

static int fault_cause(int acc) {
  return acc == ACC_FETCH ? EXC_INSN_PAGE : acc == ACC_LOAD ? EXC_LOAD_PAGE : EXC_STORE_PAGE;
}

static int access_cause(int acc) {
  return acc == ACC_FETCH ? EXC_INSN_ACCESS : acc == ACC_LOAD ? EXC_LOAD_ACCESS : EXC_STORE_ACCESS;
}

/* Leaf permission check of `pte` for an access. Returns 0 or the page-fault cause + 1. */
int rv64_leaf_check(rv64_hart *h, uint64_t pte, int acc, int mode) {
  int r = (pte >> 1) & 1, w = (pte >> 2) & 1, x = (pte >> 3) & 1, u = (pte >> 4) & 1;
  if (mode == TM_U && !u) return fault_cause(acc) + 1;
  if (mode != TM_U && u && (acc == ACC_FETCH || mode != TM_SSUM)) return fault_cause(acc) + 1;
  if (acc == ACC_FETCH && !x) return fault_cause(acc) + 1;
  if (acc == ACC_LOAD && !(r || ((h->mstatus & MS_MXR) && x))) return fault_cause(acc) + 1;
  if (acc == ACC_STORE && !w) return fault_cause(acc) + 1;
  return 0;
}

/*
 * The PTE at guest physical `pa`, or NULL when `pa` is not RAM. Queued page-table pages (queued
 * strategy) are read live too: what the guest wrote since the page was unhooked is visible at
 * once, as on hardware, and a walk still maps only what leaf_range_ok allows; the strategy diffs
 * the page against its snapshot at the next flush. *live is always NULL (kept for the A/D path).
 */
static uint8_t *pte_ptr(rv64_machine *m, uint64_t pa, uint8_t **live) {
  *live = NULL;
  rv64_region *r = rv64_find_region(m, pa);
  if (!r || pa - r->gpa + 8 > r->size) return NULL;
  return r->host + (pa - r->gpa);
}

/* 1 when [pa, pa + len) lies inside a range the paging strategy allows leaves to map. */
static int leaf_range_ok(rv64_machine *m, uint64_t pa, uint64_t len) {
  if (!m->npv) return 1;
  for (int i = 0; i < m->npv; i++)
    if (pa >= m->pv_lo[i] && pa + len <= m->pv_hi[i] && pa + len >= pa) return 1;
  return 0;
}

int rv64_walk(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa, int *dirty,
              uint64_t *slots, int *nlev, uint64_t *leaf) {
  int smode = (int)(h->satp >> 60), levels;
  if (smode == 8) levels = 3;
  else if (smode == 9) levels = 4;
  else { *gpa = va; *dirty = 1; return 0; }
  int vabits = 12 + 9 * levels;
  int64_t sx = (int64_t)(va << (64 - vabits)) >> (64 - vabits);
  if ((uint64_t)sx != va) return fault_cause(acc) + 1;
  h->counters[CNT_PAGE_WALKS]++;
  uint64_t a = (h->satp & ((1ULL << 44) - 1)) << 12;
  for (int i = levels - 1; i >= 0; i--) {
    uint64_t vpn = (va >> (12 + 9 * i)) & 0x1ff;
    uint8_t *live;
    uint8_t *p = pte_ptr(h->m, a + vpn * 8, &live);
    if (!p) return access_cause(acc) + 1;
    if (slots) slots[levels - 1 - i] = a + vpn * 8;
    uint64_t pte;
    memcpy(&pte, p, 8);
    if (!(pte & 1) || ((pte & 6) == 4) || (pte >> 54)) return fault_cause(acc) + 1;
    uint64_t ppn = (pte >> 10) & ((1ULL << 44) - 1);
    if (!(pte & 0xa)) { /* pointer to next level */
      if (pte & 0xd0) return fault_cause(acc) + 1; /* D, A, U reserved on non-leaf */
      a = ppn << 12;
      continue;
    }
    /* leaf */
    int c = rv64_leaf_check(h, pte, acc, mode);
    if (c) return c;
    if (i > 0 && (ppn & ((1ULL << (9 * i)) - 1))) return fault_cause(acc) + 1;
    uint64_t mask = (1ULL << (12 + 9 * i)) - 1;
    if (unlikely(h->m->npv) && !leaf_range_ok(h->m, (ppn << 12) & ~mask, mask + 1))
      return access_cause(acc) + 1;
    uint64_t want = (1ULL << 6) | (acc == ACC_STORE ? (1ULL << 7) : 0);
    if ((pte & want) != want) { /* hardware A/D update */
      uint64_t before = pte;
      pte |= want;
      memcpy(p, &pte, 8);
      if (live) { /* queued page: the guest's copy gets the bits too if it still agrees */
        uint64_t lv;
        memcpy(&lv, live, 8);
        if ((lv & ~0xc0ULL) == (before & ~0xc0ULL)) { lv |= want; memcpy(live, &lv, 8); }
      }
    }
    *dirty = (pte >> 7) & 1;
    *gpa = ((ppn << 12) & ~mask) | (va & mask);
    if (nlev) *nlev = levels - i;
    if (leaf) *leaf = pte;
    return 0;
  }
  return fault_cause(acc) + 1;
}

/* Translation on a TLB miss: the guest's tables (wired), else the paging mechanism's hook. */
static inline int xlate(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa, int *dirty) {
  const rv64_paging_ops *ops = h->m->paging;
  if (likely(!ops)) return rv64_walk(h, va, acc, mode, gpa, dirty, NULL, NULL, NULL);
  return ops->translate(h, va, acc, mode, gpa, dirty);
}
#define walk(h, va, acc, mode, gpa, dirty) xlate(h, va, acc, mode, gpa, dirty)

int rv64_translate(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa) {
  int dirty;
  if (mode == TM_M) { *gpa = va; return 0; }
  return walk(h, va, acc, mode, gpa, &dirty);
}

static void tlb_fill(rv64_hart *h, tlb_entry *set, uint64_t va, uint64_t gpa, rv64_region *r) {
  tlb_entry *e = &set[(va >> 12) & (TLB_SIZE - 1)];
  uint64_t gpage = gpa & ~0xfffULL;
  e->tag = va & ~0xfffULL;
  e->addend = (uintptr_t)(r->host + (gpage - r->gpa)) - (uintptr_t)e->tag;
  e->gpage = gpage;
  h->tlb_dirty |= 1u << ((set - &h->tlb_fetch[0][0]) / TLB_SIZE);
  h->counters[CNT_TLB_FILLS]++;
}

static uint64_t rd_le(const uint8_t *p, int size) {
  uint64_t v = 0;
  memcpy(&v, p, (size_t)size);
  return v;
}

static void mmio_exit(rv64_hart *h, uint64_t gpa, int size, int write, uint64_t val) {
  h->exit.kind = VMON_EXIT_MMIO;
  h->exit.addr = gpa;
  h->exit.size = (uint32_t)size;
  h->exit.is_write = (uint32_t)write;
  h->exit.data = val;
  h->exit.code = 0;
  h->counters[CNT_MMIO]++;
}

static void wp_exit(rv64_hart *h, uint64_t gpa, int size, uint64_t val, int code) {
  h->exit.kind = VMON_EXIT_PAGING;
  h->exit.code = (uint32_t)code;
  h->exit.addr = gpa;
  h->exit.size = (uint32_t)size;
  h->exit.is_write = 1;
  h->exit.data = val;
  h->counters[CNT_PAGING_EXITS]++;
}

/* Copies the guest page (host) after the slots of decode page d, whose slots are all empty. */
static void dec_snapshot(insn_t *d, const uint8_t *host) {
  memcpy(DEC_SNAP(d), host, 4096);
  DEC_SNAP_OK(d) = 1;
  DEC_EPOCH(d)++; /* translations of the page are stale (jit.h) */
}

/* Forgets every decoded slot of decode page d and copies the guest page (host) after them. */
static void dec_reset(insn_t *d, const uint8_t *host) {
  memset(d, 0, DEC_PAGE_BYTES);
  memcpy(DEC_SNAP(d), host, 4096);
  DEC_SNAP_OK(d) = 1;
  DEC_EPOCH(d)++; /* translations of the page are stale (jit.h) */
}

void rv64_decode_page_clear(rv64_machine *m, rv64_region *r, uint64_t page) {
  (void)m;
  if (r->dec[page]) dec_reset(r->dec[page], r->host + (page << 12));
  r->flags[page] &= (uint8_t)~PAGE_CODE;
}

/*
 * Prepares a guest store of `size` bytes at `gpa` in region `r`: returns 1 if the page is
 * write-protected, 2 if it is a shadowed page-table page (the store needs the strategy). On a page with decoded code, the slots the store may overlap are forgotten;
 * after many stores the page stops being a code page (its decoded code is dropped and the store
 * TLB may map it again), so data pages that once held code become fast again.
 */
static int store_prepare(rv64_hart *h, rv64_region *r, uint64_t gpa, int size) {
  uint64_t page = (gpa - r->gpa) >> 12;
  uint8_t f = r->flags[page];
  if (f & PAGE_WP) return 1;
  if (unlikely(r->pt_count != NULL) && rv64_pt_protected(r, page)) {
    /* a shadowed page-table page: only the store the strategy approved goes through, and the
       shadow entries derived from the PTEs it overwrites are dropped */
    if (h->pt_bypass != gpa + 1) return 2;
    h->pt_bypass = 0;
    h->m->paging->pt_store(h->m, gpa, (uint64_t)size);
  }
  if (f & PAGE_CODE) {
    h->counters[CNT_DECODE_FLUSHES]++;
    if ((f >> 2) >= 63 || !r->dec[page]) {
      rv64_decode_page_clear(h->m, r, page);
      r->flags[page] &= (uint8_t)~0xfc;
      return 0;
    }
    r->flags[page] = (uint8_t)(f + 4);
    int off = (int)(gpa & 0xfff);
    int first = off >= 2 ? (off - 2) >> 1 : 0;
    int last = (off + size - 1) >> 1;
    if (last > DEC_SLOTS - 1) last = DEC_SLOTS - 1;
    for (int k = first; k <= last; k++) r->dec[page][k].op = OP_UNDECODED;
    DEC_EPOCH(r->dec[page])++; /* translations of the page are stale (jit.h) */
  }
  return 0;
}

int rv64_load_slow(rv64_hart *h, uint64_t va, int size, uint64_t *val) {
  uint64_t gpa;
  int mode = h->ls_mode, c, dirty;
  if (((va & 0xfff) + (uint64_t)size) > 0x1000) { /* crosses a page */
    uint64_t gpa2, va2 = (va & ~0xfffULL) + 0x1000;
    int n1 = (int)(va2 - va);
    if ((c = mode == TM_M ? (gpa = va, 0) : walk(h, va, ACC_LOAD, mode, &gpa, &dirty))) { rv64_trap(h, (uint64_t)(c - 1), va); return MEM_TRAP; }
    if ((c = mode == TM_M ? (gpa2 = va2, 0) : walk(h, va2, ACC_LOAD, mode, &gpa2, &dirty))) { rv64_trap(h, (uint64_t)(c - 1), va2); return MEM_TRAP; }
    uint8_t *p1 = ram_ptr(h->m, gpa, n1), *p2 = ram_ptr(h->m, gpa2, size - n1);
    if (!p1 || !p2) { rv64_trap(h, EXC_LOAD_ACCESS, va); return MEM_TRAP; }
    uint8_t b[8];
    memcpy(b, p1, (size_t)n1);
    memcpy(b + n1, p2, (size_t)(size - n1));
    *val = rd_le(b, size);
    return MEM_OK;
  }
  if (mode == TM_M) gpa = va;
  else if ((c = walk(h, va, ACC_LOAD, mode, &gpa, &dirty))) {
    rv64_trap(h, (uint64_t)(c - 1), va);
    return MEM_TRAP;
  }
  rv64_region *r = rv64_find_region(h->m, gpa);
  if (r && gpa - r->gpa + (uint64_t)size <= r->size) {
    tlb_fill(h, h->tlb_load[mode], va, gpa, r);
    *val = rd_le(r->host + (gpa - r->gpa), size);
    return MEM_OK;
  }
  if (va & (uint64_t)(size - 1)) { rv64_trap(h, EXC_LOAD_MISALIGNED, va); return MEM_TRAP; }
  mmio_exit(h, gpa, size, 0, 0);
  return MEM_EXIT;
}

int rv64_store_slow(rv64_hart *h, uint64_t va, int size, uint64_t val) {
  uint64_t gpa;
  int mode = h->ls_mode, c, dirty = 1;
  if (((va & 0xfff) + (uint64_t)size) > 0x1000) {
    uint64_t gpa2, va2 = (va & ~0xfffULL) + 0x1000;
    int n1 = (int)(va2 - va);
    if ((c = mode == TM_M ? (gpa = va, 0) : walk(h, va, ACC_STORE, mode, &gpa, &dirty))) { rv64_trap(h, (uint64_t)(c - 1), va); return MEM_TRAP; }
    if ((c = mode == TM_M ? (gpa2 = va2, 0) : walk(h, va2, ACC_STORE, mode, &gpa2, &dirty))) { rv64_trap(h, (uint64_t)(c - 1), va2); return MEM_TRAP; }
    rv64_region *r1 = rv64_find_region(h->m, gpa), *r2 = rv64_find_region(h->m, gpa2);
    uint8_t *p1 = ram_ptr(h->m, gpa, n1), *p2 = ram_ptr(h->m, gpa2, size - n1);
    if (!p1 || !p2 || r1->readonly || r2->readonly) { rv64_trap(h, EXC_STORE_ACCESS, va); return MEM_TRAP; }
    if (r1->flags[(gpa - r1->gpa) >> 12] & PAGE_WP) { wp_exit(h, gpa, size, val, VMON_PAGING_WRITE_PROTECTED); return MEM_EXIT; }
    if (r2->flags[(gpa2 - r2->gpa) >> 12] & PAGE_WP) { wp_exit(h, gpa2, size, val, VMON_PAGING_WRITE_PROTECTED); return MEM_EXIT; }
    if (unlikely(r1->pt_count != NULL) && (rv64_pt_protected(r1, (gpa - r1->gpa) >> 12) ||
                                          rv64_pt_protected(r2, (gpa2 - r2->gpa) >> 12))) {
      if (h->pt_bypass != gpa + 1) { wp_exit(h, gpa, size, val, VMON_PAGING_PT_WRITE); return MEM_EXIT; }
      h->pt_bypass = 0;
      h->m->paging->pt_store(h->m, gpa, (uint64_t)n1);
      h->m->paging->pt_store(h->m, gpa2, (uint64_t)(size - n1));
    }
    store_prepare(h, r1, gpa, n1);
    store_prepare(h, r2, gpa2 & ~0xfffULL, size - n1);
    uint8_t b[8];
    memcpy(b, &val, 8);
    memcpy(p1, b, (size_t)n1);
    memcpy(p2, b + n1, (size_t)(size - n1));
    return MEM_OK;
  }
  if (mode == TM_M) gpa = va;
  else if ((c = walk(h, va, ACC_STORE, mode, &gpa, &dirty))) {
    rv64_trap(h, (uint64_t)(c - 1), va);
    return MEM_TRAP;
  }
  rv64_region *r = rv64_find_region(h->m, gpa);
  if (r && !r->readonly && gpa - r->gpa + (uint64_t)size <= r->size) {
    int k = store_prepare(h, r, gpa, size);
    if (k) { wp_exit(h, gpa, size, val, k == 1 ? VMON_PAGING_WRITE_PROTECTED : VMON_PAGING_PT_WRITE); return MEM_EXIT; }
    uint64_t page = (gpa - r->gpa) >> 12;
    if (dirty && !(r->flags[page] & PAGE_CODE) && !(r->pt_count && rv64_pt_protected(r, page)))
      tlb_fill(h, h->tlb_store[mode], va, gpa, r);
    memcpy(r->host + (gpa - r->gpa), &val, (size_t)size);
    return MEM_OK;
  }
  if (va & (uint64_t)(size - 1)) { rv64_trap(h, EXC_STORE_MISALIGNED, va); return MEM_TRAP; }
  mmio_exit(h, gpa, size, 1, val);
  return MEM_EXIT;
}

uint8_t *rv64_amo_ptr(rv64_hart *h, uint64_t va, int size) {
  uint64_t gpa;
  int c, dirty = 1, mode = h->ls_mode;
  if (va & (uint64_t)(size - 1)) { rv64_trap(h, EXC_STORE_MISALIGNED, va); return NULL; }
  const tlb_entry *e = &h->tlb_store[mode][(va >> 12) & (TLB_SIZE - 1)];
  if (e->tag == (va & ~0xfffULL)) return (uint8_t *)(e->addend + (uintptr_t)va);
  if (mode == TM_M) gpa = va;
  else if ((c = walk(h, va, ACC_STORE, mode, &gpa, &dirty))) {
    rv64_trap(h, (uint64_t)(c - 1), va);
    return NULL;
  }
  rv64_region *r = rv64_find_region(h->m, gpa);
  if (!r || r->readonly || gpa - r->gpa + (uint64_t)size > r->size) {
    rv64_trap(h, EXC_STORE_ACCESS, va);
    return NULL;
  }
  int k = store_prepare(h, r, gpa, size);
  if (k == 1) { wp_exit(h, gpa, size, 0, VMON_PAGING_WRITE_PROTECTED); return NULL; }
  if (k == 2) {
    /* the caller computes the value it would store, puts it in exit.data and exits */
    wp_exit(h, gpa, size, 0, VMON_PAGING_PT_WRITE);
    h->pt_hold = 1;
    return r->host + (gpa - r->gpa);
  }
  uint64_t page = (gpa - r->gpa) >> 12;
  if (dirty && !(r->flags[page] & PAGE_CODE) && !(r->pt_count && rv64_pt_protected(r, page)))
    tlb_fill(h, h->tlb_store[mode], va, gpa, r);
  return r->host + (gpa - r->gpa);
}

static insn_t *dec_page(rv64_hart *h, rv64_region *r, uint64_t page) {
  rv64_machine *m = h->m;
  insn_t *d = r->dec[page];
  if (!d) {
    if (m->dec_bytes + DEC_ALLOC_BYTES > DEC_LIMIT_BYTES) {
      /* too much decoded code: forget all of it (other harts re-fetch at their next run) */
      for (int i = 0; i < m->nregions; i++) {
        rv64_region *q = &m->regions[i];
        for (uint64_t k = 0; k < q->size >> 12; k++) {
          if (q->dec[k] && q->dec[k] != h->fdec) {
            free(q->dec[k]);
            q->dec[k] = NULL;
            q->flags[k] &= (uint8_t)~PAGE_CODE;
            m->dec_bytes -= DEC_ALLOC_BYTES;
          }
        }
      }
      for (int i = 0; i < m->nharts; i++) if (m->harts[i]) m->harts[i]->fvpage = ~0ULL;
    }
    /* calloc's slots are empty already: clearing them again would touch (and, in fresh
       memory, fault in) every page of the 32 KiB of slots, most of which a code page never uses */
    d = calloc(1, DEC_ALLOC_BYTES);
    if (!d) return NULL;
    for (int k = DEC_SLOTS; k < DEC_ALLOC; k++) d[k].op = OP_REFETCH;
    dec_snapshot(d, r->host + (page << 12));
    r->dec[page] = d;
    r->dec_gen[page] = m->dec_gen;
    m->dec_bytes += DEC_ALLOC_BYTES;
  } else if (r->dec_gen[page] != m->dec_gen) {
    /* fence.i (or the monitor) since this page was last used: keep its slots if its bytes are
       those they were decoded from */
    const uint8_t *host = r->host + (page << 12);
    if (!DEC_SNAP_OK(d) || memcmp(DEC_SNAP(d), host, 4096) != 0) dec_reset(d, host);
    r->dec_gen[page] = m->dec_gen;
  }
  if (!(r->flags[page] & PAGE_CODE)) {
    r->flags[page] |= PAGE_CODE;
    rv64_store_tlb_drop_gpage(m, r->gpa + (page << 12));
  }
  return d;
}

int rv64_fetch_page(rv64_hart *h, uint64_t pc) {
  uint64_t gpa;
  int mode = h->fetch_mode, c;
  tlb_entry *e = &h->tlb_fetch[mode][(pc >> 12) & (TLB_SIZE - 1)];
  if (e->tag == (pc & ~0xfffULL)) {
    gpa = e->gpage;
  } else {
    int dirty;
    if (mode == TM_M) gpa = pc & ~0xfffULL;
    else if ((c = walk(h, pc, ACC_FETCH, mode, &gpa, &dirty))) {
      rv64_trap(h, (uint64_t)(c - 1), pc);
      return MEM_TRAP;
    }
    rv64_region *r = rv64_find_region(h->m, gpa);
    if (!r) { rv64_trap(h, EXC_INSN_ACCESS, pc); return MEM_TRAP; }
    tlb_fill(h, h->tlb_fetch[mode], pc, gpa, r);
    gpa &= ~0xfffULL;
  }
  rv64_region *r = rv64_find_region(h->m, gpa);
  if (!r) { rv64_trap(h, EXC_INSN_ACCESS, pc); return MEM_TRAP; }
  insn_t *d = dec_page(h, r, (gpa - r->gpa) >> 12);
  if (!d) {
    rv64_set_exit_detail(h, "Cannot allocate a decode page: out of host memory");
    h->exit.kind = VMON_EXIT_INTERNAL_ERROR;
    return MEM_EXIT;
  }
  h->fvpage = pc & ~0xfffULL;
  h->fdec = d;
  h->fhost = r->host + (gpa - r->gpa);
  return MEM_OK;
}

/* Reads the 16-bit parcel at pc (current fetch page must be valid) and the next parcel. */
int rv64_fetch_cross(rv64_hart *h, uint64_t pc, uint32_t *raw) {
  uint64_t gpa, gpa2;
  int c;
  uint16_t lo, hi;
  if ((c = rv64_translate(h, pc, ACC_FETCH, h->fetch_mode, &gpa))) { rv64_trap(h, (uint64_t)(c - 1), pc); return MEM_TRAP; }
  uint8_t *p = ram_ptr(h->m, gpa, 2);
  if (!p) { rv64_trap(h, EXC_INSN_ACCESS, pc); return MEM_TRAP; }
  memcpy(&lo, p, 2);
  if ((lo & 3) != 3) { *raw = lo; return MEM_OK; }
  if ((c = rv64_translate(h, pc + 2, ACC_FETCH, h->fetch_mode, &gpa2))) { rv64_trap(h, (uint64_t)(c - 1), pc + 2); return MEM_TRAP; }
  p = ram_ptr(h->m, gpa2, 2);
  if (!p) { rv64_trap(h, EXC_INSN_ACCESS, pc + 2); return MEM_TRAP; }
  memcpy(&hi, p, 2);
  *raw = (uint32_t)lo | ((uint32_t)hi << 16);
  return MEM_OK;
}
