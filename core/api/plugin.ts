/**
 * The plugin API version, plugin kinds and what a plugin definition holds.
 *
 * @module
 */

import type { DeviceHost } from "./device.ts";
import type { HostPortHost, HostPortInstance } from "./hostport.ts";
import type { OptionsSchema, OptionValues } from "./options.ts";
import type { PagingHost, PagingInstance } from "./strategy.ts";
import type { PlatformHost, PlatformInstance } from "./platform.ts";
import type { GuestArch, PluginInstance } from "./services.ts";
import type { PluginRef } from "./machine.ts";

// Plugin definitions

/** What every plugin definition has. */
export interface PluginCommon<S extends OptionsSchema> {
  /** The name users type (`--device uart16550`). Lowercase letters, digits and dashes. */
  readonly name: string;
  /** The plugin API version the plugin was written for. */
  readonly apiVersion: number;
  /** One line shown by `vmon plugins`. */
  readonly description: string;
  /** The options schema. */
  readonly options?: S;
}

/** A device plugin definition. */
export interface DevicePluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "device";
  /** Creates the device: claims ranges, lines and host resources. */
  setup(host: DeviceHost, options: OptionValues<S>): PluginInstance | Promise<PluginInstance>;
}

/** A platform plugin definition. */
export interface PlatformPluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "platform";
  /** The guest architecture the platform builds machines for. */
  readonly arch: GuestArch;
  /**
   * Devices every machine of this platform gets unless its manifest already has a device of the
   * same plugin, set up before the manifest's devices: the platform's serial console, for
   * instance. Called with the platform's option values, so that an option can turn them off
   * (riscv-virt's `console=false`).
   */
  defaultDevices?(options: OptionValues<S>): readonly PluginRef[];
  /** Lays out memory and interrupt controllers; returns the services devices use. */
  setup(host: PlatformHost, options: OptionValues<S>): PlatformInstance | Promise<PlatformInstance>;
}

/** A host port plugin definition. */
export interface HostPortPluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "hostport";
  /** The guest architecture this port runs. */
  readonly arch: GuestArch;
  /** Creates the VM. Throws a clear error when the host cannot run it (no /dev/kvm, ...). */
  setup(host: HostPortHost, options: OptionValues<S>): HostPortInstance | Promise<HostPortInstance>;
  /**
   * Optional: gets ready for a `setup` that may follow, before any machine exists (a machine
   * worker started early calls it while the CLI is still loading): open the host library if it is
   * already built, and nothing more. It must not build, create, print or throw on purpose; what
   * it throws is ignored, and `setup` must work whether or not it ran.
   */
  warm?(): void;
}

/** A paging strategy plugin definition. */
export interface PagingPluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "paging";
  /** Installs the strategy on the host port's MMU. */
  setup(host: PagingHost, options: OptionValues<S>): PagingInstance | Promise<PagingInstance>;
}

/** Any plugin definition. */
export type PluginDefinition =
  // deno-lint-ignore no-explicit-any
  | DevicePluginDefinition<any>
  // deno-lint-ignore no-explicit-any
  | PlatformPluginDefinition<any>
  // deno-lint-ignore no-explicit-any
  | HostPortPluginDefinition<any>
  // deno-lint-ignore no-explicit-any
  | PagingPluginDefinition<any>;
