/**
 * What every plugin has and gets: the API version, plugin kinds, the services every plugin host
 * offers (interrupts, timers, console, logging, metrics, files) and what `setup` returns.
 *
 * @module
 */

/** The plugin API version this build of vmon implements. Plugins declare the version they target. */
export const PLUGIN_API_VERSION = 1;

/** The four kinds of plugin. */
export type PluginKind = "hostport" | "platform" | "device" | "paging";

/** Guest architectures a host port can run. */
export type GuestArch = "x86_64" | "riscv64";

/** One interrupt line into the platform's interrupt controller. */
export interface IrqLine {
  /** The line number as the platform numbers it (GSI on x86, PLIC source on RISC-V). */
  readonly number: number;
  /** Sets the line level (level-triggered devices). */
  set(level: boolean): void;
  /** Raises and lowers the line (edge-triggered devices). */
  pulse(): void;
}

/** Host timers, running on the machine worker between vCPU slices. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds of host time. Returns an id for `clear`. */
  setTimeout(fn: () => void, ms: number): number;
  /** Cancels a timer. */
  clear(id: number): void;
  /** Host monotonic time in milliseconds. */
  now(): number;
}

/** The machine's console: the user's terminal (or the embedding program's callbacks). */
export interface ConsolePort {
  /** Writes guest output. Never blocks the vCPU. */
  write(bytes: Uint8Array): void;
  /**
   * Subscribes to user input. Only one device owns input: the first to subscribe, unless the
   * manifest names another. Returns false if another device owns input.
   */
  onInput(fn: (bytes: Uint8Array) => void): boolean;
}

/** Log output, prefixed with the plugin's name. */
export interface Logger {
  /** Debug detail, shown with `--trace plugins`. */
  debug(message: string): void;
  /** Information for the user. */
  info(message: string): void;
  /** A problem the machine survives, such as a malformed guest request. */
  warn(message: string): void;
}

/** A monotonically increasing counter reported with `--stats`. */
export interface Counter {
  /** Adds `n` (default 1). */
  add(n?: number): void;
  /** The current value. */
  readonly value: number;
}

/** Per-plugin metrics, reported by `--stats`. */
export interface Metrics {
  /** Returns the counter called `name`, creating it at zero. */
  counter(name: string, description?: string): Counter;
}

/** What every plugin gets. */
export interface PluginHost {
  /** The plugin's own name, as loaded. */
  readonly name: string;
  /** Facts about the machine being built. */
  readonly machine: MachineInfo;
  /** Log output. */
  readonly log: Logger;
  /** Counters. */
  readonly metrics: Metrics;
  /** Host timers. */
  readonly timers: Timers;
  /** Reads a host file the user named (a disk, a kernel), with clear errors. */
  readonly files: HostFiles;
}

/** Facts about the machine, fixed before any plugin is set up. */
export interface MachineInfo {
  /** Number of vCPUs. */
  readonly cpus: number;
  /** RAM size in bytes. */
  readonly memorySize: number;
  /** Guest architecture of the host port. */
  readonly arch: GuestArch;
  /** The host port's name. */
  readonly hostport: string;
}

/** File access for plugins; errors name the file and say why. */
export interface HostFiles {
  /** Reads a whole file. */
  readFile(path: string): Uint8Array;
  /**
   * Opens a file for random access (disk images). Unless `lock` is false, the file is locked
   * while open (an advisory `flock(2)` on the whole file, released on close or process death):
   * exclusively when `write`, shared otherwise, so that two monitors never write one image; a
   * conflicting lock (held by another process, or by another open in this one) is refused with
   * one line naming the file and, when `/proc/locks` tells, the holder's process id and command.
   */
  open(path: string, options: { readonly write: boolean; readonly lock?: boolean }): HostFile;
}

/** A host file opened for random access. */
export interface HostFile {
  /** The file's size in bytes. */
  readonly size: number;
  /** Reads into `buf` at byte `offset`; returns bytes read. */
  readAt(buf: Uint8Array, offset: number): number;
  /** Writes `buf` at byte `offset`. */
  writeAt(buf: Uint8Array, offset: number): void;
  /** Makes written data durable (fdatasync). */
  sync(): void;
  /** Closes the file. Idempotent. */
  close(): void;
}

/**
 * A value a plugin's `save()` may return as its state: JSON values plus `Uint8Array` (stored
 * as bytes) and `bigint`. Snapshot files encode it (core/snapshot_format.ts); nothing else
 * (functions, class instances, `undefined` inside arrays) may appear in it.
 */
export type SnapshotValue =
  | null
  | boolean
  | number
  | string
  | bigint
  | Uint8Array
  | readonly SnapshotValue[]
  | { readonly [key: string]: SnapshotValue };

/**
 * What a plugin's `save()` returns: the version of the plugin's own state layout (an integer it
 * bumps whenever the layout changes) and the state. `restore()` receives the same object, read
 * back from the snapshot file.
 */
export interface PluginState {
  /** The plugin's state-layout version (1, 2, ...); not the plugin API version. */
  readonly version: number;
  /** The state. */
  readonly state: SnapshotValue;
}

/** Every plugin instance can be disposed; dispose must be idempotent. */
export interface PluginInstance {
  /** Releases host resources (files, timers). Called in reverse setup order. */
  dispose(): void;
  /**
   * Optional: the plugin's state for a snapshot (docs/DESIGN.md, "Snapshots"). Called on the
   * machine's thread between exits, with every vCPU stopped, devices first, the host port last.
   * Host resources (files, sockets, the terminal) are referenced through the plugin's options,
   * never copied. It may settle derived state first (a cache the restored machine rebuilds
   * anyway), as long as the running machine then behaves exactly like a restored one. A machine
   * with a plugin without `save` cannot be snapshotted: the snapshot fails with one line naming
   * the plugin.
   */
  save?(): PluginState;
  /**
   * Optional: loads state saved by `save()` into a freshly set-up instance (same options; the
   * platform's `boot` is not called, guest RAM is already restored). Called in setup order, host
   * port first. Must refuse, with a `VmonError` naming the plugin, a version it cannot read or a
   * state that does not fit (a disk that changed size, a missing host resource).
   */
  restore?(saved: PluginState): void;
}
