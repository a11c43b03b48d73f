/**
 * The counter names `vmon compare` expects, in one place. Paging strategies report their
 * counters through `PagingInstance.stats()` (they appear in `MachineStats.metrics[<strategy>]`)
 * and the host port reports its own through `HostPortInstance.stats()` (`MachineStats.hostport`).
 * The comparison shows the names listed here in this order, then any other counter a strategy
 * reports, so a strategy with more counters needs no change here.
 *
 * The paging names are core/api.ts `PAGING_COUNTER_NAMES`. Trap causes: a strategy reports its
 * total in `traps` and one counter per cause named `traps.<cause>` (`traps.pt-write`,
 * `traps.flush`, `traps.satp`, `traps.hypercall`; a strategy may add causes of its own).
 * `traps-<cause>`, `traps:<cause>` and `traps_<cause>` are read the same way.
 *
 * @module
 */

import { PAGING_COUNTER_NAMES, type PagingCounterName } from "../core/api/mod.ts";

/** Where a counter comes from. */
export type CounterSource = "paging" | "hostport";

/** One counter the comparison knows by name. */
export interface CounterInfo {
  /** Where it comes from. */
  readonly source: CounterSource;
  /** The name the strategy or host port reports. */
  readonly name: string;
  /** The row label in the table. */
  readonly label: string;
  /** What it counts (shown in docs/paging.md). */
  readonly description: string;
}

/** Table label and description of each name in {@linkcode PAGING_COUNTER_NAMES}. */
const PAGING_COUNTER_TEXT: Readonly<
  Record<PagingCounterName, { readonly label: string; readonly description: string }>
> = {
  traps: {
    label: "traps",
    description: "exits handled by the strategy, all causes (each cause also as traps.<cause>)",
  },
  "traps.pt-write": {
    label: "traps: pt-write",
    description: "stores to a write-protected guest page-table page",
  },
  "traps.flush": {
    label: "traps: flush",
    description: "sfence.vma or remote fences the strategy handled (queued: applies the queue)",
  },
  "traps.satp": {
    label: "traps: satp",
    description: "address-space switches (satp writes) the strategy handled",
  },
  "traps.hypercall": {
    label: "traps: hypercall",
    description: "paravirtual page-table update calls",
  },
  "updates-applied": {
    label: "updates applied",
    description: "guest page-table entry updates the strategy validated and applied",
  },
  batches: {
    label: "batches",
    description: "groups of updates applied at once (queued: one per flush or hypercall)",
  },
  validations: {
    label: "validations",
    description: "page-table entries checked against the validation rules",
  },
  rejections: {
    label: "rejections",
    description: "updates refused by validation (mapping non-RAM, writable page-table page)",
  },
  "shadow-fills": {
    label: "shadow fills",
    description: "shadow translations built from the guest's tables",
  },
  "shadow-flushes": {
    label: "shadow flushes",
    description: "shadow translations dropped (whole address spaces or single pages)",
  },
};

/**
 * The counters every paging strategy reports (DESIGN.md, "Paging strategies"), in table order:
 * {@linkcode PAGING_COUNTER_NAMES} from core/api.ts, the one list strategies report.
 */
export const PAGING_COUNTERS: readonly CounterInfo[] = PAGING_COUNTER_NAMES.map((name) => ({
  source: "paging" as const,
  name,
  ...PAGING_COUNTER_TEXT[name],
}));

/** The host port counters the comparison shows, in table order (names of core/api.ts). */
export const HOSTPORT_COUNTERS: readonly CounterInfo[] = [
  {
    source: "hostport",
    name: "instructions",
    label: "guest instructions",
    description: "instructions the guest retired, summed over harts",
  },
  {
    source: "hostport",
    name: "tlb-fills",
    label: "TLB fills",
    description: "software TLB entries filled by a page walk",
  },
  {
    source: "hostport",
    name: "tlb-flushes",
    label: "TLB flushes",
    description: "software TLB flushes (sfence.vma, satp writes, monitor requests)",
  },
  {
    source: "hostport",
    name: "pageWalks",
    label: "page walks",
    description: "page-table walks done by the MMU",
  },
  {
    source: "hostport",
    name: "pagingExits",
    label: "paging exits",
    description: "exits the host port delivered to the paging strategy",
  },
];

/** Every known counter, paging first. */
export const KNOWN_COUNTERS: readonly CounterInfo[] = [...PAGING_COUNTERS, ...HOSTPORT_COUNTERS];

const TRAP_CAUSE = /^traps?[.:_-](.+)$/;

/**
 * Returns the cause of a per-cause trap counter (`traps.write` -> `write`), or undefined when
 * `name` is not one.
 *
 * @param name A counter name a strategy reported.
 *
 * @example
 * ```ts
 * import { trapCause } from "./counters.ts";
 *
 * if (trapCause("traps.sfence") !== "sfence") throw new Error("bad cause");
 * if (trapCause("traps") !== undefined) throw new Error("total is not a cause");
 * ```
 */
export function trapCause(name: string): string | undefined {
  return TRAP_CAUSE.exec(name)?.[1];
}

/**
 * The key a counter has in aggregated results: `<source>.<name>`, such as `paging.traps` or
 * `hostport.instructions`.
 *
 * @param source Where the counter comes from.
 * @param name Its name as reported.
 */
export function counterKey(source: CounterSource, name: string): string {
  return `${source}.${name}`;
}

/**
 * The table label of a counter key: the known label, `traps: <cause>` for trap causes, or the
 * name as reported.
 *
 * @param key A key made by {@linkcode counterKey}.
 */
export function counterLabel(key: string): string {
  const dot = key.indexOf(".");
  const source = key.slice(0, dot);
  const name = key.slice(dot + 1);
  const known = KNOWN_COUNTERS.find((c) => c.source === source && c.name === name);
  if (known !== undefined) return known.label;
  if (source === "paging") {
    const cause = trapCause(name);
    if (cause !== undefined) return `traps: ${cause}`;
  }
  return source === "hostport" ? `host port ${name}` : name;
}

/**
 * Orders counter keys for display: known paging counters with each cause right after `traps`,
 * other paging counters by name, then known host port counters, then the rest by name.
 *
 * @param keys Counter keys made by {@linkcode counterKey}.
 * @returns The keys in display order.
 */
export function orderCounterKeys(keys: Iterable<string>): string[] {
  const all = new Set(keys);
  const out: string[] = [];
  const take = (key: string) => {
    if (all.delete(key)) out.push(key);
  };
  for (const c of PAGING_COUNTERS) {
    take(counterKey(c.source, c.name));
    if (c.name === "traps") {
      const causes = [...all].filter((k) =>
        k.startsWith("paging.") && trapCause(k.slice("paging.".length)) !== undefined
      ).sort();
      for (const k of causes) take(k);
    }
  }
  for (const k of [...all].filter((k) => k.startsWith("paging.")).sort()) take(k);
  for (const c of HOSTPORT_COUNTERS) take(counterKey(c.source, c.name));
  for (const k of [...all].sort()) take(k);
  return out;
}
