/**
 * Integration: the project's riscv64 Linux image (kernel + busybox initramfs) booted on the rv64
 * host port through the whole monitor, as a user runs it (`vmon run --image linux-rv64 ...`).
 * The first run builds the image (minutes, cached afterwards).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const missing = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (missing !== undefined) console.error(`linux_rv64_test: skipped: ${missing}`);

const linuxTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: missing !== undefined, fn, sanitizeResources: false });

function lastJson(stdout: string): { status: number; stats: Record<string, any> } {
  const line = stdout.trim().split("\n").at(-1)!;
  return JSON.parse(line);
}

linuxTest("linux: --exec runs a command and the monitor exits with its status", async () => {
  const r = await runCli([
    "run",
    "--image",
    "linux-rv64",
    "--exec",
    "uname -sm; echo made-by-guest; exit 3",
  ]);
  assert.match(r.stdout, /Linux riscv64/);
  assert.match(r.stdout, /made-by-guest/);
  assert.equal(r.status, 3, r.stderr);
});

linuxTest("linux: --cpus 2 gives nproc 2", async () => {
  const r = await runCli(["run", "--image", "linux-rv64", "--cpus", "2", "--exec", "nproc"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^2\r?$/m);
});

linuxTest(
  "linux: a file written to a virtio-blk disk in one boot is read in the next",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "vmon-disk-test-" });
    try {
      const disk = join(dir, "disk.img");
      await Deno.writeFile(disk, new Uint8Array(4 << 20));
      const token = `vmon-${crypto.randomUUID()}`;
      const w = await runCli([
        "run",
        "--image",
        "linux-rv64",
        "--disk",
        disk,
        "--exec",
        `echo ${token} | dd of=/dev/vda bs=512 seek=8 conv=sync,fsync 2>/dev/null && echo written`,
        "--stats=json",
      ]);
      assert.equal(w.status, 0, w.stderr);
      assert.match(w.stdout, /written/);
      // Linux's requests (indirect tables included) are all well-formed to the device.
      const blk = lastJson(w.stdout).stats.metrics["virtio-blk"];
      assert.equal(blk.malformed_chains, 0, JSON.stringify(blk));
      assert.ok(blk.writes >= 1 && blk.flushes >= 1, JSON.stringify(blk));
      // The bytes are on the host file (FLUSH reached fdatasync before the guest was told).
      const bytes = await Deno.readFile(disk);
      assert.equal(
        new TextDecoder().decode(bytes.subarray(8 * 512, 8 * 512 + token.length)),
        token,
      );
      const r = await runCli([
        "run",
        "--image",
        "linux-rv64",
        "--disk",
        disk,
        "--exec",
        "dd if=/dev/vda bs=512 skip=8 count=1 2>/dev/null | head -1",
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(token));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

linuxTest("linux: every SBI call the kernel makes is answered (none unclaimed)", async () => {
  const r = await runCli([
    "run",
    "--image",
    "linux-rv64",
    "--cpus",
    "2",
    "--exec",
    "true",
    "--stats=json",
  ]);
  assert.equal(r.status, 0, r.stderr);
  const { stats } = lastJson(r.stdout);
  assert.ok(stats.exits.hypercall > 10, "the kernel made SBI calls");
  const unclaimed = Object.keys(stats.metrics["exit-bus"] ?? {}).filter((k) =>
    k.startsWith("unclaimed hypercall")
  );
  assert.deepEqual(unclaimed, [], "SBI calls nobody answered");
  assert.ok(stats.plugins["riscv-virt"] > 10, "the platform answered them");
});

linuxTest("linux: poweroff in the guest ends the monitor with status 0", async () => {
  const r = await runCli(["run", "--image", "linux-rv64", "--exec", "poweroff -f"]);
  assert.equal(r.status, 0, r.stderr);
});

linuxTest(
  "linux: a kernel panic ends the monitor with one clear line and a non-zero status",
  async () => {
    const r = await runCli([
      "run",
      "--image",
      "linux-rv64",
      "--exec",
      "echo c > /proc/sysrq-trigger",
    ]);
    assert.match(r.stdout, /Kernel panic - not syncing: sysrq triggered crash/);
    assertOneLineError(r, /^vmon: Guest kernel panic/);
  },
);

linuxTest("linux: --kernel/--initrd/--append boot a user-supplied Image", async () => {
  // The image's own files, named explicitly, as a user with their own kernel would.
  const { buildImage } = await import("../images/mod.ts");
  const image = await buildImage("linux-rv64");
  const r = await runCli([
    "run",
    "--host",
    "rv64",
    "--platform",
    "riscv-virt",
    "--device",
    "uart16550",
    "--device",
    "debug-exit",
    "--kernel",
    image.kernel,
    "--initrd",
    image.initrd!,
    "--append",
    'console=ttyS0 vmon.exec="echo own-kernel-ok"',
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /own-kernel-ok/);
});
