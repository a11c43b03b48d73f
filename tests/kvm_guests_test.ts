/**
 * Integration: every project x86-64 guest booted through the whole monitor (CLI, machine
 * worker, scheduler, exit bus, uart16550, debug-exit, x86-64-direct, kvm), output and status
 * checked; and the fatal-exit messages (triple fault, internal error, guest fault).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";

function kvmMissing(): string | undefined {
  try {
    Deno.openSync("/dev/kvm", { read: true, write: true }).close();
    return undefined;
  } catch (e) {
    return `/dev/kvm is not usable here (${(e as Error).message})`;
  }
}
const missing = kvmMissing();
if (missing !== undefined) console.error(`kvm_guests_test: skipped: ${missing}`);
const kvmTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: missing !== undefined, fn });

kvmTest("kvm: hello prints its greeting and exits with the chosen code", async () => {
  const r = await runCli(["run", "--image", "hello", "--append", "arg=42"]);
  assert.match(r.stdout, /Hello from vmon x86-64 guest on vCPU 0!/);
  assert.match(r.stdout, /exiting with code 42/);
  assert.equal(r.status, 42, r.stderr);
});

kvmTest("kvm: smp on 3 vCPUs: every vCPU reports and all meet at the barrier", async () => {
  const r = await runCli(["run", "--image", "smp", "--cpus", "3"]);
  assert.equal(r.status, 0, r.stderr);
  for (const id of [0, 1, 2]) assert.match(r.stdout, new RegExp(`cpu ${id} of 3 is up`));
  assert.match(r.stdout, /all 3 cpus met at the barrier/);
});

kvmTest("kvm: memtest over 32 MiB reports ok and a checksum", async () => {
  const r = await runCli(["run", "--image", "memtest", "--mem", "32M"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /memtest: ok, \d+ KiB, checksum 0x[0-9a-f]+/);
});

kvmTest("kvm: exits makes exactly the asked number of port-I/O exits (--stats=json)", async () => {
  const r = await runCli(["run", "--image", "exits", "--append", "arg=500", "--stats=json"]);
  assert.equal(r.status, 0, r.stderr);
  const json = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  // 500 exits to port 0x80 (unclaimed here) plus the UART summary line and the debug-exit write.
  assert.equal(json.stats.plugins.unclaimed, 500);
  assert.ok(json.stats.exits.io > 500);
  assert.equal(json.stats.plugins["debug-exit"], 1);
});

kvmTest(
  "kvm: a triple fault ends with one line naming the vCPU, RIP and instruction bytes",
  async () => {
    const r = await runCli(["run", "--image", "crash", "--append", "arg=1"]);
    assertOneLineError(r, /^vmon: Guest triple fault on vCPU 0 at rip 0x[0-9a-f]+.*bytes: 0f 0b/);
  },
);

kvmTest("kvm: an internal error ends with the suberror, RIP and instruction bytes", async () => {
  const r = await runCli(["run", "--image", "crash", "--append", "arg=2"]);
  assertOneLineError(
    r,
    /^vmon: Guest vCPU 0 failed, internal error \(suberror 1\).*guest RIP 0x[0-9a-f]+ bytes: f3 48 0f b8 c0/,
  );
});

kvmTest("kvm: a guest page fault is reported with its address", async () => {
  const r = await runCli(["run", "--image", "crash", "--append", "arg=3"]);
  assertOneLineError(r, /^vmon: Guest exception on vCPU 0: #PF page fault .*0x7ff0000000/);
  assert.equal(r.status, 128 + 14);
});

kvmTest("kvm: a kernel that is not an ELF file is refused with one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-kvm-test-" });
  try {
    const path = join(dir, "kernel.bin");
    await Deno.writeTextFile(path, "MZ this is not an ELF file");
    const r = await runCli([
      "run",
      "--host",
      "kvm",
      "--platform",
      "x86-64-direct",
      "--kernel",
      path,
    ]);
    assertOneLineError(r, /^vmon: Cannot load .*kernel\.bin.*not an ELF/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
