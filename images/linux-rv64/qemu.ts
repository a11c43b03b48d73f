/**
 * Runs the linux-rv64 image in the reference peer, `qemu-system-riscv64 -M virt` (TCG, QEMU's
 * default OpenSBI firmware), capturing the console and the exit status the guest wrote to the
 * SiFive test device.
 *
 * @module
 */

import { delimiter, join } from "node:path";
import { VmonError } from "../../core/errors.ts";
import { INIT_READY_MARKER } from "./protocol.ts";

/** Returns the path of `qemu-system-riscv64` on PATH, or undefined. */
export function findQemu(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin").split(delimiter)) {
    const p = join(dir, "qemu-system-riscv64");
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/** Options of {@linkcode runQemu}. */
export interface QemuOptions {
  /** Kernel command line. */
  append: string;
  /** Number of harts (default 1). */
  cpus?: number;
  /** RAM (default "256M"). */
  memory?: string;
  /** Kill QEMU after this long (default 300 s). */
  timeoutMs?: number;
  /** Output strings whose first arrival time to record in {@linkcode QemuRun.seenMs}. */
  watch?: readonly string[];
}

/** The outcome of one QEMU run. */
export interface QemuRun {
  /** Everything the guest printed on the console. */
  output: string;
  /** QEMU's exit status (the SiFive test device's code). */
  status: number;
  /** Wall time from spawn to exit, in milliseconds. */
  wallMs: number;
  /** Wall time from spawn to the `vmon: init ready` line, if it appeared. */
  readyMs?: number;
  /** Wall time from spawn to the first appearance of each watched string that appeared. */
  seenMs: Record<string, number>;
}

/**
 * Boots `kernel` + `initrd` in `qemu-system-riscv64 -M virt -nographic` and waits for it to
 * exit.
 *
 * @param image The kernel Image and initramfs paths.
 * @param options Command line, harts, RAM and timeout.
 * @throws {VmonError} If QEMU is missing or does not exit before the timeout.
 */
export async function runQemu(
  image: { kernel: string; initrd?: string },
  options: QemuOptions,
): Promise<QemuRun> {
  const qemu = findQemu();
  if (!qemu) throw new VmonError("Cannot run QEMU: qemu-system-riscv64 is not on PATH");
  const args = [
    "-M",
    "virt",
    "-m",
    options.memory ?? "256M",
    "-smp",
    String(options.cpus ?? 1),
    "-nographic",
    "-no-reboot",
    "-kernel",
    image.kernel,
    ...(image.initrd ? ["-initrd", image.initrd] : []),
    "-append",
    options.append,
  ];
  const start = performance.now();
  const child = new Deno.Command(qemu, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const seenMs: Record<string, number> = {};
  const watch = [INIT_READY_MARKER, ...(options.watch ?? [])];
  const timeoutMs = options.timeoutMs ?? 300_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, timeoutMs);
  const dec = new TextDecoder();
  const readOut = async () => {
    for await (const chunk of child.stdout) {
      output += dec.decode(chunk, { stream: true });
      for (const w of watch) {
        if (seenMs[w] === undefined && output.includes(w)) seenMs[w] = performance.now() - start;
      }
    }
  };
  let errors = "";
  const readErr = async () => {
    for await (const chunk of child.stderr) errors += dec.decode(chunk, { stream: true });
  };
  const [status] = await Promise.all([child.status, readOut(), readErr()]);
  clearTimeout(timer);
  const wallMs = performance.now() - start;
  if (timedOut) {
    throw new VmonError(
      `Cannot run the image in QEMU: no exit after ${timeoutMs} ms; last output:\n${
        output.slice(-2000)
      }`,
    );
  }
  if (errors.trim() && status.code !== 0 && !output) {
    throw new VmonError(`Cannot run the image in QEMU: ${errors.trim()}`);
  }
  return { output, status: status.code, wallMs, readyMs: seenMs[INIT_READY_MARKER], seenMs };
}
