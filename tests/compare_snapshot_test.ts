/**
 * `vmon compare --from-snapshot` (lab/boot_snapshots.ts) on a small matrix (forkwait and cpuloop
 * with small N, wired and queued, baselines included), against the cold-boot comparison of the
 * same matrix:
 *
 * - every run prints the same workload output and `result:` line both ways;
 * - from the snapshot, counters are identical across repeats (the icount clock), and every run's
 *   counters and exits are exactly those of a cold boot of the same machine that gets the same
 *   command typed at `vmon: init ready` (the point of the snapshot): starting from the snapshot
 *   changes nothing the guest or the counters see;
 * - each variant was booted once.
 *
 * What is not asserted, because it cannot hold: counters identical to the cold-boot comparison's.
 * A cold run boots with its command in `vmon.exec` on the kernel command line and runs it from
 * init's script, a run from the snapshot boots without it and gets it typed into the login shell:
 * other guest instructions before the workload starts, another timer phase during it, another
 * parent (shadow's traps per fork depend on it). And a snapshot (taken or restored) drops the TLBs,
 * decoded pages, shadow tables and the queued strategy's queue, which the counters count.
 * lab/README.md gives the measured differences.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createMachine } from "../core/machine.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { buildImage, imageManifest, listImages } from "../images/mod.ts";
import { BenchCapture } from "../images/workloads/mod.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";
import {
  COMPARE_WORKLOADS,
  flattenCounters,
  HOSTPORT,
  PV_IMAGE,
  runComparison,
  type RunRecord,
  strategyVariant,
  type Variant,
  workloadRun,
} from "../lab/mod.ts";
import { bootManifest } from "../lab/runner.ts";
import { BOOT_SNAPSHOT_MARKER, BootSnapshots, restoredInput } from "../lab/boot_snapshots.ts";
import { commandLineOf } from "../cli/compare.ts";
import type { BuiltImage } from "../images/mod.ts";

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

/**
 * A cold boot of `variant`'s boot machine that pauses at the snapshot's marker (taking a scratch
 * snapshot there, as the boot snapshot was taken), gets `command` typed in, and runs to its end.
 */
async function typedColdRun(
  image: BuiltImage,
  variant: Variant,
  options: { command: string; scratch: string },
) {
  const capture = new BenchCapture();
  const errors: string[] = [];
  const machine = await createMachine(bootManifest(variant, { image }), {
    console: { write: (b) => capture.write(b) },
    log: () => {},
    snapshotOn: [{ text: BOOT_SNAPSHOT_MARKER, path: options.scratch, then: "pause" }],
    onSnapshot: (r) => {
      if ("error" in r) errors.push(r.error);
      // Paused: the input is there before the next guest instruction, as after a restore.
      machine.sendInput(new TextEncoder().encode(restoredInput(options.command)));
      machine.resume();
    },
  });
  try {
    const exit = await machine.run();
    assert.deepEqual(errors, []);
    return { exit, out: capture.finish() };
  } finally {
    await machine[Symbol.asyncDispose]();
  }
}

Deno.test({
  name: "compare --from-snapshot: same results as cold boots, counters of a typed cold boot",
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
        variants: [strategyVariant("wired"), strategyVariant("queued")],
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
      assert.deepEqual(snapshots, ["wired", "queued"], "each variant booted once");
      const coldRuns = cold.results.runs;
      const snapRuns = snap.results.runs;
      const report = JSON.stringify({ cold: cold.results.failures, snap: snap.results.failures });
      assert.deepEqual(cold.results.failures, [], report);
      assert.deepEqual(snap.results.failures, [], report);
      assert.equal(snapRuns.length, 2 * coldRuns.length);
      assert.deepEqual(snap.results.mismatches, []);
      assert.deepEqual(snap.results.differences, [], "counters differ between repeats");
      // The same output and result line, run by run.
      const coldByKey = new Map(coldRuns.map((r) => [key(r), r]));
      for (const r of snapRuns) {
        const c = coldByKey.get(key(r));
        assert.ok(c !== undefined, key(r));
        assert.deepEqual(r.result, c.result, key(r));
        assert.deepEqual(r.output, c.output, key(r));
        assert.equal(r.command, c.command);
        assert.equal(r.status, 0);
        assert.ok(r.result.length === 1 && r.result[0]!.startsWith(`result: ${r.workload} `));
      }
      // Exactly a typed cold boot of the snapshot's machine: counters and exits, run by run.
      for (const r of snapRuns.filter((x) => x.repeat === 0)) {
        const variant = matrix.variants.find((v) => v.id === r.variant)!;
        const { exit, out } = await typedColdRun(image, variant, {
          command: r.command,
          scratch: join(dir, "scratch.snap"),
        });
        assert.equal(exit.status, 0, key(r));
        assert.deepEqual(out.result, r.result, key(r));
        assert.deepEqual(flattenCounters(exit.stats, variant.strategy), r.counters, key(r));
        assert.deepEqual({ ...exit.stats.exits }, r.exits, key(r));
      }
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
    assert.throws(() => restoredInput("echo a\necho b"), /has a line break/);
    assert.ok(commandLineOf({ fromSnapshot: true }).includes("--from-snapshot"));
  },
});
