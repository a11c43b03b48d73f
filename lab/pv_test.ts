// Unit tests of the paravirtual row group (`--batch`): the workload, planning (pv-update
// only under the batch variants), the reading of the pv-guest's console lines, and per-update
// aggregation. Every number here is test data built by hand, not a measurement.

import { deepStrictEqual as assertEquals, ok, strictEqual, throws } from "node:assert/strict";
import { checkDeterminism, findMismatches, summarize } from "./aggregate.ts";
import { fixturePvLines, fixtureRun, fixtureVariant, fixtureWorkload } from "./_fixtures.ts";
import { parsePvOutput, PV_WORKLOAD, pvCmdline, pvWorkload, variantsFor } from "./pv.ts";
import { planRuns, runManifest } from "./runner.ts";
import { benchCommand } from "./workloads.ts";
import type { BuiltImage } from "../images/mod.ts";

const VARIANTS = [
  fixtureVariant("wired"),
  fixtureVariant("queued"),
  fixtureVariant("queued/b1", 1),
  fixtureVariant("queued/b64", 64),
];

Deno.test("pv-update runs the pv-guest with its options on the command line, no baseline", () => {
  const pv = pvWorkload(64);
  strictEqual(pv.name, PV_WORKLOAD);
  strictEqual(pv.kind, "pv");
  strictEqual(pv.n, 64);
  strictEqual(pv.baseN, undefined);
  strictEqual(benchCommand(pv, 64), "pv.updates=64 pv.random=256 pv.seed=1");
  strictEqual(benchCommand(pv, 64, 8), "pv.batch=8 pv.updates=64 pv.random=256 pv.seed=1");
  strictEqual(pvCmdline(pv, { n: 64, batch: 8 }), benchCommand(pv, 64, 8));
});

Deno.test("planRuns: pv-update under the batch variants only, Linux workloads under the rest", () => {
  const workloads = [fixtureWorkload("forkwait", 8, { baseN: 1 }), pvWorkload(128)];
  assertEquals(variantsFor(workloads[1]!, VARIANTS).map((v) => v.id), ["queued/b1", "queued/b64"]);
  assertEquals(variantsFor(workloads[0]!, VARIANTS).map((v) => v.id), ["wired", "queued"]);
  const runs = planRuns({ workloads, variants: VARIANTS, repeat: 2 });
  assertEquals(
    runs.map((r) => `${r.workload.name}/${r.variant.id}/${r.phase}:${r.n}#${r.repeat}`),
    [0, 1].flatMap((i) => [
      `forkwait/wired/baseline:1#${i}`,
      `forkwait/wired/measure:8#${i}`,
      `forkwait/queued/baseline:1#${i}`,
      `forkwait/queued/measure:8#${i}`,
      `pv-update/queued/b1/measure:128#${i}`,
      `pv-update/queued/b64/measure:128#${i}`,
    ]),
  );
});

Deno.test("a pv-update run boots the pv-guest deterministically with the batch on its command line", () => {
  const pvImage: BuiltImage = {
    name: "pv-guest",
    kernel: "/nonexistent/pv-guest.elf",
    cmdline: "pv.batch=16",
    defaults: { hostport: "rv64", platform: "riscv-virt", devices: [], memory: "32M" },
  };
  const linux: BuiltImage = { ...pvImage, name: "linux-rv64-bench", kernel: "/nonexistent/Image" };
  const run = {
    workload: pvWorkload(1024),
    variant: VARIANTS[3]!,
    phase: "measure" as const,
    n: 1024,
    repeat: 0,
  };
  // --cpus and --mem are for Linux: the pv-guest always runs on one vCPU with its own memory.
  const m = runManifest(run, { image: linux, pvImage, cpus: 2, memory: 1 << 30 });
  strictEqual(m.boot?.kernel, "/nonexistent/pv-guest.elf");
  strictEqual(m.boot?.cmdline, "pv.batch=64 pv.updates=1024 pv.random=256 pv.seed=1");
  strictEqual(m.cpus, 1);
  strictEqual(m.memory, "32M");
  assertEquals(m.hostport, { use: "rv64", options: { clock: "icount" } });
  strictEqual(m.platform.options?.["rng-seed"], false);
  assertEquals(m.paging, { use: "queued", options: { paravirtual: true } });
  throws(() => runManifest(run, { image: linux }), /the pv-guest image was not built/);
});

const COUNTERS = { "paging.updates-applied": 1636, "paging.rejections": 166 };

Deno.test("parsePvOutput reads the update count and keeps batch-independent result lines", () => {
  const lines = [
    "OpenSBI-less boot noise",
    ...fixturePvLines({
      batch: 64,
      calls: 29,
      applied: 1636,
      rejected: 166,
    }),
  ];
  const out = parsePvOutput(lines, { batch: 64, counters: COUNTERS });
  strictEqual(out.error, undefined);
  strictEqual(out.updates, 1802);
  strictEqual(out.calls, 29);
  strictEqual(out.output.length, 5);
  assertEquals(out.result, [
    "pv-guest: invalid sent=5 rejected=5",
    "pv-guest: random sent=256 applied=95 rejected=161",
    "pv-guest: applied=1636 rejected=166",
    "pv-guest: ok",
  ]);
  // Another batch size gives the same result lines (the mismatch check compares them).
  const other = parsePvOutput(
    fixturePvLines({ batch: 1, calls: 1793, applied: 1636, rejected: 166 }),
    { batch: 1, counters: COUNTERS },
  );
  assertEquals(other.result, out.result);
});

Deno.test("parsePvOutput refuses runs that did not measure what was asked", () => {
  const good = fixturePvLines({ batch: 8, calls: 226, applied: 1636, rejected: 166 });
  const error = (lines: string[], counters: Record<string, number> = COUNTERS, batch = 8) =>
    parsePvOutput(lines, { batch, counters }).error ?? "";
  strictEqual(error(good), "");
  ok(/used batch 8 instead of 16/.test(error(good, COUNTERS, 16)));
  ok(/did not use the update call/.test(error(good.map((l) => l.replace("hypercall", "stores")))));
  ok(/checks failed: pv-guest: FAILED: x/.test(error([...good, "pv-guest: FAILED: x"])));
  ok(/no "pv-guest: ok" line/.test(error(good.slice(0, -1))));
  ok(/no "batch=" line/.test(error([])));
  ok(/no "calls=\.\.\./.test(error(good.filter((l) => !l.includes("calls=")))));
  ok(
    /the monitor counted 1635 updates applied and 166 rejections, the guest 1636 and 166/.test(
      error(good, { ...COUNTERS, "paging.updates-applied": 1635 }),
    ),
  );
});

Deno.test("pv-update cells are per update submitted; repeats and batch sizes are checked", () => {
  const workloads = [pvWorkload(1024)];
  const variants = VARIANTS.slice(2);
  // Test data: 1800 updates per run, one trap per call plus one probe.
  const run = (variant: string, batch: number, repeat: number, extra = 0) =>
    fixtureRun({
      workload: PV_WORKLOAD,
      variant,
      batch,
      n: 1024,
      repeat,
      ops: 1800,
      machineMs: 18 + repeat,
      result: ["pv-guest: applied=1700 rejected=100", "pv-guest: ok"],
      counters: {
        "paging.traps": 1800 / batch + 1 + extra,
        "paging.traps.hypercall": 1800 / batch + 1,
        "paging.updates-applied": 1700,
        "hostport.instructions": 360_000,
      },
    });
  const runs = [run("queued/b1", 1, 0), run("queued/b1", 1, 1), run("queued/b64", 64, 0)];
  const cells = summarize(runs, { workloads, variants });
  assertEquals(cells.map((c) => [c.variant, c.batch, c.ops, c.repeats]), [
    ["queued/b1", 1, 1800, 2],
    ["queued/b64", 64, 1800, 1],
  ]);
  strictEqual(cells[0]?.perOp["paging.traps"], 1801 / 1800);
  strictEqual(cells[1]?.perOp["paging.traps"], (1800 / 64 + 1) / 1800);
  strictEqual(cells[0]?.perOp["hostport.instructions"], 200);
  strictEqual(cells[0]?.wallMethod, "machine");
  strictEqual(cells[0]?.wallUsPerOp, 18.5 * 1000 / 1800);
  assertEquals(checkDeterminism(runs), []);
  assertEquals(findMismatches(runs), []);
  // A counter that moves between repeats, and a result that differs between batch sizes.
  const moved = [...runs, run("queued/b64", 64, 1, 2)];
  assertEquals(checkDeterminism(moved).map((d) => [d.variant, d.counter, d.values]), [
    ["queued/b64", "paging.traps", [1800 / 64 + 1, 1800 / 64 + 3]],
  ]);
  const wrong = [...runs, { ...run("queued/b64", 64, 1), result: ["pv-guest: applied=1699"] }];
  assertEquals(findMismatches(wrong).map((m) => [m.got.variant, m.got.repeat]), [[
    "queued/b64",
    1,
  ]]);
});
