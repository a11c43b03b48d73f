/*
 * RV64GC decoder: one 32-bit or 16-bit instruction word into an insn_t. Compressed instructions
 * are expanded to the equivalent base instruction (len = 2). Reserved encodings decode as
 * OP_ILLEGAL. Also the debug disassembler rv64_disasm() used by the decoder tests.
 */
#include "rv64.h"
#include <stdio.h>

#define RV64_NAME(name) #name,
static const char *const op_names[OP_COUNT] = {RV64_OPS(RV64_NAME)};
#undef RV64_NAME

const char *rv64_op_name(int op) {
  return op >= 0 && op < OP_COUNT ? op_names[op] : "?";
}

static inline int32_t sext(uint32_t v, int bits) {
  return (int32_t)(v << (32 - bits)) >> (32 - bits);
}

/* Ops whose rd is an integer register. */
static int writes_xrd(int op) {
  switch (op) {
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU:
    case OP_SB: case OP_SH: case OP_SW: case OP_SD: case OP_FENCE: case OP_FENCE_I:
    case OP_ECALL: case OP_EBREAK: case OP_SRET: case OP_MRET: case OP_WFI: case OP_SFENCE_VMA:
    case OP_FLW: case OP_FSW: case OP_FLD: case OP_FSD: case OP_ILLEGAL: case OP_UNDECODED:
    case OP_CROSS:
      return 0;
    case OP_FCVT_W_S: case OP_FCVT_WU_S: case OP_FMV_X_W: case OP_FEQ_S: case OP_FLT_S:
    case OP_FLE_S: case OP_FCLASS_S: case OP_FCVT_L_S: case OP_FCVT_LU_S:
    case OP_FCVT_W_D: case OP_FCVT_WU_D: case OP_FMV_X_D: case OP_FEQ_D: case OP_FLT_D:
    case OP_FLE_D: case OP_FCLASS_D: case OP_FCVT_L_D: case OP_FCVT_LU_D:
      return 1;
    default:
      return op < OP_FIRST_FP;
  }
}

/* Rounding mode rule: 5 and 6 are reserved. */
static int fp_rm_ok(int rm) { return rm != 5 && rm != 6; }

static void set(insn_t *d, int op, int rd, int rs1, int rs2, int32_t imm) {
  d->op = (uint16_t)op;
  d->rd = (uint8_t)rd;
  d->rs1 = (uint8_t)rs1;
  d->rs2 = (uint8_t)rs2;
  d->imm = imm;
}

static void decode32(uint32_t r, insn_t *d) {
  int opc = r & 0x7f, rd = (r >> 7) & 31, f3 = (r >> 12) & 7, rs1 = (r >> 15) & 31;
  int rs2 = (r >> 20) & 31, f7 = r >> 25;
  int32_t imm_i = (int32_t)r >> 20;
  int32_t imm_s = (((int32_t)r >> 25) << 5) | rd;
  int32_t imm_b = sext(((r >> 31) << 12) | (((r >> 7) & 1) << 11) | (((r >> 25) & 0x3f) << 5) |
                           (((r >> 8) & 0xf) << 1), 13);
  int32_t imm_j = sext(((r >> 31) << 20) | (((r >> 12) & 0xff) << 12) | (((r >> 20) & 1) << 11) |
                           (((r >> 21) & 0x3ff) << 1), 21);
  d->op = OP_ILLEGAL;
  d->rd = (uint8_t)rd;
  d->rs1 = (uint8_t)rs1;
  d->rs2 = (uint8_t)rs2;
  d->rs3 = (uint8_t)(r >> 27);
  d->rm = (uint8_t)f3;
  d->imm = 0;
  switch (opc) {
    case 0x37: set(d, OP_LUI, rd, 0, 0, (int32_t)(r & 0xfffff000)); break;
    case 0x17: set(d, OP_AUIPC, rd, 0, 0, (int32_t)(r & 0xfffff000)); break;
    case 0x6f: set(d, OP_JAL, rd, 0, 0, imm_j); break;
    case 0x67: if (f3 == 0) set(d, OP_JALR, rd, rs1, 0, imm_i); break;
    case 0x63: {
      static const int ops[8] = {OP_BEQ, OP_BNE, OP_ILLEGAL, OP_ILLEGAL, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU};
      set(d, ops[f3], 0, rs1, rs2, imm_b);
      break;
    }
    case 0x03: {
      static const int ops[8] = {OP_LB, OP_LH, OP_LW, OP_LD, OP_LBU, OP_LHU, OP_LWU, OP_ILLEGAL};
      set(d, ops[f3], rd, rs1, 0, imm_i);
      break;
    }
    case 0x23: {
      static const int ops[8] = {OP_SB, OP_SH, OP_SW, OP_SD, OP_ILLEGAL, OP_ILLEGAL, OP_ILLEGAL, OP_ILLEGAL};
      set(d, ops[f3], 0, rs1, rs2, imm_s);
      break;
    }
    case 0x13:
      switch (f3) {
        case 0: set(d, OP_ADDI, rd, rs1, 0, imm_i); break;
        case 2: set(d, OP_SLTI, rd, rs1, 0, imm_i); break;
        case 3: set(d, OP_SLTIU, rd, rs1, 0, imm_i); break;
        case 4: set(d, OP_XORI, rd, rs1, 0, imm_i); break;
        case 6: set(d, OP_ORI, rd, rs1, 0, imm_i); break;
        case 7: set(d, OP_ANDI, rd, rs1, 0, imm_i); break;
        case 1: if ((r >> 26) == 0) set(d, OP_SLLI, rd, rs1, 0, (r >> 20) & 63); break;
        case 5:
          if ((r >> 26) == 0) set(d, OP_SRLI, rd, rs1, 0, (r >> 20) & 63);
          else if ((r >> 26) == 0x10) set(d, OP_SRAI, rd, rs1, 0, (r >> 20) & 63);
          break;
      }
      break;
    case 0x1b:
      if (f3 == 0) set(d, OP_ADDIW, rd, rs1, 0, imm_i);
      else if (f3 == 1 && f7 == 0) set(d, OP_SLLIW, rd, rs1, 0, rs2);
      else if (f3 == 5 && f7 == 0) set(d, OP_SRLIW, rd, rs1, 0, rs2);
      else if (f3 == 5 && f7 == 0x20) set(d, OP_SRAIW, rd, rs1, 0, rs2);
      break;
    case 0x33: {
      static const int base[8] = {OP_ADD, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_OR, OP_AND};
      static const int mul[8] = {OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU, OP_DIV, OP_DIVU, OP_REM, OP_REMU};
      if (f7 == 0) set(d, base[f3], rd, rs1, rs2, 0);
      else if (f7 == 1) set(d, mul[f3], rd, rs1, rs2, 0);
      else if (f7 == 0x20 && f3 == 0) set(d, OP_SUB, rd, rs1, rs2, 0);
      else if (f7 == 0x20 && f3 == 5) set(d, OP_SRA, rd, rs1, rs2, 0);
      break;
    }
    case 0x3b:
      if (f7 == 0) {
        if (f3 == 0) set(d, OP_ADDW, rd, rs1, rs2, 0);
        else if (f3 == 1) set(d, OP_SLLW, rd, rs1, rs2, 0);
        else if (f3 == 5) set(d, OP_SRLW, rd, rs1, rs2, 0);
      } else if (f7 == 0x20) {
        if (f3 == 0) set(d, OP_SUBW, rd, rs1, rs2, 0);
        else if (f3 == 5) set(d, OP_SRAW, rd, rs1, rs2, 0);
      } else if (f7 == 1) {
        static const int ops[8] = {OP_MULW, OP_ILLEGAL, OP_ILLEGAL, OP_ILLEGAL, OP_DIVW, OP_DIVUW, OP_REMW, OP_REMUW};
        set(d, ops[f3], rd, rs1, rs2, 0);
      }
      break;
    case 0x0f:
      if (f3 == 0) set(d, OP_FENCE, 0, 0, 0, (r >> 20) & 0xfff);
      else if (f3 == 1) set(d, OP_FENCE_I, 0, 0, 0, 0);
      break;
    case 0x73:
      if (f3 == 0) {
        if (r == 0x00000073) set(d, OP_ECALL, 0, 0, 0, 0);
        else if (r == 0x00100073) set(d, OP_EBREAK, 0, 0, 0, 0);
        else if (r == 0x10200073) set(d, OP_SRET, 0, 0, 0, 0);
        else if (r == 0x30200073) set(d, OP_MRET, 0, 0, 0, 0);
        else if (r == 0x10500073) set(d, OP_WFI, 0, 0, 0, 0);
        else if (f7 == 0x09 && rd == 0) set(d, OP_SFENCE_VMA, 0, rs1, rs2, 0);
      } else if (f3 != 4) {
        static const int ops[8] = {OP_ILLEGAL, OP_CSRRW, OP_CSRRS, OP_CSRRC, OP_ILLEGAL, OP_CSRRWI, OP_CSRRSI, OP_CSRRCI};
        set(d, ops[f3], rd, rs1, 0, (r >> 20) & 0xfff);
      }
      break;
    case 0x2f: {
      int f5 = r >> 27, dbl = f3 == 3, op = OP_ILLEGAL;
      if (f3 != 2 && f3 != 3) break;
      switch (f5) {
        case 0x02: if (rs2 == 0) op = dbl ? OP_LR_D : OP_LR_W; break;
        case 0x03: op = dbl ? OP_SC_D : OP_SC_W; break;
        case 0x01: op = dbl ? OP_AMOSWAP_D : OP_AMOSWAP_W; break;
        case 0x00: op = dbl ? OP_AMOADD_D : OP_AMOADD_W; break;
        case 0x04: op = dbl ? OP_AMOXOR_D : OP_AMOXOR_W; break;
        case 0x0c: op = dbl ? OP_AMOAND_D : OP_AMOAND_W; break;
        case 0x08: op = dbl ? OP_AMOOR_D : OP_AMOOR_W; break;
        case 0x10: op = dbl ? OP_AMOMIN_D : OP_AMOMIN_W; break;
        case 0x14: op = dbl ? OP_AMOMAX_D : OP_AMOMAX_W; break;
        case 0x18: op = dbl ? OP_AMOMINU_D : OP_AMOMINU_W; break;
        case 0x1c: op = dbl ? OP_AMOMAXU_D : OP_AMOMAXU_W; break;
      }
      set(d, op, rd, rs1, rs2, 0);
      d->rm = (uint8_t)((r >> 25) & 3); /* aq/rl */
      break;
    }
    case 0x07:
      if (f3 == 2) set(d, OP_FLW, rd, rs1, 0, imm_i);
      else if (f3 == 3) set(d, OP_FLD, rd, rs1, 0, imm_i);
      break;
    case 0x27:
      if (f3 == 2) set(d, OP_FSW, 0, rs1, rs2, imm_s);
      else if (f3 == 3) set(d, OP_FSD, 0, rs1, rs2, imm_s);
      break;
    case 0x43: case 0x47: case 0x4b: case 0x4f: {
      int fmt = (r >> 25) & 3, k = (opc - 0x43) >> 2;
      static const int s[4] = {OP_FMADD_S, OP_FMSUB_S, OP_FNMSUB_S, OP_FNMADD_S};
      static const int dd[4] = {OP_FMADD_D, OP_FMSUB_D, OP_FNMSUB_D, OP_FNMADD_D};
      if (fmt > 1 || !fp_rm_ok(f3)) break;
      d->op = (uint16_t)(fmt ? dd[k] : s[k]);
      break;
    }
    case 0x53: {
      int dbl = f7 & 1, op = OP_ILLEGAL, uses_rm = 0;
      switch (f7 >> 1) {
        case 0x00: op = dbl ? OP_FADD_D : OP_FADD_S; uses_rm = 1; break;
        case 0x02: op = dbl ? OP_FSUB_D : OP_FSUB_S; uses_rm = 1; break;
        case 0x04: op = dbl ? OP_FMUL_D : OP_FMUL_S; uses_rm = 1; break;
        case 0x06: op = dbl ? OP_FDIV_D : OP_FDIV_S; uses_rm = 1; break;
        case 0x16: if (rs2 == 0) { op = dbl ? OP_FSQRT_D : OP_FSQRT_S; uses_rm = 1; } break;
        case 0x08:
          if (f3 == 0) op = dbl ? OP_FSGNJ_D : OP_FSGNJ_S;
          else if (f3 == 1) op = dbl ? OP_FSGNJN_D : OP_FSGNJN_S;
          else if (f3 == 2) op = dbl ? OP_FSGNJX_D : OP_FSGNJX_S;
          break;
        case 0x0a:
          if (f3 == 0) op = dbl ? OP_FMIN_D : OP_FMIN_S;
          else if (f3 == 1) op = dbl ? OP_FMAX_D : OP_FMAX_S;
          break;
        case 0x10:
          if (!dbl && rs2 == 1) { op = OP_FCVT_S_D; uses_rm = 1; }
          else if (dbl && rs2 == 0) { op = OP_FCVT_D_S; uses_rm = 1; }
          break;
        case 0x28:
          if (f3 == 0) op = dbl ? OP_FLE_D : OP_FLE_S;
          else if (f3 == 1) op = dbl ? OP_FLT_D : OP_FLT_S;
          else if (f3 == 2) op = dbl ? OP_FEQ_D : OP_FEQ_S;
          break;
        case 0x30: {
          static const int s[4] = {OP_FCVT_W_S, OP_FCVT_WU_S, OP_FCVT_L_S, OP_FCVT_LU_S};
          static const int dd[4] = {OP_FCVT_W_D, OP_FCVT_WU_D, OP_FCVT_L_D, OP_FCVT_LU_D};
          if (rs2 < 4) { op = dbl ? dd[rs2] : s[rs2]; uses_rm = 1; }
          break;
        }
        case 0x34: {
          static const int s[4] = {OP_FCVT_S_W, OP_FCVT_S_WU, OP_FCVT_S_L, OP_FCVT_S_LU};
          static const int dd[4] = {OP_FCVT_D_W, OP_FCVT_D_WU, OP_FCVT_D_L, OP_FCVT_D_LU};
          if (rs2 < 4) { op = dbl ? dd[rs2] : s[rs2]; uses_rm = 1; }
          break;
        }
        case 0x38:
          if (rs2 == 0 && f3 == 0) op = dbl ? OP_FMV_X_D : OP_FMV_X_W;
          else if (rs2 == 0 && f3 == 1) op = dbl ? OP_FCLASS_D : OP_FCLASS_S;
          break;
        case 0x3c:
          if (rs2 == 0 && f3 == 0) op = dbl ? OP_FMV_D_X : OP_FMV_W_X;
          break;
      }
      if (uses_rm && !fp_rm_ok(f3)) op = OP_ILLEGAL;
      d->op = (uint16_t)op;
      break;
    }
  }
  d->len = 4;
}

#define CR(x) (8 + ((x) & 7))

static void decode16(uint32_t r, insn_t *d) {
  int q = r & 3, f3 = (r >> 13) & 7;
  int rd = (r >> 7) & 31, rs2 = (r >> 2) & 31;
  int rdp = CR(r >> 2), rs1p = CR(r >> 7);
  int32_t imm6 = sext(((r >> 12) & 1) << 5 | ((r >> 2) & 31), 6);
  d->op = OP_ILLEGAL;
  d->rd = d->rs1 = d->rs2 = d->rs3 = 0;
  d->rm = 7;
  d->imm = 0;
  if (q == 0) {
    uint32_t ld = ((r >> 10) & 7) << 3 | ((r >> 5) & 3) << 6;       /* c.ld/c.fld offsets */
    uint32_t lw = ((r >> 10) & 7) << 3 | ((r >> 6) & 1) << 2 | ((r >> 5) & 1) << 6;
    switch (f3) {
      case 0: {
        uint32_t u = ((r >> 11) & 3) << 4 | ((r >> 7) & 15) << 6 | ((r >> 6) & 1) << 2 | ((r >> 5) & 1) << 3;
        if (u) set(d, OP_ADDI, rdp, 2, 0, (int32_t)u);
        break;
      }
      case 1: set(d, OP_FLD, rdp, rs1p, 0, (int32_t)ld); break;
      case 2: set(d, OP_LW, rdp, rs1p, 0, (int32_t)lw); break;
      case 3: set(d, OP_LD, rdp, rs1p, 0, (int32_t)ld); break;
      case 5: set(d, OP_FSD, 0, rs1p, rdp, (int32_t)ld); break;
      case 6: set(d, OP_SW, 0, rs1p, rdp, (int32_t)lw); break;
      case 7: set(d, OP_SD, 0, rs1p, rdp, (int32_t)ld); break;
    }
  } else if (q == 1) {
    switch (f3) {
      case 0: set(d, OP_ADDI, rd, rd, 0, imm6); break;
      case 1: if (rd) set(d, OP_ADDIW, rd, rd, 0, imm6); break;
      case 2: set(d, OP_ADDI, rd, 0, 0, imm6); break;
      case 3:
        if (rd == 2) {
          int32_t v = sext(((r >> 12) & 1) << 9 | ((r >> 6) & 1) << 4 | ((r >> 5) & 1) << 6 |
                               ((r >> 3) & 3) << 7 | ((r >> 2) & 1) << 5, 10);
          if (v) set(d, OP_ADDI, 2, 2, 0, v);
        } else if (imm6) {
          set(d, OP_LUI, rd, 0, 0, imm6 * 4096);
        }
        break;
      case 4: {
        int f2 = (r >> 10) & 3;
        uint32_t sh = ((r >> 12) & 1) << 5 | ((r >> 2) & 31);
        if (f2 == 0) set(d, OP_SRLI, rs1p, rs1p, 0, (int32_t)sh);
        else if (f2 == 1) set(d, OP_SRAI, rs1p, rs1p, 0, (int32_t)sh);
        else if (f2 == 2) set(d, OP_ANDI, rs1p, rs1p, 0, imm6);
        else {
          int k = (r >> 5) & 3;
          if (!((r >> 12) & 1)) {
            static const int ops[4] = {OP_SUB, OP_XOR, OP_OR, OP_AND};
            set(d, ops[k], rs1p, rs1p, rdp, 0);
          } else if (k == 0) {
            set(d, OP_SUBW, rs1p, rs1p, rdp, 0);
          } else if (k == 1) {
            set(d, OP_ADDW, rs1p, rs1p, rdp, 0);
          }
        }
        break;
      }
      case 5: {
        int32_t v = sext(((r >> 12) & 1) << 11 | ((r >> 11) & 1) << 4 | ((r >> 9) & 3) << 8 |
                             ((r >> 8) & 1) << 10 | ((r >> 7) & 1) << 6 | ((r >> 6) & 1) << 7 |
                             ((r >> 3) & 7) << 1 | ((r >> 2) & 1) << 5, 12);
        set(d, OP_JAL, 0, 0, 0, v);
        break;
      }
      case 6: case 7: {
        int32_t v = sext(((r >> 12) & 1) << 8 | ((r >> 10) & 3) << 3 | ((r >> 5) & 3) << 6 |
                             ((r >> 3) & 3) << 1 | ((r >> 2) & 1) << 5, 9);
        set(d, f3 == 6 ? OP_BEQ : OP_BNE, 0, rs1p, 0, v);
        break;
      }
    }
  } else {
    uint32_t ldsp = ((r >> 12) & 1) << 5 | ((r >> 5) & 3) << 3 | ((r >> 2) & 7) << 6;
    uint32_t lwsp = ((r >> 12) & 1) << 5 | ((r >> 4) & 7) << 2 | ((r >> 2) & 3) << 6;
    uint32_t sdsp = ((r >> 10) & 7) << 3 | ((r >> 7) & 7) << 6;
    uint32_t swsp = ((r >> 9) & 15) << 2 | ((r >> 7) & 3) << 6;
    switch (f3) {
      case 0: set(d, OP_SLLI, rd, rd, 0, (int32_t)(((r >> 12) & 1) << 5 | rs2)); break;
      case 1: set(d, OP_FLD, rd, 2, 0, (int32_t)ldsp); break;
      case 2: if (rd) set(d, OP_LW, rd, 2, 0, (int32_t)lwsp); break;
      case 3: if (rd) set(d, OP_LD, rd, 2, 0, (int32_t)ldsp); break;
      case 4:
        if (!((r >> 12) & 1)) {
          if (rs2 == 0) { if (rd) set(d, OP_JALR, 0, rd, 0, 0); }
          else set(d, OP_ADD, rd, 0, rs2, 0);
        } else {
          if (rd == 0 && rs2 == 0) set(d, OP_EBREAK, 0, 0, 0, 0);
          else if (rs2 == 0) set(d, OP_JALR, 1, rd, 0, 0);
          else set(d, OP_ADD, rd, rd, rs2, 0);
        }
        break;
      case 5: set(d, OP_FSD, 0, 2, rs2, (int32_t)sdsp); break;
      case 6: set(d, OP_SW, 0, 2, rs2, (int32_t)swsp); break;
      case 7: set(d, OP_SD, 0, 2, rs2, (int32_t)sdsp); break;
    }
  }
  d->len = 2;
}

void rv64_decode(uint32_t raw, insn_t *d) {
  if ((raw & 3) == 3) decode32(raw, d);
  else decode16(raw & 0xffff, d);
  d->raw = (raw & 3) == 3 ? raw : (raw & 0xffff);
  if (d->op == OP_ILLEGAL) {
    d->rd = 0;
    return;
  }
  if (writes_xrd(d->op) && d->rd == 0) d->rd = 32;
}

/* ---------------- debug disassembler (objdump -M no-aliases,numeric style) ---------------- */

static const char *const rm_names[8] = {"rne", "rtz", "rdn", "rup", "rmm", "", "", "dyn"};

static void op_text(int op, char *out, size_t n) {
  const char *s = rv64_op_name(op);
  size_t i = 0;
  for (; s[i] && i + 1 < n; i++) {
    char c = s[i];
    out[i] = c == '_' ? '.' : (c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c);
  }
  out[i] = 0;
}

static void fence_set(int bits, char *out) {
  int k = 0;
  if (bits & 8) out[k++] = 'i';
  if (bits & 4) out[k++] = 'o';
  if (bits & 2) out[k++] = 'r';
  if (bits & 1) out[k++] = 'w';
  if (!k) out[k++] = '0';
  out[k] = 0;
}

/*
 * Writes a text form of the instruction word `raw` into `buf` (caller-owned, `len` bytes) and
 * returns the instruction length (2 or 4), or 0 for an illegal encoding. Branch and jump targets
 * are printed as `.+off` / `.-off`. Compressed words print their 32-bit expansion.
 */
VMON_EXPORT int rv64_disasm(uint32_t raw, char *buf, int len) {
  insn_t d;
  char m[24], a[8], b[8];
  int rd, op;
  if (!buf || len <= 0) return 0;
  rv64_decode(raw, &d);
  op = d.op;
  rd = d.rd == 32 ? 0 : d.rd;
  op_text(op, m, sizeof m);
  size_t n = (size_t)len;
  if (op == OP_ILLEGAL) { snprintf(buf, n, "illegal"); return 0; }
  switch (op) {
    case OP_LUI: case OP_AUIPC:
      snprintf(buf, n, "%s x%d,0x%x", m, rd, ((uint32_t)d.imm >> 12) & 0xfffff); break;
    case OP_JAL: snprintf(buf, n, "%s x%d,.%+d", m, rd, d.imm); break;
    case OP_JALR: snprintf(buf, n, "%s x%d,%d(x%d)", m, rd, d.imm, d.rs1); break;
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU: case OP_BGEU:
      snprintf(buf, n, "%s x%d,x%d,.%+d", m, d.rs1, d.rs2, d.imm); break;
    case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU: case OP_LHU: case OP_LWU:
      snprintf(buf, n, "%s x%d,%d(x%d)", m, rd, d.imm, d.rs1); break;
    case OP_FLW: case OP_FLD: snprintf(buf, n, "%s f%d,%d(x%d)", m, rd, d.imm, d.rs1); break;
    case OP_SB: case OP_SH: case OP_SW: case OP_SD:
      snprintf(buf, n, "%s x%d,%d(x%d)", m, d.rs2, d.imm, d.rs1); break;
    case OP_FSW: case OP_FSD: snprintf(buf, n, "%s f%d,%d(x%d)", m, d.rs2, d.imm, d.rs1); break;
    case OP_SLLI: case OP_SRLI: case OP_SRAI: case OP_SLLIW: case OP_SRLIW: case OP_SRAIW:
      snprintf(buf, n, "%s x%d,x%d,0x%x", m, rd, d.rs1, d.imm); break;
    case OP_ADDI: case OP_SLTI: case OP_SLTIU: case OP_XORI: case OP_ORI: case OP_ANDI: case OP_ADDIW:
      snprintf(buf, n, "%s x%d,x%d,%d", m, rd, d.rs1, d.imm); break;
    case OP_FENCE:
      if (d.raw == 0x8330000f) snprintf(buf, n, "fence.tso");
      else { fence_set((d.imm >> 4) & 15, a); fence_set(d.imm & 15, b); snprintf(buf, n, "fence %s,%s", a, b); }
      break;
    case OP_FENCE_I: case OP_ECALL: case OP_EBREAK: case OP_SRET: case OP_MRET: case OP_WFI:
      snprintf(buf, n, "%s", m); break;
    case OP_SFENCE_VMA: snprintf(buf, n, "%s x%d,x%d", m, d.rs1, d.rs2); break;
    case OP_CSRRW: case OP_CSRRS: case OP_CSRRC:
      snprintf(buf, n, "%s x%d,0x%x,x%d", m, rd, d.imm, d.rs1); break;
    case OP_CSRRWI: case OP_CSRRSI: case OP_CSRRCI:
      snprintf(buf, n, "%s x%d,0x%x,%d", m, rd, d.imm, d.rs1); break;
    case OP_LR_W: case OP_LR_D: case OP_SC_W: case OP_SC_D: case OP_AMOSWAP_W: case OP_AMOADD_W:
    case OP_AMOXOR_W: case OP_AMOAND_W: case OP_AMOOR_W: case OP_AMOMIN_W: case OP_AMOMAX_W:
    case OP_AMOMINU_W: case OP_AMOMAXU_W: case OP_AMOSWAP_D: case OP_AMOADD_D: case OP_AMOXOR_D:
    case OP_AMOAND_D: case OP_AMOOR_D: case OP_AMOMIN_D: case OP_AMOMAX_D: case OP_AMOMINU_D:
    case OP_AMOMAXU_D: {
      static const char *const sfx[4] = {"", ".rl", ".aq", ".aqrl"};
      if (op == OP_LR_W || op == OP_LR_D)
        snprintf(buf, n, "%s%s x%d,(x%d)", m, sfx[d.rm & 3], rd, d.rs1);
      else
        snprintf(buf, n, "%s%s x%d,x%d,(x%d)", m, sfx[d.rm & 3], rd, d.rs2, d.rs1);
      break;
    }
    default:
      if (op >= OP_FIRST_FP) {
        char tail[8] = "";
        int rm_shown = 1, xd = 0, xs = 0, nsrc = 2;
        switch (op) {
          case OP_FMADD_S: case OP_FMSUB_S: case OP_FNMSUB_S: case OP_FNMADD_S:
          case OP_FMADD_D: case OP_FMSUB_D: case OP_FNMSUB_D: case OP_FNMADD_D: nsrc = 3; break;
          case OP_FSQRT_S: case OP_FSQRT_D: case OP_FCVT_S_D: nsrc = 1; break;
          case OP_FCVT_D_S: case OP_FCVT_D_W: case OP_FCVT_D_WU: nsrc = 1; rm_shown = 0; xs = op != OP_FCVT_D_S; break;
          case OP_FSGNJ_S: case OP_FSGNJN_S: case OP_FSGNJX_S: case OP_FMIN_S: case OP_FMAX_S:
          case OP_FSGNJ_D: case OP_FSGNJN_D: case OP_FSGNJX_D: case OP_FMIN_D: case OP_FMAX_D: rm_shown = 0; break;
          case OP_FEQ_S: case OP_FLT_S: case OP_FLE_S: case OP_FEQ_D: case OP_FLT_D: case OP_FLE_D:
            rm_shown = 0; xd = 1; break;
          case OP_FCVT_W_S: case OP_FCVT_WU_S: case OP_FCVT_L_S: case OP_FCVT_LU_S:
          case OP_FCVT_W_D: case OP_FCVT_WU_D: case OP_FCVT_L_D: case OP_FCVT_LU_D: nsrc = 1; xd = 1; break;
          case OP_FMV_X_W: case OP_FMV_X_D: case OP_FCLASS_S: case OP_FCLASS_D: nsrc = 1; xd = 1; rm_shown = 0; break;
          case OP_FCVT_S_W: case OP_FCVT_S_WU: case OP_FCVT_S_L: case OP_FCVT_S_LU:
          case OP_FCVT_D_L: case OP_FCVT_D_LU: nsrc = 1; xs = 1; break;
          case OP_FMV_W_X: case OP_FMV_D_X: nsrc = 1; xs = 1; rm_shown = 0; break;
        }
        if (rm_shown && d.rm != 7) snprintf(tail, sizeof tail, ",%s", rm_names[d.rm]);
        if (nsrc == 1)
          snprintf(buf, n, "%s %c%d,%c%d%s", m, xd ? 'x' : 'f', rd, xs ? 'x' : 'f', d.rs1, tail);
        else if (nsrc == 2)
          snprintf(buf, n, "%s %c%d,f%d,f%d%s", m, xd ? 'x' : 'f', rd, d.rs1, d.rs2, tail);
        else
          snprintf(buf, n, "%s f%d,f%d,f%d,f%d%s", m, rd, d.rs1, d.rs2, d.rs3, tail);
      } else {
        snprintf(buf, n, "%s x%d,x%d,x%d", m, rd, d.rs1, d.rs2);
      }
  }
  return d.len;
}
