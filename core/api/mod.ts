/**
 * The public plugin API of vmon: every type a plugin author (device, platform, host port or
 * paging strategy) sees, one file per topic. Plugins import it through the public entry
 * (`mod.ts`, `@vmon/vmon`), never from files in `core/`.
 *
 * @module
 */

export * from "./plugin.ts";
export * from "./options.ts";
export * from "./memory.ts";
export * from "./bus.ts";
export * from "./services.ts";
export * from "./device.ts";
export * from "./net.ts";
export * from "./exits.ts";
export * from "./hostport.ts";
export * from "./paging.ts";
export * from "./strategy.ts";
export * from "./platform.ts";
export * from "./machine.ts";
export * from "./arch.ts";
