// Unit tests of `vmon compare`'s flags: `--workloads`, `--n`, `--strategies` and `--batch` turned
// into the lab's typed workloads and variants, and the one-line errors for mistakes. The CLI run
// end to end is tests/cli_compare_test.ts.

import { deepStrictEqual as assertEquals, strictEqual, throws } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import { baselineN, benchCommand, COMPARE_WORKLOADS, type StrategyInfo } from "../lab/mod.ts";
import { CHURN_SEED } from "../images/workloads/mod.ts";
import {
  commandLineOf,
  compareCommand,
  parseNOverrides,
  resolveVariants,
  resolveWorkloads,
} from "./compare.ts";

function throwsVmon(fn: () => unknown, pattern: RegExp): void {
  throws(fn, (err: unknown) => err instanceof VmonError && pattern.test(err.message));
}

Deno.test("every known workload resolves by name to its default N and command", () => {
  for (const w of COMPARE_WORKLOADS) {
    const [run] = resolveWorkloads(w.name);
    strictEqual(run?.n, w.n);
    strictEqual(run.baseN, baselineN(w.n));
    strictEqual(benchCommand(run, 7).startsWith(`/bench/run.sh ${w.name} `), true);
  }
  strictEqual(resolveWorkloads(undefined).length, COMPARE_WORKLOADS.length);
});

Deno.test("--n overrides N; churn takes its seed before N", () => {
  const [churn, fork] = resolveWorkloads("churn,forkwait", { n: "churn=40" });
  strictEqual(churn?.n, 40);
  strictEqual(benchCommand(churn!, 40), `/bench/run.sh churn ${CHURN_SEED} 40`);
  strictEqual(benchCommand(fork!, 9), "/bench/run.sh forkwait 9");
});

Deno.test("--n forkwait=1 and --no-baseline run no baseline", () => {
  const [w] = resolveWorkloads("forkwait", { n: "forkwait=1" });
  strictEqual(w?.baseN, undefined);
  const [x] = resolveWorkloads("forkwait", { baseline: false });
  strictEqual(x?.baseN, undefined);
});

Deno.test("workload errors are one clear line listing the known names", () => {
  throwsVmon(
    () => resolveWorkloads("forkwait,nosuch"),
    /^Unknown workload "nosuch": known workloads are forkwait, execloop, faultstorm, mmapchurn, mprotect, pipepong, cpuloop, churn, lua, sqlite3, pv-update \(with --batch\)$/,
  );
  throwsVmon(() => resolveWorkloads(" , "), /^Invalid --workloads " , ": the list is empty$/);
  throwsVmon(() => resolveWorkloads("cpuloop,cpuloop"), /"cpuloop" is given twice/);
  throwsVmon(() => parseNOverrides("forkwait"), /"forkwait" is not <workload>=<whole number>/);
  throwsVmon(() => parseNOverrides("forkwait=-3"), /is not <workload>=<whole number>/);
  throwsVmon(() => parseNOverrides("forkwait=0"), /N of "forkwait" must be at least 1/);
  throwsVmon(() => parseNOverrides("bogus=3"), /unknown workload "bogus" \(known: forkwait,/);
  throwsVmon(
    () => resolveWorkloads("forkwait", { n: "execloop=3" }),
    /workload "execloop" is not in --workloads/,
  );
  assertEquals([...parseNOverrides("forkwait=3, execloop=4")], [["forkwait", 3], ["execloop", 4]]);
});

Deno.test("--batch adds pv-update to the workloads; pv-update alone needs --batch", () => {
  assertEquals(
    resolveWorkloads("forkwait", { pv: true }).map((w) => [w.name, w.kind ?? "bench"]),
    [["forkwait", "bench"], ["pv-update", "pv"]],
  );
  const [pv, ...rest] = resolveWorkloads("pv-update", { pv: true, n: "pv-update=64" });
  strictEqual(rest.length, 0);
  strictEqual(pv?.n, 64);
  strictEqual(pv.baseN, undefined);
  strictEqual(benchCommand(pv, 64), "pv.updates=64 pv.random=256 pv.seed=1");
  strictEqual(benchCommand(pv, 64, 8), "pv.batch=8 pv.updates=64 pv.random=256 pv.seed=1");
  throws(
    () => resolveWorkloads("forkwait,pv-update"),
    (e: unknown) =>
      e instanceof VmonError &&
      /^Invalid --workloads "forkwait,pv-update": pv-update runs the queued strategy's paravirtual update call and needs --batch/
        .test(e.message),
  );
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

Deno.test("strategies default to every available one in wired, shadow, queued order", () => {
  const v = resolveVariants(undefined, { available: AVAILABLE });
  assertEquals(v.map((x) => x.id), ["wired", "shadow", "queued"]);
  assertEquals(v[2]?.options, {});
});

Deno.test("--batch adds a paravirtual queued variant per batch size, in the order given", () => {
  const v = resolveVariants("wired,queued", { available: AVAILABLE, batch: "1,64,64,8" });
  assertEquals(v.map((x) => x.id), ["wired", "queued", "queued/b1", "queued/b64", "queued/b8"]);
  assertEquals(v[3], {
    id: "queued/b64",
    strategy: "queued",
    batch: 64,
    options: { paravirtual: true },
  });
  // The batch variants run the pv-guest whatever --strategies lists; a plugin without the
  // paravirtual option gets no options (the run checks that the guest used the call).
  assertEquals(
    resolveVariants("wired", { available: AVAILABLE, batch: "8" }).map((x) => x.id),
    ["wired", "queued/b8"],
  );
  assertEquals(
    resolveVariants("queued", { available: [{ name: "queued" }], batch: "4096" })[1]?.options,
    {},
  );
});

Deno.test("strategy errors are one clear line", () => {
  throwsVmon(
    () => resolveVariants("wired,xen", { available: AVAILABLE }),
    /^Unknown paging strategy "xen": available strategies are wired, shadow, queued$/,
  );
  throwsVmon(
    () => resolveVariants("shadow", { available: [{ name: "wired" }] }),
    /^Unknown paging strategy "shadow": available strategies are wired$/,
  );
  throwsVmon(() => resolveVariants("wired,wired", { available: AVAILABLE }), /given twice/);
  throwsVmon(
    () => resolveVariants("wired", { available: [{ name: "wired" }], batch: "8" }),
    /^Cannot use --batch: it runs the pv-guest under the queued strategy, which is not available \(available strategies are wired\)$/,
  );
  throwsVmon(
    () => resolveVariants("queued", { available: AVAILABLE, batch: "8,x" }),
    /"x" is not a whole number of at least 1/,
  );
  throwsVmon(
    () => resolveVariants("queued", { available: AVAILABLE, batch: "512" }),
    /^Invalid --batch "512": 512 is above 256, the most the queued strategy accepts in one call \("max-batch"\)$/,
  );
  throwsVmon(
    () => resolveVariants("queued", { available: [{ name: "queued" }], batch: "8192" }),
    /8192 is above 4096, the most the pv-guest submits in one call$/,
  );
});

Deno.test("commandLineOf records the flags as given", () => {
  assertEquals(
    commandLineOf({ workloads: "forkwait", repeat: "2", baseline: false, console: true }),
    ["vmon", "compare", "--workloads", "forkwait", "--repeat", "2", "--no-baseline", "--console"],
  );
});

Deno.test("--cost-model is recorded, and an unknown profile is refused before any run", async () => {
  assertEquals(
    commandLineOf({ workloads: "forkwait", costModel: "recent-x86" }),
    ["vmon", "compare", "--workloads", "forkwait", "--cost-model", "recent-x86"],
  );
  let err: unknown;
  try {
    await compareCommand({ workloads: "forkwait", costModel: "pentium" });
  } catch (e) {
    err = e;
  }
  strictEqual(err instanceof VmonError, true);
  strictEqual(
    (err as Error).message,
    `Unknown cost model "pentium": built-in profiles are nehalem-ept, recent-x86, or give a .json profile file`,
  );
});
