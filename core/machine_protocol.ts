/**
 * What the main thread's `Machine` and the machine worker share: their messages, the watch
 * record (the exit or plugin call the worker is in, written into shared memory so that the main
 * thread can name a handler that never returns) and the console ring (guest output written into
 * shared memory, so that output produced before a stall reaches the user even if the worker
 * never runs again). See DESIGN.md, "vCPU scheduling and threads".
 *
 * @module
 */

import type { MachineExit, MachineManifest, MachineStats } from "./api/mod.ts";
import type { PluginKind } from "./api/services.ts";
/** Who owns what, for naming a stalled handler on the main thread (the worker is stuck then). */
export interface WatchOwners {
  /** The port I/O and MMIO ranges and their plugins (`ExitBus.ranges()`). */
  readonly ranges: readonly {
    readonly space: "PIO" | "MMIO";
    readonly base: number;
    readonly size: number;
    readonly owner: string;
  }[];
  /** Hypercall numbers and their plugins. */
  readonly hypercalls: readonly (readonly [number, string])[];
  /** The platform plugin (halt, shutdown and system-event exits). */
  readonly platform: string;
  /** The paging strategy (paging traps). */
  readonly paging: string;
  /** Every plugin by index (timer callbacks and console input handlers name theirs by index). */
  readonly plugins: readonly string[];
}

/** Main thread to worker. */
export type ToWorker =
  | {
    type: "build";
    /** The manifest; absent when `restore` names a snapshot (its manifest is used). */
    manifest?: MachineManifest;
    trace: readonly string[];
    /** The watch record ({@linkcode WATCH}). */
    watch: SharedArrayBuffer;
    /** The console ring ({@linkcode ConsoleRing}). */
    ring: SharedArrayBuffer;
    /** A snapshot file to restore instead of booting (the manifest is then the file's). */
    restore?: string;
    /** Snapshots to take when the console first prints a text (core/snapshot_vm.ts). */
    snapshotOn?: readonly SnapshotTrigger[];
  }
  /**
   * Plugins the next build will probably load: the worker imports them (and warms host ports)
   * while it waits for "build". A hint only: failures are ignored, and the build loads what its
   * manifest names either way.
   */
  | { type: "preload"; plugins: readonly PreloadPlugin[] }
  | { type: "snapshot"; id: number; path: string; compress: boolean }
  | { type: "run" }
  | { type: "input"; bytes: Uint8Array }
  | { type: "stop"; reason: string; status: number }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "stats"; id: number };

/** A plugin to preload: a built-in name (or path, or URL) and its kind. */
export interface PreloadPlugin {
  /** What a manifest's `use` would say. */
  readonly use: string;
  /** The plugin's kind. */
  readonly kind: PluginKind;
}

/** Worker to main thread. */
export type FromWorker =
  | { type: "ready" }
  /** Who owns what (after setup, and again when registrations change). */
  | { type: "owners"; owners: WatchOwners }
  /** Console output waits in the ring: drain it. */
  | { type: "console" }
  /** A log line; `at` is the ring's write position when it was logged (output before it first). */
  | { type: "log"; line: string; at: number }
  | { type: "error"; message: string; status: number; stack?: string; user: boolean }
  | { type: "exit"; exit: MachineExit }
  | { type: "stats"; id: number; stats: MachineStats }
  /** A snapshot was written (`id` 0: by a trigger) or failed (`error`, one line). */
  | { type: "snapshot"; id: number; result?: SnapshotResult; error?: string };

/** A snapshot to take when the console first prints `text`. */
export interface SnapshotTrigger {
  /** The text to wait for (matched across writes). */
  readonly text: string;
  /**
   * The file to write. Without one nothing is written, but the machine settles exactly as taking
   * the snapshot would (every plugin's `save()` runs and drops what a restored machine rebuilds),
   * so a cold run counts what a run restored from a snapshot taken there counts.
   */
  readonly path?: string;
  /** What the machine does next: go on (default), stop (status 0), or stay paused. */
  readonly then?: "continue" | "stop" | "pause";
  /** Deflate the file's sections. */
  readonly compress?: boolean;
}

/** What a snapshot wrote (nothing, for a trigger without a file: it only settled). */
export interface SnapshotResult {
  /** The file; absent when the trigger had none. */
  readonly path?: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** RAM pages stored (all-zero pages are left out). */
  readonly pages: number;
  /** RAM pages of the machine. */
  readonly totalPages: number;
  /** Milliseconds the machine was stopped for it (writing the file included). */
  readonly ms: number;
  /** The trigger text, for snapshots taken by a trigger. */
  readonly trigger?: string;
}

/**
 * Slots of the watch record, an `Int32Array` over a `SharedArrayBuffer` that the worker writes
 * when it enters and leaves plugin code (core/bus.ts `dispatchExit`, timer callbacks, console
 * input) and the main thread samples. Plain stores: a few integers per exit, no message.
 */
export const WATCH = {
  /** Incremented on every entry: the same value in two samples means the same call. */
  seq: 0,
  /**
   * 0 when no plugin code runs; else the exit kind (plus {@linkcode WATCH_WRITE} for writes),
   * {@linkcode WATCH_TIMER} or {@linkcode WATCH_INPUT}.
   */
  what: 1,
  /** Low 32 bits of the address (port, MMIO address, hypercall number, plugin index). */
  lo: 2,
  /** High 32 bits of the address. */
  hi: 3,
  /** The vCPU, or -1 for calls from the event loop (timers, input). */
  vcpu: 4,
  /** Slots in the record. */
  length: 8,
} as const;

/** `WATCH.what` of a write access: the exit kind plus this flag. */
export const WATCH_WRITE = 0x100;
/** `WATCH.what` of a timer callback (`lo` is the plugin index). */
export const WATCH_TIMER = 0x1000;
/** `WATCH.what` of a console input handler (`lo` is the plugin index). */
export const WATCH_INPUT = 0x1001;

/**
 * The console ring: guest output the worker writes and the main thread drains, in a
 * `SharedArrayBuffer` of {@linkcode ConsoleRing.bytes} bytes: two `Int32` positions (write, read;
 * they count bytes modulo 2^32) then the data. The worker never blocks on the main thread
 * unless the ring is full (a terminal that does not keep up); then it waits in short steps for
 * the main thread to drain, as a UART waits for its line.
 */
export class ConsoleRing {
  /** Data capacity (a power of two). */
  static readonly CAPACITY = 1 << 18;
  /** Size of the shared buffer to allocate. */
  static readonly bytes: number = 8 + ConsoleRing.CAPACITY;
  #pos: Int32Array;
  #data: Uint8Array;
  #mask = ConsoleRing.CAPACITY - 1;

  /** @param buffer A `SharedArrayBuffer` of {@linkcode ConsoleRing.bytes} bytes. */
  constructor(buffer: SharedArrayBuffer) {
    this.#pos = new Int32Array(buffer, 0, 2);
    this.#data = new Uint8Array(buffer, 8, ConsoleRing.CAPACITY);
  }

  /** The write position (bytes written so far, modulo 2^32). */
  get writePosition(): number {
    return Atomics.load(this.#pos, 0);
  }

  /** Bytes written and not yet drained. */
  get pending(): number {
    return (Atomics.load(this.#pos, 0) - Atomics.load(this.#pos, 1)) >>> 0;
  }

  /**
   * Worker side: copies `bytes` into the ring. When it is full, calls `onFull` (which tells the
   * main thread to drain) and waits for room, 20 ms at a time.
   */
  write(bytes: Uint8Array, onFull: () => void): void {
    const pos = this.#pos;
    const cap = ConsoleRing.CAPACITY;
    let off = 0;
    while (off < bytes.length) {
      const w = Atomics.load(pos, 0);
      const r = Atomics.load(pos, 1);
      const free = cap - ((w - r) >>> 0);
      if (free === 0) {
        onFull();
        Atomics.wait(pos, 1, r, 20);
        continue;
      }
      const n = Math.min(free, bytes.length - off);
      const at = w & this.#mask;
      const first = Math.min(n, cap - at);
      this.#data.set(bytes.subarray(off, off + first), at);
      if (n > first) this.#data.set(bytes.subarray(off + first, off + n), 0);
      off += n;
      Atomics.store(pos, 0, (w + n) | 0);
    }
  }

  /**
   * Main-thread side: takes the bytes written so far, or only those before write position
   * `limit`, and frees their room.
   */
  drain(limit?: number): Uint8Array {
    const pos = this.#pos;
    const w = limit ?? Atomics.load(pos, 0);
    const r = Atomics.load(pos, 1);
    const n = (w - r) >>> 0;
    if (n === 0 || n > ConsoleRing.CAPACITY) return new Uint8Array(0);
    const out = new Uint8Array(n);
    const at = r & this.#mask;
    const first = Math.min(n, ConsoleRing.CAPACITY - at);
    out.set(this.#data.subarray(at, at + first));
    if (n > first) out.set(this.#data.subarray(0, n - first), first);
    Atomics.store(pos, 1, (r + n) | 0);
    Atomics.notify(pos, 1);
    return out;
  }
}
