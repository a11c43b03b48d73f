/**
 * Real programs on rv64 against QEMU: boots the linux-rv64-bench image in vmon (`vmon run --host
 * rv64,jit=on --image linux-rv64-bench`, host clock; `--host-options` replaces `jit=on`) and in
 * the reference peer `qemu-system-riscv64 -M virt` (TCG), alternating, runs lua,
 * sqlite3, xz and cpuloop in each boot, and prints one JSON line with each program's median
 * guest-measured time (the `time:` line `/bench/run.sh` prints) under both and the ratio
 * vmon / QEMU (below 1: vmon is faster). Both get the same kernel, initramfs, command line, 1 hart
 * and 256M.
 *
 * Each boot first reads a byte of `/dev/random`, outside the timed programs. The first program to
 * ask for random bytes (sqlite3, through `getrandom()`) would otherwise wait until the kernel's
 * random pool is initialised, and Linux 6.1 fills it from the jitter of the time CSR: it earns one
 * bit per N timer ticks, N being how many reads of the clock it takes to see it change, so the
 * wait (2 to 3 s here, for both monitors) measures how fast a monitor reads the clock, not the
 * program. Until 2026-12-03 it was inside sqlite3's time: 1.40 then was that wait.
 *
 * Usage: deno task bench:programs [runs (default 3)] [--host-options jit=off,...]
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../../core/cache.ts";
import { DEFAULT_CMDLINE, execCmdline, findQemu, runQemu } from "../../images/linux-rv64/mod.ts";
import { benchCommand, buildLinuxRv64Bench, parseBenchOutput } from "../../images/workloads/mod.ts";

const args = [...Deno.args];
const optIndex = args.indexOf("--host-options");
// the translator unless told otherwise (the plugin's default on x86-64; explicit here so the
// benchmark says what it measured)
const hostOptions = optIndex >= 0 ? args.splice(optIndex, 2)[1] ?? "" : "jit=on";
const RUNS = Number(args[0] ?? 3);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`Invalid run count "${args[0]}": expected a positive integer`);
  Deno.exit(2);
}
const TIMEOUT_MS = 900_000;

/** The programs and their arguments (each about a second here, so that timer noise stays small). */
const PROGRAMS: readonly [string, number[]][] = [
  ["lua", [1500]],
  ["sqlite3", [6000]],
  ["xz", [1024, 1]],
  ["cpuloop", [400_000_000]],
];
/** Waits for the kernel's random pool first (see the module text), then runs the programs. */
const SCRIPT = ["head -c 1 /dev/random >/dev/null", ...PROGRAMS.map(([w, a]) => benchCommand(w, a))]
  .join("; ");

function log(line: string): void {
  console.error(`programs: ${line}`);
}

/** Guest-measured milliseconds per program, checking that each ran and succeeded. */
function times(who: string, output: string): Record<string, number> {
  const runs = parseBenchOutput(output);
  const out: Record<string, number> = {};
  for (const [name] of PROGRAMS) {
    const r = runs.find((x) => x.workload === name);
    if (!r || r.status !== 0 || r.timeMs === undefined) {
      throw new Error(`${who}: ${name} did not complete; last output:\n${output.slice(-1500)}`);
    }
    out[name] = r.timeMs;
  }
  return out;
}

async function runVmon(): Promise<Record<string, number>> {
  const host = hostOptions ? `rv64,${hostOptions}` : "rv64";
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      join(REPO_ROOT, "cli", "main.ts"),
      "run",
      "--host",
      host,
      "--image",
      "linux-rv64-bench",
      "--cpus",
      "1",
      "--mem",
      "256M",
      "--exec",
      SCRIPT,
    ],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `vmon exited with ${out.code}: ${new TextDecoder().decode(out.stderr).slice(-800)}`,
    );
  }
  return times("vmon", text);
}

async function runReference(image: { kernel: string; initrd?: string; cmdline?: string }) {
  const cmdline = image.cmdline ?? DEFAULT_CMDLINE;
  const run = await runQemu(image, {
    append: `${cmdline} ${execCmdline(SCRIPT, { base: cmdline })}`,
    cpus: 1,
    memory: "256M",
    timeoutMs: TIMEOUT_MS,
  });
  return times("QEMU", run.output);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

if (!findQemu()) {
  console.error("programs: qemu-system-riscv64 is not installed: no reference to compare with");
  Deno.exit(1);
}
const image = await buildLinuxRv64Bench({ onProgress: log });
const vmon: Record<string, number>[] = [];
const qemu: Record<string, number>[] = [];
for (let i = 0; i < RUNS; i++) {
  vmon.push(await runVmon());
  log(`run ${i + 1}/${RUNS} vmon: ${JSON.stringify(vmon.at(-1))}`);
  qemu.push(await runReference(image));
  log(`run ${i + 1}/${RUNS} QEMU: ${JSON.stringify(qemu.at(-1))}`);
}
const programs: Record<string, { vmon_ms: number; qemu_ms: number; ratio: number }> = {};
for (const [name] of PROGRAMS) {
  const v = median(vmon.map((r) => r[name]!));
  const q = median(qemu.map((r) => r[name]!));
  programs[name] = { vmon_ms: round(v, 1), qemu_ms: round(q, 1), ratio: round(v / q) };
}
console.log(JSON.stringify({
  bench: "rv64_programs",
  runs: RUNS,
  host_options: hostOptions || "(defaults)",
  reference: "qemu-system-riscv64 -M virt (TCG)",
  programs,
  ratios: Object.fromEntries(Object.entries(programs).map(([k, v]) => [k, v.ratio])),
  worst_ratio: Math.max(...Object.values(programs).map((p) => p.ratio)),
}));
