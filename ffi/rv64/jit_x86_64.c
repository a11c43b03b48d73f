/*
 * The x86-64 backend of the block translator (jit.h): a small instruction encoder and the
 * lowering of one block. Another host architecture gets its own jit_<arch>.c with the same three
 * functions (rv64_jit_be_trampoline, rv64_jit_be_block, rv64_jit_be_supports).
 *
 * Host registers while translated code runs (System V ABI; the trampoline saves the callee-saved
 * ones): rbx = the hart, r12 = virtual address of the guest page, r13 = the load-TLB set of the
 * current mode (the store set is at a fixed distance), r14 = instructions retired in the
 * interpreter's current chunk, r15 = chained jumps (low half) and jump-cache hits (high half);
 * [rsp] = where the count goes back, [rsp + 8] = the chunk limit, [rsp + 16] = the fetch-TLB set
 * of the current mode. Guest registers of a block live in rsi, rdi, r8-r11 and rbp;
 * rax, rcx and rdx are scratch. Translated code calls only rv64_fp_exec (F/D arithmetic), the
 * interpreter's CSR helper (rv64_jit.csr) and the M-extension helpers below, with every guest
 * register in memory around the call (rsp is 16-byte aligned there).
 *
 * Layer: the bottom (calls no other file of this folder).
 */
#include "jit.h"

#if defined(__x86_64__)

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };

/* host register of each guest-register slot */
static const uint8_t SLOT_REG[JIT_HOST_REGS] = {RSI, RDI, R8, R9, R10, R11, RBP};

/* Code is written at p (the code cache's writable view) and runs at p + delta (its executable
   view; jit.c maps one cache twice): rel32 targets are executable addresses. */
typedef struct asm_buf {
  uint8_t *p, *start, *end;
  int full;
  intptr_t delta;
} asm_buf;

static void b1(asm_buf *a, unsigned v) {
  if (a->p < a->end) *a->p++ = (uint8_t)v;
  else a->full = 1;
}
static void b4(asm_buf *a, uint32_t v) {
  for (int i = 0; i < 4; i++) b1(a, (v >> (8 * i)) & 0xff);
}
static void b8(asm_buf *a, uint64_t v) {
  for (int i = 0; i < 8; i++) b1(a, (unsigned)((v >> (8 * i)) & 0xff));
}

/* REX prefix; `force` for byte registers spl/bpl/sil/dil. */
static void rex(asm_buf *a, int w, int r, int x, int b, int force) {
  unsigned v = 0x40 | (w ? 8 : 0) | ((r >> 3) & 1) << 2 | ((x >> 3) & 1) << 1 | ((b >> 3) & 1);
  if (v != 0x40 || force) b1(a, v);
}

/* `op reg, rm` with a register operand (mod = 11). */
static void op_rr(asm_buf *a, int w, unsigned op, int reg, int rm) {
  rex(a, w, reg, 0, rm, 0);
  if (op > 0xff) b1(a, op >> 8);
  b1(a, op & 0xff);
  b1(a, 0xc0 | (reg & 7) << 3 | (rm & 7));
}

/* `op reg, [base + index * scale + disp]` (index < 0: none). prefix66: operand-size prefix;
   byte: reg is a byte register (REX for sil/dil/bpl). */
static void op_rm(asm_buf *a, int w, unsigned op, int reg, int base, int index, int scale,
                  int32_t disp, int prefix66, int byte) {
  if (prefix66) b1(a, 0x66);
  rex(a, w, reg, index < 0 ? 0 : index, base, byte && reg >= 4);
  if (op > 0xff) b1(a, op >> 8);
  b1(a, op & 0xff);
  int mod = (disp == 0 && (base & 7) != 5) ? 0 : (disp >= -128 && disp <= 127) ? 1 : 2;
  if (index < 0 && (base & 7) != 4) {
    b1(a, (unsigned)(mod << 6 | (reg & 7) << 3 | (base & 7)));
  } else {
    int ss = scale == 8 ? 3 : scale == 4 ? 2 : scale == 2 ? 1 : 0;
    b1(a, (unsigned)(mod << 6 | (reg & 7) << 3 | 4));
    b1(a, (unsigned)(ss << 6 | ((index < 0 ? 4 : index) & 7) << 3 | (base & 7)));
  }
  if (mod == 1) b1(a, (uint8_t)(int8_t)disp);
  else if (mod == 2) b4(a, (uint32_t)disp);
}

#define MEM(base, disp) base, -1, 1, (int32_t)(disp)

static void mov_rr(asm_buf *a, int dst, int src) {
  if (dst != src) op_rr(a, 1, 0x89, src, dst);
}
static void mov_r_mem(asm_buf *a, int dst, int base, int32_t disp) { op_rm(a, 1, 0x8b, dst, MEM(base, disp), 0, 0); }
static void mov_mem_r(asm_buf *a, int base, int32_t disp, int src) { op_rm(a, 1, 0x89, src, MEM(base, disp), 0, 0); }
static void lea(asm_buf *a, int dst, int base, int32_t disp) { op_rm(a, 1, 0x8d, dst, MEM(base, disp), 0, 0); }
/* mov r64, imm (shortest form) */
static void mov_imm(asm_buf *a, int dst, uint64_t v) {
  if (v <= 0xffffffffULL) { rex(a, 0, 0, 0, dst, 0); b1(a, 0xb8 + (dst & 7)); b4(a, (uint32_t)v); }
  else if ((int64_t)v == (int64_t)(int32_t)v) { rex(a, 1, 0, 0, dst, 0); b1(a, 0xc7); b1(a, 0xc0 | (dst & 7)); b4(a, (uint32_t)v); }
  else { rex(a, 1, 0, 0, dst, 0); b1(a, 0xb8 + (dst & 7)); b8(a, v); }
}
/* group-1 ALU with an immediate: ext 0 add, 1 or, 4 and, 5 sub, 6 xor, 7 cmp */
static void alu_imm(asm_buf *a, int w, int ext, int dst, int32_t imm) {
  rex(a, w, 0, 0, dst, 0);
  if (imm >= -128 && imm <= 127) { b1(a, 0x83); b1(a, 0xc0 | ext << 3 | (dst & 7)); b1(a, (uint8_t)(int8_t)imm); }
  else { b1(a, 0x81); b1(a, 0xc0 | ext << 3 | (dst & 7)); b4(a, (uint32_t)imm); }
}
/* shifts: ext 4 shl, 5 shr, 7 sar; by imm or by cl (imm < 0) */
static void shift(asm_buf *a, int w, int ext, int dst, int imm) {
  rex(a, w, 0, 0, dst, 0);
  if (imm < 0) { b1(a, 0xd3); b1(a, 0xc0 | ext << 3 | (dst & 7)); }
  else { b1(a, 0xc1); b1(a, 0xc0 | ext << 3 | (dst & 7)); b1(a, (unsigned)imm); }
}
static void movsxd_rr(asm_buf *a, int dst, int src) { op_rr(a, 1, 0x63, dst, src); }
/* jcc/jmp rel32 to an address known now */
static void jmp_to(asm_buf *a, const uint8_t *target) {
  b1(a, 0xe9);
  b4(a, (uint32_t)(int32_t)(target - (a->p + a->delta + 4)));
}
/* jcc rel32 whose target comes later: returns where the displacement is */
static uint8_t *jcc_fwd(asm_buf *a, int cc) {
  b1(a, 0x0f); b1(a, 0x80 + cc); b4(a, 0);
  return a->p - 4;
}
static uint8_t *jmp_fwd(asm_buf *a) {
  b1(a, 0xe9); b4(a, 0);
  return a->p - 4;
}
static void patch(asm_buf *a, uint8_t *at, const uint8_t *target) {
  if (a->full || !at) return;
  int32_t rel = (int32_t)(target - (at + 4));
  memcpy(at, &rel, 4);
}

enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_L = 0xc, CC_GE = 0xd };

/* ---------------------------------------------------------------------------------------- */

int rv64_jit_be_supports(int op) {
  switch (op) {
    case OP_LUI: case OP_AUIPC: case OP_JAL: case OP_JALR:
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU:
    case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU: case OP_LHU: case OP_LWU:
    case OP_SB: case OP_SH: case OP_SW: case OP_SD:
    case OP_ADDI: case OP_SLTI: case OP_SLTIU: case OP_XORI: case OP_ORI: case OP_ANDI:
    case OP_SLLI: case OP_SRLI: case OP_SRAI:
    case OP_ADD: case OP_SUB: case OP_SLL: case OP_SLT: case OP_SLTU: case OP_XOR: case OP_SRL:
    case OP_SRA: case OP_OR: case OP_AND: case OP_FENCE:
    case OP_ADDIW: case OP_SLLIW: case OP_SRLIW: case OP_SRAIW: case OP_ADDW: case OP_SUBW:
    case OP_SLLW: case OP_SRLW: case OP_SRAW:
    case OP_MUL: case OP_MULH: case OP_MULHU: case OP_MULW:
    case OP_MULHSU: case OP_DIV: case OP_DIVU: case OP_REM: case OP_REMU:
    case OP_DIVW: case OP_DIVUW: case OP_REMW: case OP_REMUW:
    case OP_FLW: case OP_FSW: case OP_FLD: case OP_FSD:
    case OP_AMOSWAP_W: case OP_AMOADD_W: case OP_AMOXOR_W: case OP_AMOAND_W: case OP_AMOOR_W:
    case OP_AMOMIN_W: case OP_AMOMAX_W: case OP_AMOMINU_W: case OP_AMOMAXU_W:
    case OP_AMOSWAP_D: case OP_AMOADD_D: case OP_AMOXOR_D: case OP_AMOAND_D: case OP_AMOOR_D:
    case OP_AMOMIN_D: case OP_AMOMAX_D: case OP_AMOMINU_D: case OP_AMOMAXU_D:
    case OP_LR_W: case OP_LR_D: case OP_SC_W: case OP_SC_D:
    case OP_CSRRW: case OP_CSRRS: case OP_CSRRC: case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI:
      return 1; /* CSRs: a call to rv64_jit.csr, for the CSRs jit.c lets through (jit_csr_inline) */
    default:
      return op >= OP_FIRST_FP && op < OP_COUNT; /* F/D arithmetic: a call to rv64_fp_exec */
  }
}

int rv64_jit_be_trampoline(uint8_t *buf, size_t cap, size_t *enter_off, size_t *epilogue_off) {
  asm_buf A = {buf, buf, buf + cap, 0, 0}, *a = &A; /* position independent: no rel32 */
  *enter_off = 0;
  /* enter(rdi = h, rsi = code, rdx = vpage, rcx = &cnt, r8 = chunk) */
  static const int saved[6] = {RBX, RBP, R12, R13, R14, R15};
  for (int i = 0; i < 6; i++) { rex(a, 0, 0, 0, saved[i], 0); b1(a, 0x50 + (saved[i] & 7)); }
  alu_imm(a, 1, 5, RSP, 24);
  mov_rr(a, RBX, RDI);
  mov_rr(a, R12, RDX);
  mov_mem_r(a, RSP, 0, RCX);
  mov_r_mem(a, R14, RCX, 0);
  mov_mem_r(a, RSP, 8, R8);
  op_rr(a, 0, 0x31, R15, R15); /* xor r15d, r15d */
  op_rm(a, 1, 0x63, RAX, MEM(RBX, offsetof(rv64_hart, ls_mode)), 0, 0); /* movsxd rax, ls_mode */
  /* imul rax, rax, TLB_SIZE * sizeof(tlb_entry) */
  rex(a, 1, RAX, 0, RAX, 0); b1(a, 0x69); b1(a, 0xc0); b4(a, TLB_SIZE * sizeof(tlb_entry));
  op_rm(a, 1, 0x8d, R13, RBX, RAX, 1, (int32_t)offsetof(rv64_hart, tlb_load), 0, 0);
  /* [rsp + 16] = the fetch TLB set of the current mode (the jump cache checks it) */
  op_rm(a, 1, 0x63, RAX, MEM(RBX, offsetof(rv64_hart, fetch_mode)), 0, 0);
  rex(a, 1, RAX, 0, RAX, 0); b1(a, 0x69); b1(a, 0xc0); b4(a, TLB_SIZE * sizeof(tlb_entry));
  op_rm(a, 1, 0x8d, RAX, RBX, RAX, 1, (int32_t)offsetof(rv64_hart, tlb_fetch), 0, 0);
  mov_mem_r(a, RSP, 16, RAX);
  op_rr(a, 0, 0xff, 4, RSI); /* jmp rsi */
  *epilogue_off = (size_t)(a->p - a->start);
  /* eax = action; io[0] = the count, io[1] = chained jumps | jump-cache hits << 32 */
  mov_r_mem(a, RCX, RSP, 0);
  mov_mem_r(a, RCX, 0, R14);
  mov_mem_r(a, RCX, 8, R15);
  alu_imm(a, 1, 0, RSP, 24);
  for (int i = 5; i >= 0; i--) { rex(a, 0, 0, 0, saved[i], 0); b1(a, 0x58 + (saved[i] & 7)); }
  b1(a, 0xc3);
  return a->full ? -1 : (int)(a->p - a->start);
}

/* ---------------------------------------------------------------------------------------- */
/* blocks                                                                                    */

typedef struct lower {
  asm_buf *a;
  jit_block *b;
  const uint8_t *self, *epilogue, *body;
  /* exits emitted after the body */
  struct { uint8_t *at; jit_exit e; } stubs[JIT_MAX_INSNS * 2 + 4];
  int nstubs;
} lower;

static uint8_t *stub_later(lower *L, uint8_t *at, int32_t pc_off, int count, int action, int chain);

/* M-extension operations translated code calls (the interpreter's definitions, cpu.c) */
static uint64_t m_mulhsu(uint64_t a, uint64_t b, uint64_t op) {
  (void)op;
  return (uint64_t)(((__int128)(int64_t)a * (__int128)(unsigned __int128)b) >> 64);
}
static uint64_t m_div(uint64_t ua, uint64_t ub, uint64_t op) {
  switch (op) {
    case OP_DIV: {
      int64_t a = (int64_t)ua, b = (int64_t)ub;
      return b == 0 ? ~0ULL : (a == INT64_MIN && b == -1) ? (uint64_t)a : (uint64_t)(a / b);
    }
    case OP_DIVU: return ub ? ua / ub : ~0ULL;
    case OP_REM: {
      int64_t a = (int64_t)ua, b = (int64_t)ub;
      return b == 0 ? (uint64_t)a : (a == INT64_MIN && b == -1) ? 0 : (uint64_t)(a % b);
    }
    case OP_REMU: return ub ? ua % ub : ua;
    case OP_DIVW: {
      int32_t a = (int32_t)ua, b = (int32_t)ub;
      return (uint64_t)(int64_t)(b == 0 ? -1 : (a == INT32_MIN && b == -1) ? a : a / b);
    }
    case OP_DIVUW: {
      uint32_t a = (uint32_t)ua, b = (uint32_t)ub;
      return (uint64_t)(int64_t)(int32_t)(b ? a / b : 0xffffffffu);
    }
    case OP_REMW: {
      int32_t a = (int32_t)ua, b = (int32_t)ub;
      return (uint64_t)(int64_t)(b == 0 ? a : (a == INT32_MIN && b == -1) ? 0 : a % b);
    }
    default: { /* OP_REMUW */
      uint32_t a = (uint32_t)ua, b = (uint32_t)ub;
      return (uint64_t)(int64_t)(int32_t)(b ? a % b : a);
    }
  }
}

static int host_of(lower *L, int g) {
  if (g == 0 || g >= 32) return -1;
  uint8_t s = L->b->host[g];
  return s == JIT_MEM ? -1 : SLOT_REG[s];
}

static int32_t xoff(int g) { return (int32_t)(offsetof(rv64_hart, x) + 8 * (size_t)g); }

/* A host register holding guest register g (loaded into `scratch` when g is in memory). */
static int src(lower *L, int g, int scratch) {
  int r = host_of(L, g);
  if (r >= 0) return r;
  if (g == 0) { op_rr(L->a, 0, 0x31, scratch, scratch); return scratch; }
  mov_r_mem(L->a, scratch, RBX, xoff(g));
  return scratch;
}

/* Guest register g = host register `from` (writes to x0 / the sink are dropped). */
static void dst(lower *L, int g, int from) {
  if (g == 0 || g >= 32) return;
  int r = host_of(L, g);
  if (r >= 0) mov_rr(L->a, r, from);
  else mov_mem_r(L->a, RBX, xoff(g), from);
}

static void writeback(lower *L) {
  for (int g = 1; g < 32; g++)
    if ((L->b->written >> g) & 1) {
      int r = host_of(L, g);
      if (r >= 0) mov_mem_r(L->a, RBX, xoff(g), r);
    }
}

/* Every guest register held in a host register goes to memory (reload: and back). */
static void spill_all(lower *L, int reload) {
  for (int g = 1; g < 32; g++) {
    int r = host_of(L, g);
    if (r < 0) continue;
    if (reload) mov_r_mem(L->a, r, RBX, xoff(g));
    else mov_mem_r(L->a, RBX, xoff(g), r);
  }
}

/* Calls fn (System V; rsp is 16-byte aligned in translated code) with the guest registers in
   memory around the call; rdi/rsi/rdx must be set by `args` after the spill. */
static void call_abs(asm_buf *a, const void *fn) {
  mov_imm(a, RAX, (uint64_t)(uintptr_t)fn);
  op_rr(a, 0, 0xff, 2, RAX); /* call rax */
}

/* 16 bytes of data in the code (jumped over); returns their executable address. */
static const uint8_t *embed(asm_buf *a, const void *data, int len) {
  b1(a, 0xeb); b1(a, (unsigned)len); /* jmp short over */
  const uint8_t *at = a->p + a->delta;
  for (int k = 0; k < len; k++) b1(a, ((const uint8_t *)data)[k]);
  return at;
}

/* Exits to the interpreter before instruction i unless mstatus.FS is on (it raises the trap). */
static void fs_check(lower *L, int i) {
  asm_buf *a = L->a;
  rex(a, 1, 0, 0, RBX, 0); b1(a, 0xf7); b1(a, 0x80 | (RBX & 7)); /* test qword [rbx+d32], imm */
  b4(a, (uint32_t)offsetof(rv64_hart, mstatus)); b4(a, (uint32_t)MS_FS);
  uint8_t *off = jcc_fwd(a, CC_E);
  stub_later(L, off, L->b->off[i], i, JIT_A_DISPATCH, 0);
}

static void set_pc_off(lower *L, int32_t off) {
  lea(L->a, RAX, R12, off);
  mov_mem_r(L->a, RBX, (int32_t)offsetof(rv64_hart, pc), RAX);
}

static void leave(lower *L, int action) {
  mov_imm(L->a, RAX, (uint64_t)action);
  jmp_to(L->a, L->epilogue);
}

static void inc_r15(asm_buf *a) { rex(a, 1, 0, 0, R15, 0); b1(a, 0xff); b1(a, 0xc0 | (R15 & 7)); }

/* Jumps to the translation at page offset rax&0xfff... : chains through the page's entry table
   (rax = target pc, already known to be in this page); falls through when there is none. */
static uint8_t *chain_dynamic(lower *L, int reg_off_in_ecx) {
  asm_buf *a = L->a;
  (void)reg_off_in_ecx;
  /* ecx = target & 0xffe; edx = entries[ecx / 2] */
  mov_imm(a, RDX, (uint64_t)(uintptr_t)L->b->entries);
  op_rm(a, 0, 0x8b, RDX, RDX, RCX, 2, 0, 0, 0); /* mov edx, [rdx + rcx*2] */
  op_rr(a, 0, 0x85, RDX, RDX);                   /* test edx, edx */
  uint8_t *none = jcc_fwd(a, CC_E);
  mov_imm(a, RCX, (uint64_t)(uintptr_t)(L->b->code_base - 1));
  op_rr(a, 1, 0x01, RCX, RDX);                   /* add rdx, rcx */
  inc_r15(a);
  op_rr(a, 0, 0xff, 4, RDX);                     /* jmp rdx */
  return none;
}

/*
 * A jump to another guest page (rax = target pc; the guest registers are written back and the
 * count added): through the hart's jump cache when the chunk is not used up and the entry is
 * still what the interpreter's lookup would find (jit.h, jit_jc_entry); else back to the
 * interpreter's jump path. The guest registers' host registers are free here.
 */
static void jump_other_page(lower *L) {
  asm_buf *a = L->a;
  op_rm(a, 1, 0x3b, R14, MEM(RSP, 8), 0, 0);     /* cmp r14, [rsp + 8] */
  uint8_t *out[8];
  int n = 0;
  out[n++] = jcc_fwd(a, CC_AE);
  mov_r_mem(a, RCX, RBX, (int32_t)offsetof(rv64_hart, jit_jc));
  /* rdx = JC_INDEX(rax) * sizeof(jit_jc_entry) (jit.h) */
  _Static_assert(sizeof(jit_jc_entry) == 128, "shift below");
  mov_rr(a, RDX, RAX);
  shift(a, 1, 5, RDX, 1);
  b1(a, 0x69); b1(a, 0xc0 | (RDX & 7) << 3 | (RDX & 7)); /* imul edx, edx, imm32 */
  b4(a, JC_HASH_MUL);
  shift(a, 0, 5, RDX, 32 - JC_SET_BITS);
  shift(a, 0, 4, RDX, 8);
  op_rr(a, 1, 0x01, RDX, RCX);                   /* rcx = &entry */
  op_rm(a, 1, 0x3b, RAX, MEM(RCX, offsetof(jit_jc_entry, vpc)), 0, 0);
  uint8_t *first = jcc_fwd(a, CC_E);
  alu_imm(a, 1, 6, RCX, (int32_t)sizeof(jit_jc_entry)); /* the other way (sets are aligned) */
  op_rm(a, 1, 0x3b, RAX, MEM(RCX, offsetof(jit_jc_entry, vpc)), 0, 0);
  out[n++] = jcc_fwd(a, CC_NE);
  patch(a, first, a->p);
  /* the fetch TLB maps the page to the same guest page */
  mov_rr(a, RDX, RAX);
  shift(a, 1, 5, RDX, 12);
  alu_imm(a, 0, 4, RDX, TLB_SIZE - 1);
  op_rm(a, 1, 0x8d, RDX, RDX, RDX, 2, 0, 0, 0);  /* rdx *= 3 */
  shift(a, 1, 4, RDX, 3);
  op_rm(a, 1, 0x03, RDX, MEM(RSP, 16), 0, 0);    /* rdx = &tlb_fetch[mode][index] */
  mov_rr(a, RSI, RAX);
  alu_imm(a, 1, 4, RSI, -4096);
  op_rm(a, 1, 0x3b, RSI, MEM(RDX, offsetof(tlb_entry, tag)), 0, 0);
  out[n++] = jcc_fwd(a, CC_NE);
  mov_r_mem(a, RDI, RDX, (int32_t)offsetof(tlb_entry, gpage));
  op_rm(a, 1, 0x3b, RDI, MEM(RCX, offsetof(jit_jc_entry, gpage)), 0, 0);
  out[n++] = jcc_fwd(a, CC_NE);
  /* the decode page is still the page's, of this generation and epoch */
  mov_r_mem(a, RDI, RCX, (int32_t)offsetof(jit_jc_entry, dec));
  mov_r_mem(a, R8, RCX, (int32_t)offsetof(jit_jc_entry, slot));
  op_rm(a, 1, 0x3b, RDI, MEM(R8, 0), 0, 0);
  out[n++] = jcc_fwd(a, CC_NE);
  mov_r_mem(a, R8, RCX, (int32_t)offsetof(jit_jc_entry, gen));
  op_rm(a, 0, 0x8b, R8, MEM(R8, 0), 0, 0);        /* r8d = dec_gen[page] */
  mov_r_mem(a, R9, RBX, (int32_t)offsetof(rv64_hart, m));
  op_rm(a, 0, 0x3b, R8, MEM(R9, offsetof(rv64_machine, dec_gen)), 0, 0);
  out[n++] = jcc_fwd(a, CC_NE);
  op_rm(a, 0, 0x8b, R8, MEM(RCX, offsetof(jit_jc_entry, epoch)), 0, 0);
  op_rm(a, 0, 0x3b, R8, MEM(RDI, DEC_ALLOC * sizeof(insn_t) + 4100), 0, 0); /* DEC_EPOCH */
  out[n++] = jcc_fwd(a, CC_NE);
  mov_r_mem(a, R8, RCX, (int32_t)offsetof(jit_jc_entry, flags));
  op_rm(a, 0, 0xf6, 0, MEM(R8, 0), 0, 0);       /* test byte [r8], PAGE_CODE */
  b1(a, PAGE_CODE);
  out[n++] = jcc_fwd(a, CC_E);
  /* switch the interpreter's fetch page and go */
  mov_mem_r(a, RBX, (int32_t)offsetof(rv64_hart, fvpage), RSI);
  mov_mem_r(a, RBX, (int32_t)offsetof(rv64_hart, fdec), RDI);
  mov_r_mem(a, R8, RCX, (int32_t)offsetof(jit_jc_entry, host));
  mov_mem_r(a, RBX, (int32_t)offsetof(rv64_hart, fhost), R8);
  mov_rr(a, R12, RSI);
  mov_imm(a, R8, 1ULL << 32);
  op_rr(a, 1, 0x01, R8, R15);                    /* add r15, r8: a jump-cache hit */
  op_rm(a, 0, 0xff, 4, MEM(RCX, offsetof(jit_jc_entry, code)), 0, 0); /* jmp [rcx + code] */
  for (int k = 0; k < n; k++) patch(a, out[k], a->p);
  mov_mem_r(a, RBX, (int32_t)offsetof(rv64_hart, pc), RAX);
  leave(L, JIT_A_JUMP);
}

/* An exit with a target known at translation time. */
static void emit_exit(lower *L, const jit_exit *e) {
  asm_buf *a = L->a;
  const jit_block *b = L->b;
  int in_page = e->pc_off >= 0 && e->pc_off < 4096;
  if (e->chain == 1 && in_page && e->pc_off == b->start_off) {
    /* a loop back to this block: registers stay in host registers */
    if (e->count) alu_imm(a, 1, 0, R14, e->count);
    op_rm(a, 1, 0x3b, R14, MEM(RSP, 8), 0, 0); /* cmp r14, [rsp + 8] */
    uint8_t *full = jcc_fwd(a, CC_AE);
    inc_r15(a);
    jmp_to(a, L->body);
    patch(a, full, a->p);
    writeback(L);
    set_pc_off(L, e->pc_off);
    leave(L, e->action);
    return;
  }
  writeback(L);
  if (e->count) alu_imm(a, 1, 0, R14, e->count);
  if (e->chain && in_page) {
    uint8_t *full = NULL;
    if (e->chain == 1) {
      op_rm(a, 1, 0x3b, R14, MEM(RSP, 8), 0, 0);
      full = jcc_fwd(a, CC_AE);
    }
    uint32_t known = b->entries[(e->pc_off >> 1) & (DEC_SLOTS - 1)];
    uint8_t *none = NULL;
    if (known) {
      inc_r15(a);
      jmp_to(a, b->code_base + (known - 1));
    } else {
      mov_imm(a, RCX, (uint64_t)(e->pc_off & 0xffe));
      none = chain_dynamic(L, 1);
    }
    patch(a, full, a->p);
    patch(a, none, a->p);
  }
  if (!in_page && e->action == JIT_A_JUMP) {
    lea(a, RAX, R12, e->pc_off);
    jump_other_page(L);
    return;
  }
  set_pc_off(L, e->pc_off);
  leave(L, e->action);
}

static uint8_t *stub_later(lower *L, uint8_t *at, int32_t pc_off, int count, int action, int chain) {
  if (L->nstubs < (int)(sizeof L->stubs / sizeof L->stubs[0])) {
    L->stubs[L->nstubs].at = at;
    L->stubs[L->nstubs].e = (jit_exit){pc_off, (uint16_t)count, (uint8_t)action, (uint8_t)chain};
    L->nstubs++;
  } else {
    L->a->full = 1;
  }
  return at;
}

/* The software-TLB probe of an access of `size` bytes at rs1 + imm: leaves the host address in
   rax, or jumps to an exit that lets the interpreter run instruction i. */
static void probe(lower *L, const insn_t *d, int i, int size, int store) {
  asm_buf *a = L->a;
  int base = src(L, d->rs1, RAX);
  lea(a, RAX, base, d->imm);
  if ((d->op >= OP_AMOSWAP_W && d->op <= OP_AMOMAXU_W) ||
      (d->op >= OP_AMOSWAP_D && d->op <= OP_AMOMAXU_D) || d->op == OP_LR_W || d->op == OP_LR_D ||
      d->op == OP_SC_W || d->op == OP_SC_D) {
    /* AMOs, LR and SC: a misaligned address traps (the interpreter raises it); an aligned one
       stays in its page, so the tag compare below needs no end address */
    rex(a, 0, 0, 0, RAX, 0); b1(a, 0xa8); b1(a, (unsigned)(size - 1)); /* test al, size - 1 */
    uint8_t *mis = jcc_fwd(a, CC_NE);
    stub_later(L, mis, L->b->off[i], i, JIT_A_DISPATCH, 0);
  }
  mov_rr(a, RCX, RAX);
  shift(a, 1, 5, RCX, 12);
  alu_imm(a, 0, 4, RCX, TLB_SIZE - 1);
  op_rm(a, 1, 0x8d, RCX, RCX, RCX, 2, 0, 0, 0); /* lea rcx, [rcx + rcx*2] */
  if (size > 1) lea(a, RDX, RAX, size - 1);
  else mov_rr(a, RDX, RAX);
  alu_imm(a, 1, 4, RDX, -4096);
  _Static_assert(offsetof(rv64_hart, tlb_store) - offsetof(rv64_hart, tlb_load) ==
                     TM_COUNT * TLB_SIZE * sizeof(tlb_entry),
                 "store TLB follows the load TLB");
  int32_t set = store ? (int32_t)(TM_COUNT * TLB_SIZE * sizeof(tlb_entry)) : 0;
  op_rm(a, 1, 0x3b, RDX, R13, RCX, 8, set + (int32_t)offsetof(tlb_entry, tag), 0, 0);
  uint8_t *miss = jcc_fwd(a, CC_NE);
  stub_later(L, miss, L->b->off[i], i, JIT_A_DISPATCH, 0);
  op_rm(a, 1, 0x03, RAX, R13, RCX, 8, set + (int32_t)offsetof(tlb_entry, addend), 0, 0);
}

static void lower_insn(lower *L, int i) {
  asm_buf *a = L->a;
  const insn_t *d = &L->b->insn[i];
  int32_t off = L->b->off[i];
  int rd = d->rd, A, B;
  int32_t imm = d->imm;
  switch (d->op) {
    case OP_FENCE: break;
    case OP_LUI:
      if (rd < 32) { mov_imm(a, RAX, (uint64_t)(int64_t)imm); dst(L, rd, RAX); }
      break;
    case OP_AUIPC: {
      if (rd >= 32) break;
      int64_t v = (int64_t)off + imm;
      if (v == (int32_t)v) lea(a, RAX, R12, (int32_t)v);
      else { mov_imm(a, RAX, (uint64_t)v); op_rr(a, 1, 0x01, R12, RAX); }
      dst(L, rd, RAX);
      break;
    }
    case OP_ADDI:
      if (rd < 32) {
        int D = host_of(L, rd), T = D >= 0 ? D : RAX;
        A = src(L, d->rs1, T);
        if (imm || A != T) lea(a, T, A, imm);
        dst(L, rd, T);
      }
      break;
    case OP_XORI: case OP_ORI: case OP_ANDI:
      if (rd < 32) {
        int D = host_of(L, rd), T = D >= 0 ? D : RAX;
        A = src(L, d->rs1, T); mov_rr(a, T, A);
        alu_imm(a, 1, d->op == OP_XORI ? 6 : d->op == OP_ORI ? 1 : 4, T, imm);
        dst(L, rd, T);
      }
      break;
    case OP_SLTI: case OP_SLTIU:
      if (rd < 32) {
        A = src(L, d->rs1, RAX);
        alu_imm(a, 1, 7, A, imm);
        b1(a, 0x0f); b1(a, d->op == OP_SLTI ? 0x9c : 0x92); b1(a, 0xc0); /* setl/setb al */
        op_rr(a, 0, 0x0fb6, RAX, RAX);                                   /* movzx eax, al */
        dst(L, rd, RAX);
      }
      break;
    case OP_SLLI: case OP_SRLI: case OP_SRAI:
      if (rd < 32) {
        int D = host_of(L, rd), T = D >= 0 ? D : RAX;
        A = src(L, d->rs1, T); mov_rr(a, T, A);
        shift(a, 1, d->op == OP_SLLI ? 4 : d->op == OP_SRLI ? 5 : 7, T, imm & 63);
        dst(L, rd, T);
      }
      break;
    case OP_ADDIW:
      if (rd < 32) { A = src(L, d->rs1, RAX); mov_rr(a, RAX, A); alu_imm(a, 0, 0, RAX, imm); movsxd_rr(a, RAX, RAX); dst(L, rd, RAX); }
      break;
    case OP_SLLIW: case OP_SRLIW: case OP_SRAIW:
      if (rd < 32) {
        A = src(L, d->rs1, RAX); mov_rr(a, RAX, A);
        shift(a, 0, d->op == OP_SLLIW ? 4 : d->op == OP_SRLIW ? 5 : 7, RAX, imm & 31);
        movsxd_rr(a, RAX, RAX);
        dst(L, rd, RAX);
      }
      break;
    case OP_ADD: case OP_SUB: case OP_XOR: case OP_OR: case OP_AND:
    case OP_ADDW: case OP_SUBW: case OP_MUL: case OP_MULW: {
      if (rd >= 32) break;
      /* into rd's host register when it is not rs2's (else through rax) */
      int D = host_of(L, rd), T = D >= 0 && D != host_of(L, d->rs2) ? D : RAX;
      A = src(L, d->rs1, T); mov_rr(a, T, A);
      B = src(L, d->rs2, RCX);
      int w = !(d->op == OP_ADDW || d->op == OP_SUBW || d->op == OP_MULW);
      switch (d->op) {
        case OP_ADD: case OP_ADDW: op_rr(a, w, 0x01, B, T); break;
        case OP_SUB: case OP_SUBW: op_rr(a, w, 0x29, B, T); break;
        case OP_XOR: op_rr(a, 1, 0x31, B, T); break;
        case OP_OR: op_rr(a, 1, 0x09, B, T); break;
        case OP_AND: op_rr(a, 1, 0x21, B, T); break;
        case OP_MUL: case OP_MULW: op_rr(a, w, 0x0faf, T, B); break; /* imul T, B */
      }
      if (!w) movsxd_rr(a, T, T);
      dst(L, rd, T);
      break;
    }
    case OP_MULH: case OP_MULHU:
      if (rd >= 32) break;
      A = src(L, d->rs1, RAX); mov_rr(a, RAX, A);
      B = src(L, d->rs2, RCX);
      op_rr(a, 1, 0xf7, d->op == OP_MULH ? 5 : 4, B); /* imul/mul B: rdx:rax */
      dst(L, rd, RDX);
      break;
    case OP_SLL: case OP_SRL: case OP_SRA: case OP_SLLW: case OP_SRLW: case OP_SRAW: {
      if (rd >= 32) break;
      /* the count into cl first, then shift in rd's host register (rax when rd is in memory) */
      B = src(L, d->rs2, RCX); mov_rr(a, RCX, B);
      int D = host_of(L, rd), T = D >= 0 ? D : RAX;
      A = src(L, d->rs1, T); mov_rr(a, T, A);
      int w = d->op == OP_SLL || d->op == OP_SRL || d->op == OP_SRA;
      int ext = (d->op == OP_SLL || d->op == OP_SLLW) ? 4 : (d->op == OP_SRL || d->op == OP_SRLW) ? 5 : 7;
      shift(a, w, ext, T, -1);
      if (!w) movsxd_rr(a, T, T);
      dst(L, rd, T);
      break;
    }
    case OP_SLT: case OP_SLTU:
      if (rd >= 32) break;
      A = src(L, d->rs1, RAX);
      B = src(L, d->rs2, RCX);
      op_rr(a, 1, 0x39, B, A); /* cmp A, B */
      b1(a, 0x0f); b1(a, d->op == OP_SLT ? 0x9c : 0x92); b1(a, 0xc0);
      op_rr(a, 0, 0x0fb6, RAX, RAX);
      dst(L, rd, RAX);
      break;
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU: {
      static const int ccs[6] = {CC_E, CC_NE, CC_L, CC_GE, CC_B, CC_AE};
      A = src(L, d->rs1, RAX);
      B = src(L, d->rs2, RCX);
      op_rr(a, 1, 0x39, B, A);
      int32_t t = off + imm;
      if (t == L->b->start_off) {
        /* a loop back to this block: inline, so that an iteration takes one jump (registers stay
           in host registers; the chunk is checked as at every taken branch) */
        uint8_t *not_taken = jcc_fwd(a, ccs[d->op - OP_BEQ] ^ 1);
        alu_imm(a, 1, 0, R14, i + 1);
        op_rm(a, 1, 0x3b, R14, MEM(RSP, 8), 0, 0); /* cmp r14, [rsp + 8] */
        uint8_t *full = jcc_fwd(a, CC_AE);
        stub_later(L, full, t, 0, JIT_A_JUMP, 0); /* counted above */
        inc_r15(a);
        jmp_to(a, L->body);
        patch(a, not_taken, a->p);
        break;
      }
      uint8_t *at = jcc_fwd(a, ccs[d->op - OP_BEQ]);
      stub_later(L, at, t, i + 1, JIT_A_JUMP, 1);
      break;
    }
    case OP_JAL:
      if (rd < 32) { lea(a, RAX, R12, off + d->len); dst(L, rd, RAX); }
      emit_exit(L, &(jit_exit){off + imm, (uint16_t)(i + 1), JIT_A_JUMP, 1});
      break;
    case OP_JALR: {
      A = src(L, d->rs1, RAX);
      lea(a, RAX, A, imm);
      alu_imm(a, 1, 4, RAX, -2);
      if (rd < 32) { lea(a, RDX, R12, off + d->len); dst(L, rd, RDX); }
      writeback(L);
      alu_imm(a, 1, 0, R14, i + 1);
      /* same page and chunk not used up: chain through the entry table */
      mov_rr(a, RCX, RAX);
      alu_imm(a, 1, 4, RCX, -4096);
      op_rr(a, 1, 0x39, R12, RCX); /* cmp rcx, r12 */
      uint8_t *other = jcc_fwd(a, CC_NE);
      op_rm(a, 1, 0x3b, R14, MEM(RSP, 8), 0, 0);
      uint8_t *full = jcc_fwd(a, CC_AE);
      op_rr(a, 0, 0x89, RAX, RCX); /* mov ecx, eax */
      alu_imm(a, 0, 4, RCX, 0xffe);
      uint8_t *none = chain_dynamic(L, 1);
      patch(a, full, a->p);
      patch(a, none, a->p);
      mov_mem_r(a, RBX, (int32_t)offsetof(rv64_hart, pc), RAX);
      leave(L, JIT_A_JUMP);
      patch(a, other, a->p);
      jump_other_page(L);
      break;
    }
    case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU: case OP_LHU: case OP_LWU: {
      static const int sizes[7] = {1, 2, 4, 8, 1, 2, 4};
      int k = d->op - OP_LB;
      probe(L, d, i, sizes[k], 0);
      if (rd >= 32) break;
      switch (d->op) {
        case OP_LB: op_rm(a, 1, 0x0fbe, RAX, MEM(RAX, 0), 0, 0); break;
        case OP_LH: op_rm(a, 1, 0x0fbf, RAX, MEM(RAX, 0), 0, 0); break;
        case OP_LW: op_rm(a, 1, 0x63, RAX, MEM(RAX, 0), 0, 0); break;
        case OP_LD: op_rm(a, 1, 0x8b, RAX, MEM(RAX, 0), 0, 0); break;
        case OP_LBU: op_rm(a, 0, 0x0fb6, RAX, MEM(RAX, 0), 0, 0); break;
        case OP_LHU: op_rm(a, 0, 0x0fb7, RAX, MEM(RAX, 0), 0, 0); break;
        case OP_LWU: op_rm(a, 0, 0x8b, RAX, MEM(RAX, 0), 0, 0); break;
      }
      dst(L, rd, RAX);
      break;
    }
    case OP_AMOSWAP_W: case OP_AMOADD_W: case OP_AMOXOR_W: case OP_AMOAND_W: case OP_AMOOR_W:
    case OP_AMOMIN_W: case OP_AMOMAX_W: case OP_AMOMINU_W: case OP_AMOMAXU_W:
    case OP_AMOSWAP_D: case OP_AMOADD_D: case OP_AMOXOR_D: case OP_AMOAND_D: case OP_AMOOR_D:
    case OP_AMOMIN_D: case OP_AMOMAX_D: case OP_AMOMINU_D: case OP_AMOMAXU_D: {
      /* the interpreter's AMO_W/AMO_D on a store-TLB hit (rv64_amo_ptr's fast path): old value
         from memory, result stored, rd = old (sign-extended for .W); one hart runs at a time, so
         a plain read-modify-write is what the interpreter does too */
      int w = d->op >= OP_AMOSWAP_D, k = d->op - (w ? OP_AMOSWAP_D : OP_AMOSWAP_W);
      probe(L, d, i, w ? 8 : 4, 1);
      op_rm(a, w, 0x8b, RDX, MEM(RAX, 0), 0, 0); /* rdx = old */
      B = src(L, d->rs2, RCX);
      mov_rr(a, RCX, B);                          /* rcx = rs2 */
      switch (k) {
        case 0: break;                                    /* swap */
        case 1: op_rr(a, w, 0x01, RDX, RCX); break;       /* add */
        case 2: op_rr(a, w, 0x31, RDX, RCX); break;       /* xor */
        case 3: op_rr(a, w, 0x21, RDX, RCX); break;       /* and */
        case 4: op_rr(a, w, 0x09, RDX, RCX); break;       /* or */
        default: {                                        /* min, max, minu, maxu */
          static const int keep_old[4] = {CC_L, 0xf /* g */, CC_B, 0x7 /* a */};
          op_rr(a, w, 0x39, RCX, RDX);                    /* cmp old, rs2 */
          op_rr(a, w, 0x0f40 + keep_old[k - 5], RCX, RDX); /* cmovcc rcx, rdx */
        }
      }
      op_rm(a, w, 0x89, RCX, MEM(RAX, 0), 0, 0); /* store the result */
      if (!w) movsxd_rr(a, RDX, RDX);
      dst(L, rd, RDX);
      break;
    }
    case OP_MULHSU: case OP_DIV: case OP_DIVU: case OP_REM: case OP_REMU:
    case OP_DIVW: case OP_DIVUW: case OP_REMW: case OP_REMUW: {
      if (rd >= 32) break;
      spill_all(L, 0);
      if (d->rs1) mov_r_mem(a, RDI, RBX, xoff(d->rs1)); else op_rr(a, 0, 0x31, RDI, RDI);
      if (d->rs2) mov_r_mem(a, RSI, RBX, xoff(d->rs2)); else op_rr(a, 0, 0x31, RSI, RSI);
      mov_imm(a, RDX, (uint64_t)d->op);
      call_abs(a, d->op == OP_MULHSU ? (const void *)m_mulhsu : (const void *)m_div);
      spill_all(L, 1);
      dst(L, rd, RAX);
      break;
    }
    case OP_FLW: case OP_FLD: {
      fs_check(L, i);
      /* the interpreter sets FS before the access (a miss redoes both there) */
      rex(a, 1, 0, 0, RBX, 0); b1(a, 0x81); b1(a, 0x80 | 1 << 3 | (RBX & 7)); /* or [rbx+d32], imm */
      b4(a, (uint32_t)offsetof(rv64_hart, mstatus)); b4(a, (uint32_t)MS_FS);
      probe(L, d, i, d->op == OP_FLD ? 8 : 4, 0);
      if (d->op == OP_FLD) op_rm(a, 1, 0x8b, RAX, MEM(RAX, 0), 0, 0);
      else {
        op_rm(a, 0, 0x8b, RAX, MEM(RAX, 0), 0, 0);
        mov_imm(a, RCX, 0xffffffff00000000ULL);
        op_rr(a, 1, 0x09, RCX, RAX); /* or rax, rcx */
      }
      mov_mem_r(a, RBX, (int32_t)(offsetof(rv64_hart, f) + 8 * (size_t)d->rd), RAX);
      break;
    }
    case OP_FSW: case OP_FSD: {
      fs_check(L, i);
      probe(L, d, i, d->op == OP_FSD ? 8 : 4, 1);
      mov_r_mem(a, RCX, RBX, (int32_t)(offsetof(rv64_hart, f) + 8 * (size_t)d->rs2));
      op_rm(a, d->op == OP_FSD, 0x89, RCX, MEM(RAX, 0), 0, 0);
      break;
    }
    case OP_SB: case OP_SH: case OP_SW: case OP_SD: {
      int size = 1 << (d->op - OP_SB);
      probe(L, d, i, size, 1);
      B = src(L, d->rs2, RCX);
      if (size == 1) op_rm(a, 0, 0x88, B, MEM(RAX, 0), 0, 1);
      else op_rm(a, size == 8, 0x89, B, MEM(RAX, 0), size == 2, 0);
      break;
    }
    case OP_LR_W: case OP_LR_D: {
      /* the interpreter's LR on a load-TLB hit: rd = the word (sign-extended for .W), and the
         reservation is the address (a miss or a misaligned address: the interpreter runs it) */
      int w = d->op == OP_LR_D;
      probe(L, d, i, w ? 8 : 4, 0);
      op_rm(a, 1, w ? 0x8b : 0x63, RDX, MEM(RAX, 0), 0, 0); /* mov rdx, [rax] / movsxd */
      A = src(L, d->rs1, RCX);
      mov_mem_r(a, RBX, (int32_t)offsetof(rv64_hart, res_addr), A);
      mov_imm(a, RAX, 1);
      op_rm(a, 0, 0x89, RAX, MEM(RBX, offsetof(rv64_hart, res_valid)), 0, 0);
      dst(L, rd, RDX);
      break;
    }
    case OP_SC_W: case OP_SC_D: {
      /* the interpreter's SC: misaligned traps (the interpreter runs it); without the reservation
         of this address rd = 1 and nothing is stored; with it, on a store-TLB hit (rv64_amo_ptr's
         fast path) the store and rd = 0, else the interpreter runs it; the reservation ends */
      int w = d->op == OP_SC_D, size = w ? 8 : 4;
      A = src(L, d->rs1, RAX);
      if (A != RAX) mov_rr(a, RAX, A);
      rex(a, 0, 0, 0, RAX, 0); b1(a, 0xa8); b1(a, (unsigned)(size - 1)); /* test al, size - 1 */
      uint8_t *mis = jcc_fwd(a, CC_NE);
      stub_later(L, mis, off, i, JIT_A_DISPATCH, 0);
      op_rm(a, 0, 0x83, 7, MEM(RBX, offsetof(rv64_hart, res_valid)), 0, 0); b1(a, 0); /* cmp dword [res_valid], 0 */
      uint8_t *none = jcc_fwd(a, CC_E);
      op_rm(a, 1, 0x3b, RAX, MEM(RBX, offsetof(rv64_hart, res_addr)), 0, 0);
      uint8_t *other = jcc_fwd(a, CC_NE);
      probe(L, d, i, size, 1);
      B = src(L, d->rs2, RCX);
      op_rm(a, w, 0x89, B, MEM(RAX, 0), 0, 0);
      op_rr(a, 0, 0x31, RDX, RDX); /* rd = 0 */
      uint8_t *done = jmp_fwd(a);
      patch(a, none, a->p);
      patch(a, other, a->p);
      mov_imm(a, RDX, 1);
      patch(a, done, a->p);
      op_rr(a, 0, 0x31, RAX, RAX);
      op_rm(a, 0, 0x89, RAX, MEM(RBX, offsetof(rv64_hart, res_valid)), 0, 0);
      dst(L, rd, RDX);
      break;
    }
    case OP_CSRRW: case OP_CSRRS: case OP_CSRRC: case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI: {
      /* csr(h, d, count through this instruction, &chunk limit) with h->pc at it and the
         registers in memory: 0 goes on (the helper passed the point of rule 1 and may have moved
         the limit), 1 leaves after it (the interpreter's loop runs the checks), 2 leaves before
         it (the interpreter runs it: it raises the trap) */
      if (!L->b->csr) { a->full = 1; break; }
      const uint8_t *insn = embed(a, d, (int)sizeof *d);
      set_pc_off(L, off);
      spill_all(L, 0);
      mov_rr(a, RDI, RBX);
      mov_imm(a, RSI, (uint64_t)(uintptr_t)insn);
      lea(a, RDX, R14, i + 1);
      lea(a, RCX, RSP, 8);
      call_abs(a, (const void *)L->b->csr);
      spill_all(L, 1);
      alu_imm(a, 0, 7, RAX, 1); /* cmp eax, 1 */
      uint8_t *after = jcc_fwd(a, CC_E);
      stub_later(L, after, off + 4, i + 1, JIT_A_OUT, 0);
      op_rr(a, 0, 0x85, RAX, RAX); /* test eax, eax */
      uint8_t *before = jcc_fwd(a, CC_NE);
      stub_later(L, before, off, i, JIT_A_DISPATCH, 0);
      break;
    }
    default: {
      if (d->op < OP_FIRST_FP || d->op >= OP_COUNT || !L->b->fp) { a->full = 1; break; }
      /* F/D arithmetic: rv64_fp_exec(h, d) with the registers in memory; -1 (illegal rounding
         mode) leaves the instruction to the interpreter, which raises the trap */
      fs_check(L, i);
      const uint8_t *insn = embed(a, d, (int)sizeof *d);
      spill_all(L, 0);
      mov_rr(a, RDI, RBX);
      mov_imm(a, RSI, (uint64_t)(uintptr_t)insn);
      call_abs(a, (const void *)L->b->fp);
      spill_all(L, 1);
      op_rr(a, 0, 0x85, RAX, RAX); /* test eax, eax */
      uint8_t *bad = jcc_fwd(a, 0x8); /* js */
      stub_later(L, bad, off, i, JIT_A_DISPATCH, 0);
    }
  }
}

int rv64_jit_be_block(jit_block *b, uint8_t *buf, size_t cap, const uint8_t *self,
                      const uint8_t *epilogue) {
  static __thread lower Ls;
  lower *L = &Ls;
  asm_buf A = {buf, buf, buf + cap, 0, self - buf};
  L->a = &A;
  L->b = b;
  L->self = self;
  L->epilogue = epilogue;
  L->nstubs = 0;
  /* load the block's guest registers */
  for (int g = 1; g < 32; g++) {
    int r = host_of(L, g);
    if (r >= 0) mov_r_mem(&A, r, RBX, xoff(g));
  }
  L->body = A.p + A.delta;
  for (int i = 0; i < b->n; i++) lower_insn(L, i);
  const insn_t *last = &b->insn[b->n - 1];
  if (last->op != OP_JAL && last->op != OP_JALR) emit_exit(L, &b->end);
  for (int k = 0; k < L->nstubs; k++) {
    patch(&A, L->stubs[k].at, A.p);
    emit_exit(L, &L->stubs[k].e);
  }
  return A.full ? -1 : (int)(A.p - A.start);
}

#else /* not x86-64: no backend; jit.c keeps the translator off */

int rv64_jit_be_supports(int op) { (void)op; return 0; }
int rv64_jit_be_trampoline(uint8_t *buf, size_t cap, size_t *enter_off, size_t *epilogue_off) {
  (void)buf; (void)cap; (void)enter_off; (void)epilogue_off;
  return -1;
}
int rv64_jit_be_block(jit_block *b, uint8_t *buf, size_t cap, const uint8_t *self,
                      const uint8_t *epilogue) {
  (void)b; (void)buf; (void)cap; (void)self; (void)epilogue;
  return -1;
}

#endif
