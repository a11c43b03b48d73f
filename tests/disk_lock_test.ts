/**
 * Disk image locking between real monitors (issue 11): two `vmon run` processes on the rv64 Linux
 * image given the same writable `--disk` must not both run: the second is refused with one line
 * naming the file and the first monitor's process, exits non-zero and leaves the file untouched.
 * Read-only attachments share the image; `lock=off` lets a second monitor in.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const missing = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (missing !== undefined) console.error(`disk_lock_test: skipped: ${missing}`);

const MARKER = "holding-the-disk";

/**
 * Starts a monitor that boots Linux with `disk` (vmon's `--disk`, or `--device` options when
 * given) and keeps running once the guest printed the marker; returns the process and waits
 * for the marker. The caller ends it.
 */
async function startHolder(diskArgs: readonly string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      "--no-lock",
      "--config",
      join(REPO_ROOT, "deno.json"),
      join(REPO_ROOT, "cli", "main.ts"),
      "run",
      "--image",
      "linux-rv64",
      ...diskArgs,
      "--exec",
      `echo ${MARKER}; sleep 600`,
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  while (!seen.includes(MARKER)) {
    const { value, done } = await reader.read();
    if (done) {
      const err = await new Response(child.stderr).text();
      throw new Error(`The holder ended before the marker:\n${seen}\n${err}`);
    }
    seen += decoder.decode(value, { stream: true });
  }
  const stop = async () => {
    child.kill("SIGTERM");
    // Drain the pipes so the process can end.
    const rest = (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    await Promise.all([rest, child.stderr.cancel(), child.status]);
  };
  return { pid: child.pid, stop };
}

Deno.test({
  name: "disk lock: a second monitor on the same writable disk is refused; lock=off lets it in",
  ignore: missing !== undefined,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-lock-test-" });
    const disk = join(dir, "disk.img");
    const content = new Uint8Array(4 << 20).map((_, i) => (i * 13) & 0xff);
    await Deno.writeFile(disk, content);
    const mtime = (await Deno.stat(disk)).mtime?.getTime();
    const holder = await startHolder(["--disk", disk]);
    try {
      // A second writer: one line naming the file and the first monitor, non-zero status.
      const second = await runCli([
        "run",
        "--image",
        "linux-rv64",
        "--disk",
        disk,
        "--exec",
        "dd if=/dev/zero of=/dev/vda bs=512 count=64 conv=fsync; echo wrote",
      ]);
      assertOneLineError(
        second,
        new RegExp(
          `^vmon: Cannot open file "${disk}" for writing: it is locked by process ${holder.pid} \\(vmon run --image linux-rv64 --disk ${disk}`,
        ),
      );
      assert.doesNotMatch(second.stdout, /wrote/);
      // A read-only attachment conflicts with the writer too.
      const reader = await runCli([
        "run",
        "--image",
        "linux-rv64",
        "--device",
        `virtio-blk,file=${disk},readonly=true`,
        "--exec",
        "echo read",
      ]);
      assertOneLineError(reader, /read-only: it is locked by process/);
      // lock=off: the user says nothing else writes it (this run only reads).
      const forced = await runCli([
        "run",
        "--image",
        "linux-rv64",
        "--device",
        `virtio-blk,file=${disk},lock=off`,
        "--exec",
        "head -c 4 /dev/vda | od -An -tx1",
      ]);
      assert.equal(forced.status, 0, forced.stderr);
      assert.match(forced.stdout, /00 0d 1a 27/);
    } finally {
      await holder.stop();
    }
    // Nobody wrote: bytes and modification time are those written above.
    assert.deepEqual(await Deno.readFile(disk), content);
    assert.equal((await Deno.stat(disk)).mtime?.getTime(), mtime);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "disk lock: two monitors share a read-only disk",
  ignore: missing !== undefined,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-lock-test-" });
    const disk = join(dir, "disk.img");
    await Deno.writeFile(disk, new Uint8Array(1 << 20).fill(0x5a));
    const ro = ["--device", `virtio-blk,file=${disk},readonly=true`];
    const holder = await startHolder(ro);
    try {
      const second = await runCli([
        "run",
        "--image",
        "linux-rv64",
        ...ro,
        "--exec",
        "head -c 2 /dev/vda | od -An -tx1",
      ]);
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stdout, /5a 5a/);
    } finally {
      await holder.stop();
    }
    await Deno.remove(dir, { recursive: true });
  },
});
