/**
 * Paging strategy plugins: what a strategy's `setup` receives and what it returns.
 *
 * @module
 */

import type { DeviceBus } from "./bus.ts";
import type { ExitRecord } from "./exits.ts";
import type { HostPortInstance, Vcpu } from "./hostport.ts";
import type { GuestMemoryAccess } from "./memory.ts";
import type { PluginHost, PluginInstance } from "./services.ts";

/** What a paging plugin's `setup` receives. */
export interface PagingHost extends PluginHost {
  /**
   * The host port: `capabilities.paging` lists the paging mechanisms it offers and `paging` has
   * them (check with `requirePagingMechanisms`).
   */
  readonly hostport: HostPortInstance;
  /** Guest memory. */
  readonly memory: GuestMemoryAccess;
  /** The exit bus (paravirtual strategies register their hypercall here). */
  readonly bus: DeviceBus;
}

/** What a paging plugin's `setup` returns. */
export interface PagingInstance extends PluginInstance {
  /** The strategy's name, as reported in stats. */
  readonly strategy: string;
  /** Handles an {@linkcode ExitKind.Paging} exit. */
  onTrap?(vcpu: Vcpu, exit: ExitRecord): void;
  /** Strategy counters (traps by cause, updates, batches, validations, rejections). */
  stats(): Record<string, number>;
}
