/**
 * End to end: `vmon compare` on a tiny matrix (one workload, wired only, two repeats) through the
 * CLI in a child process, booting the real linux-rv64-bench image on the rv64 port; and
 * `--batch` on the real pv-guest image under queued (a few seconds). Skipped, with the reason in
 * the test name, when the host port, the platform, the image or the cross compiler is missing.
 */
import { deepStrictEqual as assertEquals, ok, strictEqual } from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../core/cache.ts";
import { listImages } from "../images/mod.ts";
import { runCli } from "../cli/_spawn.ts";
import type { CompareResults } from "../lab/mod.ts";

/** The plugin folders every end-to-end run needs that do not exist. */
function missingPlugins(): string[] {
  return ["plugins/hostports/rv64", "plugins/platforms/riscv-virt"]
    .filter((dir) => !existsSync(join(REPO_ROOT, dir, "mod.ts")))
    .map((dir) => `${dir}/mod.ts`);
}

function missingParts(): string | undefined {
  const missing = missingPlugins();
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

function missingPvParts(): string | undefined {
  const missing = missingPlugins();
  if (!listImages().some((image) => image.name === "pv-guest")) {
    missing.push(`the "pv-guest" entry in images/mod.ts`);
  }
  if (missing.length > 0) return `missing ${missing.join(", ")}`;
  try {
    new Deno.Command("riscv64-linux-gnu-gcc", { args: ["--version"], stdout: "null" }).outputSync();
  } catch {
    return "riscv64-linux-gnu-gcc is not installed";
  }
  return undefined;
}

const pvSkip = missingPvParts();
const PV_NAME = "vmon compare --batch runs the pv-guest under queued per batch size (repeat 2)";

Deno.test({
  name: pvSkip ? `${PV_NAME} (skipped: ${pvSkip})` : PV_NAME,
  ignore: pvSkip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-compare-pv-e2e-" });
    try {
      const out = join(dir, "out");
      const result = await runCli([
        "compare",
        "--workloads",
        "pv-update",
        "--strategies",
        "queued",
        "--batch",
        "1,8,64",
        "--repeat",
        "2",
        "--out",
        out,
        "--timeout",
        "120",
      ]);
      const report = `--- status ${result.status}\n--- stderr\n${result.stderr.slice(-4000)}\n` +
        `--- stdout\n${result.stdout.slice(-6000)}`;
      strictEqual(result.status, 0, report);
      const results: CompareResults = JSON.parse(
        Deno.readTextFileSync(join(out, "results.json")),
      );
      strictEqual(results.config.image, "pv-guest");
      assertEquals(
        results.runs.map((r) => `${r.variant}#${r.repeat}`),
        [
          "queued/b1#0",
          "queued/b8#0",
          "queued/b64#0",
          "queued/b1#1",
          "queued/b8#1",
          "queued/b64#1",
        ],
      );
      assertEquals(results.failures, [], report);
      assertEquals(results.mismatches, [], report);
      assertEquals(results.differences, [], `counters differ between repeats\n${report}`);
      for (const run of results.runs) {
        ok(run.command.startsWith(`pv.batch=${run.batch} `), run.command);
        ok(run.result.includes("pv-guest: ok"), run.result.join("\n"));
        // The guest's own count of updates: the same whatever the batch size.
        strictEqual(run.ops, results.runs[0]!.ops);
      }
      const traps = Object.fromEntries(
        results.cells.map((c) => [c.batch!, c.perOp["paging.traps"] ?? NaN]),
      );
      // Per update, traps fall as 1/batch (each call is one trap; a few fixed calls remain).
      ok(traps[1]! > 0.9 && traps[1]! <= 1.01, JSON.stringify(traps));
      ok(traps[1]! / traps[8]! > 7, JSON.stringify(traps));
      ok(traps[8]! / traps[64]! > 6, JSON.stringify(traps));
      ok(result.stdout.includes("traps × batch size"), report);
      ok(/pv-update \(pv-guest, N=1024, \d+ updates per run\): per update/.test(result.stdout));
      const svg = Deno.readTextFileSync(join(out, "chart.svg"));
      ok(svg.includes(">queued/b64<") && svg.includes(">pv-update<"), "the chart names the series");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("vmon compare rejects unknown names with one line listing the known ones", async () => {
  const workload = await runCli(["compare", "--workloads", "forkwait,nosuch"]);
  strictEqual(workload.status, 1);
  assertEquals(workload.stderr.trim().split("\n"), [
    'vmon: Unknown workload "nosuch": known workloads are forkwait, execloop, faultstorm, mmapchurn, mprotect, pipepong, cpuloop, churn, lua, sqlite3, pv-update (with --batch)',
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
