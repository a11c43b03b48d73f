/**
 * A plugin handler that never returns (tests/fixtures/stuck_device.ts): the machine names it
 * while it runs, the guest output written before it reaches the console without waiting for it,
 * and `stop()` ends the machine anyway. Driven by the scripted host port, through core's real
 * worker, bus and scheduler.
 */

import assert from "node:assert/strict";
import { createMachine, type MachineManifest } from "../mod.ts";

const HOSTPORT = new URL("./fixtures/scripted_hostport.ts", import.meta.url).href;
const PLATFORM = new URL("./fixtures/bare_platform.ts", import.meta.url).href;
const STUCK = new URL("./fixtures/stuck_device.ts", import.meta.url).href;

/** "Hi\n" on the UART, then a write to the stuck device's window. */
const SCRIPT = "out:0x3f8:1:72;out:0x3f8:1:105;out:0x3f8:1:10;mmio-w:0x10000000:4:1";

function manifest(script: string, stuck: Record<string, unknown> = {}): MachineManifest {
  return {
    memory: "1M",
    hostport: { use: HOSTPORT, options: { script } },
    platform: { use: PLATFORM },
    devices: [
      { use: "uart16550" },
      { use: "debug-exit" },
      { use: STUCK, options: { base: 0x1000_0000, ...stuck } },
    ],
  };
}

/** Waits until `check()` holds, polling every 20 ms, at most `ms` (then fails). */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("stall: a handler that never returns is named with its address; stop() ends the machine", async () => {
  const out: number[] = [];
  const logs: string[] = [];
  const machine = await createMachine(manifest(SCRIPT), {
    console: { write: (b) => out.push(...b) },
    log: (l) => logs.push(l),
    stallWarningMs: 300,
  });
  const done = machine.run();
  await until(() => logs.some((l) => l.includes("has run for")), 20_000, "the stall report");
  const report = logs.find((l) => l.includes("has run for"))!;
  console.log(report);
  assert.match(
    report,
    /^vmon: warning: plugin "stuck-device" handler for MMIO write 0x10000000 \(vCPU 0\) has run for \d+\.\d s/,
  );
  // The worker is still inside the handler: the output it wrote before is already here.
  assert.equal(new TextDecoder().decode(new Uint8Array(out)), "Hi\n");

  const t0 = performance.now();
  machine.stop("stopped by SIGTERM", 143);
  const exit = await done;
  console.log(`stop() took ${Math.round(performance.now() - t0)} ms; reason: ${exit.reason}`);
  assert.equal(exit.status, 143);
  assert.equal(exit.failed, false);
  assert.match(
    exit.reason,
    /^stopped by SIGTERM; ended while plugin "stuck-device" handler for MMIO write 0x10000000 \(vCPU 0\) was running \(for \d/,
  );
});

Deno.test("stall: a timer callback that never returns is named too", async () => {
  const logs: string[] = [];
  const machine = await createMachine(manifest("halt", { on: "timer", delay: 20 }), {
    log: (l) => logs.push(l),
    stallWarningMs: 200,
  });
  const done = machine.run();
  await until(() => logs.some((l) => l.includes("has run for")), 20_000, "the stall report");
  assert.match(logs.join("\n"), /plugin "stuck-device" timer callback has run for/);
  machine.stop("test stop", 5);
  const exit = await done;
  assert.equal(exit.status, 5);
  assert.match(exit.reason, /ended while plugin "stuck-device" timer callback was running/);
});

Deno.test("stall: many quick exits to one handler are not a stall", async () => {
  // 100k ignored writes to debug-exit (offset 1), then its exit port: with a 1 ms bound a report
  // would follow if the sampler took repeated calls of one handler for one long call.
  const writes = Array(100_000).fill("out:0x502:1:0").join(";");
  const logs: string[] = [];
  const machine = await createMachine(manifest(`${writes};out:0x501:1:9`), {
    log: (l) => logs.push(l),
    stallWarningMs: 1,
  });
  const t0 = performance.now();
  const exit = await machine.run();
  console.log(`ran for ${Math.round(performance.now() - t0)} ms`);
  assert.equal(exit.status, 9);
  assert.deepEqual(logs.filter((l) => l.includes("has run for")), []);
});

Deno.test("stall: output larger than the console ring arrives whole and in order", async () => {
  // 300 KiB through the UART, more than the 256 KiB ring: the worker waits for the main thread.
  const line = "0123456789abcdef".repeat(4) + "\n";
  const bytes = new TextEncoder().encode(line.repeat(300 * 1024 / line.length));
  const steps = [...bytes].map((b) => `out:0x3f8:1:${b}`).join(";");
  const out: number[] = [];
  const machine = await createMachine(manifest(`${steps};out:0x501:1:0`), {
    console: { write: (b) => out.push(...b) },
    log: () => {},
  });
  const exit = await machine.run();
  assert.equal(exit.status, 0);
  assert.equal(out.length, bytes.length);
  assert.deepEqual(new Uint8Array(out), bytes);
});
