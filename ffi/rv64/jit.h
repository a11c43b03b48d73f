/*
 * The block translator of the rv64 hart: hot guest code becomes host machine code.
 *
 * Shape (see plugins/hostports/rv64/README.md, "Translator"):
 * - jit.c is target independent: it counts hits per decode slot, finds the extent of a block in
 *   the decode cache (decoded slots only, one guest page, straight-line code with conditional
 *   side exits), allocates guest registers to host registers, and describes every exit (pc,
 *   instructions retired, what the interpreter does next). It owns the code cache (bounded,
 *   never writable and executable at once, flushed when full) and the per-page entry tables.
 * - jit_<arch>.c is the backend: it lowers one block to machine code through the functions of
 *   jit_backend below. jit_x86_64.c is the only one today; an aarch64 backend implements the
 *   same functions (its own register names and encodings) and jit.c does not change.
 *
 * Translations hang off the decode cache: each decode page carries (in its trailer, rv64.h) a
 * pointer to its entry table and an epoch that mmu.c bumps whenever it forgets slots of the page
 * (stores to code, fence.i with changed bytes, page clears). A table whose epoch differs is
 * emptied before use; an evicted decode page takes its table pointer with it. Translated code is
 * position independent within its page (the page's virtual address is a register), so one
 * translation serves every virtual mapping of the physical page.
 *
 * Exactness: translated code never traps and never exits to the monitor. Whatever could
 * (a software-TLB miss, an instruction it does not translate) ends the block *before* that
 * instruction with the registers written back, and the interpreter executes it through its
 * own slow paths. Retired-instruction counts are added at each exit, and chained jumps check
 * the chunk limit exactly where the interpreter's taken jumps do, so interrupts, slice ends and
 * exits happen at the same instruction with the translator on or off.
 *
 * Layer: between the MMU and the interpreter (called by cpu.c and api.c; calls the backend and
 * decode.c; hands the backend the address of rv64_fp_exec, which translated code calls). Ownership: the machine owns its rv64_jit (rv64_jit_release frees it).
 */
#ifndef RV64_JIT_H
#define RV64_JIT_H

#include "rv64.h"

/* What the interpreter does after translated code returns (h->pc is the next pc). */
enum {
  JIT_A_JUMP = 1,     /* as after a taken jump: check the chunk, switch pages, look up again */
  JIT_A_CONTINUE = 2, /* sequential flow in the same page: look up at pc, else interpret */
  JIT_A_DISPATCH = 3, /* interpret the instruction at pc (same page) */
  JIT_A_OUT = 4,      /* a point of rule 1 (cpu.c) the translated code does not pass itself:
                         return to rv64_run_hart's loop, as the interpreter does there */
};

/* The CSRs whose instructions translated code runs (through rv64_jit.csr): sstatus (the kernel's
   interrupt enable and disable, most of a Linux boot's system instructions) and the supervisor
   trap CSRs of its trap entry and exit. Not satp (a paging exit, new TLB contents), not the
   counters and time (reads stay with the interpreter), not M-mode CSRs: those end the block. */
static inline int jit_csr_inline(int csr) {
  switch (csr) {
    case 0x100: /* sstatus */ case 0x104: /* sie */ case 0x105: /* stvec */
    case 0x140: /* sscratch */ case 0x141: /* sepc */ case 0x142: /* scause */
    case 0x143: /* stval */ case 0x144: /* sip */
      return 1;
    default:
      return 0;
  }
}

/* Machine-wide translator statistics (rv64_jit_stats; names in symbols.ts JIT_STAT_NAMES). */
enum {
  JS_BLOCKS,       /* blocks translated */
  JS_INSNS,        /* guest instructions retired in translated code */
  JS_ENTRIES,      /* entries from the interpreter (lookups that found a translation) */
  JS_INVALIDATIONS,/* entry tables emptied because the decode page changed */
  JS_CHAINED,      /* jumps from translated code straight into translated code */
  JS_FLUSHES,      /* code-cache flushes (full) */
  JS_CODE_BYTES,   /* bytes of the code cache in use */
  JS_CACHE_BYTES,  /* code-cache size */
  JS_ENABLED,      /* 1 when translation is on */
  JS_JC_HITS,      /* jumps to other pages taken through the jump cache, in translated code */
  /* why translated code returned to the interpreter (one of these per entry): */
  JS_EXIT_CHUNK,   /* a taken jump or branch found the chunk used up */
  JS_EXIT_OTHER,   /* a jump (or sequential flow) to another page found no usable jump-cache entry */
  JS_EXIT_PAGE,    /* a jump within the page found no translation at its target */
  JS_EXIT_INSN,    /* the interpreter runs the next instruction: one the translator does not
                      translate, a TLB miss, a misaligned AMO, F/D with FS off */
  JS_EXIT_SEQ,     /* sequential flow reached a slot not yet decoded, or a block's length limit,
                      with no translation there */
  JS_EXIT_CHECK,   /* a translated CSR instruction reached a point of rule 1 that needs the
                      interpreter's loop: an interrupt to take, the run's end, a kick, or a state
                      change other than sstatus.SIE */
  JS_COUNT
};

/* Hits on a decode slot (as a jump target or resume point) before its block is translated. */
#define JIT_THRESHOLD 32
/* Lookups on a decode page before it gets an entry table. */
#define JIT_PAGE_THRESHOLD 64
/* Most guest instructions in one block. */
#define JIT_MAX_INSNS 64

/*
 * The per-hart jump cache: where translated code jumps to another guest page without returning to
 * the interpreter. Two-way: a pc lives at JC_INDEX(pc) or at JC_INDEX(pc) ^ 1 (a fill puts the new
 * entry first and moves the entry it replaces to the other way). An entry is made when the
 * interpreter enters a translation (rv64_jit_run) and is used only while everything the
 * interpreter's own lookup would depend on is unchanged: the fetch TLB maps the page to the same
 * guest page, the decode page is still that page's (not evicted), of the current decode
 * generation and marked as code, and its epoch is the one the entry saw. Code cache flushes empty
 * every hart's jump cache.
 */
#define JC_SIZE 4096
#define JC_SET_BITS 11 /* JC_SIZE / 2 sets */
/* The first way of guest pc: the top bits of a 32-bit multiplicative hash of pc, so that neither
   equal page offsets (calls and returns between pages) nor neighbouring pcs share a set.
   jit_x86_64.c computes the same in jump_other_page. */
#define JC_HASH_MUL 0x9e3779b1u
#define JC_INDEX(pc) ((((uint32_t)((uint64_t)(pc) >> 1) * JC_HASH_MUL) >> (32 - JC_SET_BITS)) << 1)
typedef struct jit_jc_entry {
  uint64_t vpc;         /* guest pc of the translation (~0: empty) */
  const void *code;     /* the translation */
  insn_t *dec;          /* its decode page */
  insn_t *const *slot;  /* &region->dec[page]: still `dec` unless evicted */
  const uint32_t *gen;  /* &region->dec_gen[page]: must equal m->dec_gen */
  uint64_t gpage;       /* guest physical page the fetch TLB must map vpc's page to */
  uint8_t *host;        /* host address of that page (the interpreter's fhost) */
  uint32_t epoch;       /* DEC_EPOCH(dec) when the entry was made */
  uint32_t pad;
  const uint8_t *flags; /* &region->flags[page]: PAGE_CODE must be set (else the interpreter's
                           page switch marks the page as code and drops its store-TLB entries) */
  uint64_t pad2[7];
} jit_jc_entry;
_Static_assert(sizeof(jit_jc_entry) == 128, "jump cache entries are 128 bytes");

/* Entry table of one decode page: code offsets (+1; 0 = none) and hit counts per slot. */
typedef struct jit_tab {
  uint32_t threshold;   /* hits before translation (machine setting at creation) */
  struct jit_tab *next; /* every table of the machine, for flushes */
  insn_t *dec;          /* the decode page this table belongs to */
  uint32_t entry[DEC_SLOTS];
  uint8_t hits[DEC_SLOTS];
} jit_tab;

/* The machine's translator (owned by the machine, rv64_jit_release frees it). */
typedef struct rv64_jit {
  uint8_t *base;    /* code cache: mmap'ed, PROT_READ|PROT_EXEC (owned) */
  /* the same memory mapped PROT_READ|PROT_WRITE elsewhere (a memfd mapped twice; owned), where
     blocks are written: no mapping is ever writable and executable, and emitting a block needs no
     mprotect (two per block were most of the translator's cost: each one a TLB shootdown on every
     CPU). NULL when the host has no memfd: then base turns writable while a block is emitted. */
  uint8_t *wbase;
  size_t size, used, start; /* start: first byte after the trampoline */
  /* int enter(rv64_hart *h, const void *code, uint64_t vpage, uint64_t io[2], uint64_t chunk):
     runs translated code from `code` with the count io[0]; returns a JIT_A_* action, the count
     in io[0] and the chained jumps | jump-cache hits << 32 in io[1] */
  int (*enter)(rv64_hart *, const void *, uint64_t, uint64_t *, uint64_t);
  const uint8_t *epilogue; /* where exits jump to */
  /* int csr(h, d, cnt, limit): runs a CSR instruction for translated code (rv64_jit_csr in
     cpu.c, which the interpreter installs: the translator may not call up into it by name) */
  int (*csr)(rv64_hart *, const insn_t *, uint64_t, uint64_t *);
  jit_tab *tabs;
  uint32_t threshold;
  uint64_t stats[JS_COUNT];
} rv64_jit;

/* ---- jit.c ---- */
/* Slow part of the lookup: page hit counting, tables, translation. Returns code or NULL. */
VMON_INTERNAL const void *rv64_jit_miss(rv64_hart *h, uint64_t pc);
/* Runs translated code from `code` (pc = h->pc); *cnt gains the instructions retired and *chunk
   is the chunk limit on return (translated code that passes a point of rule 1 starts a new
   chunk, as rv64_run_hart would). */
VMON_INTERNAL int rv64_jit_run(rv64_hart *h, const void *code, uint64_t *cnt, uint64_t *chunk);
/* Frees the machine's translator (machine destroyed). */
VMON_INTERNAL void rv64_jit_release(rv64_machine *m);

/* The translation starting at pc (in the current fetch page, h->fdec), or NULL (interpret). */
static inline const void *rv64_jit_lookup(rv64_hart *h, uint64_t pc) {
  insn_t *dec = h->fdec;
  jit_tab *t = (jit_tab *)DEC_JITTAB(dec);
  if (likely(t != NULL) && likely(DEC_JITEPOCH(dec) == DEC_EPOCH(dec))) {
    uint32_t e = t->entry[(pc >> 1) & (DEC_SLOTS - 1)];
    if (e) return h->m->jit->base + (e - 1);
    if (t->hits[(pc >> 1) & (DEC_SLOTS - 1)] == 255) return NULL; /* not translatable */
  }
  return rv64_jit_miss(h, pc);
}

/* ---- the backend (jit_x86_64.c) ---- */

/* Where a guest register lives in a block: a host register slot (0..JIT_HOST_REGS-1) or memory. */
#define JIT_MEM 0xff

/* An exit of a block. */
typedef struct jit_exit {
  int32_t pc_off;    /* next pc - page base */
  uint16_t count;    /* instructions retired in the block when leaving here */
  uint8_t action;    /* JIT_A_* when it returns to the interpreter */
  uint8_t chain;     /* 1: jump (chunk checked) to a block of this page if there is one;
                        2: the same without the check (sequential flow) */
} jit_exit;

/* What the backend needs to lower one block. */
typedef struct jit_block {
  const insn_t *insn;   /* the instructions (base ops, never OPC_*) */
  const uint16_t *off;  /* page offset of each instruction */
  int n;                /* number of instructions */
  uint8_t host[33];     /* guest register -> host slot or JIT_MEM (x0 and the sink: JIT_MEM) */
  uint32_t written;     /* guest registers written (bitmask over x1..x31) */
  jit_exit end;         /* the fallthrough exit after the last instruction */
  int start_off;        /* page offset of the first instruction */
  const uint32_t *entries; /* the page's entry table (chaining) */
  const uint8_t *code_base;
  /* int fp(rv64_hart *h, const insn_t *d): executes an F/D instruction (fpu.c), -1 if illegal */
  int (*fp)(rv64_hart *, const insn_t *);
  /* rv64_jit.csr: 0 go on, 1 leave with JIT_A_OUT after the instruction, 2 leave before it */
  int (*csr)(rv64_hart *, const insn_t *, uint64_t, uint64_t *);
} jit_block;

/* Number of host registers the backend gives to guest registers. */
#define JIT_HOST_REGS 7

/* Emits the trampoline and epilogue at `buf` (capacity cap). Returns bytes or -1; fills the
   offsets of the enter function and of the epilogue. */
VMON_INTERNAL int rv64_jit_be_trampoline(uint8_t *buf, size_t cap, size_t *enter_off,
                                         size_t *epilogue_off);
/* Emits block `b` at `buf` (capacity cap; `epilogue` is the epilogue's final address, `self` the
   block's final address: where buf's bytes run, in the executable view of the code cache). Returns bytes, 0 when an instruction of b is not supported by this
   backend (b->n is then cut to the supported prefix and the caller retries), -1 when full. */
VMON_INTERNAL int rv64_jit_be_block(jit_block *b, uint8_t *buf, size_t cap,
                                    const uint8_t *self, const uint8_t *epilogue);
/* 1 when the backend translates base op `op` inline. */
VMON_INTERNAL int rv64_jit_be_supports(int op);

#endif
