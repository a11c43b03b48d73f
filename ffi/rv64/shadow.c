/*
 * Mechanisms of the shadow and queued paging strategies (the policies live in TypeScript:
 * plugins/paging/shadow, plugins/paging/queued).
 *
 * Shadow translations: SH_AS address spaces (keyed by satp, least recently used one evicted),
 * each a direct-mapped table of SH_PER_AS entries from virtual page to guest physical page and
 * leaf PTE. A TLB miss looks the current address space up first; a miss walks the guest's
 * tables and fills an entry. Every entry is linked into a reverse map under each page-table page
 * its walk read a PTE from; a page with at least one node is "shadowed" and write-protected
 * (stores to it exit with VMON_PAGING_PT_WRITE), a page whose last node goes is unprotected again.
 * Dropping the entries derived from a PTE (invalidate) follows the reverse map.
 *
 * Queue (queued strategy): a shadowed page can be unhooked into one of PQ_SLOTS snapshot slots;
 * the guest then writes it freely (the walker reads it live and still maps only the allowed
 * ranges), and the strategy diffs it against the snapshot, validates, drops the affected shadow
 * entries and releases the queue at the guest's next flush.
 *
 * Layer: beside the interpreter, above the MMU. This file calls mmu.c (walks, TLB drops, region
 * lookup); the MMU, the interpreter and the API reach it only through the hooks of shadow_ops
 * (rv64_paging_ops in rv64.h), which rv64_paging_mode installs in m->paging, and through the
 * exported functions below (from TypeScript).
 *
 * Ownership: the shadow pool, the per-region arrays and the snapshot buffer are owned by the
 * machine and freed by rv64_destroy (the release hook, shadow_free) or by switching to wired
 * mode. Pointers returned to TypeScript: rv64_paging_counters is valid until rv64_destroy,
 * rv64_queue_snapshots until rv64_destroy or the next rv64_paging_mode (callers fetch it anew).
 */
#include "rv64.h"
#include <stdlib.h>

static rv64_hart *hart_of(rv64_machine *m, int i) {
  if (!m || i < 0 || i >= m->nharts) return NULL;
  return m->harts[i];
}

/* Region and page index of guest physical `gpa`, or NULL when it is not RAM. */
static rv64_region *page_of(rv64_machine *m, uint64_t gpa, uint64_t *page) {
  rv64_region *r = rv64_find_region(m, gpa);
  if (!r || !r->pt_count) return NULL;
  *page = (gpa - r->gpa) >> 12;
  return r;
}

static int region_pages_init(rv64_machine *m, rv64_region *r) {
  (void)m;
  if (r->pt_count) return 0;
  uint64_t pages = r->size >> 12;
  r->pt_head = malloc(pages * sizeof(uint32_t));
  r->pt_count = calloc(pages, sizeof(uint32_t));
  r->pt_queue = calloc(pages, 1);
  if (!r->pt_head || !r->pt_count || !r->pt_queue) {
    free(r->pt_head); free(r->pt_count); free(r->pt_queue);
    r->pt_head = NULL; r->pt_count = NULL; r->pt_queue = NULL;
    return -1;
  }
  for (uint64_t k = 0; k < pages; k++) r->pt_head[k] = SH_NONE;
  return 0;
}

static void shadow_free(rv64_machine *m) {
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    free(r->pt_head); free(r->pt_count); free(r->pt_queue);
    r->pt_head = NULL; r->pt_count = NULL; r->pt_queue = NULL;
  }
  free(m->sh);
  free(m->pq_snap);
  m->sh = NULL;
  m->pq_snap = NULL;
  m->pq_len = 0;
  m->paging = NULL;
  m->paging_mode = PMODE_WIRED;
}

/* Drops the TLB entries of virtual page `tag` in every hart whose current space is `as`. */
static void tlb_drop_va(rv64_machine *m, int as, uint64_t tag) {
  unsigned idx = (unsigned)(tag >> 12) & (TLB_SIZE - 1);
  for (int i = 0; i < m->nharts; i++) {
    rv64_hart *h = m->harts[i];
    if (!h || (h->sh_as != as && h->sh_as != -1)) continue;
    for (int mode = 0; mode < TM_COUNT; mode++) {
      if (h->tlb_fetch[mode][idx].tag == tag) h->tlb_fetch[mode][idx].tag = ~0ULL;
      if (h->tlb_load[mode][idx].tag == tag) h->tlb_load[mode][idx].tag = ~0ULL;
      if (h->tlb_store[mode][idx].tag == tag) h->tlb_store[mode][idx].tag = ~0ULL;
    }
    if ((h->fvpage & ~0xfffULL) == tag) h->fvpage = ~0ULL;
  }
}

static void link_node(rv64_machine *m, uint32_t idx, int l) {
  sh_entry *e = &m->sh[idx];
  uint64_t page;
  rv64_region *r = page_of(m, e->slot[l], &page);
  uint32_t node = idx * SH_LEVELS + (uint32_t)l;
  e->prev[l] = SH_NONE;
  if (!r) { e->next[l] = SH_NONE; return; } /* the walker only reads PTEs from RAM */
  uint32_t head = r->pt_head[page];
  e->next[l] = head;
  if (head != SH_NONE) m->sh[head / SH_LEVELS].prev[head % SH_LEVELS] = node;
  r->pt_head[page] = node;
  if (r->pt_count[page]++ == 0) {
    /* newly shadowed: no store TLB may map it any more */
    m->pcounters[PC_PT_PAGES]++;
    rv64_store_tlb_drop_gpage(m, r->gpa + (page << 12));
  }
}

static void unlink_node(rv64_machine *m, uint32_t idx, int l) {
  sh_entry *e = &m->sh[idx];
  uint64_t page;
  rv64_region *r = page_of(m, e->slot[l], &page);
  if (!r) return;
  uint32_t next = e->next[l], prev = e->prev[l];
  if (prev == SH_NONE) r->pt_head[page] = next;
  else m->sh[prev / SH_LEVELS].next[prev % SH_LEVELS] = next;
  if (next != SH_NONE) m->sh[next / SH_LEVELS].prev[next % SH_LEVELS] = prev;
  if (--r->pt_count[page] == 0) m->pcounters[PC_PT_PAGES]--;
}

static void drop_entry(rv64_machine *m, uint32_t idx) {
  sh_entry *e = &m->sh[idx];
  if (e->tag == ~0ULL) return;
  for (int l = 0; l < e->nlev; l++) unlink_node(m, idx, l);
  tlb_drop_va(m, (int)(idx / SH_PER_AS), e->tag);
  e->tag = ~0ULL;
  e->nlev = 0;
  m->pcounters[PC_SHADOW_DROPS]++;
}

static void drop_space(rv64_machine *m, int as) {
  for (uint32_t k = 0; k < SH_PER_AS; k++) drop_entry(m, (uint32_t)as * SH_PER_AS + k);
}

/* The shadow address space of the hart's satp, allocated (LRU eviction) when new. */
static int current_space(rv64_hart *h) {
  rv64_machine *m = h->m;
  /* the key is satp itself: it is never 0 here (a bare satp translates without the shadow),
     and 0 marks a free slot. (Tagging it, e.g. `satp | 1`, would make the roots of two
     adjacent pages share one address space.) */
  uint64_t key = h->satp;
  int as = -1, victim = 0;
  for (int i = 0; i < SH_AS; i++) {
    if (m->sh_root[i] == key) { as = i; break; }
    if (m->sh_used[i] < m->sh_used[victim]) victim = i;
  }
  if (as < 0) {
    as = victim;
    if (m->sh_root[as]) {
      m->pcounters[PC_AS_EVICTIONS]++;
      drop_space(m, as); /* drops the TLB entries of the harts using it too */
      /* another hart still running on the evicted root must look its space up again, or its
         next miss would be answered from the new root's translations */
      for (int i = 0; i < m->nharts; i++)
        if (m->harts[i] && m->harts[i]->sh_as == as) m->harts[i]->sh_as = -1;
    }
    m->sh_root[as] = key;
  }
  m->sh_used[as] = ++m->sh_clock;
  h->sh_as = as;
  return as;
}

#ifdef RV64_SHADOW_CHECK
/*
 * Coherence self-check (debug builds only: compile with -DRV64_SHADOW_CHECK and run with
 * VMON_FFI_LIB_RV64=<that library>): every 64th shadow miss in shadow mode, each TLB entry and
 * each shadow entry of the current address space is compared with a fresh walk of the guest's
 * tables, and every mismatch is printed to stderr with the instruction count (runs with
 * clock=icount are deterministic, so the count pins the failure down).
 */
#include <stdio.h>
/* A walk without side effects. Returns 0 and fills gpa/leaf, or 1. */
static int pure_walk(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa, uint64_t *leaf) {
  int smode = (int)(h->satp >> 60), levels = smode == 8 ? 3 : smode == 9 ? 4 : 0;
  if (!levels) { *gpa = va; *leaf = 0; return 0; }
  uint64_t a = (h->satp & ((1ULL << 44) - 1)) << 12;
  for (int i = levels - 1; i >= 0; i--) {
    uint64_t vpn = (va >> (12 + 9 * i)) & 0x1ff, pa = a + vpn * 8;
    rv64_region *r = rv64_find_region(h->m, pa);
    if (!r) return 1;
    uint64_t pte;
    memcpy(&pte, r->host + (pa - r->gpa), 8);
    if (!(pte & 1) || ((pte & 6) == 4)) return 1;
    uint64_t ppn = (pte >> 10) & ((1ULL << 44) - 1);
    if (!(pte & 0xa)) { a = ppn << 12; continue; }
    if (rv64_leaf_check(h, pte, acc, mode)) return 1;
    uint64_t mask = (1ULL << (12 + 9 * i)) - 1;
    *gpa = ((ppn << 12) & ~mask) | (va & mask);
    *leaf = pte;
    return 0;
  }
  return 1;
}

static uint64_t check_calls;

static void shadow_check(rv64_hart *h, const char *where) {
  if (h->m->paging_mode != PMODE_SHADOW || (h->satp >> 60) == 0) return;
  if (++check_calls % 64) return;
  static const char *names[3] = {"fetch", "load", "store"};
  for (int acc = 0; acc < 3; acc++) {
    for (int mode = 0; mode < 3; mode++) {
      tlb_entry *set = acc == 0 ? h->tlb_fetch[mode] : acc == 1 ? h->tlb_load[mode] : h->tlb_store[mode];
      for (int k = 0; k < TLB_SIZE; k++) {
        if (set[k].tag == ~0ULL) continue;
        uint64_t gpa, leaf;
        int bad = pure_walk(h, set[k].tag, acc, mode, &gpa, &leaf);
        if (!bad && acc == 2 && !(leaf & 0x80)) bad = 2;
        if (!bad && (gpa & ~0xfffULL) != set[k].gpage) bad = 3;
        if (bad) {
          fprintf(stderr, "SHCHECK %s: stale %s TLB mode %d va %llx -> %llx (%d) instret %llu satp %llx\n",
                  where, names[acc], mode, (unsigned long long)set[k].tag,
                  (unsigned long long)set[k].gpage, bad,
                  (unsigned long long)h->counters[CNT_INSTRET], (unsigned long long)h->satp);
          set[k].tag = ~0ULL;
        }
      }
    }
  }
  /* shadow entries of the current space */
  if (h->sh_as < 0) return;
  for (uint32_t k = 0; k < SH_PER_AS; k++) {
    sh_entry *e = &h->m->sh[(uint32_t)h->sh_as * SH_PER_AS + k];
    if (e->tag == ~0ULL) continue;
    uint64_t gpa, leaf;
    int mode = (e->pte & 0x10) ? TM_U : TM_S;
    int acc = (e->pte & 2) ? ACC_LOAD : ACC_FETCH;
    int bad = pure_walk(h, e->tag, acc, mode, &gpa, &leaf);
    if (!bad && (gpa & ~0xfffULL) != e->gpage) bad = 3;
    if (!bad && ((leaf ^ e->pte) & ~0xc0ULL)) bad = 4;
    if (bad) {
      fprintf(stderr, "SHCHECK %s: stale shadow va %llx -> %llx pte %llx now %llx (%d) instret %llu\n",
              where, (unsigned long long)e->tag, (unsigned long long)e->gpage,
              (unsigned long long)e->pte, (unsigned long long)leaf, bad,
              (unsigned long long)h->counters[CNT_INSTRET]);
      for (int l = 0; l < e->nlev; l++) {
        uint64_t pg, v = 0; rv64_region *r = page_of(h->m, e->slot[l], &pg);
        if (r) memcpy(&v, r->host + (e->slot[l] - r->gpa), 8);
        fprintf(stderr, "   L%d slot %llx = %llx count %u\n", l, (unsigned long long)e->slot[l],
                (unsigned long long)v, r ? r->pt_count[pg] : 0);
      }
    }
  }
}
#endif

/* The translate hook: a TLB miss answered from the shadow, else a walk that fills it. */
static int shadow_translate(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa,
                            int *dirty) {
  rv64_machine *m = h->m;
  if ((h->satp >> 60) == 0) { *gpa = va; *dirty = 1; return 0; }
#ifdef RV64_SHADOW_CHECK
  shadow_check(h, "miss");
#endif
  int as = h->sh_as >= 0 ? h->sh_as : current_space(h);
  uint64_t tag = va & ~0xfffULL;
  uint32_t idx = (uint32_t)as * SH_PER_AS + ((uint32_t)(va >> 12) & (SH_PER_AS - 1));
  sh_entry *e = &m->sh[idx];
  if (e->tag == tag && !rv64_leaf_check(h, e->pte, acc, mode) &&
      (acc != ACC_STORE || (e->pte & (1ULL << 7)))) {
    h->counters[CNT_SHADOW_HITS]++;
    *gpa = e->gpage | (va & 0xfff);
    *dirty = (e->pte >> 7) & 1;
    return 0;
  }
  uint64_t slots[SH_LEVELS], leaf = 0;
  int nlev = 0;
  int c = rv64_walk(h, va, acc, mode, gpa, dirty, slots, &nlev, &leaf);
  if (c) return c;
  drop_entry(m, idx);
  e->tag = tag;
  e->pte = leaf;
  e->gpage = *gpa & ~0xfffULL;
  e->nlev = (uint8_t)nlev;
  for (int l = 0; l < nlev; l++) {
    e->slot[l] = slots[l];
    link_node(m, idx, l);
  }
  m->pcounters[PC_SHADOW_FILLS]++;
  return 0;
}

/* Drops the entries with a node under the page of `gpa` whose PTE slot overlaps [gpa, gpa+len). */
static int invalidate(rv64_machine *m, uint64_t gpa, uint64_t len) {
  uint64_t page;
  rv64_region *r = page_of(m, gpa, &page);
  if (!r) return 0;
  uint64_t lo = gpa & ~7ULL, hi = gpa + len;
  int n = 0;
  /* restart after each drop: dropping an entry may unlink the node we would visit next */
  for (;;) {
    uint32_t node = r->pt_head[page], hit = SH_NONE;
    while (node != SH_NONE) {
      sh_entry *e = &m->sh[node / SH_LEVELS];
      uint64_t s = e->slot[node % SH_LEVELS];
      if (s >= lo && s < hi) { hit = node / SH_LEVELS; break; }
      node = e->next[node % SH_LEVELS];
    }
    if (hit == SH_NONE) return n;
    drop_entry(m, hit);
    n++;
  }
}

/* The pt_store hook: an approved store to [gpa, gpa + size) drops the entries derived from it. */
static void shadow_pt_store(rv64_machine *m, uint64_t gpa, uint64_t size) {
  if (m->sh && size) invalidate(m, gpa, size);
}

static int queue_flush_exit(rv64_hart *h, int all, uint64_t va); /* below */

/* The hooks of the shadow and queued modes (rv64_paging_ops in rv64.h). */
static const rv64_paging_ops shadow_ops = {
    .translate = shadow_translate,
    .pt_store = shadow_pt_store,
    .flush_exit = queue_flush_exit,
    .region_added = region_pages_init,
    .release = shadow_free,
};

/* ---- exported API (symbols.ts) ---- */

/*
 * Selects how translations are kept: 0 wired (walk the guest's tables on every TLB miss),
 * 1 shadow, 2 queued. Switching drops every shadow entry and the queue. Returns 0, or -1 for a
 * bad mode or when out of host memory.
 */
VMON_EXPORT int rv64_paging_mode(rv64_machine *m, int mode) {
  if (!m || mode < PMODE_WIRED || mode > PMODE_QUEUED) return -1;
  shadow_free(m);
  for (int i = 0; i < m->nharts; i++) { m->harts[i]->sh_as = -1; rv64_tlb_flush(m->harts[i]); }
  memset(m->sh_root, 0, sizeof m->sh_root);
  memset(m->sh_used, 0, sizeof m->sh_used);
  memset(m->pcounters, 0, sizeof m->pcounters);
  if (mode == PMODE_WIRED) return 0;
  m->sh = malloc((size_t)SH_AS * SH_PER_AS * sizeof(sh_entry));
  m->pq_snap = malloc((size_t)PQ_SLOTS * 4096);
  if (!m->sh || !m->pq_snap) { shadow_free(m); return -1; }
  for (size_t k = 0; k < (size_t)SH_AS * SH_PER_AS; k++) { m->sh[k].tag = ~0ULL; m->sh[k].nlev = 0; }
  for (int i = 0; i < m->nregions; i++) {
    if (region_pages_init(m, &m->regions[i]) < 0) { shadow_free(m); return -1; }
  }
  m->paging_mode = mode;
  m->paging = &shadow_ops;
  return 0;
}

/*
 * Sets the physical ranges a leaf PTE may map in shadow/queued mode: `n` (0..8) pairs
 * [lo, hi) in `ranges` (caller-owned, read during the call only). A walk that reaches a leaf
 * outside them raises an access fault. n = 0 allows everything. Returns 0 or -1.
 */
VMON_EXPORT int rv64_paging_set_ranges(rv64_machine *m, const uint64_t *ranges, int n) {
  if (!m || n < 0 || n > 8 || (n && !ranges)) return -1;
  for (int i = 0; i < n; i++) {
    if (ranges[2 * i + 1] <= ranges[2 * i]) return -1;
    m->pv_lo[i] = ranges[2 * i];
    m->pv_hi[i] = ranges[2 * i + 1];
  }
  m->npv = n;
  return 0;
}

/*
 * Answers a VMON_PAGING_PT_WRITE exit of hart `i`: approve = 1 lets the store (or AMO/SC) run once
 * when the hart resumes (it then drops the shadow entries derived from the PTEs it overwrites);
 * approve = 0 drops it: the hart steps over the instruction. Returns 0, or -1 when the hart's
 * last exit was not a page-table write.
 */
VMON_EXPORT int rv64_paging_approve(rv64_machine *m, int i, int approve) {
  rv64_hart *h = hart_of(m, i);
  if (!h || h->exit.kind != VMON_EXIT_PAGING || h->exit.code != VMON_PAGING_PT_WRITE) return -1;
  if (approve) {
    h->pt_bypass = h->exit.addr + 1;
    return 0;
  }
  uint64_t gpa;
  if (rv64_translate(h, h->pc, ACC_FETCH, h->fetch_mode, &gpa)) return -1;
  rv64_region *r = rv64_find_region(m, gpa);
  if (!r || gpa - r->gpa + 2 > r->size) return -1;
  h->pc += (r->host[gpa - r->gpa] & 3) == 3 ? 4 : 2;
  h->res_valid = 0;
  h->counters[CNT_INSTRET]++; /* dropped, but retired from the guest's view */
  return 0;
}

/* Drops the shadow entries derived from the PTE(s) in [gpa, gpa + size). Returns how many. */
VMON_EXPORT int rv64_shadow_invalidate(rv64_machine *m, uint64_t gpa, uint64_t size) {
  if (!m || !m->sh || !size || size > 4096) return 0;
  return invalidate(m, gpa, size);
}

/* Drops every shadow entry (all address spaces). */
VMON_EXPORT void rv64_shadow_flush(rv64_machine *m) {
  if (!m || !m->sh) return;
  for (int as = 0; as < SH_AS; as++) drop_space(m, as);
}

/* 1 when the page of `gpa` is a shadowed page-table page, 0 otherwise. */
VMON_EXPORT int rv64_is_pt_page(rv64_machine *m, uint64_t gpa) {
  uint64_t page;
  rv64_region *r = m ? page_of(m, gpa, &page) : NULL;
  return r && r->pt_count[page] ? 1 : 0;
}

/*
 * Unhooks the shadowed page-table page of `gpa` into the queue: its contents are copied into a
 * snapshot slot and guest stores to it no longer exit. Returns the slot (0..PQ_SLOTS-1), -1 when
 * the page is not a shadowed page-table page or is queued already, -2 when the queue is full.
 */
VMON_EXPORT int rv64_queue_page(rv64_machine *m, uint64_t gpa) {
  uint64_t page;
  rv64_region *r = m ? page_of(m, gpa, &page) : NULL;
  if (!r || !r->pt_count[page] || r->pt_queue[page]) return -1;
  if (m->pq_len >= PQ_SLOTS) return -2;
  int slot = m->pq_len++;
  memcpy(m->pq_snap + (size_t)slot * 4096, r->host + (page << 12), 4096);
  m->pq_gpa[slot] = r->gpa + (page << 12);
  r->pt_queue[page] = (uint8_t)(slot + 1);
  m->pcounters[PC_QUEUED]++;
  return slot;
}

/*
 * Empties the queue like rv64_queue_release, except the `n` pages of `gpas` (caller-owned, read
 * during the call only) that are still shadowed: they stay queued, in that order, with a fresh
 * snapshot, and stay unprotected (their store-TLB entries are kept, which is what makes this
 * cheaper than a release followed by rv64_queue_page for each). Returns the number kept, or -1 for
 * bad arguments (nothing changed).
 */
VMON_EXPORT int rv64_queue_keep(rv64_machine *m, const uint64_t *gpas, int n) {
  if (!m || !m->pq_snap || n < 0 || n > PQ_SLOTS || (n && !gpas)) return -1;
  uint64_t keep[PQ_SLOTS];
  int kept = 0;
  for (int i = 0; i < n; i++) {
    uint64_t page, gpa = gpas[i] & ~0xfffULL;
    rv64_region *r = page_of(m, gpa, &page);
    if (!r || !r->pt_count[page]) continue; /* no longer shadowed: protected no more */
    int dup = 0;
    for (int k = 0; k < kept; k++) dup |= keep[k] == gpa;
    if (!dup) keep[kept++] = gpa;
  }
  /* release the others (protected again), then queue the kept ones in order */
  for (int s = 0; s < m->pq_len; s++) {
    uint64_t page;
    rv64_region *r = page_of(m, m->pq_gpa[s], &page);
    if (!r) continue;
    int stays = 0;
    for (int k = 0; k < kept; k++) stays |= keep[k] == m->pq_gpa[s];
    r->pt_queue[page] = 0;
    if (!stays) rv64_store_tlb_drop_gpage(m, m->pq_gpa[s]);
  }
  m->pq_len = 0;
  for (int k = 0; k < kept; k++) {
    uint64_t page;
    rv64_region *r = page_of(m, keep[k], &page);
    int slot = m->pq_len++;
    memcpy(m->pq_snap + (size_t)slot * 4096, r->host + (page << 12), 4096);
    m->pq_gpa[slot] = keep[k];
    r->pt_queue[page] = (uint8_t)(slot + 1);
    m->pcounters[PC_QUEUED]++;
  }
  return kept;
}

/* The snapshot buffer: PQ_SLOTS pages of 4096 bytes, slot order (owned by the machine). */
VMON_EXPORT uint8_t *rv64_queue_snapshots(rv64_machine *m) {
  return m ? m->pq_snap : NULL;
}

/* The guest physical page of queue slot `slot`, or ~0 when the slot is not in use. */
VMON_EXPORT uint64_t rv64_queue_gpa(rv64_machine *m, int slot) {
  if (!m || slot < 0 || slot >= m->pq_len) return ~0ULL;
  return m->pq_gpa[slot];
}

/* Number of queued pages. */
VMON_EXPORT int rv64_queue_length(rv64_machine *m) {
  return m ? m->pq_len : 0;
}

/*
 * Empties the queue: every queued page is protected again if it is still shadowed (its store
 * TLB entries are dropped). Returns the number of pages released.
 */
VMON_EXPORT int rv64_queue_release(rv64_machine *m) {
  if (!m) return 0;
  int n = m->pq_len;
  for (int s = 0; s < n; s++) {
    uint64_t page;
    rv64_region *r = page_of(m, m->pq_gpa[s], &page);
    if (!r) continue;
    r->pt_queue[page] = 0;
    rv64_store_tlb_drop_gpage(m, m->pq_gpa[s]);
  }
  m->pq_len = 0;
  return n;
}

/*
 * How the PTE of a queued page changed from its snapshot value `o` (the state last validated) to
 * the live value `n`:
 *   0  no translation change: equal, or only A/D bits set that the snapshot lacked (the walker's
 *      hardware A/D update of an entry the guest did not change);
 *   1  a removal or narrowing, which grants nothing: `n` is invalid, or it is the same kind of
 *      entry (leaf or table pointer) with the same PPN and the same U bit, and every bit it sets
 *      that `o` lacks is A, D or RSW (so it only lost permissions, G, reserved bits...);
 *   2  anything else (a new valid entry, another PPN, a table pointer turned leaf or back, an
 *      added R/W/X/G or reserved bit, a changed U bit, which grants S-mode access either way):
 *      the change may grant something and must be validated by the strategy.
 */
static inline int pte_change(uint64_t o, uint64_t n) {
  uint64_t d = o ^ n;
  if (!d || (!(d & ~0xc0ULL) && !(o & d))) return 0;
  if (!(n & 1)) return 1;
  if (!(o & 1)) return 2;
  if (d & (((1ULL << 44) - 1) << 10)) return 2; /* PPN */
  if (((o & 0xe) != 0) != ((n & 0xe) != 0)) return 2; /* leaf <-> table pointer */
  if (d & 0x10) return 2;                              /* U */
  if (n & ~o & ~0x3c0ULL) return 2;                    /* a bit set other than A, D, RSW */
  return 1;
}

/*
 * Drops the shadow entries with a node under page `page` of region r whose PTE index (0..511)
 * has its bit set in `mask` (8 words), and with them their TLB entries in every hart.
 */
static void drop_marked(rv64_machine *m, rv64_region *r, uint64_t page, const uint64_t *mask) {
  uint64_t base = r->gpa + (page << 12);
  uint32_t node = r->pt_head[page];
  while (node != SH_NONE) {
    uint32_t idx = node / SH_LEVELS;
    sh_entry *e = &m->sh[idx];
    uint32_t next = e->next[node % SH_LEVELS];
    unsigned k = (unsigned)((e->slot[node % SH_LEVELS] - base) >> 3) & 511;
    if ((mask[k >> 6] >> (k & 63)) & 1) {
      drop_entry(m, idx); /* unlinks only idx's nodes: `next` stays linked unless it is one */
      if (next != SH_NONE && next / SH_LEVELS == idx) next = r->pt_head[page];
    }
    node = next;
  }
}

/*
 * The flush rule of the queued strategy, at sfence.vma, a satp write or a remote fence while
 * pages are queued. Returns 1 when some queued page gained or widened a valid entry since its
 * snapshot (pte_change 2): the flush must exit so the strategy validates the batch. Otherwise
 * returns 0 and handles the flush here: every PTE removed or narrowed since its snapshot
 * (pte_change 1) drops the shadow (and TLB) entries derived from it, in every address space and
 * hart, which is all a removal needs. The pages stay queued with their snapshots unchanged, so
 * those changes are still pending: the strategy validates and counts them in its next batch
 * (and they drop their entries again at each later flush, harmless: entries walked since then
 * come from the narrowed value).
 *
 * Why the shadow entries must go here and not only the TLB: sfence.vma flushes the hart's TLB,
 * but a TLB miss is answered from the shadow first, so an entry derived from the old PTE would
 * bring the removed mapping straight back.
 */
static int queue_changed(rv64_machine *m) {
  uint64_t mask[PQ_SLOTS][8];
  int narrowed = 0;
  for (int s = 0; s < m->pq_len; s++) {
    uint64_t page;
    memset(mask[s], 0, sizeof mask[s]);
    rv64_region *r = page_of(m, m->pq_gpa[s], &page);
    if (!r) continue;
    const uint64_t *snap = (const uint64_t *)(m->pq_snap + (size_t)s * 4096);
    const uint64_t *live = (const uint64_t *)(r->host + (page << 12));
    for (int k = 0; k < 512; k++) {
      if (snap[k] == live[k]) continue;
      int c = pte_change(snap[k], live[k]);
      if (c == 2) return 1;
      if (c == 1) { mask[s][k >> 6] |= 1ULL << (k & 63); narrowed = 1; }
    }
  }
  if (!narrowed) return 0;
  for (int s = 0; s < m->pq_len; s++) {
    uint64_t page;
    rv64_region *r = page_of(m, m->pq_gpa[s], &page);
    if (!r) continue;
    uint64_t any = 0;
    for (int w = 0; w < 8; w++) any |= mask[s][w];
    if (any) drop_marked(m, r, page, mask[s]);
  }
  return 0;
}

/*
 * The flush_exit hook: whether an sfence.vma, satp write or remote fence (`all`, or the page of
 * `va`) must exit to the queued strategy: the rule of queue_changed (which handles a flush that
 * needs no exit itself).
 */
static int queue_flush_exit(rv64_hart *h, int all, uint64_t va) {
  (void)all;
  (void)va;
  return h->m->pq_len && queue_changed(h->m);
}

/*
 * The queued strategy's batch, diffed here rather than in TypeScript: compares every queued page
 * with its snapshot and, for each PTE that changed other than by the walker's A/D updates
 * (pte_change != 0: a removal, a narrowing or a change that may grant something), drops the
 * shadow entries derived from it (and their TLB entries, in every hart and address space), so the
 * strategy only validates. The queue and the snapshots are left as they are.
 *
 * `out` (caller-owned, `cap` u64 words, written during the call only) receives:
 *   out[0]                       the number of queued pages n;
 *   out[1 .. 1 + PQ_SLOTS)       their guest physical page addresses, by slot (n used);
 *   out[1 + PQ_SLOTS ...]        one triple {gpa of the PTE, snapshot value, live value} per
 *                                changed PTE, in slot order, then PTE order.
 * Returns the number of changed PTEs, or -1 when `cap` is below RV64_QUEUE_DIFF_WORDS (room for
 * every PTE of every slot).
 */
#define RV64_QUEUE_DIFF_WORDS (1 + PQ_SLOTS + 3 * PQ_SLOTS * 512)
VMON_EXPORT int rv64_queue_diff(rv64_machine *m, uint64_t *out, int cap) {
  if (!m || !out || cap < RV64_QUEUE_DIFF_WORDS) return -1;
  uint64_t *t = out + 1 + PQ_SLOTS;
  int n = 0;
  out[0] = (uint64_t)m->pq_len;
  for (int s = 0; s < m->pq_len; s++) {
    uint64_t page, mask[8] = {0}, any = 0;
    out[1 + s] = m->pq_gpa[s];
    rv64_region *r = page_of(m, m->pq_gpa[s], &page);
    if (!r) continue;
    const uint64_t *snap = (const uint64_t *)(m->pq_snap + (size_t)s * 4096);
    const uint64_t *live = (const uint64_t *)(r->host + (page << 12));
    if (!memcmp(snap, live, 4096)) continue;
    for (int k = 0; k < 512; k++) {
      if (snap[k] == live[k] || !pte_change(snap[k], live[k])) continue;
      t[3 * n] = m->pq_gpa[s] + 8 * (uint64_t)k;
      t[3 * n + 1] = snap[k];
      t[3 * n + 2] = live[k];
      n++;
      mask[k >> 6] |= 1ULL << (k & 63);
      any = 1;
    }
    if (any) drop_marked(m, r, page, mask);
  }
  return n;
}


/* Machine paging counters (PC_* order in rv64.h), owned by the machine. */
VMON_EXPORT uint64_t *rv64_paging_counters(rv64_machine *m) {
  return m ? m->pcounters : NULL;
}
