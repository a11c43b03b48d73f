/**
 * Linux boot on rv64: boots the linux-rv64 image (kernel + busybox initramfs) in vmon
 * (`mod.ts run --host rv64 --image linux-rv64 --exec ...`) and in the reference peer
 * `qemu-system-riscv64 -M virt` (TCG), alternating, and prints one JSON line with the medians and
 * the ratios vmon / QEMU of:
 * - `init_ms`: wall time from spawning the monitor to the guest's `vmon: init ready` line (so it
 *   includes each monitor's own start-up: Deno and the CLI for vmon, QEMU and OpenSBI for QEMU);
 * - `forkexec_ms`: the guest-measured time of 1000 fork+exec of `/bin/true` (from
 *   `/proc/uptime`, 10 ms resolution), and `forkexec_host_ms`, the host's time between two
 *   marker lines the guest prints around that loop (a check on the guest's clock; it includes
 *   the console's latency); also `init_guest_ms` (the kernel's printk timestamp of starting
 *   /init) and `wall_ms` (spawn to exit). `notes` flags runs whose console output arrived in one
 *   burst, which makes the host-side marker times meaningless.
 * It adds vmon's MIPS from `tests/bench/rv64_mips.ts` when that benchmark is present. Both
 * machines get the same kernel, initramfs and command line and 1 hart with 256M.
 *
 * Usage: deno task bench:boot-rv64 [runs (default 5)]
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../../core/cache.ts";
import {
  buildLinuxRv64,
  EXIT_STATUS_MARKER,
  findQemu,
  INIT_READY_MARKER,
  parseExitStatus,
  runQemu,
} from "../../images/linux-rv64/mod.ts";

const RUNS = Number(Deno.args[0] ?? 5);
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`Invalid run count "${Deno.args[0]}": expected a positive integer`);
  Deno.exit(2);
}
const TIMEOUT_MS = 600_000;

/**
 * The guest side: one line (the CLI's --exec takes one line without double quotes). The loop
 * markers are computed by the guest (`loop-$((1+1))` prints `loop-2`) so that the kernel's echo
 * of its command line cannot match them.
 */
const SCRIPT = "echo vmon-bench: loop-$((1+1)); read s x </proc/uptime; i=0; " +
  "while [ $i -lt 1000 ]; do /bin/true; i=$((i+1)); done; " +
  "read e x </proc/uptime; echo vmon-bench: loop-$((2+1)); " +
  "echo vmon-bench: forkexec_ms=$(awk -v s=$s -v e=$e 'BEGIN{print int((e-s)*1000+0.5)}')";
const LOOP_START = "vmon-bench: loop-2";
const LOOP_END = "vmon-bench: loop-3";

interface Sample {
  /** Host wall time from spawn to the init marker. */
  initMs: number;
  /** Guest-measured fork+exec loop time. */
  forkexecMs: number;
  /** Host-measured time between the loop markers (a check on the guest's clock). */
  forkexecHostMs: number;
  /** Guest uptime when the kernel started /init (its printk timestamp). */
  initGuestMs: number;
  /** Host wall time from spawn to the monitor's exit. */
  wallMs: number;
}

function log(line: string): void {
  console.error(`boot_rv64: ${line}`);
}

/** Turns one run's console output into a sample, or explains why it cannot. */
function sample(
  who: string,
  output: string,
  status: number,
  seenMs: Record<string, number>,
  wallMs: number,
): Sample {
  const readyMs = seenMs[INIT_READY_MARKER];
  const fe = /vmon-bench: forkexec_ms=(\d+)/.exec(output);
  const guestStatus = parseExitStatus(output);
  if (readyMs === undefined || !fe || guestStatus !== 0 || status !== 0) {
    const why = readyMs === undefined
      ? `no "${INIT_READY_MARKER}" line`
      : !fe
      ? "no fork+exec result line"
      : `exit status ${status} (guest said ${guestStatus ?? "nothing"})`;
    throw new Error(
      `${who} did not complete the boot benchmark: ${why}; last output:\n` +
        output.slice(-1500),
    );
  }
  const loopStart = seenMs[LOOP_START];
  const loopEnd = seenMs[LOOP_END];
  if (loopStart === undefined || loopEnd === undefined) {
    throw new Error(`${who} did not print the loop markers; last output:\n${output.slice(-1500)}`);
  }
  const run = /\[\s*(\d+\.\d+)\] Run \/init as init process/.exec(output);
  return {
    initMs: readyMs,
    forkexecMs: Number(fe[1]),
    forkexecHostMs: loopEnd - loopStart,
    initGuestMs: run ? Number(run[1]) * 1000 : NaN,
    wallMs,
  };
}

async function runVmon(): Promise<Sample> {
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      join(REPO_ROOT, "cli", "main.ts"),
      "run",
      "--host",
      "rv64",
      "--image",
      "linux-rv64",
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
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  let output = "";
  let errors = "";
  const seenMs: Record<string, number> = {};
  const dec = new TextDecoder();
  const readOut = async () => {
    for await (const chunk of child.stdout) {
      output += dec.decode(chunk, { stream: true });
      for (const w of [INIT_READY_MARKER, LOOP_START, LOOP_END]) {
        if (seenMs[w] === undefined && output.includes(w)) seenMs[w] = performance.now() - start;
      }
    }
  };
  const readErr = async () => {
    for await (const chunk of child.stderr) errors += dec.decode(chunk, { stream: true });
  };
  const [status] = await Promise.all([child.status, readOut(), readErr()]);
  clearTimeout(timer);
  const text = output + (errors ? `\n[stderr]\n${errors}` : "");
  return sample("vmon", text, status.code, seenMs, performance.now() - start);
}

async function runReference(image: { kernel: string; initrd?: string; cmdline?: string }) {
  const run = await runQemu(image, {
    append: `${image.cmdline ?? ""} vmon.exec="${SCRIPT}"`,
    cpus: 1,
    memory: "256M",
    timeoutMs: TIMEOUT_MS,
    watch: [LOOP_START, LOOP_END],
  });
  return sample("QEMU", run.output, run.status, run.seenMs, run.wallMs);
}

function describe(s: Sample): string {
  return `init ${s.initMs.toFixed(0)} ms, fork+exec ${s.forkexecMs} ms guest / ${
    s.forkexecHostMs.toFixed(0)
  } ms host`;
}

/**
 * Flags runs whose console output reached the host in one burst (the loop took seconds in the
 * guest but its markers arrived within a tenth of that): their host-side marker times
 * (`init_ms`, `forkexec_host_ms`) are then upper bounds set by the output delivery, not by the
 * guest.
 */
function notes(who: string, xs: readonly Sample[]): string[] {
  const burst = xs.filter((s) => s.forkexecMs >= 200 && s.forkexecHostMs < s.forkexecMs / 10);
  return burst.length === 0 ? [] : [
    `${who}: in ${burst.length}/${xs.length} runs the console output reached the host in one ` +
    "burst, so init_ms and forkexec_host_ms measure output delivery, not the guest",
  ];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

async function vmonMips(): Promise<number | null> {
  const path = join(REPO_ROOT, "tests/bench/rv64_mips.ts");
  try {
    Deno.statSync(path);
  } catch {
    return null;
  }
  log("measuring vmon MIPS with tests/bench/rv64_mips.ts (20M iterations)");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", path, "20000000"],
    cwd: REPO_ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  try {
    const mips = JSON.parse(line).mips;
    return typeof mips === "number" ? mips : null;
  } catch {
    log(`rv64_mips.ts printed no JSON line (status ${out.code})`);
    return null;
  }
}

if (!findQemu()) {
  console.error("boot_rv64: qemu-system-riscv64 is not installed: no reference to compare with");
  Deno.exit(1);
}
const image = await buildLinuxRv64({ onProgress: log });
const vmon: Sample[] = [];
const qemu: Sample[] = [];
let vmonError: string | undefined;
for (let i = 0; i < RUNS; i++) {
  if (vmonError === undefined) {
    try {
      vmon.push(await runVmon());
      const s = vmon.at(-1)!;
      log(`run ${i + 1}/${RUNS} vmon: ${describe(s)}`);
    } catch (e) {
      vmonError = e instanceof Error ? e.message : String(e);
      log(`vmon cannot boot the image yet: ${vmonError}`);
    }
  }
  const q = await runReference(image);
  qemu.push(q);
  log(`run ${i + 1}/${RUNS} QEMU: ${describe(q)}`);
}

const summary = (xs: Sample[]) => ({
  init_ms: round(median(xs.map((s) => s.initMs)), 1),
  forkexec_ms: median(xs.map((s) => s.forkexecMs)),
  forkexec_host_ms: round(median(xs.map((s) => s.forkexecHostMs)), 1),
  init_guest_ms: round(median(xs.map((s) => s.initGuestMs)), 1),
  wall_ms: round(median(xs.map((s) => s.wallMs)), 1),
  runs: xs.map((s) => ({
    init_ms: round(s.initMs, 1),
    forkexec_ms: s.forkexecMs,
    forkexec_host_ms: round(s.forkexecHostMs, 1),
    init_guest_ms: round(s.initGuestMs, 1),
    wall_ms: round(s.wallMs, 1),
  })),
});
const q = summary(qemu);
const v = vmonError === undefined ? summary(vmon) : undefined;
const burstNotes = [...notes("vmon", vmon), ...notes("qemu", qemu)];
const burst = burstNotes.length > 0;
const mips = await vmonMips();
console.log(JSON.stringify({
  bench: "boot_rv64",
  runs: RUNS,
  guest: `1000 fork+exec of /bin/true; markers "${INIT_READY_MARKER}", "${EXIT_STATUS_MARKER}0"`,
  vmon: v ?? { error: vmonError },
  qemu: q,
  ratio: v
    ? {
      // Host-side marker times are meaningless when a monitor delivered its output in one burst.
      init: burst ? null : round(v.init_ms / q.init_ms),
      forkexec: q.forkexec_ms > 0 ? round(v.forkexec_ms / q.forkexec_ms) : null,
      forkexec_host: burst ? null : round(v.forkexec_host_ms / q.forkexec_host_ms),
      init_guest: round(v.init_guest_ms / q.init_guest_ms),
      wall: round(v.wall_ms / q.wall_ms),
    }
    : null,
  vmon_mips: mips,
  notes: burstNotes,
}));
if (vmonError !== undefined) Deno.exit(1);
