/**
 * Projected cost on hardware (`vmon compare --cost-model NAME|file.json`): each counter a run
 * reports per operation (guest instructions, trap round trips by cause, page-table entries
 * validated, TLB fills with the memory references of their page walks, shadow fills and flushes,
 * TLB flushes) times a per-event cost of a CPU profile, summed into cycles and microseconds per
 * operation, and set against the `wired` strategy of the same workload. Every cost carries its
 * source and a status: `recalled` (a published figure quoted from memory, not checked against
 * the publication here), `architectural` (follows from the architecture's definition),
 * `assumed` (a modelling assumption with no published figure behind it) or `user` (from the
 * user's profile file). The projection is a pure function of the counters and the profile.
 *
 * How each counter maps to hardware events (docs/paging.md, "Projected cost on hardware"):
 *
 * - a strategy that builds no shadow translations (`wired`) stands for nested paging (EPT/NPT):
 *   every TLB fill is a two-dimensional walk (`walk-references.nested` memory references);
 *   a strategy with shadow fills stands for shadow paging: TLB fills walk the shadow tables
 *   natively (`walk-references.native`), and each shadow fill is a hidden page fault: a trap
 *   round trip plus the software walk and fill (`shadow-fill`);
 * - each strategy trap (`traps.<cause>`) is one trap round trip (`trap`, or `trap.<cause>`
 *   when the profile prices that cause on its own); paravirtual calls are traps of cause
 *   `hypercall`;
 * - each validated entry costs `validation`, each dropped shadow entry `shadow-flush`, each TLB
 *   flush `tlb-flush`, each guest instruction `instruction`.
 *
 * @example Project one operation on a profile with round numbers
 * ```ts
 * import { type CostProfile, projectCost } from "./cost_model.ts";
 *
 * const c = (cycles: number) => ({ cycles, source: "test", status: "assumed" as const });
 * const profile: CostProfile = {
 *   name: "round", description: "round numbers",
 *   clock: { ghz: 1, source: "test", status: "assumed" },
 *   costs: {
 *     instruction: c(1), trap: c(1000), validation: c(10), "memory-reference": c(10),
 *     "walk-references.nested": c(24), "walk-references.native": c(4), "shadow-fill": c(500),
 *     "shadow-flush": c(5), "tlb-flush": c(100),
 *   },
 * };
 * const p = projectCost({ "hostport.instructions": 1000, "paging.traps": 2 }, profile);
 * if (p.cycles !== 3000 || p.us !== 3) throw new Error(JSON.stringify(p));
 * ```
 *
 * @module
 */

import { VmonError } from "../core/errors.ts";
import type { CellSummary, Projection } from "./types.ts";

/** Where a cost comes from (see the module documentation). */
export type CostStatus = "recalled" | "architectural" | "assumed" | "user";

/** One per-event cost and where it comes from. */
export interface EventCost {
  /** Cycles per event (for the `walk-references.*` costs: memory references per walk). */
  readonly cycles: number;
  /** The publication, document or reasoning the figure comes from. */
  readonly source: string;
  /** How far the figure can be trusted. */
  readonly status: CostStatus;
}

/** The costs every profile has ({@linkcode CostProfile.costs}); `trap.<cause>` may be added. */
export const COST_EVENTS = [
  "instruction",
  "trap",
  "validation",
  "memory-reference",
  "walk-references.nested",
  "walk-references.native",
  "shadow-fill",
  "shadow-flush",
  "tlb-flush",
] as const;

/** One of {@linkcode COST_EVENTS}. */
export type CostEvent = typeof COST_EVENTS[number];

/** What each cost means (results.json and docs/paging.md). */
export const COST_EVENT_TEXT: Readonly<Record<CostEvent, string>> = {
  instruction: "cycles per guest instruction",
  trap: "cycles per trap round trip (exit to the monitor and back), any cause",
  validation: "cycles to validate one page-table entry",
  "memory-reference": "cycles per memory reference of a page walk",
  "walk-references.nested": "memory references of one two-dimensional (nested) walk",
  "walk-references.native": "memory references of one native walk (shadow tables)",
  "shadow-fill": "cycles to build one shadow entry after a hidden page fault, beyond its trap",
  "shadow-flush": "cycles to drop one shadow entry",
  "tlb-flush": "cycles per TLB flush",
};

/** A CPU profile: per-event costs with their sources. */
export interface CostProfile {
  /** Its name (`--cost-model NAME`). */
  readonly name: string;
  /** What it models. */
  readonly description: string;
  /** The clock that turns cycles into time. */
  readonly clock: {
    readonly ghz: number;
    readonly source: string;
    readonly status: CostStatus;
  };
  /** The costs: every {@linkcode COST_EVENTS} name, plus optional `trap.<cause>` ones. */
  readonly costs: Readonly<Record<string, EventCost>>;
}

const ADAMS_AGESEN =
  "Adams and Agesen, A Comparison of Software and Hardware Techniques for x86 Virtualization, ASPLOS 2006";
const BHARGAVA =
  "Bhargava, Serebrin, Spadini and Manne, Accelerating Two-Dimensional Page Walks for Virtualized Systems, ASPLOS 2008: up to 24 references for 4-level guest and nested tables";
const X86_PAGING = "x86-64 4-level paging: one reference per level (Intel SDM vol. 3, ch. 4)";

/** The costs both built-in profiles share (the rest differ by CPU). */
const SHARED_COSTS: Readonly<Record<string, EventCost>> = {
  instruction: {
    cycles: 1,
    source: "one cycle per guest instruction, the same under every strategy",
    status: "assumed",
  },
  validation: {
    cycles: 50,
    source: "a few dozen instructions per entry in the monitor (vmon's checks: RAM ranges)",
    status: "assumed",
  },
  "walk-references.nested": { cycles: 24, source: BHARGAVA, status: "recalled" },
  "walk-references.native": { cycles: 4, source: X86_PAGING, status: "architectural" },
  "shadow-flush": {
    cycles: 20,
    source: "unlinking one shadow entry and its reverse-map nodes",
    status: "assumed",
  },
  "tlb-flush": {
    cycles: 100,
    source: "the flush itself; refills are counted as TLB fills",
    status: "assumed",
  },
};

/**
 * The built-in profiles. Figures marked `recalled` are quoted from memory and were not checked
 * against the publication when this table was written; `assumed` ones have no published figure
 * behind them. A profile file overrides any of them (see {@linkcode parseCostProfile}).
 */
export const COST_PROFILES: readonly CostProfile[] = [
  {
    name: "nehalem-ept",
    description: "Intel Xeon X5570 (Nehalem-EP, 2009) with VT-x and EPT",
    clock: { ghz: 2.93, source: "Intel Xeon X5570 specification: 2.93 GHz", status: "recalled" },
    costs: {
      ...SHARED_COSTS,
      trap: {
        cycles: 2000,
        source:
          "a VM exit and entry round trip of about 2,000 cycles on a Xeon X5570 (the figure issue 12 quotes; publication not identified here)",
        status: "recalled",
      },
      "memory-reference": {
        cycles: 10,
        source: "walk references mostly hit the data caches: about one L2 hit on Nehalem",
        status: "assumed",
      },
      "shadow-fill": {
        cycles: 1000,
        source:
          `a software walk of the guest's tables and a shadow update (hidden page faults dominate shadow paging costs: ${ADAMS_AGESEN})`,
        status: "assumed",
      },
    },
  },
  {
    name: "recent-x86",
    description:
      "a recent x86-64 server core with EPT or NPT: cheaper exits, the same two-dimensional walks",
    clock: { ghz: 2.5, source: "a typical server clock", status: "assumed" },
    costs: {
      ...SHARED_COSTS,
      trap: {
        cycles: 1000,
        source:
          "exit round trips fell with each Intel generation after the first VT-x parts; about a thousand cycles is an order of magnitude, not a measured figure",
        status: "assumed",
      },
      "memory-reference": {
        cycles: 5,
        source: "paging-structure caches and nested TLBs absorb part of the walk's references",
        status: "assumed",
      },
      "shadow-fill": {
        cycles: 1000,
        source: "a software walk of the guest's tables and a shadow update",
        status: "assumed",
      },
    },
  },
];

/** The profile `--cost-model` files start from unless they name a `base`. */
export const DEFAULT_COST_PROFILE = "nehalem-ept";

const TRAP_COST = /^trap\.[a-z0-9][a-z0-9-]*$/;

function isKnownCost(name: string): boolean {
  return (COST_EVENTS as readonly string[]).includes(name) || TRAP_COST.test(name);
}

/**
 * A profile from the text of a profile file (JSON). The file names the profile it starts from
 * (`base`, default {@linkcode DEFAULT_COST_PROFILE}) and overrides any cost: a number of cycles
 * (its source is then the file) or `{ "cycles": n, "source": "..." }`. `trap.<cause>` prices
 * one trap cause on its own. `ghz` overrides the clock.
 *
 * ```json
 * { "name": "my-xeon", "base": "recent-x86", "ghz": 3.1,
 *   "costs": { "trap": { "cycles": 1400, "source": "measured with kvm-unit-tests vmexit" } } }
 * ```
 *
 * @param text The file's contents.
 * @param where The file's name, for messages and as the source of bare numbers.
 * @returns The profile.
 * @throws {VmonError} One line naming the file and what is wrong with it.
 *
 * @example
 * ```ts
 * import { parseCostProfile } from "./cost_model.ts";
 *
 * const p = parseCostProfile('{ "name": "mine", "costs": { "trap": 1500 } }', "mine.json");
 * if (p.costs.trap?.cycles !== 1500 || p.costs.trap.status !== "user") throw new Error("bad");
 * if (p.costs["walk-references.nested"]?.cycles !== 24) throw new Error("base lost");
 * ```
 */
export function parseCostProfile(text: string, where: string): CostProfile {
  const bad = (why: string): never => {
    throw new VmonError(`Invalid cost model "${where}": ${why}`);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return bad(`not JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return bad("expected a JSON object");
  }
  const o = json as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!["name", "base", "description", "ghz", "costs"].includes(key)) {
      bad(`unknown field "${key}" (fields: name, base, description, ghz, costs)`);
    }
  }
  const baseName = o.base ?? DEFAULT_COST_PROFILE;
  if (typeof baseName !== "string") return bad(`"base" must be a profile name`);
  const base = COST_PROFILES.find((p) => p.name === baseName) ??
    bad(`unknown base profile "${baseName}" (built-in: ${costProfileNames()})`);
  const name = o.name ?? where;
  if (typeof name !== "string" || name.trim() === "") return bad(`"name" must be a text`);
  if (o.description !== undefined && typeof o.description !== "string") {
    bad(`"description" must be a text`);
  }
  const positive = (value: unknown, what: string): number => {
    if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
      return bad(`${what} must be a number of at least 0`);
    }
    return value;
  };
  let clock = base.clock;
  if (o.ghz !== undefined) {
    const ghz = positive(o.ghz, `"ghz"`);
    if (ghz === 0) bad(`"ghz" must be above 0`);
    clock = { ghz, source: `${where}`, status: "user" };
  }
  const costs: Record<string, EventCost> = { ...base.costs };
  if (o.costs !== undefined) {
    if (o.costs === null || typeof o.costs !== "object" || Array.isArray(o.costs)) {
      bad(`"costs" must be an object of cost names`);
    }
    for (const [event, value] of Object.entries(o.costs as Record<string, unknown>)) {
      if (!isKnownCost(event)) {
        bad(`unknown cost "${event}" (costs: ${COST_EVENTS.join(", ")}, trap.<cause>)`);
      }
      if (typeof value === "number") {
        costs[event] = {
          cycles: positive(value, `cost "${event}"`),
          source: where,
          status: "user",
        };
        continue;
      }
      if (value === null || typeof value !== "object" || Array.isArray(value)) {
        bad(`cost "${event}" must be a number or { "cycles": n, "source": "..." }`);
      }
      const v = value as Record<string, unknown>;
      const cycles = positive(v.cycles, `cost "${event}".cycles`);
      if (v.source !== undefined && typeof v.source !== "string") {
        bad(`cost "${event}".source must be a text`);
      }
      costs[event] = { cycles, source: (v.source as string | undefined) ?? where, status: "user" };
    }
  }
  return {
    name,
    description: (o.description as string | undefined) ??
      `${base.description}, with the costs of ${where}`,
    clock,
    costs,
  };
}

/** The built-in profile names, comma-separated (for messages and help). */
export function costProfileNames(): string {
  return COST_PROFILES.map((p) => p.name).join(", ");
}

/**
 * The profile `--cost-model` names: a built-in profile, or a profile file (a path ending in
 * `.json`, or any existing file).
 *
 * @param spec A profile name or a file path.
 * @throws {VmonError} For an unknown name, a file that cannot be read or a bad file.
 */
export function loadCostProfile(spec: string): CostProfile {
  const builtin = COST_PROFILES.find((p) => p.name === spec);
  if (builtin !== undefined) return builtin;
  let text: string;
  try {
    text = Deno.readTextFileSync(spec);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound && !spec.endsWith(".json")) {
      throw new VmonError(
        `Unknown cost model "${spec}": built-in profiles are ${costProfileNames()}, or give a .json profile file`,
      );
    }
    throw new VmonError(`Cannot read cost model "${spec}": ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseCostProfile(text, spec);
}

const CAUSE_KEY = /^paging\.traps[.:_-](.+)$/;

/**
 * Projects one operation's counters onto a profile (pure: the result depends only on its
 * arguments). Missing counters count as zero.
 *
 * @param perOp Counters per operation, keyed as in a cell (`paging.traps.pt-write`,
 *   `hostport.instructions`, ...).
 * @param profile The CPU profile.
 * @param options `walk`: what a TLB fill stands for (default: `native` when the counters show
 *   shadow fills, else `nested`).
 * @returns Cycles and microseconds per operation, by term.
 */
export function projectCost(
  perOp: Readonly<Record<string, number>>,
  profile: CostProfile,
  options: { readonly walk?: "nested" | "native" } = {},
): Projection {
  const n = (key: string) => perOp[key] ?? 0;
  const cost = (event: string) => profile.costs[event]?.cycles ?? 0;
  const walk = options.walk ?? (n("paging.shadow-fills") > 0 ? "native" : "nested");
  const terms: Record<string, number> = {};
  terms.instructions = n("hostport.instructions") * cost("instruction");
  let causes = 0;
  for (const key of Object.keys(perOp).sort()) {
    const cause = CAUSE_KEY.exec(key)?.[1];
    if (cause === undefined) continue;
    causes += perOp[key]!;
    const each = profile.costs[`trap.${cause}`]?.cycles ?? cost("trap");
    terms[`traps.${cause}`] = perOp[key]! * each;
  }
  // traps no cause accounts for (a strategy that reports only the total)
  const rest = n("paging.traps") - causes;
  if (rest !== 0) terms["traps.other"] = rest * cost("trap");
  terms.validations = n("paging.validations") * cost("validation");
  terms["tlb-fills"] = n("hostport.tlb-fills") * cost(`walk-references.${walk}`) *
    cost("memory-reference");
  terms["shadow-fills"] = n("paging.shadow-fills") * (cost("trap") + cost("shadow-fill"));
  terms["shadow-flushes"] = n("paging.shadow-flushes") * cost("shadow-flush");
  terms["tlb-flushes"] = n("hostport.tlb-flushes") * cost("tlb-flush");
  const cycles = Object.values(terms).reduce((a, b) => a + b, 0);
  return { profile: profile.name, walk, cycles, us: cycles / (profile.clock.ghz * 1000), terms };
}

/**
 * Adds the projection to every cell, each set against the `wired` cell of its workload
 * (`vsWired`). A cell's walk is `native` when its measured runs built shadow entries.
 *
 * @param cells The aggregated cells.
 * @param profile The CPU profile.
 * @returns New cells with `projected` set.
 */
export function projectCells(
  cells: readonly CellSummary[],
  profile: CostProfile,
): CellSummary[] {
  const projected = cells.map((c) => ({
    cell: c,
    p: projectCost(c.perOp, profile, {
      walk: (c.totals["paging.shadow-fills"] ?? 0) > 0 ? "native" : "nested",
    }),
  }));
  return projected.map(({ cell, p }) => {
    const wired = projected.find((x) =>
      x.cell.workload === cell.workload && x.cell.variant === "wired"
    );
    const vsWired = wired !== undefined && wired.p.us !== 0 ? p.us / wired.p.us : undefined;
    return { ...cell, projected: { ...p, ...(vsWired !== undefined ? { vsWired } : {}) } };
  });
}

/**
 * The footnote of the tables: the profile and every cost with its source and status.
 *
 * @param profile The CPU profile.
 * @returns Lines of text.
 */
export function costFootnote(profile: CostProfile): string[] {
  const mark = (status: CostStatus) =>
    status === "recalled"
      ? "recalled, not checked against the source"
      : status === "architectural"
      ? "architectural"
      : status === "assumed"
      ? "assumed, no published figure"
      : "from the profile file";
  const lines = [
    `Projected cost on hardware: profile ${profile.name} (${profile.description}), ${profile.clock.ghz} GHz [${
      mark(profile.clock.status)
    }: ${profile.clock.source}]. Per event:`,
  ];
  const names = [
    ...COST_EVENTS,
    ...Object.keys(profile.costs).filter((k) => TRAP_COST.test(k)).sort(),
  ];
  for (const name of names) {
    const c = profile.costs[name];
    if (c === undefined) continue;
    const unit = name.startsWith("walk-references.") ? "references" : "cycles";
    lines.push(`  ${name} = ${c.cycles} ${unit} [${mark(c.status)}]: ${c.source}`);
  }
  lines.push(
    "  a strategy without shadow fills walks nested tables; shadow fills are hidden page faults (trap + shadow-fill).",
  );
  return lines;
}
