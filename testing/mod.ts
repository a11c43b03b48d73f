/**
 * Test hosts for plugin authors, the second entry of vmon (`@vmon/vmon/testing`):
 * {@linkcode createTestDeviceHost} builds a complete `DeviceHost` in memory (RAM: core's
 * bounds-checked `GuestMemory` over an `ArrayBuffer`; accesses dispatched through core's real exit
 * bus, so unclaimed accesses, 8-byte splitting and throwing handlers behave exactly as in a machine;
 * observable interrupt lines, a captured console, fake timers advanced by hand, captured exit
 * requests) so that a device can be driven register by register in a unit test, without a host
 * port or a platform. {@linkcode createTestPagingHost} does the same for paging strategies and
 * {@linkcode VirtioTestDriver} plays the guest's virtio driver.
 *
 * @example Drive a device through the test host
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { createTestDeviceHost } from "./mod.ts";
 *
 * const host = createTestDeviceHost({ hasPio: true });
 * let latch = 0;
 * host.bus.registerPio(0x80, 4, {
 *   read: (offset) => offset === 0 ? latch : 0xff,
 *   write: (_offset, _size, value) => {
 *     latch = value;
 *   },
 * });
 * host.pioWrite(0x80, 1, 0x2a);
 * assertEquals(host.pioRead(0x80, 1), 0x2a);
 * assertEquals(host.pioRead(0x81, 1), 0xff);
 * assertEquals(host.pioRead(0x90, 1), 0xff); // unclaimed: all ones
 * assertEquals(host.unclaimed, 1);
 *
 * const line = host.platform.allocateIrq(5);
 * line.set(true);
 * assertEquals(host.irq(5).level, true);
 *
 * host.memory.writeU32(0x100, 0xdeadbeef);
 * assertEquals(host.memory.readU32(0x100), 0xdeadbeef);
 *
 * let fired = false;
 * host.timers.setTimeout(() => fired = true, 10);
 * host.advance(9);
 * assertEquals(fired, false);
 * host.advance(1);
 * assertEquals(fired, true);
 * ```
 *
 * @module
 */

export * from "./hosts.ts";
export * from "./virtio.ts";
