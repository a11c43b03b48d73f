/**
 * The virtio library for device plugins: the virtio-mmio transport
 * ({@linkcode VirtioMmioTransport}, {@linkcode attachVirtioMmio}), split virtqueues
 * ({@linkcode Virtqueue}) and the device model contract ({@linkcode VirtioDevice}). This is public
 * plugin API: virtio device plugins build on it instead of on each other.
 *
 * @example A device that echoes nothing but completes every request
 * ```ts
 * import { attachVirtioMmio, type VirtioActivation, type VirtioDevice } from "./mod.ts";
 * import { createTestDeviceHost } from "../../testing/mod.ts";
 *
 * let activation: VirtioActivation | undefined;
 * const sink: VirtioDevice = {
 *   deviceId: 0x1234,
 *   features: 0n,
 *   queueMaxSizes: [16],
 *   configSize: 0,
 *   readConfig: () => 0,
 *   writeConfig: () => {},
 *   activate: (a) => activation = a,
 *   notify(index) {
 *     const q = activation!.queues[index]!;
 *     for (let c = q.pop(); c; c = q.pop()) q.pushUsed(c.head, 0);
 *     activation!.signalUsed(q);
 *   },
 *   reset: () => activation = undefined,
 * };
 * const host = createTestDeviceHost({ hasPio: false });
 * const dev = attachVirtioMmio(host, sink);
 * if (host.mmioRead(dev.base, 4) !== 0x74726976) throw new Error("no magic");
 * dev.dispose();
 * ```
 *
 * @module
 */

export * from "./device.ts";
export * from "./queue.ts";
export * from "./mmio.ts";
