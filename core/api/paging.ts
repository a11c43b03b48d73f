/**
 * Paging strategies: the counters every strategy reports, the mechanisms host ports offer and what a strategy plugin receives and returns.
 *
 * @module
 */

/**
 * The counters every paging strategy reports from `PagingInstance.stats()`, zero where not
 * applicable: `traps` (all causes) and one per cause, updates applied, batches, validations,
 * rejections, shadow fills and flushes. Host ports report `instructions`, `tlb-fills` and
 * `tlb-flushes` from `stats()`.
 */
export const PAGING_COUNTER_NAMES = [
  "traps",
  "traps.pt-write",
  "traps.flush",
  "traps.satp",
  "traps.hypercall",
  "updates-applied",
  "batches",
  "validations",
  "rejections",
  "shadow-fills",
  "shadow-flushes",
] as const;

/** One of {@linkcode PAGING_COUNTER_NAMES}. */
export type PagingCounterName = typeof PAGING_COUNTER_NAMES[number];

/** Exit codes of an {@linkcode ExitKind.Paging} exit (`exit.code`). */
export const PagingTrapCode = {
  /** A store to a page protected with a host port's generic write protection. */
  WriteProtected: 1,
  /** `sfence.vma` ran (`address` = its virtual address, 0 for all). */
  Sfence: 2,
  /** `satp` was written (`data` = the new value). */
  Satp: 3,
  /**
   * A store, AMO or SC to a shadowed page-table page; not performed: `address` = guest physical
   * address, `size`, `data` = the bytes it would store. Answer with `PagingMechanisms.approve`.
   */
  PtWrite: 4,
} as const;

/**
 * What a host port with a software MMU offers paging strategies: the mechanisms (in C on rv64),
 * for the strategy's policy (in TypeScript). Addresses are guest physical.
 */
export interface PagingMechanisms {
  /**
   * How TLB misses are served: `wired` walks the guest's tables; `shadow` and `queued` keep
   * shadow translations per address space (kept across `satp` switches), write-protect every
   * page-table page a walk reads, and exit with {@linkcode PagingTrapCode.PtWrite} on stores to
   * them. Switching drops every shadow entry.
   */
  setMode(mode: "wired" | "shadow" | "queued"): void;
  /**
   * Physical ranges (`[start, end)`) a leaf PTE may map; a walk that finds a leaf outside them
   * raises an access fault in the guest. An empty list allows every address.
   */
  setLeafRanges(ranges: readonly (readonly [number, number])[]): void;
  /**
   * Exits after `sfence.vma` and/or `satp` writes on vCPU `vcpu`; with `whileQueued` only while
   * page-table pages are queued.
   */
  setExits(
    vcpu: number,
    exits: { readonly sfence?: boolean; readonly satp?: boolean; readonly whileQueued?: boolean },
  ): void;
  /**
   * Answers a {@linkcode PagingTrapCode.PtWrite} exit: `true` runs the store once when the vCPU
   * resumes (dropping the shadow entries derived from the PTEs it overwrites), `false` drops it
   * (the vCPU steps over the instruction).
   */
  approve(vcpu: number, approve: boolean): void;
  /** Drops the shadow entries derived from PTEs in `[gpa, gpa+size)`; returns how many. */
  invalidate(gpa: number, size: number): number;
  /** Drops every shadow entry. */
  flushShadow(): void;
  /** True when the page of `gpa` is a shadowed (write-protected) page-table page. */
  isPageTable(gpa: number): boolean;
  /**
   * Unhooks the shadowed page-table page of `gpa` into the queue: its contents are snapshotted
   * and guest stores to it stop exiting (walks read it live and still map only the leaf
   * ranges). Returns the slot, or -1 (not a
   * shadowed page-table page, or queued already) or -2 (queue full).
   */
  queuePage(gpa: number): number;
  /** The guest physical page addresses of the queued pages, by slot. */
  queuedPages(): number[];
  /** The snapshot of queue slot `slot`: 4096 bytes, valid until `releaseQueue`. */
  snapshot(slot: number): Uint8Array;
  /** Empties the queue and protects its pages again; returns how many were queued. */
  releaseQueue(): number;
  /** Mechanism counters (shadow fills, drops, address-space evictions, shadowed pages). */
  counters(): Record<string, number>;
}
// Paging strategies
