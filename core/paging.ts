/**
 * Shared policy helpers of the paging strategies (`shadow`, `queued`; plugins may not import
 * each other, so what both need lives here, in the public API): checking that the host port has
 * the paging mechanisms a strategy needs (the versioned contract of `core/api/paging.ts`), the
 * counters every strategy reports, and the validation rules for guest page-table entries
 * (DESIGN.md, "Paging strategies"): a mapping may point only into the guest's RAM (or the device
 * window below it when allowed), a next-level table must be RAM.
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
  PagingCapabilities,
  PagingCounterName,
  PagingHost,
  PagingMechanismName,
  PagingMechanismsFor,
  PagingRequirement,
} from "./api/mod.ts";
import {
  PAGING_COUNTER_NAMES,
  PAGING_MECHANISM_NAMES,
  PAGING_MECHANISMS,
  PAGING_MECHANISMS_VERSION,
} from "./api/mod.ts";
import { hex, VmonError } from "./errors.ts";

/** A guest physical range `[start, end)` a leaf PTE may map. */
export type PhysRange = readonly [number, number];

/**
 * The host port's paging mechanisms a strategy needs, checked against what the port describes in
 * `capabilities.paging`; a clear one-line error otherwise: a mechanism the port does not have
 * (the first one missing, in the order of `requirement.mechanisms`), another contract version
 * (checked only when the strategy needs a mechanism), or a port that lists a mechanism it does
 * not implement.
 *
 * @param host The paging plugin's host.
 * @param requirement The strategy's name, the contract version it was written for and the
 *   mechanisms it uses.
 * @returns The port's `paging` object, typed to the mechanisms asked for.
 *
 * @example
 * ```ts
 * import type { PagingHost } from "./api/mod.ts";
 * import { requirePagingMechanisms } from "./paging.ts";
 *
 * // a host port that describes no paging mechanism (as kvm does)
 * const host = {
 *   machine: { hostport: "kvm" },
 *   hostport: { capabilities: { paging: { version: 1, mechanisms: [] } } },
 * } as unknown as PagingHost;
 * try {
 *   requirePagingMechanisms(host, { strategy: "s", version: 1, mechanisms: ["write-protect"] });
 *   throw new Error("accepted");
 * } catch (e) {
 *   const want = 'Paging strategy "s" needs the "write-protect" mechanism, ' +
 *     'which host port "kvm" does not have';
 *   if ((e as Error).message !== want) throw e;
 * }
 * // a strategy that needs no mechanism works on every host port
 * requirePagingMechanisms(host, { strategy: "w", version: 1, mechanisms: [] });
 * ```
 */
export function requirePagingMechanisms<N extends PagingMechanismName>(
  host: PagingHost,
  requirement: PagingRequirement<N>,
): PagingMechanismsFor<N> {
  const { strategy, version, mechanisms } = requirement;
  const port = host.machine.hostport;
  const offered: PagingCapabilities = host.hostport.capabilities.paging ??
    { version: PAGING_MECHANISMS_VERSION, mechanisms: [] };
  const impl = (host.hostport.paging ?? {}) as Record<string, unknown>;
  if (mechanisms.length === 0) return impl as PagingMechanismsFor<N>;
  for (const name of mechanisms) {
    if (!Object.hasOwn(PAGING_MECHANISMS, name)) {
      throw new VmonError(
        `Paging strategy "${strategy}" needs an unknown paging mechanism "${name}": the mechanisms are ${
          PAGING_MECHANISM_NAMES.join(", ")
        }`,
      );
    }
  }
  if (offered.version !== version) {
    throw new VmonError(
      `Paging strategy "${strategy}" needs version ${version} of the paging mechanisms, host port "${port}" has version ${offered.version}`,
    );
  }
  for (const name of mechanisms) {
    if (!offered.mechanisms.includes(name)) {
      throw new VmonError(
        `Paging strategy "${strategy}" needs the "${name}" mechanism, which host port "${port}" does not have`,
      );
    }
    for (const method of PAGING_MECHANISMS[name]) {
      if (typeof impl[method] !== "function") {
        throw new VmonError(
          `Cannot use the "${name}" paging mechanism of host port "${port}": it lists the mechanism but its paging object has no ${method}()`,
        );
      }
    }
  }
  return impl as PagingMechanismsFor<N>;
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

/**
 * Prefix of the host-time entries a strategy's `stats()` adds to its counters: `host-us.<cause>`
 * is the host microseconds its handlers of cause `<cause>` took in all (see
 * {@linkcode PagingCounters.timed}). They are host times, not counters: they differ between
 * runs, and `vmon compare` reports them per trap instead of checking them for determinism.
 */
export const PAGING_HOST_TIME_PREFIX = "host-us.";

/** The counters of a paging strategy (see {@linkcode createPagingCounters}). */
export interface PagingCounters {
  /** One counter per name of `PAGING_COUNTER_NAMES`, to count with. */
  readonly count: Readonly<Record<PagingCounterName, Counter>>;
  /**
   * What `PagingInstance.stats()` returns: every name of `PAGING_COUNTER_NAMES`, with
   * `shadow-fills` and `shadow-flushes` from the host port's mechanisms, plus the mechanisms'
   * `address-space-evictions`, `pt-pages` and `queued-pages` (their last values once the
   * machine is gone), `unexpected-traps` when there were any, and the handlers' host time by
   * cause (`host-us.<cause>`, see {@linkcode PagingCounters.timed}).
   */
  stats(): Record<string, number>;
  /** Counts an exit the strategy did not ask for; true the first time (to warn once). */
  unexpected(): boolean;
  /**
   * Runs `handler` (the strategy's work for one trap of cause `cause`, as in `traps.<cause>`)
   * and adds the host time it took to that cause's total, which `stats()` reports as
   * `host-us.<cause>` ({@linkcode PAGING_HOST_TIME_PREFIX}).
   */
  timed<T>(cause: string, handler: () => T): T;
  /** Stops reading the mechanisms (the machine is going away). */
  dispose(): void;
}

/**
 * The counters a strategy on a host port's paging mechanisms reports.
 *
 * @param host The paging plugin's host (counters are made with `host.metrics`).
 * @param mech The host port's `counters` mechanism ({@linkcode requirePagingMechanisms}).
 */
export function createPagingCounters(
  host: PagingHost,
  mech: PagingMechanismsFor<"counters">,
): PagingCounters {
  const count = {} as Record<PagingCounterName, Counter>;
  for (const name of PAGING_COUNTER_NAMES) count[name] = host.metrics.counter(name);
  let unexpected = 0;
  let disposed = false;
  let last: Record<string, number> = {};
  const hostUs = new Map<string, number>();
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
      for (const [cause, us] of hostUs) out[`${PAGING_HOST_TIME_PREFIX}${cause}`] = us;
      return out;
    },
    unexpected: () => unexpected++ === 0,
    timed<T>(cause: string, handler: () => T): T {
      const start = performance.now();
      try {
        return handler();
      } finally {
        hostUs.set(cause, (hostUs.get(cause) ?? 0) + (performance.now() - start) * 1000);
      }
    },
    dispose() {
      disposed = true;
    },
  };
}
