/**
 * Runs the comparison matrix: one machine per run (the rv64 host port with the deterministic
 * icount clock, the image's platform and devices, the variant's paging strategy), its output cut
 * from the console between the bench markers, and the machine's counters recorded.
 *
 * A Linux run boots with `vmon.exec=console` (images/linux-rv64/protocol.ts): every run of a
 * variant is the same boot up to init's `vmon: init ready`, whatever its workload. At that line
 * the machine settles as a snapshot taken there would (core/snapshot_vm.ts `settleSnapshot`),
 * the workload command is typed in, and init runs it. With boot snapshots (`--from-snapshot`,
 * lab/boot_snapshots.ts) the run restores the snapshot taken at that line instead of booting, and
 * gets the same input before its first instruction: the guest and every counter see the same
 * thing either way, so both modes give the same results, exactly.
 *
 * @module
 */

import type { MachineExit, MachineManifest, PluginRef } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { createMachine } from "../core/machine.ts";
import { type BuiltImage, imageManifest } from "../images/mod.ts";
import {
  consoleExecInput,
  EXEC_FROM_CONSOLE,
  INIT_READY_MARKER,
} from "../images/linux-rv64/protocol.ts";
import { BenchCapture } from "../images/workloads/mod.ts";
import { flattenCounters, flattenHostTimes } from "./aggregate.ts";
import type { RunPhase, RunRecord, Variant, WorkloadRun } from "./types.ts";
import { benchCommand } from "./workloads.ts";
import { parsePvOutput, variantsFor } from "./pv.ts";
import type { BootSnapshots } from "./boot_snapshots.ts";

/** The host port every comparison run uses: rv64 with guest time from retired instructions. */
export const HOSTPORT: PluginRef = { use: "rv64", options: { clock: "icount" } };

/** {@linkcode HOSTPORT} as `vmon run --host` takes it (recorded in results.json). */
export const HOSTPORT_SPEC: string = [
  HOSTPORT.use,
  ...Object.entries(HOSTPORT.options ?? {}).map(([key, value]) => `${key}=${value}`),
].join(",");

/** Most monitor log lines kept per run. */
const MAX_LOG_LINES = 50;

/** One run of the matrix. */
export interface PlannedRun {
  /** The workload. */
  readonly workload: WorkloadRun;
  /** The strategy variant. */
  readonly variant: Variant;
  /** Measure or baseline. */
  readonly phase: RunPhase;
  /** N of this run. */
  readonly n: number;
  /** Repeat index from 0. */
  readonly repeat: number;
}

/**
 * Orders the runs: the repeat is the outer loop, so that slow drift of the host spreads over all
 * strategies instead of favouring one; inside it, each workload and variant runs its baseline
 * (when it has one) right before the measured run. `pv-update` runs under the `--batch` variants
 * only, the other workloads under the other variants only ({@linkcode variantsFor}). Baselines repeat too: their counters are
 * checked for determinism like the rest, and their wall time is subtracted repeat by repeat.
 *
 * @param matrix The workloads, variants and number of repeats.
 * @returns The runs in the order to run them.
 *
 * @example
 * ```ts
 * import { planRuns } from "./runner.ts";
 *
 * const w = { name: "forkwait", n: 16, baseN: 2, opsPerN: 1, op: "fork", args: (n: number) => [String(n)] };
 * const v = { id: "wired", strategy: "wired", options: {} };
 * const runs = planRuns({ workloads: [w], variants: [v], repeat: 2 });
 * const got = runs.map((r) => `${r.phase}:${r.n}#${r.repeat}`).join();
 * if (got !== "baseline:2#0,measure:16#0,baseline:2#1,measure:16#1") throw new Error(got);
 * ```
 */
export function planRuns(
  matrix: {
    readonly workloads: readonly WorkloadRun[];
    readonly variants: readonly Variant[];
    readonly repeat: number;
  },
): PlannedRun[] {
  const out: PlannedRun[] = [];
  for (let repeat = 0; repeat < matrix.repeat; repeat++) {
    for (const workload of matrix.workloads) {
      for (const variant of variantsFor(workload, matrix.variants)) {
        if (workload.baseN !== undefined) {
          out.push({ workload, variant, phase: "baseline", n: workload.baseN, repeat });
        }
        out.push({ workload, variant, phase: "measure", n: workload.n, repeat });
      }
    }
  }
  return out;
}

/** What every run shares. */
export interface RunOptions {
  /** The built bench image (Linux workloads). */
  readonly image: BuiltImage;
  /** The built pv-guest image (needed by `pv-update` runs). */
  readonly pvImage?: BuiltImage;
  /** vCPUs (default: the image's). */
  readonly cpus?: number;
  /** RAM bytes (default: the image's). */
  readonly memory?: number;
  /** Host milliseconds after which a run is stopped and counted as failed. */
  readonly timeoutMs: number;
  /** Receives the guest console bytes as they arrive (for `--console`). */
  readonly echo?: (bytes: Uint8Array) => void;
  /**
   * Start Linux runs from their variant's boot snapshot (made on first use from
   * {@linkcode bootManifest}) instead of booting each. `pv-update` runs always boot (the
   * pv-guest boots in microseconds).
   */
  readonly snapshots?: BootSnapshots;
}

/**
 * The manifest of one run: the image's defaults with the rv64 host port on the icount clock, the
 * run's paging strategy and options; for a Linux run {@linkcode bootManifest} (the workload is
 * typed in: {@linkcode runMachine}), for `pv-update` the pv-guest with the batch size.
 *
 * @param run The run.
 * @param options The image and machine size.
 */
export function runManifest(
  run: PlannedRun,
  options: Pick<RunOptions, "image" | "pvImage" | "cpus" | "memory">,
): MachineManifest {
  if (run.workload.kind === "pv") return pvManifest(run, options);
  return bootManifest(run.variant, options);
}

/**
 * The manifest every Linux run of a variant boots, and its boot snapshot is taken from: the
 * image's defaults, the rv64 port on the icount clock, no random seed, the variant's strategy, and
 * `vmon.exec=console` on the kernel command line, so init reads the workload from the console
 * after `vmon: init ready`.
 *
 * @param variant The strategy variant.
 * @param options The image and machine size.
 */
export function bootManifest(
  variant: Variant,
  options: Pick<RunOptions, "image" | "cpus" | "memory">,
): MachineManifest {
  const base = imageManifest(options.image, {
    hostport: HOSTPORT,
    ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
    ...(options.memory !== undefined ? { memory: options.memory } : {}),
  });
  return {
    ...base,
    boot: { ...base.boot, cmdline: `${base.boot?.cmdline ?? ""} ${EXEC_FROM_CONSOLE}`.trim() },
    // No random /chosen/rng-seed: the guest's entropy (and so its address-space layout and
    // instruction counts) must be the same in every repeat.
    platform: { ...base.platform, options: { ...base.platform.options, "rng-seed": false } },
    paging: { use: variant.strategy, options: { ...variant.options } },
  };
}

/**
 * The manifest of a `pv-update` run: the pv-guest image with its own defaults (32 MiB, no
 * devices), one vCPU, the rv64 port on the icount clock, no random seed, the queued strategy
 * with the variant's options and `pv.batch=<size>` on the command line. `--cpus` and `--mem`
 * (sized for Linux) do not apply.
 */
function pvManifest(
  run: PlannedRun,
  options: Pick<RunOptions, "image" | "pvImage">,
): MachineManifest {
  const image = options.pvImage;
  if (image === undefined) {
    throw new VmonError(`Cannot run ${run.workload.name}: the pv-guest image was not built`);
  }
  const base = imageManifest(image, { hostport: HOSTPORT, cpus: 1 });
  return {
    ...base,
    platform: { ...base.platform, options: { ...base.platform.options, "rng-seed": false } },
    paging: { use: run.variant.strategy, options: { ...run.variant.options } },
    boot: { ...base.boot, cmdline: benchCommand(run.workload, run.n, run.variant.batch) },
  };
}

/** Splits console text into lines, as the pv-guest prints them. */
class LineCapture {
  #decoder = new TextDecoder();
  #text = "";

  write(bytes: Uint8Array): void {
    this.#text += this.#decoder.decode(bytes, { stream: true });
  }

  lines(): string[] {
    return (this.#text + this.#decoder.decode()).split("\n");
  }
}

/**
 * Runs the machine of `run`, sending its console to `capture` (and `options.echo`), keeping the
 * first monitor log lines, and flattening its counters.
 */
async function runCaptured(
  run: PlannedRun,
  options: RunOptions,
  capture: { write(bytes: Uint8Array): void },
) {
  const log: string[] = [];
  const manifest = runManifest(run, options);
  const linux = run.workload.kind !== "pv";
  const snapshots = linux ? options.snapshots : undefined;
  const spec = snapshots === undefined
    ? manifest
    : { restore: await snapshots.pathFor(run.variant) };
  const { exit, timedOut } = await runMachine(spec, {
    ...(linux ? { command: benchCommand(run.workload, run.n) } : {}),
    write: (bytes) => {
      options.echo?.(bytes);
      capture.write(bytes);
    },
    log: (line) => {
      if (log.length < MAX_LOG_LINES) log.push(line);
    },
    timeoutMs: options.timeoutMs,
  });
  const counters = flattenCounters(exit.stats, run.variant.strategy);
  const hostUs = flattenHostTimes(exit.stats, run.variant.strategy);
  return { exit, timedOut, log, counters, hostUs, command: manifest.boot?.cmdline ?? "" };
}

/** The fields that name a run in its record: workload, variant, strategy, batch, phase, N, repeat. */
function runIdentity(run: PlannedRun) {
  return {
    workload: run.workload.name,
    variant: run.variant.id,
    strategy: run.variant.strategy,
    ...(run.variant.batch !== undefined ? { batch: run.variant.batch } : {}),
    phase: run.phase,
    n: run.n,
    repeat: run.repeat,
  };
}

/**
 * Runs one machine and records what it did. A guest that fails, times out, prints no markers or
 * ends with a non-zero status gives a record with `error` set; a machine that cannot be built
 * (a plugin refuses its options, the host port lacks the strategy) throws.
 *
 * @param run The run.
 * @param options The image, machine size, timeout and console echo.
 * @returns The record.
 */
export async function runOne(run: PlannedRun, options: RunOptions): Promise<RunRecord> {
  if (run.workload.kind === "pv") return await runPv(run, options);
  const capture = new BenchCapture();
  const { exit, timedOut, log, counters, hostUs } = await runCaptured(run, options, capture);
  const out = capture.finish();
  const tail = out.tail.filter((l) => l !== "").slice(-5).join(" | ");
  let error: string | undefined;
  if (timedOut) error = `the run timed out after ${Math.round(options.timeoutMs / 1000)} s`;
  else if (exit.failed) error = `the machine failed: ${exit.reason}`;
  else if (out.begin === undefined) error = `no "vmon-bench: begin" marker (last lines: ${tail})`;
  else if (out.end === undefined) error = `no "vmon-bench: end" marker (last lines: ${tail})`;
  else if (out.endStatus !== 0) {
    error = `the workload ended with status ${out.endStatus} (last lines: ${tail})`;
  } else if (exit.status !== 0) error = `the machine exited with status ${exit.status}`;
  else if (out.result.length === 0) error = "the workload printed no result line";
  return {
    ...runIdentity(run),
    command: benchCommand(run.workload, run.n),
    status: exit.status,
    reason: exit.reason,
    failed: exit.failed || timedOut,
    output: out.output,
    result: out.result,
    ...(out.timeLine !== undefined ? { timeLine: out.timeLine } : {}),
    ...(out.guestMs !== undefined ? { guestMs: out.guestMs } : {}),
    ...(out.endStatus !== undefined ? { endStatus: out.endStatus } : {}),
    ...(out.windowMs !== undefined ? { windowMs: out.windowMs } : {}),
    machineMs: exit.stats.wallMs,
    counters,
    ...(Object.keys(hostUs).length > 0 ? { hostUs } : {}),
    exits: { ...exit.stats.exits },
    log,
    ...(error !== undefined ? { error } : {}),
  };
}

/** Options of {@linkcode runMachine}. */
export interface RunMachineOptions {
  /** Receives the console bytes. */
  readonly write: (bytes: Uint8Array) => void;
  /** Receives the monitor's log lines. */
  readonly log: (line: string) => void;
  /** Host milliseconds after which the machine is stopped (`timedOut` is then true). */
  readonly timeoutMs: number;
  /**
   * A Linux run's workload, for init under `vmon.exec=console`. A booting machine settles at
   * `vmon: init ready` as a snapshot there would and gets it typed in before its next
   * instruction; a restored one (from a snapshot taken at that line) gets it before its first.
   */
  readonly command?: string;
}

/**
 * Runs a machine (or restores one) with a timeout, giving a Linux run its command at the same
 * guest instruction whether it boots or is restored (see the module's text).
 *
 * @param spec The manifest to boot, or the snapshot to restore.
 * @param options The console, log, timeout and command.
 * @returns How the machine ended, and whether the timeout ended it.
 * @throws {VmonError} When the machine cannot be built or restored.
 */
export async function runMachine(
  spec: MachineManifest | { restore: string },
  options: RunMachineOptions,
): Promise<{ exit: MachineExit; timedOut: boolean }> {
  const input = options.command === undefined
    ? undefined
    : new TextEncoder().encode(consoleExecInput(options.command));
  const restoring = "restore" in spec;
  let settleError: string | undefined;
  const machine = await createMachine(spec, {
    console: { write: options.write },
    log: options.log,
    ...(input !== undefined && !restoring
      ? {
        // No file: the machine only settles, then pauses until the command is in.
        snapshotOn: [{ text: INIT_READY_MARKER, then: "pause" as const }],
        onSnapshot: (r) => {
          if ("error" in r) {
            settleError = r.error;
            return;
          }
          machine.sendInput(input);
          machine.resume();
        },
      }
      : {}),
  });
  if (input !== undefined && restoring) machine.sendInput(input);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    machine.stop(`timed out after ${Math.round(options.timeoutMs / 1000)} s`, 124);
  }, options.timeoutMs);
  try {
    const exit = await machine.run();
    if (settleError !== undefined) {
      return { exit: { ...exit, failed: true, reason: settleError }, timedOut };
    }
    return { exit, timedOut };
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
}

/**
 * Runs one `pv-update` run: the pv-guest under the variant's strategy and batch size. Its record
 * has the guest's `pv-guest:` lines as output, the batch-independent ones as result (see
 * {@linkcode parsePvOutput}) and the updates it submitted as `ops`.
 */
async function runPv(run: PlannedRun, options: RunOptions): Promise<RunRecord> {
  const capture = new LineCapture();
  const { exit, timedOut, log, counters, hostUs, command } = await runCaptured(
    run,
    options,
    capture,
  );
  const out = parsePvOutput(capture.lines(), { batch: run.variant.batch ?? 0, counters });
  let error: string | undefined;
  if (timedOut) error = `the run timed out after ${Math.round(options.timeoutMs / 1000)} s`;
  else if (exit.failed) error = `the machine failed: ${exit.reason}`;
  else if (out.error !== undefined) error = out.error;
  else if (exit.status !== 0) error = `the machine exited with status ${exit.status}`;
  return {
    ...runIdentity(run),
    command,
    status: exit.status,
    reason: exit.reason,
    failed: exit.failed || timedOut,
    output: out.output,
    result: out.result,
    machineMs: exit.stats.wallMs,
    ...(out.updates !== undefined ? { ops: out.updates } : {}),
    counters,
    ...(Object.keys(hostUs).length > 0 ? { hostUs } : {}),
    exits: { ...exit.stats.exits },
    log,
    ...(error !== undefined ? { error } : {}),
  };
}
