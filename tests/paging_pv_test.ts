// Integration: the pv-guest image (bare-metal riscv64) drives the queued strategy's paravirtual
// page-table update call on the rv64 port. Asserts on counters only: strategy traps fall in
// proportion to 1/batch size; invalid and random updates are rejected, reported to the guest and
// counted; the monitor survives and the guest's own checks pass. Skips (visibly) without the
// riscv64 cross compiler.

import { ok, strictEqual } from "node:assert/strict";
import { createMachine } from "../core/machine.ts";
import type { MachineExit } from "../core/api/mod.ts";
import { buildImage } from "../images/mod.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const skip = haveCrossCompiler() ? undefined : "riscv64-linux-gnu-gcc is not installed";
if (skip) console.warn(`pv-guest tests skipped: ${skip}`);

async function runPv(
  strategy: string,
  batch: number,
): Promise<{ text: string; exit: MachineExit; paging: Record<string, number> }> {
  const image = await buildImage("pv-guest");
  const chunks: string[] = [];
  const decoder = new TextDecoder();
  const machine = await createMachine({
    cpus: 1,
    memory: image.defaults.memory ?? "32M",
    hostport: { use: "rv64" },
    platform: { use: "riscv-virt", options: { "rng-seed": false } },
    paging: { use: strategy },
    devices: [],
    boot: { kernel: image.kernel, cmdline: `pv.batch=${batch} pv.updates=1024 pv.random=256` },
  }, { console: { write: (b) => chunks.push(decoder.decode(b)) }, log: () => {} });
  const timer = setTimeout(() => machine.stop("test timeout", 124), 60_000);
  let exit: MachineExit;
  try {
    exit = await machine.run();
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
  return { text: chunks.join(""), exit, paging: exit.stats.metrics[strategy] ?? {} };
}

/** The number after `key=` on the guest's line starting with `prefix`. */
function field(text: string, prefix: string, key: string): number {
  const line = text.split("\n").find((l) => l.startsWith(prefix)) ?? "";
  const m = new RegExp(`${key}=(\\d+)`).exec(line);
  return m ? Number(m[1]) : NaN;
}

Deno.test({
  name: "pv-guest: paravirtual updates under queued (traps per batch, rejections, survival)",
  ignore: skip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const traps: Record<number, number> = {};
    for (const batch of [1, 8, 64]) {
      const { text, exit, paging } = await runPv("queued", batch);
      const context = `batch ${batch}: ${exit.reason}\n${text}\n${JSON.stringify(paging)}`;
      ok(text.includes("pv-guest: ok"), context);
      ok(text.includes(`pv-guest: batch=${batch} mode=hypercall`), context);
      strictEqual(exit.status, 0, context);
      strictEqual(exit.failed, false, context);
      // Every call is one strategy trap (plus the max_batch probe); nothing else traps.
      const calls = field(text, "pv-guest: calls=", "calls");
      strictEqual(paging["traps.hypercall"], calls + 1, context);
      strictEqual(paging.traps, calls + 1, context);
      strictEqual(paging.batches, calls, context);
      // Invalid updates: all five rejected and reported; the monitor's count matches the guest's.
      strictEqual(field(text, "pv-guest: invalid", "rejected"), 5, context);
      strictEqual(paging.rejections, field(text, "pv-guest: calls=", "rejected"), context);
      strictEqual(paging["updates-applied"], field(text, "pv-guest: calls=", "applied"), context);
      ok(field(text, "pv-guest: random", "rejected") > 0, context);
      traps[batch] = paging.traps!;
    }
    // 1024 + 256 + 512 batched updates and one fixed invalid batch: traps fall as 1/batch.
    ok(traps[1]! / traps[8]! > 7, JSON.stringify(traps));
    ok(traps[1]! / traps[64]! > 50, JSON.stringify(traps));
    ok(traps[8]! / traps[64]! > 6, JSON.stringify(traps));
  },
});

Deno.test({
  name: "pv-guest: without the update call (shadow, wired) the guest uses plain stores",
  ignore: skip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    for (const strategy of ["shadow", "wired"]) {
      const { text, exit } = await runPv(strategy, 16);
      ok(text.includes("mode=stores") && text.includes("pv-guest: ok"), `${strategy}:\n${text}`);
      strictEqual(exit.status, 0);
    }
  },
});
