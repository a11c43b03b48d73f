/**
 * Machines (the embedding API): manifests, stats and exits.
 *
 * @module
 */

import type { BootSpec } from "./platform.ts";

/** A plugin reference in a manifest: a built-in name, a file path or a URL, and its options. */
export interface PluginRef {
  /** Built-in name (`uart16550`), path (`./my_dev.ts`, `./bundle.js`) or URL. */
  readonly use: string;
  /** Option values (validated against the plugin's schema). */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** A machine description. The CLI builds the same object from its flags. */
export interface MachineManifest {
  /** Number of vCPUs (default 1). */
  readonly cpus?: number;
  /** RAM size: bytes or a size string (`64M`); at most the host's memory unless `overcommit`. */
  readonly memory?: number | string;
  /**
   * Allow RAM larger than the host's memory (default false): only for guests known to touch
   * little of it, since the host swaps or kills the monitor once they do.
   */
  readonly overcommit?: boolean;
  /** The host port. */
  readonly hostport: PluginRef;
  /** The platform. */
  readonly platform: PluginRef;
  /** The paging strategy (default {@linkcode DEFAULT_PAGING}). */
  readonly paging?: PluginRef;
  /** Devices, set up in order. */
  readonly devices?: readonly PluginRef[];
  /** What to boot. */
  readonly boot?: BootSpec;
}

/** The paging strategy of a manifest that names none. */
export const DEFAULT_PAGING = "wired";

/** Exit counters of a finished (or running) machine. */
export interface MachineStats {
  /** Exits by kind name (`io`, `mmio`, `hlt`, ...). */
  readonly exits: Record<string, number>;
  /** Exits by the plugin that handled them (`unclaimed` for none). */
  readonly plugins: Record<string, number>;
  /** Plugin metrics: plugin name to counter name to value. */
  readonly metrics: Record<string, Record<string, number>>;
  /** Host port counters. */
  readonly hostport: Record<string, number>;
  /** Wall time the machine ran, in milliseconds. */
  readonly wallMs: number;
}

/** How a machine ended. */
export interface MachineExit {
  /** Exit status: the guest's (debug-exit, poweroff, `--exec`), or non-zero on failure. */
  readonly status: number;
  /** Why: `guest exit`, `poweroff`, `triple fault: ...`. */
  readonly reason: string;
  /** True when the machine failed (guest crash, host error) rather than exited. */
  readonly failed: boolean;
  /** Final counters. */
  readonly stats: MachineStats;
}
