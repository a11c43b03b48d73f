/**
 * Builds small ELF64 files in memory for the platform's tests. Private to this folder.
 *
 * @module
 */

/** One segment of a test ELF. */
export interface TestSegment {
  /** Load address (virtual = physical unless `vaddr` is given). */
  paddr: number;
  /** Virtual address, when it should differ. */
  vaddr?: number;
  /** File contents. */
  data: Uint8Array;
  /** Memory size (default `data.length`). */
  memSize?: number;
  /** p_flags (default 5: read + execute). */
  flags?: number;
  /** p_type (default 1: PT_LOAD). */
  type?: number;
}

/** Options for {@linkcode makeElf}. */
export interface MakeElfOptions {
  /** Entry point. */
  entry: number;
  /** Segments. */
  segments: TestSegment[];
  /** e_machine (default 62, x86-64). */
  machine?: number;
  /** e_type (default 2, ET_EXEC). */
  type?: number;
}

/** Builds an ELF64 little-endian executable with the given segments. */
export function makeElf(options: MakeElfOptions): Uint8Array {
  const phoff = 64;
  const dataStart = phoff + 56 * options.segments.length;
  const total = dataStart + options.segments.reduce((n, s) => n + s.data.length, 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, options.type ?? 2, true);
  v.setUint16(18, options.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(options.entry), true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, options.segments.length, true);
  let data = dataStart;
  options.segments.forEach((s, i) => {
    const ph = phoff + 56 * i;
    v.setUint32(ph, s.type ?? 1, true);
    v.setUint32(ph + 4, s.flags ?? 5, true);
    v.setBigUint64(ph + 8, BigInt(data), true);
    v.setBigUint64(ph + 16, BigInt(s.vaddr ?? s.paddr), true);
    v.setBigUint64(ph + 24, BigInt(s.paddr), true);
    v.setBigUint64(ph + 32, BigInt(s.data.length), true);
    v.setBigUint64(ph + 40, BigInt(s.memSize ?? s.data.length), true);
    v.setBigUint64(ph + 48, 0x1000n, true);
    out.set(s.data, data);
    data += s.data.length;
  });
  return out;
}

/** A deterministic pseudo-random generator (xorshift32) for fuzz-style tests. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
