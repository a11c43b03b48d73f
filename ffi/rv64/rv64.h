/*
 * rv64: a software RV64GC machine (M/S/U modes, Sv39/Sv48) for vmon.
 *
 * Internal header shared by the C files of this folder. The exported API (VMON_EXPORT) is in
 * api.c, its paging part in shadow.c and rv64_disasm in decode.c; symbols.ts describes it for
 * TypeScript. Exit kinds and paging trap codes come from ffi/common/exits.h.
 *
 * Memory ownership: the machine (rv64_machine) owns every allocation made by this library (RAM
 * regions, decode pages, harts and their exit records) until rv64_destroy(). Pointers handed to
 * TypeScript (RAM, exit records, register blocks, counters) stay valid until rv64_destroy().
 */
#ifndef RV64_H
#define RV64_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "exits.h"
#include "vmon_ffi.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* Paging modes (rv64_paging_mode): how translations are kept. */
enum { PMODE_WIRED = 0, PMODE_SHADOW = 1, PMODE_QUEUED = 2 };

/* Exit record, read from TypeScript through typed arrays; layout is fixed (see symbols.ts). */
typedef struct rv64_exit {
  uint32_t kind;     /* 0: enum vmon_exit_kind (exits.h) */
  uint32_t size;     /* 4 */
  uint32_t is_write; /* 8 */
  uint32_t code;     /* 12: for VMON_EXIT_PAGING an enum vmon_paging_trap */
  uint64_t addr;     /* 16: MMIO gpa, paging gpa/va */
  uint64_t data;     /* 24: MMIO write value / load value written by the monitor */
  uint64_t nr;       /* 32 */
  uint64_t fid;      /* 40 */
  uint64_t args[6];  /* 48 */
  uint64_t pc;       /* 96 */
  char detail[160];  /* 104: NUL-terminated text for fatal exits */
} rv64_exit;

/* Per-hart counters, read from TypeScript as a BigUint64Array; order fixed (see symbols.ts). */
enum {
  CNT_INSTRET,
  CNT_TLB_FILLS,
  CNT_TLB_FLUSHES,
  CNT_PAGE_WALKS,
  CNT_DECODED,
  CNT_DECODE_FLUSHES,
  CNT_TRAPS,
  CNT_INTERRUPTS,
  CNT_MMIO,
  CNT_SBI,
  CNT_PAGING_EXITS,
  CNT_SHADOW_HITS,  /* TLB misses answered from the shadow tables (no walk) */
  CNT_COUNT
};

/* A decoded instruction: 16 bytes. rd==32 is the sink for writes to x0. */
typedef struct insn {
  uint16_t op;
  uint8_t rd, rs1, rs2, rs3;
  uint8_t len; /* 2 or 4 */
  uint8_t rm;  /* FP rounding mode field, or AMO aq/rl bits */
  int32_t imm;
  uint32_t raw;
} insn_t;

/* decode page: one slot per 2-byte parcel, plus sentinel slots (OP_REFETCH) at the end */
#define DEC_SLOTS 2048
#define DEC_ALLOC (DEC_SLOTS + 2)
/* After its slots, a decode page holds a copy of the guest page taken when its slots were last
   cleared, and a flag that stays 1 while every slot was decoded from bytes equal to that copy.
   A fence.i keeps the slots of a page whose bytes still equal the copy: harts' stores already
   forget the slots they overlap, so only writes by the monitor or devices can leave a slot
   stale, and those show in the comparison. */
#define DEC_SNAP(d) ((uint8_t *)((d) + DEC_ALLOC))
#define DEC_SNAP_OK(d) (*(uint32_t *)(DEC_SNAP(d) + 4096))
/* Then the translator's hooks (jit.h): an epoch that mmu.c bumps whenever it forgets slots of
   the page (translations of an older epoch are dropped), the page's entry table or NULL, the
   page's lookups before it gets a table, and the epoch at which its table was last emptied (here,
   beside the table's pointer, so that a lookup reads one line of the page for the three). */
#define DEC_EPOCH(d) (*(uint32_t *)(DEC_SNAP(d) + 4100))
#define DEC_JITTAB(d) (*(void **)(DEC_SNAP(d) + 4104))
#define DEC_JITHITS(d) (*(uint32_t *)(DEC_SNAP(d) + 4112))
#define DEC_JITEPOCH(d) (*(uint32_t *)(DEC_SNAP(d) + 4116))
#define DEC_ALLOC_BYTES (DEC_ALLOC * sizeof(insn_t) + 4096 + 32)

#define TLB_SIZE 1024
typedef struct tlb_entry {
  uint64_t tag;     /* virtual page address, or ~0 when empty */
  uintptr_t addend; /* host address = vaddr + addend */
  uint64_t gpage;   /* guest physical page address */
} tlb_entry;

/* TLB sets: index by access mode. */
enum { TM_U = 0, TM_S = 1, TM_SSUM = 2, TM_M = 3, TM_COUNT = 4 };

#define PAGE_CODE 1
#define PAGE_WP 2

typedef struct rv64_region {
  uint64_t gpa, size;
  uint8_t *host;   /* owned, mmap'ed */
  uint8_t *flags;  /* one byte per 4 KiB page: PAGE_CODE | PAGE_WP; owned */
  insn_t **dec;    /* decode page per 4 KiB page (NULL until executed); owned */
  uint32_t *dec_gen;
  int readonly;
  /* shadow paging (NULL in wired mode; owned): per 4 KiB page, the head of the list of shadow
     nodes derived from PTEs in the page (~0 = none), their number, and queue slot + 1 */
  uint32_t *pt_head;
  uint32_t *pt_count;
  uint8_t *pt_queue;
} rv64_region;

/* Shadow translations (shadow.c): SH_AS address spaces of SH_PER_AS direct-mapped entries. */
#define SH_AS 16
#define SH_PER_AS 1024
#define SH_LEVELS 4
#define SH_NONE 0xffffffffu
typedef struct sh_entry {
  uint64_t tag;            /* virtual page address, or ~0 when empty */
  uint64_t pte;            /* the leaf PTE as walked (A/D included) */
  uint64_t gpage;          /* guest physical 4 KiB page the virtual page maps to */
  uint64_t slot[SH_LEVELS]; /* guest physical address of the PTE read at each level */
  uint32_t next[SH_LEVELS], prev[SH_LEVELS]; /* reverse-map links, node = index * 4 + level */
  uint8_t nlev;
} sh_entry;

/* The page-table page queue of the queued strategy. */
#define PQ_SLOTS 64

/* Machine-level paging counters (rv64_paging_counters), read from TypeScript. */
enum { PC_SHADOW_FILLS, PC_SHADOW_DROPS, PC_AS_EVICTIONS, PC_PT_PAGES, PC_QUEUED, PC_COUNT };

#define MAX_REGIONS 8

struct rv64_machine;
struct rv64_paging_ops;

typedef struct rv64_hart {
  /* Register block exported to TypeScript (BigUint64Array over it): x[0..32], f[0..31], pc. */
  uint64_t x[33];
  uint64_t f[32];
  uint64_t pc;
  uint64_t counters[CNT_COUNT];
  rv64_exit exit;

  struct rv64_machine *m;
  int id;
  int priv; /* 0 U, 1 S, 3 M */
  int started, halted;

  /* CSRs */
  uint64_t mstatus, misa, medeleg, mideleg, mie, mip, mtvec, mscratch, mepc, mcause, mtval;
  uint64_t mcounteren, scounteren, menvcfg, senvcfg;
  uint64_t stvec, sscratch, sepc, scause, stval, satp;
  uint32_t fflags, frm;
  uint64_t timer_deadline; /* supervisor timer in time ticks; ~0 = none */
  uint64_t instret_base;   /* value added to counters[CNT_INSTRET] for minstret writes */

  /* LR/SC */
  uint64_t res_addr;
  int res_valid;

  /* pending MMIO load: completed at the next run */
  int pend_load;
  uint8_t pend_rd, pend_size, pend_signed, pend_fp, pend_len;

  /* exits on sfence.vma / satp writes (2 = only while page-table pages are queued) */
  int exit_on_sfence, exit_on_satp;
  /* shadow paging: current address space (-1 = look up at the next miss), an approved store
     (gpa + 1, 0 = none) and an AMO/SC that found a protected page-table page */
  int sh_as;
  uint64_t pt_bypass;
  int pt_hold;
  int flush_pending; /* the monitor flushed the TLB (SBI RFENCE): exit as after sfence.vma */
  /* the last run ended in a paging exit inside a store/AMO/SC: the next run checks interrupts
     only from the next check point on (cpu.c, the rule above rv64_run_hart) */
  int irq_defer;
  /* The run state of the current exec_block call, kept here so that translated code can run the
     checks of rule 1 itself (rv64_jit_csr, jit.h): the budget left when the call started, how
     many of its instructions CNT_INSTRET holds, and its chunk limit (both counted from the
     call's start). */
  uint64_t blk_remaining, blk_counted, blk_limit;

  /* translation state derived from priv/mstatus/satp */
  int fetch_mode, ls_mode;
  tlb_entry tlb_fetch[TM_COUNT][TLB_SIZE];
  tlb_entry tlb_load[TM_COUNT][TLB_SIZE];
  tlb_entry tlb_store[TM_COUNT][TLB_SIZE];
  /* bit (kind * TM_COUNT + mode) set when that TLB set (kind 0 fetch, 1 load, 2 store; the
     three arrays above are contiguous) may hold entries: flushes clear only those sets */
  uint32_t tlb_dirty;

  /* current fetch page */
  uint64_t fvpage; /* virtual page of pc, or ~0 */
  insn_t *fdec;
  uint8_t *fhost; /* host address of the current fetch page */
  void *jit_jc;   /* the translator's jump cache of this hart (jit.h), NULL when off; owned */
} rv64_hart;

typedef struct rv64_machine {
  int nharts;
  int clock_icount;       /* time from retired instructions */
  uint64_t icount_shift;  /* instructions per tick for icount mode */
  uint64_t t0_ns;
  uint64_t vtime_extra;   /* ticks added when all harts idle (icount) */
  int nregions;
  rv64_region regions[MAX_REGIONS];
  uint32_t dec_gen;       /* bumped by fence.i: decode pages of older generations are stale */
  uint64_t dec_bytes;
  rv64_hart **harts;
  /* the paging mechanism (shadow.c) behind the MMU: hooks chosen by rv64_paging_mode, NULL in
     wired mode (static tables, never freed); its state below is NULL/0 in wired mode and owned
     by the machine */
  const struct rv64_paging_ops *paging;
  int paging_mode;
  sh_entry *sh;                 /* SH_AS * SH_PER_AS entries */
  uint64_t sh_root[SH_AS];      /* satp of each address space (0 = free) */
  uint64_t sh_used[SH_AS];      /* LRU stamps */
  uint64_t sh_clock;
  uint64_t pv_lo[8], pv_hi[8];  /* physical ranges a leaf may map (set by the strategy) */
  int npv;
  uint8_t *pq_snap;             /* PQ_SLOTS * 4096 bytes of snapshots */
  uint64_t pq_gpa[PQ_SLOTS];
  int pq_len;
  uint64_t pcounters[PC_COUNT];
  int kick; /* set by rv64_kick() (api.c) from any thread: the running slice ends */
  struct rv64_jit *jit; /* the block translator (jit.h), NULL when off; owned */
} rv64_machine;

/* mstatus bits */
#define MS_SIE (1ULL << 1)
#define MS_MIE (1ULL << 3)
#define MS_SPIE (1ULL << 5)
#define MS_MPIE (1ULL << 7)
#define MS_SPP (1ULL << 8)
#define MS_MPP_SHIFT 11
#define MS_MPP (3ULL << 11)
#define MS_FS (3ULL << 13)
#define MS_MPRV (1ULL << 17)
#define MS_SUM (1ULL << 18)
#define MS_MXR (1ULL << 19)
#define MS_TVM (1ULL << 20)
#define MS_TW (1ULL << 21)
#define MS_TSR (1ULL << 22)
#define MS_SD (1ULL << 63)

#define IRQ_SSI 1
#define IRQ_MSI 3
#define IRQ_STI 5
#define IRQ_MTI 7
#define IRQ_SEI 9
#define IRQ_MEI 11

/* exception causes */
enum {
  EXC_INSN_MISALIGNED = 0,
  EXC_INSN_ACCESS = 1,
  EXC_ILLEGAL = 2,
  EXC_BREAKPOINT = 3,
  EXC_LOAD_MISALIGNED = 4,
  EXC_LOAD_ACCESS = 5,
  EXC_STORE_MISALIGNED = 6,
  EXC_STORE_ACCESS = 7,
  EXC_ECALL_U = 8,
  EXC_ECALL_S = 9,
  EXC_ECALL_M = 11,
  EXC_INSN_PAGE = 12,
  EXC_LOAD_PAGE = 13,
  EXC_STORE_PAGE = 15,
};

/* access types for translation */
enum { ACC_FETCH = 0, ACC_LOAD = 1, ACC_STORE = 2 };

/* memory access results */
enum { MEM_OK = 0, MEM_TRAP = 1, MEM_EXIT = 2 };

/*
 * Functions shared between the files of this folder, bottom layer first. A file calls only
 * functions of the layers below it (ffi/rv64/layering_test.ts checks it; ffi/README.md):
 *
 *   api.c              the exported API: everything below
 *   cpu.c              the interpreter (and jit.h's inline lookup)
 *   shadow.c  jit.c    the paging mechanism; the block translator (jit.h)
 *   mmu.c   fpu.c      memory, translation, TLBs; floating point
 *   trap.c  decode.c   raising traps and exits; decoding
 *   jit_x86_64.c       the translator's x86-64 backend
 *
 * The MMU reaches the paging mechanism only through the hooks of rv64_paging_ops, and only on
 * slow paths (TLB misses, stores that missed the store TLB, fences): a TLB hit never calls it.
 */

/* ---- trap.c ---- */
/* Takes trap `cause` (bit 63: interrupt) with `tval`: to S or M mode, or a Shutdown exit when it
   would go to M mode without M-mode firmware. */
VMON_INTERNAL void rv64_trap(rv64_hart *h, uint64_t cause, uint64_t tval);
/* Recomputes the translation modes from priv, mstatus and satp (after any change to them). */
VMON_INTERNAL void rv64_update_modes(rv64_hart *h);
VMON_INTERNAL void rv64_set_exit_detail(rv64_hart *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- decode.c ---- */
VMON_INTERNAL void rv64_decode(uint32_t raw, insn_t *d);
VMON_INTERNAL const char *rv64_op_name(int op);

/* ---- mmu.c ---- */
VMON_INTERNAL rv64_region *rv64_find_region(rv64_machine *m, uint64_t gpa);
VMON_INTERNAL void rv64_tlb_flush(rv64_hart *h);
VMON_INTERNAL void rv64_tlb_flush_va(rv64_hart *h, uint64_t va);
VMON_INTERNAL void rv64_store_tlb_drop_gpage(rv64_machine *m, uint64_t gpage);
/* Translates va; on success fills *gpa. Returns 0 or the exception cause + 1. */
VMON_INTERNAL int rv64_translate(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa);
VMON_INTERNAL int rv64_load_slow(rv64_hart *h, uint64_t va, int size, uint64_t *val);
VMON_INTERNAL int rv64_store_slow(rv64_hart *h, uint64_t va, int size, uint64_t val);
/* Returns a host pointer for an aligned RAM access used by atomics, or NULL after a trap/exit. */
VMON_INTERNAL uint8_t *rv64_amo_ptr(rv64_hart *h, uint64_t va, int size);
VMON_INTERNAL int rv64_fetch_page(rv64_hart *h, uint64_t pc);
VMON_INTERNAL int rv64_fetch_cross(rv64_hart *h, uint64_t pc, uint32_t *raw);
VMON_INTERNAL void rv64_decode_page_clear(rv64_machine *m, rv64_region *r, uint64_t page);
/* Page-table walk; `slots` (or NULL) receives the gpa of the PTE read at each level, `nlev`
   their number. Returns 0 (gpa, dirty set) or the exception cause + 1. */
VMON_INTERNAL int rv64_walk(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa,
                            int *dirty, uint64_t *slots, int *nlev, uint64_t *leaf);
VMON_INTERNAL int rv64_leaf_check(rv64_hart *h, uint64_t pte, int acc, int mode);
/* 1 when a guest store to page `page` of region r must exit for the paging strategy */
static inline int rv64_pt_protected(const rv64_region *r, uint64_t page) {
  return r->pt_count && r->pt_count[page] && !r->pt_queue[page];
}

/* ---- fpu.c ---- */
VMON_INTERNAL int rv64_fp_exec(rv64_hart *h, const insn_t *d);

/* ---- cpu.c ---- */
VMON_INTERNAL uint64_t rv64_time(rv64_machine *m);
VMON_INTERNAL int rv64_csr_read(rv64_hart *h, int csr, uint64_t *val, int check);
VMON_INTERNAL int rv64_csr_write(rv64_hart *h, int csr, uint64_t val, int check);
VMON_INTERNAL int rv64_pending_irq(rv64_hart *h);
VMON_INTERNAL int rv64_run_hart(rv64_hart *h, uint64_t budget);
/* The CSR instructions translated code runs through a call (jit.h, rv64_jit.csr). */
VMON_INTERNAL int rv64_jit_csr(rv64_hart *h, const insn_t *d, uint64_t cnt, uint64_t *limit);

/* ---- shadow.c: the paging mechanism, reached through these hooks ---- */
/*
 * The hooks of a paging mode other than wired, set in rv64_machine.paging by rv64_paging_mode
 * (shadow.c, exported). Called by the MMU (translate, pt_store), the interpreter and the API
 * (flush_exit on fences and satp writes) and the API (region_added, release). Never on a TLB hit.
 */
typedef struct rv64_paging_ops {
  /* A TLB miss in a translated mode: va to *gpa (*dirty: the leaf's D bit). Returns 0 or the
     exception cause + 1. Answers from the shadow tables, else walks and fills them. */
  int (*translate)(rv64_hart *h, uint64_t va, int acc, int mode, uint64_t *gpa, int *dirty);
  /* An approved store will change [gpa, gpa + size) of a protected page-table page: drop what
     was derived from the PTEs it overwrites. */
  void (*pt_store)(rv64_machine *m, uint64_t gpa, uint64_t size);
  /* With exits "only while pages are queued": 1 when this sfence.vma (`all`, or the page of
     `va`), satp write or remote fence must exit to the strategy. */
  int (*flush_exit)(rv64_hart *h, int all, uint64_t va);
  /* A RAM region was added: sets up its per-page state. Returns 0, or -1 when out of memory. */
  int (*region_added)(rv64_machine *m, rv64_region *r);
  /* Frees the mechanism's state (machine destroyed). */
  void (*release)(rv64_machine *m);
} rv64_paging_ops;

/* opcodes of decoded instructions */
#define RV64_OPS(X)                                                                           \
  X(UNDECODED) X(ILLEGAL) X(CROSS) X(REFETCH)                                                          \
  X(LUI) X(AUIPC) X(JAL) X(JALR) X(BEQ) X(BNE) X(BLT) X(BGE) X(BLTU) X(BGEU)                  \
  X(LB) X(LH) X(LW) X(LD) X(LBU) X(LHU) X(LWU) X(SB) X(SH) X(SW) X(SD)                        \
  X(ADDI) X(SLTI) X(SLTIU) X(XORI) X(ORI) X(ANDI) X(SLLI) X(SRLI) X(SRAI)                     \
  X(ADD) X(SUB) X(SLL) X(SLT) X(SLTU) X(XOR) X(SRL) X(SRA) X(OR) X(AND)                       \
  X(FENCE) X(FENCE_I) X(ECALL) X(EBREAK)                                                      \
  X(ADDIW) X(SLLIW) X(SRLIW) X(SRAIW) X(ADDW) X(SUBW) X(SLLW) X(SRLW) X(SRAW)                 \
  X(MUL) X(MULH) X(MULHSU) X(MULHU) X(DIV) X(DIVU) X(REM) X(REMU)                             \
  X(MULW) X(DIVW) X(DIVUW) X(REMW) X(REMUW)                                                   \
  X(LR_W) X(SC_W) X(AMOSWAP_W) X(AMOADD_W) X(AMOXOR_W) X(AMOAND_W) X(AMOOR_W)                 \
  X(AMOMIN_W) X(AMOMAX_W) X(AMOMINU_W) X(AMOMAXU_W)                                           \
  X(LR_D) X(SC_D) X(AMOSWAP_D) X(AMOADD_D) X(AMOXOR_D) X(AMOAND_D) X(AMOOR_D)                 \
  X(AMOMIN_D) X(AMOMAX_D) X(AMOMINU_D) X(AMOMAXU_D)                                           \
  X(CSRRW) X(CSRRS) X(CSRRC) X(CSRRWI) X(CSRRSI) X(CSRRCI)                                    \
  X(SRET) X(MRET) X(WFI) X(SFENCE_VMA)                                                        \
  X(FLW) X(FSW) X(FLD) X(FSD)                                                                 \
  X(FMADD_S) X(FMSUB_S) X(FNMSUB_S) X(FNMADD_S) X(FADD_S) X(FSUB_S) X(FMUL_S) X(FDIV_S)       \
  X(FSQRT_S) X(FSGNJ_S) X(FSGNJN_S) X(FSGNJX_S) X(FMIN_S) X(FMAX_S) X(FCVT_W_S)             \
  X(FCVT_WU_S) X(FMV_X_W) X(FEQ_S) X(FLT_S) X(FLE_S) X(FCLASS_S) X(FCVT_S_W) X(FCVT_S_WU)    \
  X(FMV_W_X) X(FCVT_L_S) X(FCVT_LU_S) X(FCVT_S_L) X(FCVT_S_LU)                                \
  X(FMADD_D) X(FMSUB_D) X(FNMSUB_D) X(FNMADD_D) X(FADD_D) X(FSUB_D) X(FMUL_D) X(FDIV_D)       \
  X(FSQRT_D) X(FSGNJ_D) X(FSGNJN_D) X(FSGNJX_D) X(FMIN_D) X(FMAX_D) X(FCVT_W_D)             \
  X(FCVT_WU_D) X(FMV_X_D) X(FEQ_D) X(FLT_D) X(FLE_D) X(FCLASS_D) X(FCVT_D_W) X(FCVT_D_WU)    \
  X(FMV_D_X) X(FCVT_L_D) X(FCVT_LU_D) X(FCVT_D_L) X(FCVT_D_LU) X(FCVT_S_D) X(FCVT_D_S)

#define RV64_ENUM(name) OP_##name,
enum { RV64_OPS(RV64_ENUM) OP_COUNT };
#undef RV64_ENUM

#define OP_FIRST_FP OP_FMADD_S

#endif
