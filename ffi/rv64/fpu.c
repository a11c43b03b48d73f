/*
 * F and D extensions on the host FPU: rounding modes through fesetround, exception flags through
 * fetestexcept, RISC-V canonical NaNs, NaN-boxing of singles, fmin/fmax and fcvt saturation
 * rules. The host rounding mode is restored to round-to-nearest after every operation (the
 * JavaScript engine shares this thread). RMM arithmetic rounds to nearest-even (the host has no
 * ties-away mode); RMM conversions to integers are exact.
 */
#include "rv64.h"
#include <fenv.h>
#include <math.h>


#define CNAN_S 0x7fc00000u
#define CNAN_D 0x7ff8000000000000ULL
#define FL_NX 1
#define FL_UF 2
#define FL_OF 4
#define FL_DZ 8
#define FL_NV 16

static inline uint32_t unbox(uint64_t v) {
  return (v >> 32) == 0xffffffffu ? (uint32_t)v : CNAN_S;
}
static inline uint64_t box(uint32_t v) { return 0xffffffff00000000ULL | v; }
static inline float f32(uint32_t v) { float f; memcpy(&f, &v, 4); return f; }
static inline uint32_t u32(float f) { uint32_t v; memcpy(&v, &f, 4); return v; }
static inline double f64(uint64_t v) { double f; memcpy(&f, &v, 8); return f; }
static inline uint64_t u64(double f) { uint64_t v; memcpy(&v, &f, 8); return v; }
static inline int snan_s(uint32_t v) { return (v & 0x7f800000u) == 0x7f800000u && (v & 0x7fffff) && !(v & 0x400000); }
static inline int snan_d(uint64_t v) {
  return (v & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL && (v & 0xfffffffffffffULL) && !(v & 0x8000000000000ULL);
}
static inline int nan_s(uint32_t v) { return (v & 0x7f800000u) == 0x7f800000u && (v & 0x7fffff); }
static inline int nan_d(uint64_t v) { return (v & 0x7ff0000000000000ULL) == 0x7ff0000000000000ULL && (v & 0xfffffffffffffULL); }

static const int host_rm[5] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD, FE_TONEAREST};

static void fp_begin(int rm) {
  feclearexcept(FE_ALL_EXCEPT);
  if (rm != 0 && rm != 4) fesetround(host_rm[rm]);
}

static uint32_t fp_end(int rm) {
  int e = fetestexcept(FE_ALL_EXCEPT);
  if (rm != 0 && rm != 4) fesetround(FE_TONEAREST);
  uint32_t f = 0;
  if (e & FE_INEXACT) f |= FL_NX;
  if (e & FE_UNDERFLOW) f |= FL_UF;
  if (e & FE_OVERFLOW) f |= FL_OF;
  if (e & FE_DIVBYZERO) f |= FL_DZ;
  if (e & FE_INVALID) f |= FL_NV;
  return f;
}

static uint32_t class_s(uint32_t v) {
  int sign = v >> 31, exp = (v >> 23) & 0xff;
  uint32_t man = v & 0x7fffff;
  if (exp == 0xff) return man ? ((man & 0x400000) ? 1u << 9 : 1u << 8) : (sign ? 1u : 1u << 7);
  if (exp == 0) return man ? (sign ? 1u << 2 : 1u << 5) : (sign ? 1u << 3 : 1u << 4);
  return sign ? 1u << 1 : 1u << 6;
}

static uint32_t class_d(uint64_t v) {
  int sign = (int)(v >> 63), exp = (int)((v >> 52) & 0x7ff);
  uint64_t man = v & 0xfffffffffffffULL;
  if (exp == 0x7ff) return man ? ((man & 0x8000000000000ULL) ? 1u << 9 : 1u << 8) : (sign ? 1u : 1u << 7);
  if (exp == 0) return man ? (sign ? 1u << 2 : 1u << 5) : (sign ? 1u << 3 : 1u << 4);
  return sign ? 1u << 1 : 1u << 6;
}

static double round_rm(double x, int rm) {
  switch (rm) {
    case 1: return trunc(x);
    case 2: return floor(x);
    case 3: return ceil(x);
    case 4: return round(x);
    default: return nearbyint(x);
  }
}

/* Converts x to an integer in [lo, hi] with saturation; kind: 0 w, 1 wu, 2 l, 3 lu. */
static uint64_t cvt_to_int(double x, int is_nan, int rm, int kind, uint32_t *fl) {
  static const double his[4] = {2147483647.0, 4294967295.0, 9223372036854775808.0, 18446744073709551616.0};
  static const double los[4] = {-2147483648.0, 0.0, -9223372036854775808.0, 0.0};
  static const uint64_t maxv[4] = {0x7fffffffULL, 0xffffffffULL, 0x7fffffffffffffffULL, ~0ULL};
  static const uint64_t minv[4] = {0xffffffff80000000ULL, 0, 0x8000000000000000ULL, 0};
  if (is_nan) { *fl |= FL_NV; return kind == 1 ? ~0ULL : maxv[kind]; }
  double r = round_rm(x, rm);
  int too_big = kind >= 2 ? r >= his[kind] : r > his[kind];
  if (too_big) { *fl |= FL_NV; return kind == 1 ? ~0ULL : maxv[kind]; }
  if (r < los[kind]) { *fl |= FL_NV; return minv[kind]; }
  if (r != x) *fl |= FL_NX;
  switch (kind) {
    case 0: return (uint64_t)(int64_t)(int32_t)(int64_t)r;
    case 1: return (uint64_t)(int64_t)(int32_t)(uint32_t)(uint64_t)r;
    case 2: return (uint64_t)(int64_t)r;
    default: return (uint64_t)r;
  }
}

int rv64_fp_exec(rv64_hart *h, const insn_t *d) {
  int op = d->op, rm = d->rm == 7 ? (int)h->frm : d->rm;
  uint64_t *F = h->f, *X = h->x;
  uint32_t fl = 0;
  uint32_t a = unbox(F[d->rs1]), b = unbox(F[d->rs2]), c = unbox(F[d->rs3]);
  uint64_t A = F[d->rs1], B = F[d->rs2], C = F[d->rs3];
  volatile float vs;
  volatile double vd;
  int needs_rm = 1;
  switch (op) {
    case OP_FSGNJ_S: case OP_FSGNJN_S: case OP_FSGNJX_S: case OP_FMIN_S: case OP_FMAX_S:
    case OP_FEQ_S: case OP_FLT_S: case OP_FLE_S: case OP_FCLASS_S: case OP_FMV_X_W: case OP_FMV_W_X:
    case OP_FSGNJ_D: case OP_FSGNJN_D: case OP_FSGNJX_D: case OP_FMIN_D: case OP_FMAX_D:
    case OP_FEQ_D: case OP_FLT_D: case OP_FLE_D: case OP_FCLASS_D: case OP_FMV_X_D: case OP_FMV_D_X:
      needs_rm = 0;
      break;
  }
  if (needs_rm && rm > 4) return -1;

#define SOP(expr) do { fp_begin(rm); vs = (expr); fl |= fp_end(rm); uint32_t r = u32(vs); \
    F[d->rd] = box(nan_s(r) ? CNAN_S : r); } while (0)
#define DOP(expr) do { fp_begin(rm); vd = (expr); fl |= fp_end(rm); uint64_t r = u64(vd); \
    F[d->rd] = nan_d(r) ? CNAN_D : r; } while (0)

  switch (op) {
    case OP_FADD_S: SOP(f32(a) + f32(b)); break;
    case OP_FSUB_S: SOP(f32(a) - f32(b)); break;
    case OP_FMUL_S: SOP(f32(a) * f32(b)); break;
    case OP_FDIV_S: SOP(f32(a) / f32(b)); break;
    case OP_FSQRT_S: SOP(sqrtf(f32(a))); break;
    case OP_FMADD_S: SOP(fmaf(f32(a), f32(b), f32(c))); break;
    case OP_FMSUB_S: SOP(fmaf(f32(a), f32(b), -f32(c))); break;
    case OP_FNMSUB_S: SOP(fmaf(-f32(a), f32(b), f32(c))); break;
    case OP_FNMADD_S: SOP(fmaf(-f32(a), f32(b), -f32(c))); break;
    case OP_FADD_D: DOP(f64(A) + f64(B)); break;
    case OP_FSUB_D: DOP(f64(A) - f64(B)); break;
    case OP_FMUL_D: DOP(f64(A) * f64(B)); break;
    case OP_FDIV_D: DOP(f64(A) / f64(B)); break;
    case OP_FSQRT_D: DOP(sqrt(f64(A))); break;
    case OP_FMADD_D: DOP(fma(f64(A), f64(B), f64(C))); break;
    case OP_FMSUB_D: DOP(fma(f64(A), f64(B), -f64(C))); break;
    case OP_FNMSUB_D: DOP(fma(-f64(A), f64(B), f64(C))); break;
    case OP_FNMADD_D: DOP(fma(-f64(A), f64(B), -f64(C))); break;
    case OP_FSGNJ_S: F[d->rd] = box((a & 0x7fffffffu) | (b & 0x80000000u)); break;
    case OP_FSGNJN_S: F[d->rd] = box((a & 0x7fffffffu) | (~b & 0x80000000u)); break;
    case OP_FSGNJX_S: F[d->rd] = box(a ^ (b & 0x80000000u)); break;
    case OP_FSGNJ_D: F[d->rd] = (A & ~(1ULL << 63)) | (B & (1ULL << 63)); break;
    case OP_FSGNJN_D: F[d->rd] = (A & ~(1ULL << 63)) | (~B & (1ULL << 63)); break;
    case OP_FSGNJX_D: F[d->rd] = A ^ (B & (1ULL << 63)); break;
    case OP_FMIN_S: case OP_FMAX_S: {
      int mx = op == OP_FMAX_S;
      if (snan_s(a) || snan_s(b)) fl |= FL_NV;
      uint32_t r;
      if (nan_s(a) && nan_s(b)) r = CNAN_S;
      else if (nan_s(a)) r = b;
      else if (nan_s(b)) r = a;
      else if (f32(a) == f32(b)) r = mx ? (a & b) : (a | b); /* -0 vs +0 */
      else r = (f32(a) < f32(b)) != mx ? a : b;
      F[d->rd] = box(r);
      break;
    }
    case OP_FMIN_D: case OP_FMAX_D: {
      int mx = op == OP_FMAX_D;
      if (snan_d(A) || snan_d(B)) fl |= FL_NV;
      uint64_t r;
      if (nan_d(A) && nan_d(B)) r = CNAN_D;
      else if (nan_d(A)) r = B;
      else if (nan_d(B)) r = A;
      else if (f64(A) == f64(B)) r = mx ? (A & B) : (A | B);
      else r = (f64(A) < f64(B)) != mx ? A : B;
      F[d->rd] = r;
      break;
    }
    case OP_FEQ_S:
      if (snan_s(a) || snan_s(b)) fl |= FL_NV;
      X[d->rd] = !nan_s(a) && !nan_s(b) && f32(a) == f32(b);
      break;
    case OP_FLT_S: case OP_FLE_S:
      if (nan_s(a) || nan_s(b)) { fl |= FL_NV; X[d->rd] = 0; }
      else X[d->rd] = op == OP_FLT_S ? f32(a) < f32(b) : f32(a) <= f32(b);
      break;
    case OP_FEQ_D:
      if (snan_d(A) || snan_d(B)) fl |= FL_NV;
      X[d->rd] = !nan_d(A) && !nan_d(B) && f64(A) == f64(B);
      break;
    case OP_FLT_D: case OP_FLE_D:
      if (nan_d(A) || nan_d(B)) { fl |= FL_NV; X[d->rd] = 0; }
      else X[d->rd] = op == OP_FLT_D ? f64(A) < f64(B) : f64(A) <= f64(B);
      break;
    case OP_FCLASS_S: X[d->rd] = class_s(a); break;
    case OP_FCLASS_D: X[d->rd] = class_d(A); break;
    case OP_FMV_X_W: X[d->rd] = (uint64_t)(int64_t)(int32_t)(uint32_t)A; break;
    case OP_FMV_W_X: F[d->rd] = box((uint32_t)X[d->rs1]); break;
    case OP_FMV_X_D: X[d->rd] = A; break;
    case OP_FMV_D_X: F[d->rd] = X[d->rs1]; break;
    case OP_FCVT_W_S: X[d->rd] = cvt_to_int(f32(a), nan_s(a), rm, 0, &fl); break;
    case OP_FCVT_WU_S: X[d->rd] = cvt_to_int(f32(a), nan_s(a), rm, 1, &fl); break;
    case OP_FCVT_L_S: X[d->rd] = cvt_to_int(f32(a), nan_s(a), rm, 2, &fl); break;
    case OP_FCVT_LU_S: X[d->rd] = cvt_to_int(f32(a), nan_s(a), rm, 3, &fl); break;
    case OP_FCVT_W_D: X[d->rd] = cvt_to_int(f64(A), nan_d(A), rm, 0, &fl); break;
    case OP_FCVT_WU_D: X[d->rd] = cvt_to_int(f64(A), nan_d(A), rm, 1, &fl); break;
    case OP_FCVT_L_D: X[d->rd] = cvt_to_int(f64(A), nan_d(A), rm, 2, &fl); break;
    case OP_FCVT_LU_D: X[d->rd] = cvt_to_int(f64(A), nan_d(A), rm, 3, &fl); break;
    case OP_FCVT_S_W: SOP((float)(int32_t)X[d->rs1]); break;
    case OP_FCVT_S_WU: SOP((float)(uint32_t)X[d->rs1]); break;
    case OP_FCVT_S_L: SOP((float)(int64_t)X[d->rs1]); break;
    case OP_FCVT_S_LU: SOP((float)X[d->rs1]); break;
    case OP_FCVT_D_W: DOP((double)(int32_t)X[d->rs1]); break;
    case OP_FCVT_D_WU: DOP((double)(uint32_t)X[d->rs1]); break;
    case OP_FCVT_D_L: DOP((double)(int64_t)X[d->rs1]); break;
    case OP_FCVT_D_LU: DOP((double)X[d->rs1]); break;
    case OP_FCVT_S_D: SOP((float)f64(A)); break;
    case OP_FCVT_D_S:
      if (snan_s(a)) fl |= FL_NV;
      F[d->rd] = nan_s(a) ? CNAN_D : u64((double)f32(a));
      break;
    default:
      return -1;
  }
#undef SOP
#undef DOP
  h->fflags |= fl;
  h->mstatus |= MS_FS;
  return 0;
}
