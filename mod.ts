/**
 * vmon: a virtual machine monitor runtime for Deno. A small core (guest memory, vCPU scheduling,
 * the exit dispatch bus) and plugins for everything else: host ports (Linux KVM, the `rv64`
 * software RISC-V machine), platforms, devices and paging strategies.
 *
 * Build and run a machine without the CLI:
 *
 * ```ts ignore
 * import { createMachine } from "./mod.ts";
 * const machine = await createMachine({
 *   hostport: { use: "kvm" },
 *   platform: { use: "x86-64-direct" },
 *   devices: [{ use: "uart16550" }, { use: "debug-exit" }],
 *   boot: { kernel: "/path/to/hello.elf" },
 * });
 * const { status, stats } = await machine.run();
 * ```
 *
 * Write a device plugin:
 *
 * ```ts
 * import { definePlugin } from "./mod.ts";
 * import { createTestDeviceHost, setupTestDevice } from "./testing/mod.ts";
 *
 * const counter = definePlugin({
 *   name: "counter",
 *   kind: "device",
 *   apiVersion: 1,
 *   description: "A port that counts the writes it sees",
 *   options: { port: { type: "integer", description: "I/O port", default: 0x600 } } as const,
 *   setup(host, options) {
 *     let n = 0;
 *     const reg = host.bus.registerPio(options.port, 1, {
 *       read: () => n,
 *       write: () => void n++,
 *     });
 *     return { dispose: () => reg.unregister() };
 *   },
 * });
 *
 * const host = createTestDeviceHost();
 * await setupTestDevice(counter, host, { port: 0x600 });
 * host.pioWrite(0x600, 1, 7);
 * if (host.pioRead(0x600, 1) !== 1) throw new Error("the write was not counted");
 * ```
 *
 * Test hosts for plugin authors are the second entry, `testing/mod.ts` (`@vmon/vmon/testing`); the
 * command line is `cli/main.ts` (`deno task vmon --help`).
 *
 * @module
 */

export * from "./core/api/mod.ts";
export { definePlugin } from "./core/define_plugin.ts";
export { hex, VmonError } from "./core/errors.ts";
export { GuestMemory, GuestMemoryError } from "./core/memory.ts";
export { formatSize, parseSize, validateOptions } from "./core/schema.ts";
export { validateManifest } from "./core/manifest.ts";
export {
  createMachine,
  Machine,
  type MachineOptions,
  type RestoreSpec,
  type SnapshotResult,
  type SnapshotTrigger,
} from "./core/machine.ts";
export * from "./core/paging.ts";
export * from "./core/virtio/mod.ts";
