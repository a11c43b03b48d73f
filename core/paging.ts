/**
 * Shared policy helpers of the paging strategies (`shadow`, `queued`; plugins may not import
 * each other, so what both need lives here, in the public API): which host port mechanisms a
 * strategy needs, and the validation rules for guest page-table entries (DESIGN.md, "Paging
 * strategies"): a mapping may point only into the guest's RAM (or the device window below it
 * when allowed), a next-level table must be RAM.
 *
 * ```ts
 * import { checkPte, leafRanges } from "./paging.ts";
 * import { GuestMemory } from "./memory.ts";
 *
 * const memory = new GuestMemory();
 * memory.addRegion(0x8000_0000, new ArrayBuffer(0x10000));
 * const rules = { memory, ranges: leafRanges(memory, false) };
 * // a read-write leaf mapping the first RAM page passes, one mapping page 0 fails
 * const ramPte = (BigInt(0x8000_0000 / 4096) << 10n) | 0xc7n;
 * if (checkPte(ramPte, rules) !== undefined) throw new Error("RAM leaf rejected");
 * if (checkPte(0xc7n, rules) === undefined) throw new Error("page 0 accepted");
 * ```
 *
 * @module
 */

import type {
  Counter,
  GuestMemoryAccess,
  PagingCounterName,
  PagingHost,
  PagingMechanisms,
} from "./api/mod.ts";
import { PAGING_COUNTER_NAMES } from "./api/mod.ts";
import { hex, VmonError } from "./errors.ts";

/** A guest physical range `[start, end)` a leaf PTE may map. */
export type PhysRange = readonly [number, number];

/**
 * The host port's paging mechanisms, or a clear error when the host port does not list
 * `strategy` in `capabilities.pagingStrategies` (or offers no mechanisms).
 *
 * @param host The paging plugin's host.
 * @param strategy The strategy's name.
 */
export function requirePagingMechanisms(host: PagingHost, strategy: string): PagingMechanisms {
  const supported = host.hostport.capabilities.pagingStrategies;
  const mech = host.hostport.paging;
  if (!supported.includes(strategy) || mech === undefined) {
    throw new VmonError(
      `Paging strategy "${strategy}" is not supported by host port "${host.machine.hostport}": it supports ${
        supported.length > 0 ? supported.join(", ") : "no paging strategies"
      }`,
    );
  }
  return mech;
}

/**
 * The ranges leaves may map: every RAM region, plus the device window below the lowest RAM
 * region when `allowMmio` (riscv-virt puts every device there). At most 8 ranges (what the
 * host port accepts).
 *
 * @param memory Guest memory.
 * @param allowMmio Whether the device window below RAM may be mapped.
 */
export function leafRanges(memory: GuestMemoryAccess, allowMmio: boolean): PhysRange[] {
  const out: PhysRange[] = memory.regions.map((r) => [r.gpa, r.gpa + r.size] as const);
  const low = memory.regions[0]?.gpa ?? 0;
  if (allowMmio && low > 0) out.unshift([0, low]);
  return out.slice(0, 8);
}

/** What {@linkcode checkPte} checks against. */
export interface PteRules {
  /** Guest memory: next-level tables must be RAM. */
  readonly memory: GuestMemoryAccess;
  /** What leaves may map ({@linkcode leafRanges}). */
  readonly ranges: readonly PhysRange[];
}

/**
 * Why a Sv39/Sv48 PTE fails validation, or undefined when it passes. An entry without the valid
 * bit maps nothing and passes; a pointer to a next-level table must point into RAM; a leaf must
 * map a page inside the allowed ranges.
 *
 * @param pte The entry.
 * @param rules Guest memory and the leaf ranges.
 */
export function checkPte(pte: bigint, rules: PteRules): string | undefined {
  const { memory, ranges } = rules;
  if ((pte & 1n) === 0n) return undefined; // not valid: maps nothing
  const pa = Number((pte >> 10n) & ((1n << 44n) - 1n)) * 4096;
  if ((pte & 0xan) === 0n) {
    // pointer to the next level: the table must be guest RAM
    return memory.contains(pa, 4096) ? undefined : `next-level table ${hex(pa)} is not RAM`;
  }
  for (const [lo, hi] of ranges) if (pa >= lo && pa + 4096 <= hi) return undefined;
  return `maps ${hex(pa)} outside guest memory`;
}

/**
 * True when `pte` is a valid writable leaf (it grants stores to the page it maps).
 *
 * @param pte The entry.
 */
export function isWritableLeaf(pte: bigint): boolean {
  return (pte & 1n) === 1n && (pte & 4n) === 4n && (pte & 0xan) !== 0n;
}

/**
 * The guest physical address a PTE points to (next-level table or leaf page).
 *
 * @param pte The entry.
 */
export function ptePage(pte: bigint): number {
  return Number((pte >> 10n) & ((1n << 44n) - 1n)) * 4096;
}

/** A partial store into a 64-bit entry (see {@linkcode mergeBytes}). */
export interface PartialStore {
  /** Byte offset of the store in the entry (0..7). */
  readonly offset: number;
  /** Bytes stored (1..8 - offset). */
  readonly size: number;
  /** The stored bytes, little-endian. */
  readonly value: bigint;
}

/**
 * The 64-bit entry `old` after a store of `size` bytes of `value` at byte `offset`.
 *
 * @param old The entry before the store.
 * @param store Where and what was stored.
 */
export function mergeBytes(old: bigint, store: PartialStore): bigint {
  const { offset, size, value } = store;
  const shift = BigInt(offset * 8);
  const mask = ((1n << BigInt(size * 8)) - 1n) << shift;
  return BigInt.asUintN(64, (old & ~mask) | ((value << shift) & mask));
}

/** The counters of a paging strategy (see {@linkcode createPagingCounters}). */
export interface PagingCounters {
  /** One counter per name of `PAGING_COUNTER_NAMES`, to count with. */
  readonly count: Readonly<Record<PagingCounterName, Counter>>;
  /**
   * What `PagingInstance.stats()` returns: every name of `PAGING_COUNTER_NAMES`, with
   * `shadow-fills` and `shadow-flushes` from the host port's mechanisms, plus the mechanisms'
   * `address-space-evictions`, `pt-pages` and `queued-pages` (their last values once the
   * machine is gone) and `unexpected-traps` when there were any.
   */
  stats(): Record<string, number>;
  /** Counts an exit the strategy did not ask for; true the first time (to warn once). */
  unexpected(): boolean;
  /** Stops reading the mechanisms (the machine is going away). */
  dispose(): void;
}

/**
 * The counters a strategy on a host port's paging mechanisms reports.
 *
 * @param host The paging plugin's host (counters are made with `host.metrics`).
 * @param mech The host port's mechanisms ({@linkcode requirePagingMechanisms}).
 */
export function createPagingCounters(host: PagingHost, mech: PagingMechanisms): PagingCounters {
  const count = {} as Record<PagingCounterName, Counter>;
  for (const name of PAGING_COUNTER_NAMES) count[name] = host.metrics.counter(name);
  let unexpected = 0;
  let disposed = false;
  let last: Record<string, number> = {};
  return {
    count,
    stats() {
      const out: Record<string, number> = {};
      for (const name of PAGING_COUNTER_NAMES) out[name] = count[name].value;
      if (!disposed) {
        try {
          last = mech.counters();
        } catch {
          // the machine is gone: report the last values read
        }
      }
      out["shadow-fills"] = last.shadowFills ?? 0;
      out["shadow-flushes"] = last.shadowDrops ?? 0;
      out["address-space-evictions"] = last.addressSpaceEvictions ?? 0;
      out["pt-pages"] = last.ptPages ?? 0;
      out["queued-pages"] = last.queuedPages ?? 0;
      if (unexpected) out["unexpected-traps"] = unexpected;
      return out;
    },
    unexpected: () => unexpected++ === 0,
    dispose() {
      disposed = true;
    },
  };
}
