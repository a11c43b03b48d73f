/*
 * The block translator, target independent part (see jit.h): hit counting, entry tables hung off
 * the decode cache, block discovery, register allocation, the bounded W^X code cache, statistics
 * and the exported switches rv64_jit_config / rv64_jit_stats.
 *
 * Layer: called by cpu.c (lookups, runs) and api.c (release); calls the backend
 * (jit_x86_64.c), decode.c and mmu.c (rv64_find_region), and hands translated code fpu.c's
 * rv64_fp_exec.
 */
#define _GNU_SOURCE /* memfd_create */
#include "jit.h"
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Room reserved in the code cache for one block (the backend never needs more). */
#define BLOCK_ROOM (48 * 1024)
/* Most entry tables before a flush (about 10 KiB each). */
#define MAX_TABS 4096

static size_t page_size(void) {
  long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? (size_t)p : 4096;
}

/* Makes [from, from + len) of the cache writable (rw = 1) or executable (rw = 0): never both. */
static int protect(rv64_jit *j, size_t from, size_t len, int rw) {
  size_t ps = page_size();
  size_t lo = from & ~(ps - 1), hi = (from + len + ps - 1) & ~(ps - 1);
  if (hi > j->size) hi = j->size;
  return mprotect(j->base + lo, hi - lo, rw ? PROT_READ | PROT_WRITE : PROT_READ | PROT_EXEC);
}

/* Empties every hart's jump cache. */
static void jc_clear(rv64_machine *m) {
  for (int i = 0; i < m->nharts; i++) {
    jit_jc_entry *jc = m->harts[i] ? m->harts[i]->jit_jc : NULL;
    if (jc) for (int k = 0; k < JC_SIZE; k++) jc[k].vpc = ~0ULL;
  }
}

/* Forgets every translation: entry tables of all decode pages, then the code. */
static void flush_all(rv64_machine *m) {
  rv64_jit *j = m->jit;
  jc_clear(m);
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    for (uint64_t k = 0; k < r->size >> 12; k++)
      if (r->dec[k]) { DEC_JITTAB(r->dec[k]) = NULL; DEC_JITHITS(r->dec[k]) = 0; }
  }
  for (jit_tab *t = j->tabs, *n; t; t = n) { n = t->next; free(t); }
  j->tabs = NULL;
  j->used = j->start;
  j->stats[JS_FLUSHES]++;
}

static int ntabs(const rv64_jit *j) {
  int n = 0;
  for (const jit_tab *t = j->tabs; t; t = t->next) n++;
  return n;
}

/* Guest registers an instruction reads. */
static void reads(const insn_t *d, int *r1, int *r2) {
  *r1 = *r2 = 0;
  switch (d->op) {
    case OP_LUI: case OP_AUIPC: case OP_JAL: case OP_FENCE: return;
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU:
    case OP_SB: case OP_SH: case OP_SW: case OP_SD:
    case OP_ADD: case OP_SUB: case OP_SLL: case OP_SLT: case OP_SLTU: case OP_XOR: case OP_SRL:
    case OP_SRA: case OP_OR: case OP_AND: case OP_ADDW: case OP_SUBW: case OP_SLLW: case OP_SRLW:
    case OP_SRAW: case OP_MUL: case OP_MULH: case OP_MULHU: case OP_MULW:
    case OP_AMOSWAP_W: case OP_AMOADD_W: case OP_AMOXOR_W: case OP_AMOAND_W: case OP_AMOOR_W:
    case OP_AMOMIN_W: case OP_AMOMAX_W: case OP_AMOMINU_W: case OP_AMOMAXU_W:
    case OP_AMOSWAP_D: case OP_AMOADD_D: case OP_AMOXOR_D: case OP_AMOAND_D: case OP_AMOOR_D:
    case OP_AMOMIN_D: case OP_AMOMAX_D: case OP_AMOMINU_D: case OP_AMOMAXU_D:
    case OP_SC_W: case OP_SC_D:
      *r1 = d->rs1; *r2 = d->rs2; return;
    default:
      *r1 = d->rs1; return;
  }
}

/* Translates the block at pc (current fetch page). Returns its code offset + 1, or 0. */
static uint32_t translate(rv64_hart *h, jit_tab *t, uint64_t pc) {
  rv64_machine *m = h->m;
  rv64_jit *j = m->jit;
  const insn_t *page = h->fdec;
  insn_t ins[JIT_MAX_INSNS];
  uint16_t offs[JIT_MAX_INSNS];
  jit_block b;
  memset(&b, 0, sizeof b);
  int n = 0, off = (int)(pc & 0xfff);
  b.start_off = off;
  for (;;) {
    if (off >= 4096) { b.end = (jit_exit){off, 0, JIT_A_JUMP, 0}; break; } /* page end */
    const insn_t *s = &page[off >> 1];
    if (s->op == OP_UNDECODED) { b.end = (jit_exit){off, 0, JIT_A_CONTINUE, 2}; break; }
    if (s->op == OP_CROSS || s->op == OP_ILLEGAL || s->op == OP_REFETCH) {
      b.end = (jit_exit){off, 0, JIT_A_DISPATCH, 0};
      break;
    }
    insn_t d;
    rv64_decode(s->raw, &d); /* the base op of the slot (the cache holds OPC_* for compressed) */
    int csr_op = d.op >= OP_CSRRW && d.op <= OP_CSRRCI;
    if (d.len != s->len || !rv64_jit_be_supports(d.op) ||
        (csr_op && (!j->csr || !jit_csr_inline(d.imm & 0xfff)))) {
      b.end = (jit_exit){off, 0, JIT_A_DISPATCH, 0};
      break;
    }
    ins[n] = d;
    offs[n] = (uint16_t)off;
    n++;
    if (d.op == OP_JAL || d.op == OP_JALR) break;
    off += d.len;
    if (n == JIT_MAX_INSNS) { b.end = (jit_exit){off, 0, off >= 4096 ? JIT_A_JUMP : JIT_A_CONTINUE, off >= 4096 ? 0 : 2}; break; }
  }
  if (n == 0) return 0;
  b.end.count = (uint16_t)n;
  /* host registers for the most used guest registers */
  int uses[32] = {0};
  for (int i = 0; i < n; i++) {
    int r1, r2;
    reads(&ins[i], &r1, &r2);
    uses[r1]++;
    uses[r2]++;
    if (ins[i].rd < 32) { uses[ins[i].rd]++; b.written |= 1u << ins[i].rd; }
  }
  uses[0] = 0;
  b.written &= ~1u;
  memset(b.host, JIT_MEM, sizeof b.host);
  for (int s = 0; s < JIT_HOST_REGS; s++) {
    int best = 0;
    for (int g = 1; g < 32; g++) if (uses[g] > uses[best]) best = g;
    if (!uses[best]) break;
    b.host[best] = (uint8_t)s;
    uses[best] = 0;
  }
  b.insn = ins;
  b.off = offs;
  b.n = n;
  b.entries = t->entry;
  b.code_base = j->base;
  b.fp = rv64_fp_exec;
  b.csr = j->csr;
  if (j->size - j->used < BLOCK_ROOM) {
    flush_all(m);
    return 0; /* the caller's table is gone: translate at a later hit */
  }
  uint8_t *w = j->wbase ? j->wbase + j->used : j->base + j->used;
  if (!j->wbase && protect(j, j->used, BLOCK_ROOM, 1) != 0) return 0;
  int len = rv64_jit_be_block(&b, w, BLOCK_ROOM, j->base + j->used, j->epilogue);
  if (!j->wbase) protect(j, j->used, BLOCK_ROOM, 0);
  if (len <= 0) return 0;
  uint32_t at = (uint32_t)j->used + 1;
  j->used = (j->used + (size_t)len + 15) & ~(size_t)15;
  j->stats[JS_BLOCKS]++;
  return at;
}

const void *rv64_jit_miss(rv64_hart *h, uint64_t pc) {
  rv64_machine *m = h->m;
  rv64_jit *j = m->jit;
  insn_t *dec = h->fdec;
  jit_tab *t = (jit_tab *)DEC_JITTAB(dec);
  unsigned slot = (unsigned)(pc >> 1) & (DEC_SLOTS - 1);
  if (!t) {
    if (++DEC_JITHITS(dec) < JIT_PAGE_THRESHOLD && j->threshold > 1) return NULL;
    if (ntabs(j) >= MAX_TABS) flush_all(m);
    t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dec = dec;
    DEC_JITEPOCH(dec) = DEC_EPOCH(dec);
    t->next = j->tabs;
    j->tabs = t;
    DEC_JITTAB(dec) = t;
  } else if (DEC_JITEPOCH(dec) != DEC_EPOCH(dec)) {
    /* the page's decoded code changed: its translations are gone */
    memset(t->entry, 0, sizeof t->entry);
    memset(t->hits, 0, sizeof t->hits);
    DEC_JITEPOCH(dec) = DEC_EPOCH(dec);
    j->stats[JS_INVALIDATIONS]++;
  }
  if (t->entry[slot]) return j->base + (t->entry[slot] - 1);
  if (t->hits[slot] == 255) return NULL;
  if (++t->hits[slot] < j->threshold) return NULL;
  uint32_t e = translate(h, t, pc);
  if (DEC_JITTAB(dec) != t) return NULL; /* flushed */
  if (!e) {
    t->hits[slot] = dec[slot].op == OP_UNDECODED ? 0 : 255;
    return NULL;
  }
  t->entry[slot] = e;
  return j->base + (e - 1);
}

/* Remembers in h's jump cache that pc (in the current fetch page) runs `code`. */
static void jc_fill(rv64_hart *h, uint64_t pc, const void *code) {
  jit_jc_entry *jc = h->jit_jc;
  if (!jc) return;
  /* already there: the same code of the same decode page at the same epoch (the other fields
     follow from the page), which is the common case of an entry from the interpreter */
  const jit_jc_entry *have = &jc[JC_INDEX(pc)];
  if (have->vpc == pc && have->code == code && have->dec == h->fdec &&
      have->epoch == DEC_EPOCH(h->fdec))
    return;
  const tlb_entry *t = &h->tlb_fetch[h->fetch_mode][(pc >> 12) & (TLB_SIZE - 1)];
  if (t->tag != (pc & ~0xfffULL) || h->fvpage != t->tag) return;
  rv64_region *r = rv64_find_region(h->m, t->gpage);
  if (!r) return;
  uint64_t page = (t->gpage - r->gpa) >> 12;
  if (r->dec[page] != h->fdec || !(r->flags[page] & PAGE_CODE)) return;
  jit_jc_entry *e = &jc[JC_INDEX(pc)];
  /* two ways: the entry of the set it replaces moves to the other way (JC_INDEX ^ 1) */
  if (e->vpc != pc && e->vpc != ~0ULL) jc[JC_INDEX(pc) ^ 1] = *e;
  e->vpc = pc;
  e->code = code;
  e->dec = h->fdec;
  e->slot = &r->dec[page];
  e->gen = &r->dec_gen[page];
  e->gpage = t->gpage;
  e->host = h->fhost;
  e->epoch = DEC_EPOCH(h->fdec);
  e->flags = &r->flags[page];
}

int rv64_jit_run(rv64_hart *h, const void *code, uint64_t *cnt, uint64_t *chunk) {
  rv64_jit *j = h->m->jit;
  uint64_t io[2] = {*cnt, 0}; /* in: the count; out: the count, chained | jump-cache hits << 32 */
  jc_fill(h, h->pc, code);
  h->blk_limit = *chunk; /* rv64_jit_csr moves it (and the copy in the trampoline's frame) */
  int r = j->enter(h, code, h->fvpage, io, *chunk);
  *chunk = h->blk_limit;
  /* why it returned (h->fvpage is the page translated code last ran in) */
  j->stats[r == JIT_A_DISPATCH ? JS_EXIT_INSN
           : r == JIT_A_CONTINUE ? JS_EXIT_SEQ
           : r == JIT_A_OUT ? JS_EXIT_CHECK
           : io[0] >= *chunk ? JS_EXIT_CHUNK
           : (h->pc & ~0xfffULL) != h->fvpage ? JS_EXIT_OTHER : JS_EXIT_PAGE]++;
  j->stats[JS_INSNS] += io[0] - *cnt;
  j->stats[JS_ENTRIES]++;
  j->stats[JS_CHAINED] += io[1] & 0xffffffffu;
  j->stats[JS_JC_HITS] += io[1] >> 32;
  *cnt = io[0];
  return r;
}

void rv64_jit_release(rv64_machine *m) {
  rv64_jit *j = m->jit;
  if (!j) return;
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    for (uint64_t k = 0; k < r->size >> 12; k++)
      if (r->dec[k]) DEC_JITTAB(r->dec[k]) = NULL;
  }
  for (jit_tab *t = j->tabs, *n; t; t = n) { n = t->next; free(t); }
  for (int i = 0; i < m->nharts; i++) {
    if (!m->harts[i]) continue;
    free(m->harts[i]->jit_jc);
    m->harts[i]->jit_jc = NULL;
  }
  munmap(j->base, j->size);
  if (j->wbase) munmap(j->wbase, j->size);
  free(j);
  m->jit = NULL;
}

/*
 * Turns the translator on (on = 1, with a code cache of `cache_bytes`, at least 1 MiB, and
 * `threshold` hits before a block is translated, 1..255; 0 selects the default) or off (on = 0;
 * the code cache is freed). Returns 1 when it is on, 0 when off, -1 when it cannot be turned on
 * here (no backend for this host, or no memory).
 */
VMON_EXPORT int rv64_jit_config(rv64_machine *m, int on, double cache_bytes, int threshold) {
  if (!m) return -1;
  if (!on) { rv64_jit_release(m); return 0; }
  if (!rv64_jit_be_supports(OP_ADD)) return -1;
  size_t want = cache_bytes >= (1 << 20) ? (size_t)cache_bytes : (size_t)64 << 20;
  if (want > ((size_t)1 << 31)) want = (size_t)1 << 31; /* offsets are 32-bit */
  size_t ps = page_size();
  want = (want + ps - 1) & ~(ps - 1);
  rv64_jit_release(m);
  rv64_jit *j = calloc(1, sizeof *j);
  if (!j) return -1;
  j->size = want;
  size_t enter_off, epi_off;
  /* two views of one memfd: written through wbase, run at base */
  int fd = memfd_create("vmon-rv64-jit", MFD_CLOEXEC);
  if (fd >= 0) {
    void *x = MAP_FAILED, *w = MAP_FAILED;
    if (ftruncate(fd, (off_t)want) == 0) {
      x = mmap(NULL, want, PROT_READ | PROT_EXEC, MAP_SHARED | MAP_NORESERVE, fd, 0);
      w = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    }
    close(fd); /* the mappings keep the memory */
    if (x != MAP_FAILED && w != MAP_FAILED) {
      j->base = x;
      j->wbase = w;
    } else {
      if (x != MAP_FAILED) munmap(x, want);
      if (w != MAP_FAILED) munmap(w, want);
    }
  }
  if (j->wbase) {
    if (rv64_jit_be_trampoline(j->wbase, ps, &enter_off, &epi_off) <= 0) {
      munmap(j->base, want);
      munmap(j->wbase, want);
      free(j);
      return -1;
    }
  } else {
    void *p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) { free(j); return -1; }
    j->base = p;
    int len = rv64_jit_be_trampoline(j->base, ps, &enter_off, &epi_off);
    if (len <= 0 || mprotect(j->base, want, PROT_READ | PROT_EXEC) != 0) {
      munmap(p, want);
      free(j);
      return -1;
    }
  }
  j->start = ps; /* blocks never share the trampoline's page */
  j->used = j->start;
  j->enter = (int (*)(rv64_hart *, const void *, uint64_t, uint64_t *, uint64_t))(void *)(j->base + enter_off);
  j->epilogue = j->base + epi_off;
  j->threshold = threshold >= 1 && threshold <= 254 ? (uint32_t)threshold : JIT_THRESHOLD;
  m->jit = j;
  for (int i = 0; i < m->nharts; i++) {
    if (!m->harts[i]) continue;
    /* aligned to a set (2 entries): translated code finds the other way by flipping one bit */
    m->harts[i]->jit_jc = aligned_alloc(2 * sizeof(jit_jc_entry), JC_SIZE * sizeof(jit_jc_entry));
    if (!m->harts[i]->jit_jc) { rv64_jit_release(m); return -1; }
  }
  jc_clear(m);
  /* decode pages may carry tables of an earlier translator: none survive */
  for (int i = 0; i < m->nregions; i++) {
    rv64_region *r = &m->regions[i];
    for (uint64_t k = 0; k < r->size >> 12; k++)
      if (r->dec[k]) { DEC_JITTAB(r->dec[k]) = NULL; DEC_JITHITS(r->dec[k]) = 0; }
  }
  return 1;
}

/*
 * The translator's statistics (JS_* order in jit.h; names in symbols.ts JIT_STAT_NAMES), copied
 * into `out` (caller-owned, JS_COUNT u64 words). All zero while the translator is off.
 */
VMON_EXPORT void rv64_jit_stats(rv64_machine *m, uint64_t *out) {
  if (!m || !out) return;
  memset(out, 0, JS_COUNT * sizeof *out);
  rv64_jit *j = m->jit;
  if (!j) return;
  memcpy(out, j->stats, sizeof j->stats);
  out[JS_CODE_BYTES] = j->used - j->start;
  out[JS_CACHE_BYTES] = j->size;
  out[JS_ENABLED] = 1;
}

/* Writes the code cache's address and size into out[0], out[1] (caller-owned; 0 when off), so
   tests can check its protections in /proc/self/maps. */
VMON_EXPORT void rv64_jit_cache_range(rv64_machine *m, uint64_t *out) {
  if (!out) return;
  out[0] = m && m->jit ? (uint64_t)(uintptr_t)m->jit->base : 0;
  out[1] = m && m->jit ? (uint64_t)m->jit->size : 0;
}
