/**
 * `vmon compare --from-snapshot` (lab/boot_snapshots.ts) on a small matrix (forkwait and cpuloop
 * with small N, wired, shadow and queued, baselines included), against the cold-boot comparison of
 * the same matrix. Every cold run boots the variant's one boot manifest (`vmon.exec=console`),
 * settles at `vmon: init ready` and gets its command typed there; every snapshot run restores the
 * snapshot taken at that line and gets the same input. So, run by run:
 *
 * - the same workload output and `result:` line;
 * - the same counters and exits, exactly, including those a snapshot disturbs (TLB fills, shadow
 *   fills, the queue): the cold run settled at the same instruction;
 * - counters identical across repeats (the icount clock);
 * - each variant was booted once for its snapshot.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../core/cache.ts";
import { buildImage, imageManifest, listImages } from "../images/mod.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";
import {
  COMPARE_WORKLOADS,
  HOSTPORT,
  PV_IMAGE,
  runComparison,
  type RunRecord,
  strategyVariant,
  workloadRun,
} from "../lab/mod.ts";
import { BootSnapshots } from "../lab/boot_snapshots.ts";
import { consoleExecInput } from "../images/linux-rv64/protocol.ts";
import { commandLineOf } from "../cli/compare.ts";

function missing(): string | undefined {
  if (!haveCrossCompiler()) return "riscv64-linux-gnu-gcc is not installed";
  const plugins = ["plugins/hostports/rv64", "plugins/platforms/riscv-virt"]
    .filter((dir) => !existsSync(join(REPO_ROOT, dir, "mod.ts")));
  if (plugins.length > 0) return `missing ${plugins.join(", ")}`;
  if (!listImages().some((i) => i.name === "linux-rv64-bench")) return "no linux-rv64-bench";
  return undefined;
}

const skip = missing();
if (skip) console.error(`compare_snapshot_test: skipped: ${skip}`);

const workload = (name: string, n: number) =>
  workloadRun(COMPARE_WORKLOADS.find((w) => w.name === name)!, { n });

/** A run's identity in the matrix. */
const key = (r: Pick<RunRecord, "workload" | "variant" | "phase" | "n">) =>
  `${r.workload} ${r.variant} ${r.phase} N=${r.n}`;

Deno.test({
  name: "compare --from-snapshot: the cold comparison's results and counters, exactly",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-compare-snap-test-" });
    try {
      const image = await buildImage("linux-rv64-bench");
      const matrix = {
        image,
        workloads: [workload("forkwait", 8), workload("cpuloop", 1000)],
        variants: ["wired", "shadow", "queued"].map((s) => strategyVariant(s)),
      };
      const cold = await runComparison({ ...matrix, repeat: 1, outDir: join(dir, "cold") });
      const snapshots: string[] = [];
      const snap = await runComparison({
        ...matrix,
        repeat: 2,
        fromSnapshot: true,
        outDir: join(dir, "snap"),
        onSnapshot: (v, event) => {
          if (event === "written") snapshots.push(v.id);
        },
      });
      assert.deepEqual(snapshots, ["wired", "shadow", "queued"], "each variant booted once");
      const coldRuns = cold.results.runs;
      const snapRuns = snap.results.runs;
      const report = JSON.stringify({ cold: cold.results.failures, snap: snap.results.failures });
      assert.deepEqual(cold.results.failures, [], report);
      assert.deepEqual(snap.results.failures, [], report);
      assert.equal(snapRuns.length, 2 * coldRuns.length);
      assert.deepEqual(snap.results.mismatches, []);
      assert.deepEqual(snap.results.differences, [], "counters differ between repeats");
      const coldByKey = new Map(coldRuns.map((r) => [key(r), r]));
      let shadowTraps = 0;
      for (const r of snapRuns) {
        const c = coldByKey.get(key(r));
        assert.ok(c !== undefined, key(r));
        assert.equal(r.status, 0);
        assert.ok(r.result.length === 1 && r.result[0]!.startsWith(`result: ${r.workload} `));
        assert.deepEqual(r.result, c.result, key(r));
        assert.deepEqual(r.output, c.output, key(r));
        assert.equal(r.command, c.command);
        assert.deepEqual(r.counters, c.counters, key(r));
        assert.deepEqual(r.exits, c.exits, key(r));
        if (r.variant === "shadow") shadowTraps += r.counters["paging.traps"] ?? 0;
      }
      // The strategies did work the snapshot could have disturbed.
      assert.ok(shadowTraps > 0, "shadow trapped");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "compare --from-snapshot: a machine that never prints the marker is refused with one line",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // The pv-guest prints its lines and powers off without init's marker.
    const image = await buildImage(PV_IMAGE);
    const snapshots = new BootSnapshots({
      manifest: (variant) => ({
        ...imageManifest(image, { hostport: HOSTPORT, cpus: 1 }),
        paging: { use: variant.strategy, options: { ...variant.options } },
      }),
      timeoutMs: 120_000,
    });
    try {
      await assert.rejects(() => snapshots.pathFor(strategyVariant("wired")), (e: Error) => {
        assert.match(
          e.message,
          /^Cannot take the boot snapshot of wired: the machine ended \(.*\) before printing "vmon: init ready" \(last lines: .*pv-guest/,
        );
        assert.ok(!e.message.includes("\n"), e.message);
        return true;
      });
      assert.equal(snapshots.taken, 0);
    } finally {
      await snapshots.dispose();
    }
    assert.throws(() => consoleExecInput("echo a\necho b"), /has a line break/);
    assert.ok(commandLineOf({ fromSnapshot: true }).includes("--from-snapshot"));
  },
});
