/**
 * Paging strategies: the counters every strategy reports, the exits, and the versioned contract of
 * the paging mechanisms host ports offer strategies.
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
  /**
   * `write-protect`: a store to a page protected with `PagingMechanisms.writeProtect`; not
   * performed: `address` = guest physical address, `size`, `data` = the bytes it would store.
   */
  WriteProtected: 1,
  /** `paging-exits`: `sfence.vma` ran (`address` = its virtual address, 0 for all). */
  Sfence: 2,
  /** `paging-exits`: `satp` was written (`data` = the new value). */
  Satp: 3,
  /**
   * `shadow-tables`: a store, AMO or SC to a shadowed page-table page; not performed: `address` = guest physical
   * address, `size`, `data` = the bytes it would store. Answer with `PagingMechanisms.approve`.
   */
  PtWrite: 4,
} as const;

/**
 * Version of the paging mechanism contract: {@linkcode PagingMechanisms}, the mechanism names of
 * {@linkcode PAGING_MECHANISMS} and the exits of {@linkcode PagingTrapCode}. A host port states the
 * version it implements in `capabilities.paging.version`; a strategy states the version it was
 * written for ({@linkcode PagingRequirement}) and is refused on a host port with another. It
 * changes with every incompatible change (a method's or an exit's meaning); a new mechanism name
 * is not one.
 */
export const PAGING_MECHANISMS_VERSION = 1;

/**
 * The paging mechanisms a host port may offer, each with the {@linkcode PagingMechanisms} methods
 * it provides:
 *
 * - `write-protect`: `writeProtect`; a guest store to a protected page is not performed and exits
 *   with {@linkcode PagingTrapCode.WriteProtected};
 * - `paging-exits`: `setExits` (`sfence`, `satp`); exits with {@linkcode PagingTrapCode.Sfence}
 *   and {@linkcode PagingTrapCode.Satp};
 * - `skip-instruction`: `skipInstruction`, to step over a trapped store the strategy emulated;
 * - `shadow-tables`: `setMode`, `setLeafRanges`, `approve`, `invalidate`, `flushShadow`,
 *   `isPageTable`; stores to shadowed page-table pages exit with
 *   {@linkcode PagingTrapCode.PtWrite};
 * - `page-queue`: `queuePage`, `queuedPages`, `snapshot`, `releaseQueue` (and `setExits`'s
 *   `whileQueued`, with `paging-exits`);
 * - `queue-diff`: `diffQueue`, the changed entries of the queued pages, diffed by the port, and
 *   `requeue` (added in version 1: a port without it still implements version 1);
 * - `counters`: `counters`.
 */
export const PAGING_MECHANISMS = {
  "write-protect": ["writeProtect"],
  "paging-exits": ["setExits"],
  "skip-instruction": ["skipInstruction"],
  "shadow-tables": [
    "setMode",
    "setLeafRanges",
    "approve",
    "invalidate",
    "flushShadow",
    "isPageTable",
  ],
  "page-queue": ["queuePage", "queuedPages", "snapshot", "releaseQueue"],
  "queue-diff": ["diffQueue", "requeue"],
  counters: ["counters"],
} as const satisfies Readonly<Record<string, readonly (keyof PagingMechanisms)[]>>;

/** The name of a paging mechanism, a key of {@linkcode PAGING_MECHANISMS}. */
export type PagingMechanismName = keyof typeof PAGING_MECHANISMS;

/** Every paging mechanism name, in the order of {@linkcode PAGING_MECHANISMS}. */
export const PAGING_MECHANISM_NAMES: readonly PagingMechanismName[] = Object.keys(
  PAGING_MECHANISMS,
) as PagingMechanismName[];

/**
 * What a host port says about paging (`capabilities.paging`): the contract version it implements
 * and the mechanisms it offers through its `paging` object. A port without any (kvm: the
 * hardware walks the guest's tables) lists none; the `wired` strategy needs none.
 */
export interface PagingCapabilities {
  /** The {@linkcode PAGING_MECHANISMS_VERSION} the port implements. */
  readonly version: number;
  /** The mechanisms its `paging` object implements. */
  readonly mechanisms: readonly PagingMechanismName[];
}

/**
 * What a paging strategy needs from the host port, checked by `requirePagingMechanisms` at setup.
 * `version` is the contract version the strategy was written for: a literal in a strategy outside
 * the repository (`version: 1`), so that a vmon with another contract refuses it clearly.
 */
export interface PagingRequirement<N extends PagingMechanismName = PagingMechanismName> {
  /** The strategy's name, for messages. */
  readonly strategy: string;
  /** The {@linkcode PAGING_MECHANISMS_VERSION} the strategy was written for. */
  readonly version: number;
  /** The mechanisms it uses (none: it works on every host port). */
  readonly mechanisms: readonly N[];
}

/** The methods of the mechanisms `N` ({@linkcode PAGING_MECHANISMS}). */
export type PagingMechanismsFor<N extends PagingMechanismName> = Pick<
  PagingMechanisms,
  (typeof PAGING_MECHANISMS)[N][number]
>;

/** One page-table entry of a queued page that changed since its snapshot ({@linkcode QueueDiff}). */
export interface QueueChange {
  /** Guest physical address of the entry. */
  readonly address: number;
  /** Its value in the snapshot (the state last validated). */
  readonly old: bigint;
  /** Its value now (what the strategy validates). */
  readonly value: bigint;
}

/** What `PagingMechanisms.diffQueue` returns. */
export interface QueueDiff {
  /** The guest physical page addresses of the queued pages, by slot (as `queuedPages`). */
  readonly pages: readonly number[];
  /** The changed entries, in slot order, then entry order. */
  readonly changes: readonly QueueChange[];
}

/**
 * Every method of every paging mechanism (the rv64 port has them all, in C). A host port offers
 * those of the mechanisms it lists in `capabilities.paging.mechanisms`. Addresses are guest
 * physical; `vcpu` is a vCPU index.
 */
export interface PagingMechanisms {
  /**
   * `write-protect`: protects (or unprotects) the pages of `[gpa, gpa+size)`. A guest store to a
   * protected page is not performed: the vCPU exits with {@linkcode PagingTrapCode.WriteProtected}
   * (`address`, `size`, `data` = the bytes it would store) and re-executes the store when resumed,
   * unless the strategy emulated it and called `skipInstruction`. Returns the pages changed.
   */
  writeProtect(gpa: number, size: number, on: boolean): number;
  /**
   * `skip-instruction`: steps vCPU `vcpu` over its current instruction (the store of a
   * {@linkcode PagingTrapCode.WriteProtected} exit the strategy performed itself).
   */
  skipInstruction(vcpu: number): void;
  /**
   * `paging-exits`: exits after `sfence.vma` ({@linkcode PagingTrapCode.Sfence}) and/or `satp`
   * writes ({@linkcode PagingTrapCode.Satp}) on vCPU `vcpu`; the instruction has completed and the
   * vCPU continues after it. With `whileQueued` (`page-queue`) only while page-table pages are
   * queued.
   */
  setExits(
    vcpu: number,
    exits: { readonly sfence?: boolean; readonly satp?: boolean; readonly whileQueued?: boolean },
  ): void;
  /**
   * `shadow-tables`: how TLB misses are served. `wired` walks the guest's tables; `shadow` and
   * `queued` keep shadow translations per address space (kept across `satp` switches),
   * write-protect every page-table page a walk reads, and exit with
   * {@linkcode PagingTrapCode.PtWrite} on stores to them (`queued` also needs `page-queue`).
   * Switching drops every shadow entry.
   */
  setMode(mode: "wired" | "shadow" | "queued"): void;
  /**
   * `shadow-tables`: physical ranges (`[start, end)`) a leaf PTE may map; a walk that finds a
   * leaf outside them raises an access fault in the guest. An empty list allows every address.
   */
  setLeafRanges(ranges: readonly (readonly [number, number])[]): void;
  /**
   * `shadow-tables`: answers a {@linkcode PagingTrapCode.PtWrite} exit: `true` runs the store
   * once when the vCPU resumes (dropping the shadow entries derived from the PTEs it overwrites),
   * `false` drops it (the vCPU steps over the instruction).
   */
  approve(vcpu: number, approve: boolean): void;
  /**
   * `shadow-tables`: drops the shadow entries derived from PTEs in `[gpa, gpa+size)`; returns
   * how many.
   */
  invalidate(gpa: number, size: number): number;
  /** `shadow-tables`: drops every shadow entry. */
  flushShadow(): void;
  /**
   * `shadow-tables`: true when the page of `gpa` is a shadowed (write-protected) page-table
   * page.
   */
  isPageTable(gpa: number): boolean;
  /**
   * `page-queue`: unhooks the shadowed page-table page of `gpa` into the queue: its contents are
   * snapshotted and guest stores to it stop exiting (walks read it live and still map only the
   * leaf ranges). Returns the slot, or -1 (not a shadowed page-table page, or queued already) or
   * -2 (queue full).
   */
  queuePage(gpa: number): number;
  /** `page-queue`: the guest physical page addresses of the queued pages, by slot. */
  queuedPages(): number[];
  /** `page-queue`: the snapshot of queue slot `slot`: 4096 bytes, valid until `releaseQueue`. */
  snapshot(slot: number): Uint8Array;
  /**
   * `page-queue`: empties the queue and protects its pages again; returns how many were queued.
   */
  releaseQueue(): number;
  /**
   * `queue-diff`: compares every queued page with its snapshot and returns the entries that
   * changed other than by the port's own accessed/dirty updates, after dropping the shadow
   * entries derived from each of them (so the strategy only validates: a removal needs nothing
   * more, a rejected entry is the strategy's to revert or unshadow). Leaves the queue and the
   * snapshots as they are.
   */
  diffQueue(): QueueDiff;
  /**
   * `queue-diff`: empties the queue as `releaseQueue` does, except the pages of `gpas` that are
   * still shadowed page-table pages: they stay queued (unhooked), in that order, with a fresh
   * snapshot. Cheaper than `releaseQueue` followed by `queuePage` for each (a page that stays is
   * never protected in between). Returns how many stay; at most the queue's size may be given.
   */
  requeue(gpas: readonly number[]): number;
  /**
   * `counters`: mechanism counters (`shadowFills`, `shadowDrops`, `addressSpaceEvictions`,
   * `ptPages`, `queuedPages`, ...).
   */
  counters(): Record<string, number>;
}
