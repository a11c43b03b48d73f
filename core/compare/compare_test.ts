/**
 * End to end: `vmon compare` on a tiny matrix (one workload, wired only, two repeats) through the
 * CLI in a child process, booting the real linux-rv64-bench image on the rv64 port. Skipped, with
 * the reason in the test name, until the host port, the platform and the image exist.
 */
import { deepStrictEqual as assertEquals, ok, strictEqual } from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../cache.ts";
import { listImages } from "../../images/mod.ts";
import { runCli } from "../cli/_spawn.ts";
import type { CompareResults } from "./results.ts";

function missingParts(): string | undefined {
  const missing: string[] = [];
  for (const dir of ["plugins/hostports/rv64", "plugins/platforms/riscv-virt"]) {
    if (!existsSync(join(REPO_ROOT, dir, "mod.ts"))) missing.push(`${dir}/mod.ts`);
  }
  if (!listImages().some((image) => image.name === "linux-rv64-bench")) {
    missing.push(`the "linux-rv64-bench" entry in images/mod.ts`);
  }
  return missing.length > 0 ? `missing ${missing.join(", ")}` : undefined;
}

const skip = missingParts();
const NAME = "vmon compare runs a tiny matrix end to end (forkwait, wired, repeat 2)";

Deno.test({
  name: skip ? `${NAME} (skipped: ${skip})` : NAME,
  ignore: skip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-compare-e2e-" });
    try {
      const out = join(dir, "out");
      const result = await runCli([
        "compare",
        "--workloads",
        "forkwait",
        "--strategies",
        "wired",
        "--repeat",
        "2",
        "--n",
        "forkwait=8",
        "--out",
        out,
        "--timeout",
        "600",
      ]);
      const report = `--- status ${result.status}\n--- stderr\n${result.stderr.slice(-4000)}\n` +
        `--- stdout\n${result.stdout.slice(-4000)}`;
      ok(existsSync(join(out, "results.json")), `no results.json\n${report}`);
      const results: CompareResults = JSON.parse(
        Deno.readTextFileSync(join(out, "results.json")),
      );
      // Two repeats of the baseline (N=1) and of the measured run (N=8).
      assertEquals(
        results.runs.map((r) => `${r.phase}:${r.n}#${r.repeat}`),
        ["baseline:1#0", "measure:8#0", "baseline:1#1", "measure:8#1"],
      );
      assertEquals(results.failures, [], report);
      for (const run of results.runs) {
        strictEqual(run.result.length, 1, report);
        ok(/^result: forkwait n=\d+ checksum=[0-9a-f]{16}$/.test(run.result[0]!), run.result[0]);
        ok((run.counters["hostport.instructions"] ?? 0) > 0);
        strictEqual(run.counters["paging.traps"], 0, "wired traps nothing");
      }
      assertEquals(results.mismatches, [], report);
      assertEquals(results.differences, [], `counters differ between repeats\n${report}`);
      const cell = results.cells[0];
      ok(cell !== undefined && cell.variant === "wired" && cell.repeats === 2);
      ok((cell.perOp["hostport.instructions"] ?? 0) > 0, "a fork costs guest instructions");
      strictEqual(result.status, 0, report);
      ok(result.stdout.includes("forkwait (N=8, baseline N=1): per fork"), report);
      const svg = Deno.readTextFileSync(join(out, "chart.svg"));
      ok(svg.startsWith("<svg") && svg.includes(">wired<"), "the chart names the series");
      ok(Deno.readTextFileSync(join(out, "table.txt")).includes("guest instructions"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("vmon compare rejects unknown names with one line listing the known ones", async () => {
  const workload = await runCli(["compare", "--workloads", "forkwait,nosuch"]);
  strictEqual(workload.status, 1);
  assertEquals(workload.stderr.trim().split("\n"), [
    'vmon: Unknown workload "nosuch": known workloads are forkwait, execloop, faultstorm, mmapchurn, mprotect, pipepong, cpuloop, churn, lua, sqlite3',
  ]);
  const strategy = await runCli(["compare", "--workloads", "forkwait", "--strategies", "nosuch"]);
  strictEqual(strategy.status, 1);
  const lines = strategy.stderr.trim().split("\n");
  strictEqual(lines.length, 1, strategy.stderr);
  ok(/^vmon: Unknown paging strategy "nosuch": available strategies are wired\b/.test(lines[0]!));
  const repeat = await runCli(["compare", "--repeat", "0"]);
  assertEquals(repeat.stderr.trim().split("\n"), [
    `vmon: Invalid --repeat "0": expected a whole number from 1 to 1000`,
  ]);
});
