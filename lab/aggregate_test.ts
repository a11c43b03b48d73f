import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";

function assertAlmostEquals(actual: number, expected: number, epsilon = 1e-9): void {
  assert(Math.abs(actual - expected) <= epsilon, `${actual} is not close to ${expected}`);
}
import {
  checkDeterminism,
  findMismatches,
  flattenCounters,
  median,
  summarize,
} from "./aggregate.ts";
import { fixtureRun, fixtureVariant, fixtureWorkload } from "./_fixtures.ts";

Deno.test("median of odd, even, unsorted and empty lists", () => {
  assertEquals(median([3]), 3);
  assertEquals(median([9, 1, 5]), 5);
  assertEquals(median([10, 2, 4, 8]), 6);
  assertEquals(median([-1, -3]), -2);
  assert(Number.isNaN(median([])));
});

Deno.test("flattenCounters takes the strategy's metrics and the host port's counters", () => {
  const flat = flattenCounters({
    exits: { mmio: 3 },
    plugins: {},
    metrics: { shadow: { traps: 5, "traps.write": 4 }, uart16550: { tx_bytes: 99 } },
    hostport: { instructions: 1000 },
    wallMs: 1,
  }, "shadow");
  assertEquals(flat, {
    "paging.traps": 5,
    "paging.traps.write": 4,
    "hostport.instructions": 1000,
  });
});

Deno.test("summarize subtracts the baseline and divides by the extra operations", () => {
  const w = fixtureWorkload("forkwait", 100, { baseN: 20 });
  const v = fixtureVariant("shadow");
  const runs = [];
  for (let repeat = 0; repeat < 3; repeat++) {
    runs.push(fixtureRun({
      workload: "forkwait",
      variant: "shadow",
      phase: "baseline",
      n: 20,
      repeat,
      machineMs: 1000 + repeat,
      counters: { "paging.traps": 1000 + 20 * 7, "hostport.instructions": 5e6 + 20 * 900 },
    }));
    runs.push(fixtureRun({
      workload: "forkwait",
      variant: "shadow",
      n: 100,
      repeat,
      // machine time: baseline + 80 ops * 50 us, plus noise in repeat 2
      machineMs: 1000 + repeat + 4 + (repeat === 2 ? 40 : 0),
      windowMs: 5,
      guestMs: 10,
      counters: { "paging.traps": 1000 + 100 * 7, "hostport.instructions": 5e6 + 100 * 900 },
    }));
  }
  const cells = summarize(runs, { workloads: [w], variants: [v] });
  assertEquals(cells.length, 1);
  const cell = cells[0]!;
  assertEquals(cell.ops, 80);
  assertEquals(cell.baseN, 20);
  assertEquals(cell.repeats, 3);
  assertEquals(cell.perOp["paging.traps"], 7);
  assertEquals(cell.perOp["hostport.instructions"], 900);
  assertEquals(cell.totals["paging.traps"], 1700);
  // Only the measured runs have a marker window: the machine times are subtracted.
  assertEquals(cell.wallMethod, "baseline");
  assertAlmostEquals(cell.wallUsPerOp!, 4 * 1000 / 80); // median of 4, 4, 44 ms
  assertEquals(cell.windowMsMedian, 5);
  assertEquals(cell.guestUsPerOp, 10 * 1000 / 100);
  assertEquals(cell.deterministic, true);
});

Deno.test("summarize subtracts the baseline's marker window when both runs have one", () => {
  const w = fixtureWorkload("forkwait", 100, { baseN: 20 });
  const v = fixtureVariant("wired");
  const runs = [0, 1, 2].flatMap((repeat) => [
    fixtureRun({
      workload: "forkwait",
      variant: "wired",
      phase: "baseline",
      n: 20,
      repeat,
      machineMs: 900 + 100 * repeat, // boot noise that the windows do not see
      counters: {},
      windowMs: 3,
    }),
    fixtureRun({
      workload: "forkwait",
      variant: "wired",
      n: 100,
      repeat,
      machineMs: 2000,
      windowMs: 3 + 8,
      counters: {},
    }),
  ]);
  const cell = summarize(runs, { workloads: [w], variants: [v] })[0]!;
  assertEquals(cell.wallMethod, "window-baseline");
  assertAlmostEquals(cell.wallUsPerOp!, 8 * 1000 / 80);
});

Deno.test("summarize without a baseline divides totals by n * opsPerN and uses the window", () => {
  const w = fixtureWorkload("faultstorm", 4, { opsPerN: 256, op: "page" });
  const v = fixtureVariant("wired");
  const runs = [1, 3, 2].map((windowMs, repeat) =>
    fixtureRun({
      workload: "faultstorm",
      variant: "wired",
      n: 4,
      repeat,
      windowMs,
      counters: { "hostport.tlbFills": 2048 },
    })
  );
  const cell = summarize(runs, { workloads: [w], variants: [v] })[0]!;
  assertEquals(cell.ops, 1024);
  assertEquals(cell.baseN, undefined);
  assertEquals(cell.perOp["hostport.tlbFills"], 2);
  assertEquals(cell.wallMethod, "window");
  assertAlmostEquals(cell.wallUsPerOp!, 2 * 1000 / 1024);
});

Deno.test("summarize ignores failed runs and leaves out cells with none left", () => {
  const w = fixtureWorkload("execloop", 10);
  const ok = fixtureRun({ workload: "execloop", variant: "wired", n: 10, counters: { a: 10 } });
  const bad = fixtureRun({
    workload: "execloop",
    variant: "shadow",
    n: 10,
    counters: { a: 99 },
    error: "the machine failed: triple fault",
  });
  const cells = summarize([ok, bad], {
    workloads: [w],
    variants: [fixtureVariant("wired"), fixtureVariant("shadow")],
  });
  assertEquals(cells.map((c) => c.variant), ["wired"]);
  assertEquals(cells[0]?.repeats, 1);
});

Deno.test("checkDeterminism reports each counter that differs between repeats", () => {
  const runs = [0, 1, 2].map((repeat) =>
    fixtureRun({
      workload: "pipepong",
      variant: "queued",
      n: 50,
      repeat,
      counters: {
        "paging.traps": 40,
        "hostport.instructions": repeat === 1 ? 123457 : 123456,
      },
    })
  );
  // Another cell whose counters agree, and a single-run cell, report nothing.
  runs.push(fixtureRun({ workload: "pipepong", variant: "wired", n: 50, counters: { x: 1 } }));
  runs.push(
    fixtureRun({ workload: "pipepong", variant: "wired", n: 50, repeat: 1, counters: { x: 1 } }),
  );
  runs.push(fixtureRun({ workload: "cpuloop", variant: "wired", n: 5, counters: { x: 9 } }));
  const diffs = checkDeterminism(runs);
  assertEquals(diffs, [{
    workload: "pipepong",
    variant: "queued",
    phase: "measure",
    counter: "hostport.instructions",
    values: [123456, 123457, 123456],
  }]);
  const cells = summarize(runs, {
    workloads: [fixtureWorkload("pipepong", 50)],
    variants: [fixtureVariant("wired"), fixtureVariant("queued")],
  });
  assertEquals(cells.map((c) => [c.variant, c.deterministic]), [["wired", true], [
    "queued",
    false,
  ]]);
});

Deno.test("checkDeterminism treats a counter missing in one repeat as a difference", () => {
  const runs = [
    fixtureRun({
      workload: "churn",
      variant: "shadow",
      n: 8,
      counters: { "paging.shadow-fills": 3 },
    }),
    fixtureRun({ workload: "churn", variant: "shadow", n: 8, repeat: 1, counters: {} }),
  ];
  assertEquals(checkDeterminism(runs).map((d) => [d.counter, d.values]), [[
    "paging.shadow-fills",
    [3, 0],
  ]]);
});

Deno.test("findMismatches compares every run with the first of its workload, phase and N", () => {
  const good = ["result: churn 1 n=8 checksum=aaaa"];
  const runs = [
    fixtureRun({ workload: "churn", variant: "wired", n: 8, result: good, counters: {} }),
    fixtureRun({ workload: "churn", variant: "shadow", n: 8, result: good, counters: {} }),
    fixtureRun({
      workload: "churn",
      variant: "queued",
      n: 8,
      repeat: 1,
      result: ["result: churn 1 n=8 checksum=bbbb"],
      counters: {},
    }),
    // Baselines have another N: compared among themselves only.
    fixtureRun({ workload: "churn", variant: "wired", phase: "baseline", n: 1, counters: {} }),
    // A failed run is not a mismatch (it is reported as a failure).
    fixtureRun({
      workload: "churn",
      variant: "shadow",
      n: 8,
      result: [],
      counters: {},
      error: "x",
    }),
  ];
  const mismatches = findMismatches(runs);
  assertEquals(mismatches.length, 1);
  assertEquals(mismatches[0], {
    workload: "churn",
    phase: "measure",
    n: 8,
    expected: { variant: "wired", repeat: 0, output: good },
    got: { variant: "queued", repeat: 1, output: ["result: churn 1 n=8 checksum=bbbb"] },
  });
  assertEquals(findMismatches(runs.slice(0, 2)), []);
});
