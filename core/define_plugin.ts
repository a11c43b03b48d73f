/**
 * `definePlugin`: how every vmon plugin is made.
 *
 * @module
 */

import type {
  DevicePluginDefinition,
  HostPortPluginDefinition,
  OptionsSchema,
  PagingPluginDefinition,
  PlatformPluginDefinition,
  PluginDefinition,
  PluginKind,
} from "./api/mod.ts";
import { VmonError } from "./errors.ts";
import { checkOptionsSchema } from "./schema.ts";

/** The plugin kinds, in the order `vmon plugins` lists them. */
export const PLUGIN_KINDS: readonly PluginKind[] = ["hostport", "platform", "device", "paging"];

/** Plugin names: lowercase letters, digits and dashes, starting with a letter. */
export const PLUGIN_NAME_RE: RegExp = /^[a-z][a-z0-9-]*$/;

const ARCHES = ["x86_64", "riscv64"];

/**
 * Checks that a value is a well-formed plugin definition and returns it typed. Used by
 * {@linkcode definePlugin} and by the loader on a module's default export.
 *
 * @param def Any value.
 * @param options `source`: how the plugin was referenced, for messages (defaults to its name).
 * @throws {VmonError} `Invalid plugin definition "x": kind must be one of ...`.
 */
export function checkPluginDefinition(
  def: unknown,
  options: { source?: string } = {},
): PluginDefinition {
  if (typeof def !== "object" || def === null) {
    throw new VmonError(
      `Invalid plugin definition${
        options.source ? ` "${options.source}"` : ""
      }: expected an object with name, kind, apiVersion, description and setup`,
    );
  }
  const d = def as Record<string, unknown>;
  const label = options.source ?? (typeof d.name === "string" ? d.name : "(unnamed)");
  const where = `Invalid plugin definition "${label}"`;
  if (typeof d.name !== "string" || !PLUGIN_NAME_RE.test(d.name)) {
    throw new VmonError(
      `${where}: name must be lowercase letters, digits and dashes starting with a letter, got ${
        JSON.stringify(d.name) ?? String(d.name)
      }`,
    );
  }
  if (!PLUGIN_KINDS.includes(d.kind as PluginKind)) {
    throw new VmonError(
      `${where}: kind must be one of ${PLUGIN_KINDS.join(", ")}, got ${
        JSON.stringify(d.kind) ?? String(d.kind)
      }`,
    );
  }
  if (typeof d.apiVersion !== "number" || !Number.isInteger(d.apiVersion) || d.apiVersion < 1) {
    throw new VmonError(
      `${where}: apiVersion must be a positive integer, got ${String(d.apiVersion)}`,
    );
  }
  if (typeof d.description !== "string") {
    throw new VmonError(`${where}: description must be a string`);
  }
  if (typeof d.setup !== "function") {
    throw new VmonError(`${where}: setup must be a function`);
  }
  if ((d.kind === "hostport" || d.kind === "platform") && !ARCHES.includes(d.arch as string)) {
    throw new VmonError(
      `${where}: a ${d.kind} plugin needs arch ${ARCHES.join(" or ")}, got ${
        JSON.stringify(d.arch) ?? String(d.arch)
      }`,
    );
  }
  if (d.kind === "hostport" && d.warm !== undefined && typeof d.warm !== "function") {
    throw new VmonError(`${where}: warm must be a function`);
  }
  if (d.kind === "platform" && d.defaultDevices !== undefined) {
    if (typeof d.defaultDevices !== "function") {
      throw new VmonError(`${where}: defaultDevices must be a function`);
    }
  }
  checkOptionsSchema(d.options, { plugin: d.name });
  return def as PluginDefinition;
}

/**
 * Defines a vmon plugin. The definition is checked (name, kind, API version, setup, options
 * schema) and returned unchanged. The options schema's type is inferred (as if written
 * `as const`), so `setup` receives typed options: an option with a default or `required: true`
 * is never `undefined`. A plugin module's default export must be made with this function.
 *
 * @param def The plugin definition.
 * @returns `def`, checked.
 * @throws {VmonError} When the definition is malformed.
 *
 * @example
 * ```ts
 * import { definePlugin } from "./define_plugin.ts";
 * export default definePlugin({
 *   name: "null-device",
 *   kind: "device",
 *   apiVersion: 1,
 *   description: "A device that claims nothing",
 *   options: { verbose: { type: "boolean", description: "Log setup", default: false } },
 *   setup(host, options) {
 *     if (options.verbose) host.log.info("set up");
 *     return { dispose() {} };
 *   },
 * });
 * ```
 */
export function definePlugin<const S extends OptionsSchema = Record<never, never>>(
  def: DevicePluginDefinition<S>,
): DevicePluginDefinition<S>;
/** Defines a platform plugin (see the device overload). */
export function definePlugin<const S extends OptionsSchema = Record<never, never>>(
  def: PlatformPluginDefinition<S>,
): PlatformPluginDefinition<S>;
/** Defines a host port plugin (see the device overload). */
export function definePlugin<const S extends OptionsSchema = Record<never, never>>(
  def: HostPortPluginDefinition<S>,
): HostPortPluginDefinition<S>;
/** Defines a paging strategy plugin (see the device overload). */
export function definePlugin<const S extends OptionsSchema = Record<never, never>>(
  def: PagingPluginDefinition<S>,
): PagingPluginDefinition<S>;
/** Checks any plugin definition (for definitions built at run time). */
export function definePlugin<T extends PluginDefinition>(def: T): T;
export function definePlugin(def: PluginDefinition): PluginDefinition {
  checkPluginDefinition(def);
  return def;
}
