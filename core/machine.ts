/**
 * The embedding API: build a machine from a manifest, run it, feed it input, read its stats.
 * The machine itself runs in a Worker (see DESIGN.md, "vCPU scheduling and threads").
 *
 * @module
 */

import type { MachineExit, MachineManifest, MachineStats } from "./api/mod.ts";
import { VmonError } from "./errors.ts";
import type { FromWorker, ToWorker } from "./machine_protocol.ts";
import { validateManifest } from "./manifest.ts";

/** Options of {@linkcode createMachine}. */
export interface MachineOptions {
  /** Trace categories (`exits`, `io`, `mmio`, `sbi`, `plugins`, `all`). */
  readonly trace?: readonly string[];
  /** Where guest console output goes (default: stdout). */
  readonly console?: { write(bytes: Uint8Array): void };
  /** Where monitor log lines go (default: stderr). */
  readonly log?: (line: string) => void;
}

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
  #nextId = 1;
  #running = false;
  #ended = false;

  private constructor(options: MachineOptions) {
    this.#options = options;
    this.#exit = new Promise((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    // Avoid unhandled rejections when the caller never awaits run().
    this.#exit.catch(() => {});
    this.#worker = new Worker(new URL("./machine_worker.ts", import.meta.url), {
      type: "module",
    });
    this.#worker.onmessage = (e: MessageEvent<FromWorker>) => this.#onMessage(e.data);
    this.#worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.#fail(new Error(`The machine worker crashed: ${e.message}`));
    };
  }

  /** Builds the machine: loads and sets up every plugin and boots the platform. */
  static async create(manifest: unknown, options: MachineOptions = {}): Promise<Machine> {
    const m = validateManifest(manifest);
    const machine = new Machine(options);
    const ready = new Promise<void>((resolve, reject) => {
      machine.#ready = { resolve, reject };
    });
    machine.#post({ type: "build", manifest: m, trace: options.trace ?? [] });
    try {
      await ready;
    } catch (err) {
      machine.#terminate();
      throw err;
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
      case "console":
        (this.#options.console?.write ?? defaultWrite)(msg.bytes);
        break;
      case "log":
        (this.#options.log ?? defaultLog)(msg.line);
        break;
      case "error": {
        const err = msg.user
          ? new VmonError(msg.message, { status: msg.status })
          : Object.assign(new Error(msg.message), { stack: msg.stack });
        this.#fail(err);
        break;
      }
      case "exit":
        this.#ended = true;
        this.#terminate();
        this.#resolveExit(msg.exit);
        break;
      case "stats":
        this.#statsWaiters.get(msg.id)?.(msg.stats);
        this.#statsWaiters.delete(msg.id);
        break;
    }
  }

  #fail(err: unknown): void {
    this.#ended = true;
    this.#terminate();
    this.#ready?.reject(err);
    this.#rejectExit(err);
  }

  #terminate(): void {
    this.#worker.terminate();
    for (const w of this.#statsWaiters.values()) w(emptyStats());
    this.#statsWaiters.clear();
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

  /** Ends the machine; `run()` then resolves with `status` (default 130) and `reason`. */
  stop(reason = "stopped by the user", status = 130): void {
    if (this.#ended) return;
    if (!this.#running) {
      this.#ended = true;
      this.#terminate();
      this.#resolveExit({ status, reason, failed: false, stats: emptyStats() });
      return;
    }
    this.#post({ type: "stop", reason, status });
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
  manifest: MachineManifest | unknown,
  options: MachineOptions = {},
): Promise<Machine> {
  return Machine.create(manifest, options);
}
