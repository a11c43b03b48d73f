/**
 * The rv64 block translator on Linux (linux-rv64-bench, `clock=icount`, fixed platform seed): the
 * boot and every workload the comparison runs (`vmon compare`, at an eighth of their default N)
 * give the same console output and the same counters (instructions, exits by kind, TLB, traps,
 * interrupts, device and paging metrics; host-side times left out) with `jit=on` and `jit=off`,
 * under the wired and the shadow paging strategies (`JIT_PAGING=shadow` runs one). Skips (visibly) without the riscv64 cross compiler the image needs.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createMachine } from "../core/machine.ts";
import { buildImage } from "../images/mod.ts";
import { BENCH_WORKLOADS, benchCommand } from "../images/workloads/mod.ts";
import { DEFAULT_CMDLINE, execCmdline } from "../images/linux-rv64/protocol.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const skip = !haveCrossCompiler()
  ? "riscv64-linux-gnu-gcc is not installed"
  : Deno.build.arch !== "x86_64"
  ? "the translator has no backend for this host"
  : undefined;
if (skip) console.warn(`rv64 jit Linux tests skipped: ${skip}`);

/** Every workload `vmon compare` runs, one after the other, at an eighth of its default N. */
const COMMAND = BENCH_WORKLOADS.filter((w) => w.n !== undefined)
  .map((w) => benchCommand(w.name, w.args(Math.max(1, Math.floor(w.n! / 8)))))
  .join("; ");

interface Run {
  output: string;
  stats: Record<string, unknown>;
  jit: Record<string, number>;
}

async function boot(jit: boolean, paging: string, command: string): Promise<Run> {
  const image = await buildImage("linux-rv64-bench");
  const chunks: Uint8Array[] = [];
  const machine = await createMachine({
    cpus: 1,
    memory: image.defaults.memory ?? "128M",
    hostport: { use: "rv64", options: { clock: "icount", jit: jit ? "on" : "off" } },
    platform: { use: "riscv-virt", options: { "rng-seed": false } },
    paging: { use: paging },
    devices: image.defaults.devices.map((use) => ({ use })),
    boot: {
      kernel: image.kernel,
      ...(image.initrd === undefined ? {} : { initrd: image.initrd }),
      cmdline: `${image.cmdline ?? DEFAULT_CMDLINE} ${
        execCmdline(command, { base: image.cmdline ?? DEFAULT_CMDLINE })
      }`,
    },
  }, { console: { write: (b) => chunks.push(b.slice()) }, log: () => {} });
  const timer = setTimeout(() => machine.stop("test timeout", 124), 600_000);
  try {
    const exit = await machine.run();
    const output = new TextDecoder().decode(
      new Uint8Array(chunks.flatMap((c) => [...c])),
    );
    assert(exit.status === 0 && !exit.failed, `${exit.reason}\n${output.slice(-2000)}`);
    const { wallMs: _wall, ...stats } = exit.stats as unknown as Record<string, unknown>;
    const hostport = { ...(stats.hostport as Record<string, number>) };
    const jitStats: Record<string, number> = {};
    for (const k of Object.keys(hostport)) {
      if (k.startsWith("jit")) {
        jitStats[k] = hostport[k]!;
        delete hostport[k];
      }
    }
    // host-side times (`host-us.*` metrics of the strategies) are not the guest's: left out
    const metrics = JSON.parse(
      JSON.stringify(stats.metrics ?? {}),
      (k, v) => k.startsWith("host-") ? undefined : v,
    );
    return { output, stats: { ...stats, hostport, metrics }, jit: jitStats };
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
}

for (const paging of (Deno.env.get("JIT_PAGING") ?? "wired,shadow").split(",")) {
  Deno.test({
    name: `rv64 jit: Linux and the compare workloads are identical with jit on and off (${paging})`,
    ignore: skip !== undefined,
    sanitizeResources: false,
    async fn() {
      const command = paging === "wired" ? COMMAND : benchCommand("forkwait", ["25"]);
      const off = await boot(false, paging, command);
      const on = await boot(true, paging, command);
      assertEquals(on.output, off.output);
      assertEquals(on.stats, off.stats);
      assertEquals(off.jit.jitEnabled, undefined);
      assertEquals(on.jit.jitEnabled, 1);
      assert(on.jit.jitSharePermille! > 500, JSON.stringify(on.jit));
    },
  });
}
