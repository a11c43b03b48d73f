// Unit tests of the comparison's workloads and variants as typed values: defaults from the bench
// image's workload table, baselines, guest commands, strategy and batch variants. The parsing of
// `--workloads`, `--n`, `--strategies` and `--batch` is tested in cli/compare_test.ts.

import { deepStrictEqual as assertEquals, strictEqual, throws } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import { BENCH_WORKLOADS, CHURN_SEED } from "../images/workloads/mod.ts";
import { baselineN, benchCommand, COMPARE_WORKLOADS, workloadRun } from "./workloads.ts";
import {
  batchVariant,
  maxBatch,
  sortStrategies,
  type StrategyInfo,
  strategyVariant,
} from "./strategies.ts";

function byName(name: string) {
  const info = COMPARE_WORKLOADS.find((w) => w.name === name);
  if (info === undefined) throw new Error(`no workload ${name}`);
  return info;
}

Deno.test("every known workload has a sensible default and a command", () => {
  for (const w of COMPARE_WORKLOADS) {
    const run = workloadRun(w);
    strictEqual(run.n, w.n);
    strictEqual(run.baseN, baselineN(w.n));
    strictEqual(benchCommand(run, 7).startsWith(`/bench/run.sh ${w.name} `), true);
  }
  // The comparison measures the image's workloads that have a default N, in the image's order.
  assertEquals(
    COMPARE_WORKLOADS.map((w) => w.name),
    BENCH_WORKLOADS.filter((w) => w.n !== undefined).map((w) => w.name),
  );
  throws(
    () => workloadRun(BENCH_WORKLOADS.find((w) => w.n === undefined)!),
    (e: unknown) => e instanceof VmonError && /has no default N/.test(e.message),
  );
});

Deno.test("churn takes its seed before N; others take N alone", () => {
  const churn = workloadRun(byName("churn"), { n: 40 });
  const fork = workloadRun(byName("forkwait"));
  strictEqual(benchCommand(churn, 40), `/bench/run.sh churn ${CHURN_SEED} 40`);
  strictEqual(benchCommand(fork, 9), "/bench/run.sh forkwait 9");
});

Deno.test("baselineN is an eighth of N, at least 1, and absent when not below N", () => {
  strictEqual(baselineN(200), 25);
  strictEqual(baselineN(9), 1);
  strictEqual(baselineN(2), 1);
  strictEqual(baselineN(1), undefined);
  strictEqual(workloadRun(byName("forkwait"), { n: 1 }).baseN, undefined);
  strictEqual(workloadRun(byName("forkwait"), { baseline: false }).baseN, undefined);
});

const AVAILABLE: StrategyInfo[] = [
  {
    name: "queued",
    options: {
      "max-batch": { type: "integer" as const, description: "m", default: 256 },
      paravirtual: { type: "boolean" as const, description: "p", default: true },
    },
  },
  { name: "wired" },
  { name: "shadow", options: {} },
];

Deno.test("strategies sort wired, shadow, queued first; variants carry default options", () => {
  assertEquals(sortStrategies(AVAILABLE).map((s) => s.name), ["wired", "shadow", "queued"]);
  assertEquals(strategyVariant("shadow"), { id: "shadow", strategy: "shadow", options: {} });
});

Deno.test("batch variants: paravirtual when the plugin offers it, capped by max-batch", () => {
  assertEquals(batchVariant(AVAILABLE[0]!, 64), {
    id: "queued/b64",
    strategy: "queued",
    batch: 64,
    options: { paravirtual: true },
  });
  assertEquals(batchVariant({ name: "queued" }, 8).options, {});
  strictEqual(maxBatch(AVAILABLE[0]!), 256);
  strictEqual(maxBatch({ name: "queued" }), 4096);
});
