// Issue 12, "same guest, every strategy": under clock=icount a paging strategy changes the
// monitor's work, never the guest's. For every workload of `vmon compare` (the bench image's
// programs, at a quarter of their default N) the machine is run as the comparison runs it (lab/
// runner.ts: the same boot, the command typed at init's marker) under
// wired, shadow and queued, and under wired with the rv64 block translator on: each run's guest
// instructions (boot to power-off) and the workload's own output must be identical, not close.
// Interrupts land at the same instruction count whatever exits happen (ffi/rv64/cpu.c, the rule
// above rv64_run_hart), so a difference here is a bug. Counters only, never host times.
// Skips (visibly) without the riscv64 cross compiler, which the image build needs.

import { deepStrictEqual, ok } from "node:assert/strict";
import type { PluginRef } from "../core/api/mod.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";
import { buildImage } from "../images/mod.ts";
import { BenchCapture } from "../images/workloads/mod.ts";
import {
  benchCommand,
  COMPARE_WORKLOADS,
  runMachine,
  runManifest,
  strategyVariant,
  type WorkloadRun,
  workloadRun,
} from "../lab/mod.ts";

const skip = haveCrossCompiler() ? undefined : "riscv64-linux-gnu-gcc is not installed";
if (skip) console.warn(`same-guest paging tests skipped: ${skip}`);

/** The runs compared: the strategy, and whether the block translator is on. */
const RUNS = [
  { strategy: "wired", jit: false },
  { strategy: "shadow", jit: false },
  { strategy: "queued", jit: false },
  { strategy: "wired", jit: true },
] as const;

interface Outcome {
  label: string;
  output: readonly string[];
  instructions: number;
  traps: number;
}

async function runWorkload(
  w: WorkloadRun,
  run: typeof RUNS[number],
): Promise<Outcome> {
  const image = await buildImage("linux-rv64-bench");
  const label = `${w.name} under ${run.strategy}${run.jit ? " (jit on)" : ""}`;
  const manifest = runManifest(
    { workload: w, variant: strategyVariant(run.strategy), phase: "measure", n: w.n, repeat: 0 },
    { image },
  );
  const hostport: PluginRef = {
    ...manifest.hostport,
    options: { ...manifest.hostport.options, jit: run.jit ? "on" : "off" },
  };
  const capture = new BenchCapture();
  const { exit, timedOut } = await runMachine({ ...manifest, hostport }, {
    command: benchCommand(w, w.n),
    write: (b) => capture.write(b),
    log: () => {},
    timeoutMs: 600_000,
  });
  const out = capture.finish();
  ok(
    !timedOut && exit.status === 0 && !exit.failed && out.endStatus === 0 && out.result.length > 0,
    `${label}: ${exit.reason}, end status ${out.endStatus}: ${out.tail.join(" | ")}`,
  );
  return {
    label,
    output: out.output,
    instructions: exit.stats.hostport.instructions ?? NaN,
    traps: exit.stats.metrics[run.strategy]?.traps ?? 0,
  };
}

Deno.test({
  name: "paging: every compare workload runs the same guest under every strategy, jit on or off",
  ignore: skip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    for (const info of COMPARE_WORKLOADS) {
      const w = workloadRun(info, { n: Math.max(1, Math.ceil(info.n / 4)), baseline: false });
      await t.step(benchCommand(w, w.n), async () => {
        const got: Outcome[] = [];
        for (const run of RUNS) got.push(await runWorkload(w, run));
        const [wired] = got;
        for (const o of got.slice(1)) {
          deepStrictEqual(o.output, wired!.output, `${o.label} printed other output`);
          deepStrictEqual(
            o.instructions,
            wired!.instructions,
            `${o.label} retired ${o.instructions} guest instructions, ${wired!.label} ${
              wired!.instructions
            }`,
          );
        }
        // the strategies did differ in what the monitor did
        ok(got[1]!.traps > 0 && got[2]!.traps > 0, got.map((o) => `${o.label}: ${o.traps}`).join());
      });
    }
  },
});
