import { deepStrictEqual as assertEquals, ok, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import * as vegaLite from "vega-lite";
import { chartRows, chartSpec, chartView, renderChart } from "./chart.ts";
import { counterLabel, KNOWN_COUNTERS, orderCounterKeys, trapCause } from "./counters.ts";
import { COMPARE_WORKLOADS as KNOWN_WORKLOADS } from "./workloads.ts";
import { buildResults, RESULTS_SCHEMA, writeOutputs } from "./results.ts";
import { formatTables, formatValue, TRAPS_TIMES_BATCH } from "./table.ts";
import { summarize } from "./aggregate.ts";
import type { CellSummary, RunRecord } from "./types.ts";
import { fixtureRun, fixtureVariant, fixtureWorkload } from "./_fixtures.ts";
import { pvWorkload } from "./pv.ts";

// Test data (not measurements): two Linux workloads under three strategies and the paravirtual
// workload under two batch sizes, built to give round numbers.
const WORKLOADS = [
  fixtureWorkload("forkwait", 100, { baseN: 20, op: "fork" }),
  fixtureWorkload("faultstorm", 4, { opsPerN: 256, op: "page" }),
  pvWorkload(1024),
];
const VARIANTS = [
  fixtureVariant("wired"),
  fixtureVariant("shadow"),
  fixtureVariant("queued"),
  fixtureVariant("queued/b8", 8),
  fixtureVariant("queued/b64", 64),
];
const TRAPS: Record<string, number> = { wired: 0, shadow: 12, queued: 3 };
/** Updates each fixture pv-guest run submits. */
const PV_UPDATES = 2048;

function fixtureRuns(): RunRecord[] {
  const runs: RunRecord[] = [];
  for (const v of VARIANTS) {
    if (v.batch !== undefined) {
      // One trap per call: 2048 / batch calls (the fixture ignores the probe).
      const traps = PV_UPDATES / v.batch;
      for (let repeat = 0; repeat < 2; repeat++) {
        runs.push(fixtureRun({
          workload: "pv-update",
          variant: v.id,
          batch: v.batch,
          n: 1024,
          repeat,
          ops: PV_UPDATES,
          machineMs: 20.48,
          result: ["pv-guest: applied=2000 rejected=48", "pv-guest: ok"],
          counters: {
            "paging.traps": traps,
            "paging.traps.hypercall": traps,
            "paging.batches": traps,
            "paging.updates-applied": 2000,
            "paging.rejections": 48,
            "hostport.instructions": PV_UPDATES * 100,
          },
        }));
      }
      continue;
    }
    const t = TRAPS[v.id]!;
    const paging = (ops: number) => ({
      "paging.traps": t * ops,
      ...(v.id === "shadow"
        ? { "paging.traps.pt-write": t * ops, "paging.shadow-fills": 2 * ops }
        : {}),
      ...(v.strategy === "queued" ? { "paging.batches": ops, "paging.pv-calls": 0 } : {}),
      "paging.updates-applied": 4 * ops,
    });
    for (let repeat = 0; repeat < 2; repeat++) {
      runs.push(fixtureRun({
        workload: "forkwait",
        variant: v.id,
        phase: "baseline",
        n: 20,
        repeat,
        machineMs: 2000,
        counters: { ...paging(20), "hostport.instructions": 1e6 + 20 * 8e5, "hostport.decoded": 1 },
      }));
      runs.push(fixtureRun({
        workload: "forkwait",
        variant: v.id,
        n: 100,
        repeat,
        machineMs: 2000 + 80 * 0.2,
        counters: {
          ...paging(100),
          "hostport.instructions": 1e6 + 100 * 8e5,
          "hostport.decoded": 1,
        },
      }));
      if (v.id === "queued") continue; // this cell failed
      runs.push(fixtureRun({
        workload: "faultstorm",
        variant: v.id,
        n: 4,
        repeat,
        windowMs: 10.24,
        counters: { ...paging(1024), "hostport.instructions": 1024 * 3000 },
      }));
    }
  }
  return runs;
}

function cells(): CellSummary[] {
  return summarize(fixtureRuns(), { workloads: WORKLOADS, variants: VARIANTS });
}

Deno.test("counter names: trap causes, labels and display order", () => {
  strictEqual(trapCause("traps.write"), "write");
  strictEqual(trapCause("traps-satp"), "satp");
  strictEqual(trapCause("trap:hypercall"), "hypercall");
  strictEqual(trapCause("trapsx"), undefined);
  strictEqual(counterLabel("paging.shadow-fills"), "shadow fills");
  strictEqual(counterLabel("paging.traps.pt-write"), "traps: pt-write");
  strictEqual(counterLabel("paging.traps.sfence"), "traps: sfence");
  strictEqual(counterLabel("paging.pv-calls"), "pv-calls");
  strictEqual(counterLabel("hostport.instructions"), "guest instructions");
  strictEqual(counterLabel("hostport.decoded"), "host port decoded");
  assertEquals(
    orderCounterKeys([
      "hostport.decoded",
      "paging.zzz",
      "hostport.instructions",
      "paging.shadow-flushes",
      "paging.traps.write",
      "paging.updates-applied",
      "paging.traps",
      "paging.traps.satp",
    ]),
    [
      "paging.traps",
      "paging.traps.satp",
      "paging.traps.write",
      "paging.updates-applied",
      "paging.shadow-flushes",
      "paging.zzz",
      "hostport.instructions",
      "hostport.decoded",
    ],
  );
});

Deno.test("formatValue keeps three significant digits or whole numbers", () => {
  assertEquals(
    [0, 0.5, 0.012345, 3.14159, 42.42, 999.6, 1234567, -2.5, NaN].map(formatValue),
    ["0", "0.5", "0.0123", "3.14", "42.4", "1,000", "1,234,567", "-2.50", "-"],
  );
});

Deno.test("the table has one block per workload and one column per variant", () => {
  const text = formatTables(cells(), { workloads: WORKLOADS, variants: VARIANTS }, {
    style: { head: [], border: [] },
  });
  const row = (label: string, block: number) => {
    const part = text.split("\n\n")[block]!;
    const line = part.split("\n").find((l) => l.startsWith(`│ ${label} `));
    ok(line, `no row "${label}" in\n${part}`);
    return line.split("│").slice(2, -1).map((c) => c.trim());
  };
  strictEqual(text.split("\n\n").length, 3);
  ok(text.includes("forkwait (N=100, baseline N=20): per fork"));
  ok(text.includes("faultstorm (N=4): per page"));
  ok(text.includes("pv-update (pv-guest, N=1024, 2048 updates per run): per update"), text);
  // The Linux workloads have the strategy columns, pv-update the --batch columns.
  ok(/│ forkwait[^│]*│ *wired *│ *shadow *│ *queued *│\n/.test(text), text);
  ok(/│ pv-update[^│]*│ *queued\/b8 *│ *queued\/b64 *│\n/.test(text), text);
  assertEquals(row("traps", 0), ["0", "12.0", "3.00"]);
  assertEquals(row("traps: pt-write", 0), ["-", "12.0", "-"]);
  assertEquals(row("updates applied", 0), ["4.00", "4.00", "4.00"]);
  assertEquals(row("shadow fills", 0), ["-", "2.00", "-"]);
  assertEquals(row("guest instructions", 0), ["800,000", "800,000", "800,000"]);
  assertEquals(row("host wall µs (median)", 0), ["200", "200", "200"]);
  assertEquals(row("host wall µs (median)", 1), ["10.0", "10.0", "failed"]);
  assertEquals(row("guest instructions", 1), ["3,000", "3,000", "failed"]);
  assertEquals(row("deterministic", 0), ["yes", "yes", "yes"]);
  ok(!text.split("\n\n")[0]!.includes(TRAPS_TIMES_BATCH));
  // pv-update: per update submitted; traps fall as 1/batch, so traps × batch stays 1.
  assertEquals(row("traps", 2), ["0.125", "0.0156"]);
  assertEquals(row("traps: hypercall", 2), ["0.125", "0.0156"]);
  assertEquals(row("batches", 2), ["0.125", "0.0156"]);
  assertEquals(row("updates applied", 2), ["0.977", "0.977"]);
  assertEquals(row("rejections", 2), ["0.0234", "0.0234"]);
  assertEquals(row("guest instructions", 2), ["100", "100"]);
  assertEquals(row("host wall µs (median)", 2), ["10.0", "10.0"]);
  assertEquals(row(TRAPS_TIMES_BATCH, 2), ["1.00", "1.00"]);
  // A strategy's own counter appears only when non-zero somewhere; other host port counters
  // stay in results.json.
  ok(!text.includes("pv-calls"));
  ok(!text.includes("decoded"));
});

Deno.test("the table marks a column whose counters differ between repeats", () => {
  const runs = fixtureRuns().map((r) =>
    r.variant === "shadow" && r.workload === "faultstorm" && r.repeat === 1
      ? { ...r, counters: { ...r.counters, "hostport.instructions": 1 } }
      : r
  );
  const c = summarize(runs, { workloads: WORKLOADS, variants: VARIANTS });
  const text = formatTables(c, { workloads: WORKLOADS, variants: VARIANTS }, {
    style: { head: [], border: [] },
  });
  const line = text.split("\n\n")[1]!.split("\n").find((l) => l.startsWith("│ deterministic"));
  assertEquals(line?.split("│").slice(2, -1).map((x) => x.trim()), ["yes", "NO", "failed"]);
});

Deno.test("results.json holds the runs, cells, problems and context, and round-trips", () => {
  const runs = fixtureRuns();
  const c = cells();
  const results = buildResults({
    date: new Date("2025-01-02T03:04:05Z"),
    commandLine: ["vmon", "compare", "--repeat", "2"],
    machine: { image: "linux-rv64-bench", hostport: "rv64,clock=icount", platform: "riscv-virt" },
    repeat: 2,
    workloads: WORKLOADS,
    variants: VARIANTS,
    runs: [
      ...runs,
      fixtureRun({
        workload: "faultstorm",
        variant: "queued",
        n: 4,
        counters: {},
        error: "the machine failed: triple fault",
      }),
    ],
    cells: c,
    mismatches: [],
    differences: [],
    host: { os: "linux", arch: "x86_64", kernel: "6.1", cpus: 2, deno: "2.9.6" },
    version: "0.1.0",
  });
  const parsed = JSON.parse(JSON.stringify(results));
  assertEquals(parsed, results);
  assertEquals(Object.keys(parsed).sort(), [
    "cells",
    "commandLine",
    "config",
    "date",
    "differences",
    "failures",
    "host",
    "mismatches",
    "runs",
    "schema",
    "vmonVersion",
  ]);
  strictEqual(parsed.schema, RESULTS_SCHEMA);
  strictEqual(parsed.date, "2025-01-02T03:04:05.000Z");
  strictEqual(parsed.vmonVersion, "0.1.0");
  strictEqual(parsed.runs.length, runs.length + 1);
  strictEqual(parsed.cells.length, 7);
  assertEquals(parsed.config.workloads[0], {
    name: "forkwait",
    n: 100,
    baseN: 20,
    opsPerN: 1,
    op: "fork",
    command: "/bench/run.sh forkwait 100",
  });
  assertEquals(parsed.config.workloads[2], {
    name: "pv-update",
    n: 1024,
    opsPerN: 1,
    op: "update",
    command: "pv.updates=1024 pv.random=256 pv.seed=1",
    kind: "pv",
    image: "pv-guest",
  });
  assertEquals(parsed.config.variants[4], {
    id: "queued/b64",
    strategy: "queued",
    batch: 64,
    options: { paravirtual: true },
  });
  const pvCell = parsed.cells.find((c: CellSummary) => c.variant === "queued/b64")!;
  strictEqual(pvCell.workload, "pv-update");
  strictEqual(pvCell.batch, 64);
  strictEqual(pvCell.ops, 2048);
  strictEqual(pvCell.perOp["paging.traps"], 1 / 64);
  strictEqual(pvCell.totals["paging.traps"], 32);
  strictEqual(pvCell.wallMethod, "machine");
  assertEquals(parsed.failures, [{
    workload: "faultstorm",
    variant: "queued",
    phase: "measure",
    repeat: 0,
    error: "the machine failed: triple fault",
  }]);
  const run = parsed.runs[0]!;
  for (const key of ["workload", "variant", "phase", "n", "repeat", "result", "counters"]) {
    ok(key in run, `run lacks ${key}`);
  }
  const cell = parsed.cells[1]!;
  strictEqual(cell.variant, "shadow");
  strictEqual(cell.perOp["paging.traps"], 12);
});

/** Checks that `text` is well-formed XML: balanced tags, quoted attributes, valid entities. */
function checkWellFormed(text: string): void {
  const stack: string[] = [];
  const body = text.replace(/<!--[\s\S]*?-->/g, "").replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, "");
  const tag = /<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < body.length) {
    const lt = body.indexOf("<", i);
    const textPart = body.slice(i, lt < 0 ? body.length : lt);
    for (const m of textPart.matchAll(/&([^;\s]*);?/g)) {
      ok(/^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);$/.test(m[0]), `bad entity ${m[0]}`);
    }
    if (lt < 0) break;
    tag.lastIndex = lt;
    const m = tag.exec(body);
    ok(m, `malformed tag at ${lt}: ${body.slice(lt, lt + 80)}`);
    const [, close, name, , selfClose] = m;
    if (close) strictEqual(stack.pop(), name, `mismatched </${name}> at ${lt}`);
    else if (!selfClose) stack.push(name!);
    i = tag.lastIndex;
  }
  assertEquals(stack, [], "unclosed tags");
}

Deno.test("the chart is a well-formed SVG naming every series, workload and panel", async () => {
  const svg = await renderChart(cells(), { title: "test data" });
  ok(svg.startsWith("<svg"), svg.slice(0, 100));
  ok(/^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/.test(svg));
  checkWellFormed(svg);
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  for (
    const name of [
      "wired",
      "shadow",
      "queued",
      "queued/b8",
      "queued/b64",
      "forkwait",
      "faultstorm",
      "pv-update",
    ]
  ) {
    ok(texts.includes(name), `no text "${name}" in the chart`);
  }
  for (const title of ["strategy traps per operation", "guest instructions per operation"]) {
    ok(texts.includes(title), `no panel "${title}"`);
  }
  ok(texts.includes("test data"));
  // One bar per value, zeros included (an empty bar labelled 0).
  const bars = svg.match(/<path [^>]*aria-roledescription="bar"/g) ?? [];
  strictEqual(bars.length, chartRows(cells()).length);
});

Deno.test("chart rows keep zeros and carry the printed values", () => {
  const rows = chartRows(cells());
  const traps = rows.filter((r) => r.measure === "strategy traps per operation");
  assertEquals(
    traps.map((r) => `${r.workload}/${r.strategy}=${r.value} "${r.label}"`),
    [
      'forkwait/wired=0 "0"',
      'forkwait/shadow=12 "12.0"',
      'forkwait/queued=3 "3.00"',
      'faultstorm/wired=0 "0"',
      'faultstorm/shadow=12 "12.0"',
      'pv-update/queued/b8=0.125 "0.125"',
      'pv-update/queued/b64=0.015625 "0.0156"',
    ],
  );
});

Deno.test("every chart panel has a linear y axis from zero: bar lengths are proportional", async () => {
  // 164,601 vs 167,562 guest instructions per fork (a 1.8% difference, issue 11): on the old
  // log axis that started near the smaller value the gap looked several times larger.
  const close = (variant: string, instructions: number): CellSummary => ({
    workload: "close",
    variant,
    strategy: variant,
    n: 100,
    ops: 80,
    op: "fork",
    repeats: 1,
    machineMsMedian: 1,
    perOp: { "paging.traps": 0, "hostport.instructions": instructions },
    totals: {},
    deterministic: true,
  });
  const data = [...cells(), close("wired-a", 164_601), close("wired-b", 167_562)];
  const spec = vegaLite.compile(chartSpec(data)).spec as { scales?: { name: string }[] };
  const yScales = (spec.scales ?? []).map((s) => s.name).filter((n) => n.endsWith("_y"));
  ok(yScales.length >= 8, `y scales: ${yScales.join(", ")}`);
  const view = await chartView(data);
  try {
    for (const name of yScales) {
      const scale = view.scale(name) as { type: string; domain(): number[] };
      strictEqual(scale.type, "linear", name);
      strictEqual(scale.domain()[0], 0, `${name} starts at ${scale.domain()[0]}`);
    }
    // The instructions panel of "close": the bars' pixel lengths keep the values' ratio.
    const name = yScales.find((n) => {
      const s = view.scale(n) as { domain(): number[] };
      return s.domain()[1]! > 167_562 && s.domain()[1]! < 167_562 * 1.5;
    });
    ok(name, "no panel holds the instruction counts");
    const y = view.scale(name) as (v: number) => number;
    const length = (v: number) => y(0) - y(v);
    const ratio = length(164_601) / length(167_562);
    ok(Math.abs(ratio - 164_601 / 167_562) < 1e-9, `bar length ratio ${ratio}`);
  } finally {
    view.finalize();
  }
  const rows = chartRows(data).filter((r) => r.strategy.startsWith("wired-"));
  ok(rows.some((r) => r.label === "164,601") && rows.some((r) => r.label === "167,562"));
});

Deno.test("writeOutputs writes the three files into a new folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-compare-test-" });
  try {
    const out = join(dir, "nested", "out");
    const files = writeOutputs(out, {
      results: buildResults({
        date: new Date(0),
        commandLine: ["vmon", "compare"],
        machine: { image: "x", hostport: "rv64,clock=icount", platform: "riscv-virt" },
        repeat: 1,
        workloads: [],
        variants: [],
        runs: [],
        cells: [],
        mismatches: [],
        differences: [],
      }),
      svg: "<svg></svg>",
      table: "table",
    });
    strictEqual(files.json, join(out, "results.json"));
    strictEqual(JSON.parse(Deno.readTextFileSync(files.json)).schema, RESULTS_SCHEMA);
    strictEqual(Deno.readTextFileSync(files.svg), "<svg></svg>");
    strictEqual(Deno.readTextFileSync(files.table), "table\n");
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
      "chart.svg",
      "results.json",
      "table.txt",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docs/paging.md documents every known counter and workload", () => {
  const doc = Deno.readTextFileSync(new URL("../docs/paging.md", import.meta.url));
  for (const c of KNOWN_COUNTERS) {
    ok(doc.includes(`| \`${c.name}\``), `docs/paging.md lacks counter ${c.name}`);
    ok(doc.includes(c.label), `docs/paging.md lacks label "${c.label}"`);
  }
  for (const w of KNOWN_WORKLOADS) {
    ok(doc.includes(`| \`${w.name}\``), `docs/paging.md lacks workload ${w.name}`);
    ok(
      new RegExp(`\\| \`${w.name}\` *\\|[^|]*\\| *${w.n} *\\|`).test(doc),
      `default N of ${w.name}`,
    );
  }
  // The results section holds a real run (with the command it came from) or says there is none.
  ok(/## Results[\s\S]*(No results yet|deno task vmon compare )/.test(doc));
  // --batch: the paravirtual row group and the row that shows traps falling as 1/batch.
  ok(doc.includes("### Paravirtual batches (`--batch`)"), "docs/paging.md lacks --batch");
  ok(doc.includes("`pv-update`") && doc.includes(TRAPS_TIMES_BATCH));
});
