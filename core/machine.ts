/**
 * The embedding API: build a machine from a manifest, run it, feed it input, read its stats.
 * The machine itself runs in a Worker (see DESIGN.md, "vCPU scheduling and threads").
 *
 * @module
 */

import { ExitKind, type MachineExit, type MachineManifest, type MachineStats } from "./api/mod.ts";
import { hex, VmonError } from "./errors.ts";
import {
  ConsoleRing,
  type FromWorker,
  type SnapshotResult,
  type SnapshotTrigger,
  type ToWorker,
  WATCH,
  WATCH_INPUT,
  WATCH_TIMER,
  WATCH_WRITE,
  type WatchOwners,
} from "./machine_protocol.ts";
import { validateManifest } from "./manifest.ts";

export type { SnapshotResult, SnapshotTrigger } from "./machine_protocol.ts";

import { exitKindName } from "./trace.ts";
import { MACHINE_WORKER_URL, takePrewarmedWorker } from "./machine_prewarm.ts";

/** Options of {@linkcode createMachine}. */
export interface MachineOptions {
  /** Trace categories (`exits`, `io`, `mmio`, `sbi`, `plugins`, `all`). */
  readonly trace?: readonly string[];
  /** Where guest console output goes (default: stdout). */
  readonly console?: { write(bytes: Uint8Array): void };
  /** Where monitor log lines go (default: stderr). */
  readonly log?: (line: string) => void;
  /**
   * Milliseconds after which a plugin handler that has not returned (a bus handler, hypercall,
   * paging trap, timer callback or input handler) is reported to `log`, by plugin name and
   * address, while it still runs; again at twice, four times ... that. Default 5000; 0 turns the
   * report off.
   */
  readonly stallWarningMs?: number;
  /**
   * Milliseconds `stop()` waits for the machine to end by itself before it ends the worker
   * (a handler that never returns). Default 500.
   */
  readonly stopGraceMs?: number;
  /**
   * Aborting it while the machine is being built (a plugin's setup that does not return) ends
   * the worker; `createMachine` then rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
  /**
   * Snapshots to take when the console first prints a text (docs/DESIGN.md, "Snapshots"): the
   * machine pauses right after the exit that printed it, writes the file, then goes on (default),
   * stops with status 0, or stays paused until `resume()`. A trigger without a `path` writes
   * nothing but leaves the machine as a snapshot there would (it settles), for a cold run that
   * must count what a run restored from that point counts.
   */
  readonly snapshotOn?: readonly SnapshotTrigger[];
  /**
   * Called when a trigger's snapshot was written or its machine settled (or with `error`, one
   * line, when it failed).
   */
  readonly onSnapshot?: (result: SnapshotResult | { readonly error: string }) => void;
}

/** What {@linkcode createMachine} takes instead of a manifest to restore a snapshot. */
export interface RestoreSpec {
  /** The snapshot file; the machine is built from the manifest it holds, and not booted. */
  readonly restore: string;
}

function isRestoreSpec(v: unknown): v is RestoreSpec {
  return typeof v === "object" && v !== null && "restore" in v &&
    typeof (v as RestoreSpec).restore === "string" && Object.keys(v).length === 1;
}

/** Default of {@linkcode MachineOptions.stallWarningMs}. */
export const DEFAULT_STALL_WARNING_MS = 5000;
/** Default of {@linkcode MachineOptions.stopGraceMs}. */
export const DEFAULT_STOP_GRACE_MS = 500;
/** How often the main thread drains the console ring and samples the watch record. */
const WATCH_INTERVAL_MS = 100;

const encoder = new TextEncoder();

function defaultWrite(bytes: Uint8Array): void {
  let o = 0;
  while (o < bytes.length) o += Deno.stdout.writeSync(bytes.subarray(o));
}

function defaultLog(line: string): void {
  const b = encoder.encode(line + "\n");
  let o = 0;
  while (o < b.length) o += Deno.stderr.writeSync(b.subarray(o));
}

/** One sample of the watch record. */
interface WatchSample {
  readonly seq: number;
  readonly what: number;
  readonly lo: number;
  readonly hi: number;
  readonly vcpu: number;
}

/**
 * Names the plugin code a watch sample shows, e.g. `plugin "uart16550" handler for port write
 * 0x3f8 (vCPU 0)`.
 */
function describeWatch(s: WatchSample, owners: WatchOwners | undefined): string {
  const plugin = (i: number) => owners?.plugins[i] ?? `#${i}`;
  if (s.what === WATCH_TIMER) return `plugin "${plugin(s.lo)}" timer callback`;
  if (s.what === WATCH_INPUT) return `plugin "${plugin(s.lo)}" console input handler`;
  const kind = s.what & ~WATCH_WRITE;
  const on = `(vCPU ${s.vcpu})`;
  if (kind === ExitKind.Io || kind === ExitKind.Mmio) {
    const space = kind === ExitKind.Io ? "PIO" : "MMIO";
    const addr = s.hi * 0x1_0000_0000 + (s.lo >>> 0);
    const what = `${kind === ExitKind.Io ? "port" : "MMIO"} ${
      (s.what & WATCH_WRITE) !== 0 ? "write" : "read"
    } ${hex(addr)}`;
    const owner = owners?.ranges.find((r) =>
      r.space === space && addr >= r.base && addr < r.base + r.size
    )?.owner;
    return owner === undefined
      ? `the bus's handling of ${what} ${on}`
      : `plugin "${owner}" handler for ${what} ${on}`;
  }
  if (kind === ExitKind.Hypercall) {
    const nr = s.lo >>> 0;
    const owner = owners?.hypercalls.find(([n]) => n === nr)?.[1];
    return owner === undefined
      ? `the bus's handling of hypercall ${hex(nr)} ${on}`
      : `plugin "${owner}" handler for hypercall ${hex(nr)} ${on}`;
  }
  if (kind === ExitKind.Paging) {
    return `plugin "${owners?.paging ?? "?"}" handler for a paging trap ${on}`;
  }
  return `plugin "${owners?.platform ?? "?"}" handler for a ${exitKindName(kind)} exit ${on}`;
}

function seconds(ms: number): string {
  return ms >= 10_000 ? `${Math.round(ms / 1000)} s` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * A machine running in its own worker. Create with {@linkcode createMachine}.
 */
export class Machine {
  #worker: Worker;
  #options: MachineOptions;
  #exit: Promise<MachineExit>;
  #resolveExit!: (e: MachineExit) => void;
  #rejectExit!: (e: unknown) => void;
  #ready!: { resolve: () => void; reject: (e: unknown) => void };
  #statsWaiters = new Map<number, (s: MachineStats) => void>();
  #snapshotWaiters = new Map<number, (r: SnapshotResult | { error: string }) => void>();
  #nextId = 1;
  #running = false;
  #ended = false;
  #ringBuffer = new SharedArrayBuffer(ConsoleRing.bytes);
  #ring = new ConsoleRing(this.#ringBuffer);
  #watchBuffer = new SharedArrayBuffer(WATCH.length * 4);
  #watch = new Int32Array(this.#watchBuffer);
  #owners: WatchOwners | undefined;
  #interval: number;
  /** The plugin call seen running in the last samples, and since when. */
  #stall: { sample: WatchSample; since: number; reportAt: number; reported: boolean } | undefined;
  #forceTimer: number | undefined;

  private constructor(options: MachineOptions) {
    this.#options = options;
    this.#interval = setInterval(() => this.#tick(), WATCH_INTERVAL_MS) as unknown as number;
    this.#exit = new Promise((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    // Avoid unhandled rejections when the caller never awaits run().
    this.#exit.catch(() => {});
    const warm = takePrewarmedWorker();
    this.#worker = warm?.worker ?? new Worker(MACHINE_WORKER_URL, { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onMessage(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`The machine worker crashed: ${e.message}`));
    };
    if (warm?.error !== undefined) {
      this.#fail(new Error(`The machine worker crashed: ${warm.error}`));
    }
  }

  /** Builds the machine: loads and sets up every plugin and boots the platform. */
  static async create(manifest: unknown, options: MachineOptions = {}): Promise<Machine> {
    const restore = isRestoreSpec(manifest) ? manifest.restore : undefined;
    const m = restore === undefined ? validateManifest(manifest) : undefined;
    const machine = new Machine(options);
    const ready = new Promise<void>((resolve, reject) => {
      machine.#ready = { resolve, reject };
    });
    machine.#post({
      type: "build",
      ...(m !== undefined ? { manifest: m } : {}),
      ...(restore !== undefined ? { restore } : {}),
      ...(options.snapshotOn?.length ? { snapshotOn: options.snapshotOn } : {}),
      trace: options.trace ?? [],
      watch: machine.#watchBuffer,
      ring: machine.#ringBuffer,
    });
    const signal = options.signal;
    const onAbort = () => machine.#ready.reject(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort);
    try {
      await ready;
    } catch (err) {
      machine.#ended = true;
      machine.#terminate();
      throw err;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
    return machine;
  }

  #post(msg: ToWorker, transfer: Transferable[] = []): void {
    this.#worker.postMessage(msg, transfer);
  }

  #onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case "ready":
        this.#ready.resolve();
        break;
      case "owners":
        this.#owners = msg.owners;
        break;
      case "console":
        this.#drain();
        break;
      case "log":
        // Output the guest wrote before the line comes first.
        this.#drain(msg.at);
        (this.#options.log ?? defaultLog)(msg.line);
        break;
      case "error": {
        const err = msg.user
          ? Object.assign(new VmonError(msg.message, { status: msg.status }), { stack: msg.stack })
          : Object.assign(new Error(msg.message), { stack: msg.stack });
        this.#fail(err);
        break;
      }
      case "exit":
        this.#end(msg.exit);
        break;
      case "snapshot": {
        const done = msg.result ?? { error: msg.error ?? "Cannot take a snapshot: unknown error" };
        if (msg.id === 0) {
          if (this.#options.onSnapshot !== undefined) this.#options.onSnapshot(done);
          else if (msg.error !== undefined) (this.#options.log ?? defaultLog)(msg.error);
        } else {
          this.#snapshotWaiters.get(msg.id)?.(done);
          this.#snapshotWaiters.delete(msg.id);
        }
        break;
      }
      case "stats":
        this.#statsWaiters.get(msg.id)?.(msg.stats);
        this.#statsWaiters.delete(msg.id);
        break;
    }
  }

  /** Writes the guest output waiting in the console ring (up to write position `limit`). */
  #drain(limit?: number): void {
    const bytes = this.#ring.drain(limit);
    if (bytes.length > 0) (this.#options.console?.write ?? defaultWrite)(bytes);
  }

  #sample(): WatchSample {
    const w = this.#watch;
    return {
      seq: Atomics.load(w, WATCH.seq),
      what: Atomics.load(w, WATCH.what),
      lo: Atomics.load(w, WATCH.lo),
      hi: Atomics.load(w, WATCH.hi),
      vcpu: Atomics.load(w, WATCH.vcpu),
    };
  }

  /**
   * Every {@linkcode WATCH_INTERVAL_MS}: drains the console ring (output reaches the user even
   * when the worker is stuck) and reports a plugin call that has run longer than
   * `stallWarningMs`.
   */
  #tick(): void {
    this.#drain();
    const s = this.#sample();
    const now = performance.now();
    const prev = this.#stall;
    if (s.what === 0 || prev === undefined || prev.sample.seq !== s.seq) {
      if (prev?.reported) {
        this.#log(
          `vmon: ${describeWatch(prev.sample, this.#owners)} returned after ${
            seconds(now - prev.since)
          }`,
        );
      }
      const warn = this.#options.stallWarningMs ?? DEFAULT_STALL_WARNING_MS;
      this.#stall = s.what === 0 || warn <= 0
        ? undefined
        : { sample: s, since: now, reportAt: now + warn, reported: false };
      return;
    }
    if (now >= prev.reportAt) {
      const ran = now - prev.since;
      this.#log(
        `vmon: warning: ${describeWatch(prev.sample, this.#owners)} has run for ${
          seconds(ran)
        }; the machine waits for it (stop() or a signal ends the machine)`,
      );
      prev.reported = true;
      prev.reportAt = prev.since + 2 * ran;
    }
  }

  #log(line: string): void {
    (this.#options.log ?? defaultLog)(line);
  }

  /** The machine ended: output first, then `run()` resolves. */
  #end(exit: MachineExit): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#terminate();
    this.#resolveExit(exit);
  }

  #fail(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#terminate();
    this.#ready?.reject(err);
    this.#rejectExit(err);
  }

  /** Ends the worker, writes the output it left in the ring, and stops the watchdog. */
  #terminate(): void {
    this.#worker.terminate();
    clearInterval(this.#interval);
    if (this.#forceTimer !== undefined) clearTimeout(this.#forceTimer);
    this.#forceTimer = undefined;
    this.#drain();
    for (const w of this.#statsWaiters.values()) w(emptyStats());
    this.#statsWaiters.clear();
    for (const w of this.#snapshotWaiters.values()) {
      w({ error: "Cannot take a snapshot: the machine has ended" });
    }
    this.#snapshotWaiters.clear();
  }

  /**
   * `stop()` got no answer in time: the worker is inside code that does not return (or does
   * not yield). End it and resolve `run()` with the stop's status.
   */
  #forceStop(reason: string, status: number): void {
    this.#forceTimer = undefined;
    if (this.#ended) return;
    const s = this.#sample();
    const stall = this.#stall;
    const grace = this.#options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
    const detail = s.what !== 0
      ? `ended while ${describeWatch(s, this.#owners)} was running${
        stall !== undefined && stall.sample.seq === s.seq
          ? ` (for ${seconds(performance.now() - stall.since)})`
          : ""
      }`
      : `the machine did not stop within ${seconds(grace)} and was ended`;
    this.#end({ status, reason: `${reason}; ${detail}`, failed: false, stats: emptyStats() });
  }

  /**
   * Starts the vCPUs and resolves when the machine ends: the guest exited or powered off, a
   * plugin ended it, it failed, or `stop()` was called.
   */
  run(): Promise<MachineExit> {
    if (!this.#running && !this.#ended) {
      this.#running = true;
      this.#post({ type: "run" });
    }
    return this.#exit;
  }

  /** Sends user input to the device that owns the console. */
  sendInput(bytes: Uint8Array): void {
    if (this.#ended) return;
    const copy = bytes.slice();
    this.#post({ type: "input", bytes: copy }, [copy.buffer]);
  }

  /** Pauses the vCPUs after their current exit; devices, timers and input keep working. */
  pause(): void {
    if (!this.#ended) this.#post({ type: "pause" });
  }

  /** Resumes paused vCPUs. */
  resume(): void {
    if (!this.#ended) this.#post({ type: "resume" });
  }

  /**
   * Ends the machine; `run()` then resolves with `status` (default 130) and `reason`. The vCPUs
   * stop after their current exit; when the machine has not ended after `stopGraceMs` (a
   * plugin handler that does not return), the worker is ended, the guest output it produced is
   * written, and `run()` resolves with the same status, a reason naming the handler, and empty
   * stats. A forced end skips the plugins' `dispose`.
   */
  stop(reason = "stopped by the user", status = 130): void {
    if (this.#ended) return;
    if (!this.#running) {
      this.#end({ status, reason, failed: false, stats: emptyStats() });
      return;
    }
    this.#post({ type: "stop", reason, status });
    if (this.#forceTimer === undefined) {
      this.#forceTimer = setTimeout(
        () => this.#forceStop(reason, status),
        this.#options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
      ) as unknown as number;
    }
  }

  /**
   * Writes a snapshot of the machine to `path` (docs/DESIGN.md, "Snapshots") between two exits;
   * the machine then goes on (or stays paused if it was). Rejects with one line when a plugin
   * cannot save its state or the file cannot be written.
   *
   * @param path The file to write (mode 0600; replaced atomically).
   * @param options `compress`: deflate the file's sections.
   */
  snapshot(path: string, options: { readonly compress?: boolean } = {}): Promise<SnapshotResult> {
    if (this.#ended) {
      return Promise.reject(new VmonError("Cannot take a snapshot: the machine has ended"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#snapshotWaiters.set(id, (r) => {
        if ("error" in r) reject(new VmonError(r.error));
        else resolve(r);
      });
      this.#post({ type: "snapshot", id, path, compress: options.compress ?? false });
    });
  }

  /** The counters so far (the final ones once `run()` has resolved: use its result). */
  stats(): Promise<MachineStats> {
    if (this.#ended) return Promise.resolve(emptyStats());
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#statsWaiters.set(id, resolve);
      this.#post({ type: "stats", id });
    });
  }

  /** Stops the machine if it still runs. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#ended) {
      this.stop("disposed");
      await this.#exit.catch(() => {});
    }
  }
}

function emptyStats(): MachineStats {
  return { exits: {}, plugins: {}, metrics: {}, hostport: {}, wallMs: 0 };
}

/**
 * Builds a machine from a manifest (validated first) in a new worker and returns it, booted and
 * ready to `run()`.
 *
 * @param manifest A {@linkcode MachineManifest} (or JSON to validate).
 * @param options Trace categories and console/log sinks.
 *
 * @example
 * ```ts ignore
 * import { createMachine } from "./machine.ts";
 * const machine = await createMachine({
 *   hostport: { use: "kvm" },
 *   platform: { use: "x86-64-direct" },
 *   devices: [{ use: "uart16550" }, { use: "debug-exit" }],
 *   boot: { kernel: "hello.elf" },
 * });
 * const exit = await machine.run();
 * console.log(exit.status, exit.stats.exits);
 * ```
 */
export function createMachine(
  manifest: MachineManifest | RestoreSpec | unknown,
  options: MachineOptions = {},
): Promise<Machine> {
  return Machine.create(manifest, options);
}
