/**
 * Validation of guest page-table entries for the `queued` strategy: what a PTE may map.
 *
 * @module
 */

import type { GuestMemoryAccess } from "../../../core/api.ts";

/** A physical range `[start, end)` a leaf PTE may map. */
export type PhysRange = readonly [number, number];

/**
 * The ranges leaves may map: every RAM region, plus the device window below the lowest RAM
 * region when `allowMmio` (riscv-virt puts every device there).
 */
export function leafRanges(memory: GuestMemoryAccess, allowMmio: boolean): PhysRange[] {
  const out: PhysRange[] = memory.regions.map((r) => [r.gpa, r.gpa + r.size] as const);
  const low = memory.regions[0]?.gpa ?? 0;
  if (allowMmio && low > 0) out.unshift([0, low]);
  return out.slice(0, 8);
}

/** Why a PTE fails validation, or undefined when it passes. */
export function checkPte(
  pte: bigint,
  memory: GuestMemoryAccess,
  ranges: readonly PhysRange[],
): string | undefined {
  if ((pte & 1n) === 0n) return undefined; // not valid: maps nothing
  const pa = Number((pte >> 10n) & ((1n << 44n) - 1n)) * 4096;
  if ((pte & 0xan) === 0n) {
    // pointer to the next level: the table must be guest RAM
    return memory.contains(pa, 4096) ? undefined : `next-level table ${pa.toString(16)} not RAM`;
  }
  for (const [lo, hi] of ranges) if (pa >= lo && pa + 4096 <= hi) return undefined;
  return `maps ${pa.toString(16)} outside guest memory`;
}

/** Merges `size` bytes of `value` at byte `offset` (0..7) into the 64-bit `old`. */
export function mergeBytes(old: bigint, offset: number, size: number, value: bigint): bigint {
  const shift = BigInt(offset * 8);
  const mask = ((1n << BigInt(size * 8)) - 1n) << shift;
  return BigInt.asUintN(64, (old & ~mask) | ((value << shift) & mask));
}
