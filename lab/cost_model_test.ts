import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { join } from "node:path";
import type { MachineStats } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { fixtureRun, fixtureVariant, fixtureWorkload } from "./_fixtures.ts";
import { flattenCounters, flattenHostTimes, hostUsPerTrap, summarize } from "./aggregate.ts";
import {
  COST_EVENTS,
  COST_PROFILES,
  type CostProfile,
  loadCostProfile,
  parseCostProfile,
  projectCells,
  projectCost,
} from "./cost_model.ts";
import { buildResults } from "./results.ts";
import { formatTables } from "./table.ts";

const cost = (cycles: number) => ({ cycles, source: `src-${cycles}`, status: "assumed" as const });

/** Round numbers, so every expected projection is easy to check by hand. */
const PROFILE: CostProfile = {
  name: "round",
  description: "round numbers",
  clock: { ghz: 2, source: "clock", status: "assumed" },
  costs: {
    instruction: cost(1),
    trap: cost(1000),
    "trap.hypercall": cost(300),
    validation: cost(10),
    "memory-reference": cost(10),
    "walk-references.nested": cost(24),
    "walk-references.native": cost(4),
    "shadow-fill": cost(500),
    "shadow-flush": cost(5),
    "tlb-flush": cost(100),
  },
};

Deno.test("cost model: a projection is the counters times the profile's costs", () => {
  const perOp = {
    "hostport.instructions": 10_000,
    "paging.traps": 12,
    "paging.traps.pt-write": 8,
    "paging.traps.hypercall": 2,
    "paging.validations": 20,
    "hostport.tlb-fills": 30,
    "paging.shadow-fills": 6,
    "paging.shadow-flushes": 40,
    "hostport.tlb-flushes": 3,
  };
  const p = projectCost(perOp, PROFILE);
  strictEqual(p.walk, "native", "shadow fills: the hardware walks shadow tables");
  deepStrictEqual(p.terms, {
    instructions: 10_000,
    "traps.hypercall": 2 * 300, // priced on its own
    "traps.pt-write": 8 * 1000,
    "traps.other": 2 * 1000, // 12 traps, 10 with a cause
    validations: 200,
    "tlb-fills": 30 * 4 * 10,
    "shadow-fills": 6 * (1000 + 500), // a hidden page fault: trap plus fill
    "shadow-flushes": 200,
    "tlb-flushes": 300,
  });
  strictEqual(p.cycles, 10_000 + 600 + 8000 + 2000 + 200 + 1200 + 9000 + 200 + 300);
  strictEqual(p.us, p.cycles / 2000);
  // the same counters on nested paging: each fill is a two-dimensional walk
  strictEqual(projectCost(perOp, PROFILE, { walk: "nested" }).terms["tlb-fills"], 30 * 24 * 10);
  // no counters, no cost; missing ones count as zero
  strictEqual(projectCost({}, PROFILE).cycles, 0);
  strictEqual(projectCost({ "hostport.tlb-fills": 1 }, PROFILE).walk, "nested");
});

Deno.test("cost model: cells are projected and set against wired", () => {
  const w = fixtureWorkload("forkwait", 9, { baseN: 1, op: "fork" });
  const variants = ["wired", "shadow"].map((id) => fixtureVariant(id));
  const runs = [
    fixtureRun({
      workload: "forkwait",
      variant: "wired",
      n: 9,
      counters: { "hostport.instructions": 9000, "hostport.tlb-fills": 90, "paging.traps": 0 },
    }),
    fixtureRun({
      workload: "forkwait",
      variant: "wired",
      phase: "baseline",
      n: 1,
      counters: { "hostport.instructions": 1000, "hostport.tlb-fills": 10, "paging.traps": 0 },
    }),
    fixtureRun({
      workload: "forkwait",
      variant: "shadow",
      n: 9,
      counters: {
        "hostport.instructions": 9000,
        "hostport.tlb-fills": 90,
        "paging.traps": 80,
        "paging.traps.pt-write": 80,
        "paging.shadow-fills": 16,
      },
    }),
    fixtureRun({
      workload: "forkwait",
      variant: "shadow",
      phase: "baseline",
      n: 1,
      counters: {
        "hostport.instructions": 1000,
        "hostport.tlb-fills": 10,
        "paging.traps": 0,
        "paging.traps.pt-write": 0,
        "paging.shadow-fills": 8,
      },
    }),
  ];
  const cells = projectCells(summarize(runs, { workloads: [w], variants }), PROFILE);
  const [wired, shadow] = cells;
  // per fork: 1000 instructions, 10 fills; shadow adds 10 pt-write traps and 1 shadow fill
  strictEqual(wired!.projected!.walk, "nested");
  strictEqual(wired!.projected!.cycles, 1000 + 10 * 24 * 10);
  strictEqual(shadow!.projected!.walk, "native");
  strictEqual(shadow!.projected!.cycles, 1000 + 10 * 1000 + 10 * 4 * 10 + 1500);
  strictEqual(wired!.projected!.vsWired, 1);
  const ratio = (1000 + 10_000 + 400 + 1500) / (1000 + 2400);
  ok(Math.abs(shadow!.projected!.vsWired! - ratio) < 1e-12, `${shadow!.projected!.vsWired}`);
  const text = formatTables(cells, { workloads: [w], variants }, {
    style: { head: [], border: [] },
    costModel: PROFILE,
  });
  ok(text.includes("projected µs (round)"), text);
  ok(/projected vs wired[\s│]+1\.00×[\s│]+3\.79×/.test(text), text);
});

Deno.test("cost model: the footnote and results.json carry every cost's source and status", () => {
  const profile = COST_PROFILES[0]!;
  const w = fixtureWorkload("cpuloop", 4);
  const variants = [fixtureVariant("wired")];
  const runs = [fixtureRun({ workload: "cpuloop", variant: "wired", n: 4, counters: {} })];
  const cells = projectCells(summarize(runs, { workloads: [w], variants }), profile);
  const text = formatTables(cells, { workloads: [w], variants }, { costModel: profile });
  for (const event of COST_EVENTS) {
    const c = profile.costs[event]!;
    ok(text.includes(`${event} = ${c.cycles} `) && text.includes(c.source), `${event}:\n${text}`);
  }
  ok(text.includes("recalled, not checked against the source"), text);
  ok(text.includes("assumed, no published figure"), text);
  const results = buildResults({
    date: new Date(0),
    commandLine: [],
    machine: { image: "x", hostport: "rv64", platform: "riscv-virt" },
    repeat: 1,
    workloads: [w],
    variants,
    runs,
    cells,
    mismatches: [],
    differences: [],
    costModel: profile,
    host: { os: "linux", arch: "x86_64", kernel: "k", cpus: 2, deno: "2" },
    version: "0",
  });
  const json = JSON.parse(JSON.stringify(results));
  deepStrictEqual(json.costModel, JSON.parse(JSON.stringify(profile)));
  strictEqual(json.cells[0].projected.profile, profile.name);
});

Deno.test("cost model: the built-in profiles price every event and name a source", () => {
  ok(COST_PROFILES.length >= 2);
  for (const p of COST_PROFILES) {
    ok(p.clock.ghz > 0 && p.clock.source !== "", p.name);
    for (const event of COST_EVENTS) {
      const c = p.costs[event];
      ok(c !== undefined && c.cycles >= 0 && c.source.length > 10, `${p.name} ${event}`);
      ok(["recalled", "architectural", "assumed"].includes(c.status), `${p.name} ${event}`);
    }
    strictEqual(loadCostProfile(p.name), p);
  }
});

Deno.test("cost model: a profile file overrides any cost and keeps the base's others", () => {
  const p = parseCostProfile(
    JSON.stringify({
      name: "mine",
      base: "recent-x86",
      ghz: 3,
      costs: { trap: { cycles: 1234, source: "my measurement" }, "trap.flush": 99, validation: 0 },
    }),
    "mine.json",
  );
  const base = COST_PROFILES.find((x) => x.name === "recent-x86")!;
  strictEqual(p.name, "mine");
  deepStrictEqual(p.clock, { ghz: 3, source: "mine.json", status: "user" });
  deepStrictEqual(p.costs.trap, { cycles: 1234, source: "my measurement", status: "user" });
  deepStrictEqual(p.costs["trap.flush"], { cycles: 99, source: "mine.json", status: "user" });
  strictEqual(p.costs.validation!.cycles, 0);
  deepStrictEqual(p.costs["walk-references.nested"], base.costs["walk-references.nested"]);
  strictEqual(
    projectCost({ "paging.traps": 1, "paging.traps.flush": 1 }, p).cycles,
    99,
    "the per-cause cost applies",
  );
});

Deno.test("cost model: bad profiles are refused with one line", () => {
  const refuses = (text: string, message: string) =>
    throws(() => parseCostProfile(text, "p.json"), (e) => {
      ok(e instanceof VmonError);
      strictEqual(e.message, message);
      return true;
    });
  refuses(
    "{",
    `Invalid cost model "p.json": not JSON (Expected property name or '}' in JSON at position 1 (line 1 column 2))`,
  );
  refuses("[]", `Invalid cost model "p.json": expected a JSON object`);
  refuses(
    `{"costs": {"trapz": 1}}`,
    `Invalid cost model "p.json": unknown cost "trapz" (costs: instruction, trap, validation, memory-reference, walk-references.nested, walk-references.native, shadow-fill, shadow-flush, tlb-flush, trap.<cause>)`,
  );
  refuses(
    `{"costs": {"trap": -1}}`,
    `Invalid cost model "p.json": cost "trap" must be a number of at least 0`,
  );
  refuses(
    `{"costs": {"trap": {"cycles": "x"}}}`,
    `Invalid cost model "p.json": cost "trap".cycles must be a number of at least 0`,
  );
  refuses(`{"ghz": 0}`, `Invalid cost model "p.json": "ghz" must be above 0`);
  refuses(
    `{"base": "pentium"}`,
    `Invalid cost model "p.json": unknown base profile "pentium" (built-in: nehalem-ept, recent-x86)`,
  );
  refuses(
    `{"speed": 1}`,
    `Invalid cost model "p.json": unknown field "speed" (fields: name, base, description, ghz, costs)`,
  );
  throws(() => loadCostProfile("pentium"), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      `Unknown cost model "pentium": built-in profiles are nehalem-ept, recent-x86, or give a .json profile file`,
    );
    return true;
  });
  const dir = Deno.makeTempDirSync();
  try {
    const file = join(dir, "mine.json");
    Deno.writeTextFileSync(file, `{"costs": {"tlb-flush": 7}}`);
    strictEqual(loadCostProfile(file).costs["tlb-flush"]!.cycles, 7);
    throws(() => loadCostProfile(join(dir, "missing.json")), /^VmonError: Cannot read cost model/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("host times: kept out of the counters, reported per trap and cause", () => {
  const stats = {
    metrics: {
      queued: {
        traps: 4,
        "traps.flush": 3,
        "traps.pt-write": 1,
        "host-us.flush": 30,
        "host-us.pt-write": 2,
      },
    },
    hostport: { instructions: 7 },
  } as unknown as MachineStats;
  deepStrictEqual(flattenCounters(stats, "queued"), {
    "paging.traps": 4,
    "paging.traps.flush": 3,
    "paging.traps.pt-write": 1,
    "hostport.instructions": 7,
  });
  deepStrictEqual(flattenHostTimes(stats, "queued"), { flush: 30, "pt-write": 2 });
  const counters = flattenCounters(stats, "queued");
  // the median over runs of each run's ratio; a run without traps of a cause is left out
  deepStrictEqual(
    hostUsPerTrap([
      { counters, hostUs: { flush: 30, "pt-write": 2 } },
      { counters, hostUs: { flush: 60, "pt-write": 4 } },
      {
        counters: { ...counters, "paging.traps.pt-write": 0 },
        hostUs: { flush: 90, "pt-write": 0 },
      },
    ]),
    { all: 16, flush: 20, "pt-write": 3 },
  );
});

Deno.test("docs/paging.md documents --cost-model, every cost and every built-in profile", () => {
  const doc = Deno.readTextFileSync(new URL("../docs/paging.md", import.meta.url));
  ok(doc.includes("`--cost-model"), "the flag");
  for (const event of COST_EVENTS) ok(doc.includes(`\`${event}\``), `cost ${event}`);
  for (const p of COST_PROFILES) ok(doc.includes(`\`${p.name}\``), `profile ${p.name}`);
  ok(doc.includes("## The literature side by side"), "the literature table");
});
