import { deepStrictEqual as assertEquals, strictEqual, throws } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import {
  baselineN,
  benchCommand,
  CHURN_SEED,
  parseNOverrides,
  resolveWorkloads,
  WORKLOADS,
} from "./workloads.ts";
import { resolveVariants, type StrategyInfo } from "./strategies.ts";

function throwsVmon(fn: () => unknown, pattern: RegExp): void {
  throws(fn, (err: unknown) => err instanceof VmonError && pattern.test(err.message));
}

Deno.test("every known workload has a sensible default and a command", () => {
  for (const w of WORKLOADS) {
    const [run] = resolveWorkloads(w.name);
    strictEqual(run?.n, w.n);
    strictEqual(run.baseN, baselineN(w.n));
    strictEqual(benchCommand(run, 7).startsWith(`/bench/run.sh ${w.name} `), true);
  }
  strictEqual(resolveWorkloads(undefined).length, WORKLOADS.length);
});

Deno.test("churn takes its seed before N; others take N alone", () => {
  const [churn, fork] = resolveWorkloads("churn,forkwait", { n: "churn=40" });
  strictEqual(benchCommand(churn!, 40), `/bench/run.sh churn ${CHURN_SEED} 40`);
  strictEqual(benchCommand(fork!, 9), "/bench/run.sh forkwait 9");
});

Deno.test("baselineN is an eighth of N, at least 1, and absent when not below N", () => {
  strictEqual(baselineN(200), 25);
  strictEqual(baselineN(9), 1);
  strictEqual(baselineN(2), 1);
  strictEqual(baselineN(1), undefined);
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
