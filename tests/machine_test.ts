/**
 * Core's machine (worker, scheduler, exit bus routing, stats) driven by a scripted host port.
 */

import assert from "node:assert/strict";
import { createMachine, type MachineManifest } from "../mod.ts";
import { prewarmMachineWorker } from "../core/machine_prewarm.ts";

const HOSTPORT = new URL("./fixtures/scripted_hostport.ts", import.meta.url).href;
const PLATFORM = new URL("./fixtures/bare_platform.ts", import.meta.url).href;

async function runScript(script: string, options: { cpus?: number; trace?: string[] } = {}) {
  const out: Uint8Array[] = [];
  const logs: string[] = [];
  const manifest: MachineManifest = {
    cpus: options.cpus ?? 1,
    memory: "1M",
    hostport: { use: HOSTPORT, options: { script } },
    platform: { use: PLATFORM },
    devices: [{ use: "uart16550" }, { use: "debug-exit" }],
  };
  const machine = await createMachine(manifest, {
    console: { write: (b) => out.push(b.slice()) },
    log: (l) => logs.push(l),
    trace: options.trace,
  });
  const exit = await machine.run();
  const text = new TextDecoder().decode(new Uint8Array(out.flatMap((b) => [...b])));
  return { exit, text, logs: logs.join("\n") };
}

Deno.test("machine: port writes reach the UART and debug-exit ends the run with its status", async () => {
  const { exit, text } = await runScript(
    "out:0x3f8:1:72;out:0x3f8:1:105;out:0x3f8:1:10;out:0x501:1:7",
  );
  assert.equal(text, "Hi\n");
  assert.equal(exit.status, 7);
  assert.equal(exit.failed, false);
  assert.equal(exit.stats.exits.io, 4);
  assert.equal(exit.stats.plugins.uart16550, 3);
  assert.equal(exit.stats.plugins["debug-exit"], 1);
});

Deno.test("machine: unclaimed reads return all ones and are counted", async () => {
  const { exit, logs } = await runScript("in:0x200:1;in:0x200:2;mmio-r:0x20000000:4;out:0x501:1:0");
  assert.match(logs, /vcpu0 read 255, vcpu0 read 65535, vcpu0 read 4294967295/);
  assert.equal(exit.stats.plugins.unclaimed, 3);
  assert.equal(exit.status, 0);
});

Deno.test("machine: hypercalls are answered by their registrant, unknown ones NOT_SUPPORTED", async () => {
  const { exit, logs } = await runScript("sbi:0x10:1:0;sbi:0x999:0:0;out:0x501:1:0");
  assert.match(logs, /vcpu0 sbi 0 43, vcpu0 sbi -2 0/);
  assert.equal(exit.stats.exits.hypercall, 2);
});

Deno.test("machine: two vCPUs are time-sliced and both make progress", async () => {
  // vCPU 1 spins for a while; vCPU 0 prints between its own slices and ends the machine.
  const spin = Array(50).fill("spin").join(";");
  const { exit, text } = await runScript(
    `spin;out:0x3f8:1:65;spin;out:0x3f8:1:66;${spin};out:0x501:1:3|${spin};out:0x3f8:1:67`,
    { cpus: 2 },
  );
  assert.equal(exit.status, 3);
  assert.deepEqual([...text].sort().join(""), "ABC");
});

Deno.test("machine: a triple fault fails the machine with the vCPU and guest detail", async () => {
  const { exit } = await runScript("out:0x3f8:1:65;shutdown");
  assert.equal(exit.failed, true);
  assert.notEqual(exit.status, 0);
  assert.match(exit.reason, /Guest vCPU 0 failed, triple fault.*guest RIP 0x1000, bytes: 0f 0b/);
});

Deno.test("machine: internal errors and system events follow core's policy", async () => {
  const internal = await runScript("internal:1");
  assert.equal(internal.exit.failed, true);
  assert.match(internal.exit.reason, /internal error \(suberror 1\)/);
  const off = await runScript("poweroff");
  assert.deepEqual([off.exit.status, off.exit.reason, off.exit.failed], [0, "poweroff", false]);
});

Deno.test("machine: stop() ends a machine whose vCPUs are all halted", async () => {
  const machine = await createMachine({
    hostport: { use: HOSTPORT, options: { script: "halt" } },
    platform: { use: PLATFORM },
    memory: "1M",
  }, { log: () => {} });
  const done = machine.run();
  setTimeout(() => machine.stop("test stop", 5), 50);
  const exit = await done;
  assert.deepEqual([exit.status, exit.reason], [5, "test stop"]);
});

Deno.test("machine: bad manifests and plugin errors are reported before anything runs", async () => {
  await assert.rejects(
    () => createMachine({ hostport: { use: HOSTPORT }, platform: { use: "no-such-platform" } }),
    /Unknown platform plugin "no-such-platform"/,
  );
  await assert.rejects(
    () =>
      createMachine({
        hostport: { use: HOSTPORT },
        platform: { use: PLATFORM },
        devices: [{ use: "uart16550", options: { bogus: 1 } }],
      }),
    /Unknown option "bogus" for plugin "uart16550"/,
  );
  await assert.rejects(
    () => createMachine({ hostport: { use: HOSTPORT }, platform: { use: "x86-64-direct" } }),
    /Cannot use platform "x86-64-direct" with host port "scripted"/,
  );
});

Deno.test("machine: --trace prints one line per exit and per I/O access to the log", async () => {
  const { exit, logs } = await runScript("out:0x3f8:1:65;out:0x501:1:0", {
    trace: ["exits", "io"],
  });
  assert.equal(exit.status, 0);
  assert.match(logs, /\[vcpu0\] exit io write 0x3f8 size 1/);
  assert.match(logs, /\[vcpu0\] io out 0x3f8 size 1 = 0x41 -> uart16550/);
  assert.match(logs, /\[vcpu0\] exit io write 0x501 size 1/);
});

Deno.test("machine: pause stops the vCPUs until resume; stats work while paused", async () => {
  // A guest that spins forever (every step is an interrupted slice) until debug-exit.
  const spin = Array(400_000).fill("spin").join(";");
  const machine = await createMachine({
    hostport: { use: HOSTPORT, options: { script: `${spin};out:0x501:1:4` } },
    platform: { use: PLATFORM },
    devices: [{ use: "debug-exit" }],
    memory: "1M",
  }, { log: () => {} });
  const done = machine.run();
  await new Promise((r) => setTimeout(r, 30));
  machine.pause();
  await new Promise((r) => setTimeout(r, 30));
  const a = (await machine.stats()).exits.interrupted ?? 0;
  await new Promise((r) => setTimeout(r, 100));
  const b = (await machine.stats()).exits.interrupted ?? 0;
  assert.equal(b, a, "no vCPU ran while paused");
  machine.resume();
  const exit = await done;
  assert.equal(exit.status, 4);
  assert.equal(exit.stats.exits.interrupted, 400_000);
});

Deno.test("machine: a prewarmed worker loads the hinted plugins, warms host ports and ignores hints that fail", async () => {
  prewarmMachineWorker({
    preload: [
      { use: HOSTPORT, kind: "hostport" },
      { use: "no-such-plugin", kind: "device" },
      { use: "uart16550", kind: "platform" }, // the wrong kind
      { use: "wired", kind: "paging" },
    ],
  });
  const { exit, text, logs } = await runScript("out:0x3f8:1:79;out:0x3f8:1:75;out:0x501:1:5");
  assert.equal(text, "OK");
  assert.equal(exit.status, 5);
  assert.equal(exit.failed, false);
  assert.match(logs, /warmed before setup/);
  // The next machine gets a worker of its own, not warmed.
  const again = await runScript("out:0x501:1:0");
  assert.doesNotMatch(again.logs, /warmed before setup/);
});
