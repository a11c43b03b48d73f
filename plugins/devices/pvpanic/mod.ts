/**
 * The `pvpanic` device plugin: the guest kernel tells the monitor it panicked, so the machine
 * ends with a clear failure instead of rebooting or hanging. Compatible with QEMU's pvpanic
 * devices and Linux's `pvpanic` drivers (`CONFIG_PVPANIC_MMIO` for the device-tree variant):
 *
 * - reading the register returns the events the device supports (bit 0 panicked, bit 1 crash
 *   kernel loaded);
 * - writing bit 0 (panicked) ends the machine with status `status` (default 1) and reason
 *   `Guest kernel panic`; bit 1 (a crash kernel was loaded) is counted and logged.
 *
 * Port I/O platforms: port `base` (default 0x505, QEMU's). MMIO platforms: a 2-byte window at
 * `base` (default: allocated), described as `qemu,pvpanic-mmio`.
 *
 * @module
 */

import { definePlugin, PLUGIN_API_VERSION, type RangeHandler, VmonError } from "../../../mod.ts";

/** Event bits. */
export const PvpanicEvent = { PANICKED: 1, CRASH_LOADED: 2 } as const;

export default definePlugin({
  name: "pvpanic",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "Guest kernel panic notification (QEMU-compatible pvpanic, port 0x505 or MMIO)",
  options: {
    base: {
      type: "integer",
      description: "Port (PIO platforms, default 0x505) or MMIO address (default: allocated)",
      min: 0,
    },
    status: {
      type: "integer",
      description: "Exit status of the machine when the guest panics",
      default: 1,
      min: 1,
      max: 255,
    },
  },
  setup(host, options) {
    const panics = host.metrics.counter("panics", "Panic events written by the guest");
    const crashLoaded = host.metrics.counter("crash-loaded", "Crash-kernel-loaded events");
    const handler: RangeHandler = {
      read: (offset) => offset === 0 ? PvpanicEvent.PANICKED | PvpanicEvent.CRASH_LOADED : 0,
      write(offset, _size, value) {
        if (offset !== 0) return;
        if (value & PvpanicEvent.CRASH_LOADED) {
          crashLoaded.add();
          host.log.info("the guest reports a crash kernel is loaded");
        }
        if (value & PvpanicEvent.PANICKED) {
          panics.add();
          host.requestExit(options.status, "Guest kernel panic (reported through pvpanic)", {
            failed: true,
          });
        }
      },
    };
    let reg;
    if (host.platform.hasPio) {
      const base = options.base ?? 0x505;
      reg = host.bus.registerPio(base, 1, handler);
      host.platform.describe({
        node: "pvpanic",
        compatible: ["qemu,pvpanic"],
        pio: { base, size: 1 },
      });
    } else {
      const base = host.platform.allocateMmio(2, options.base);
      reg = host.bus.registerMmio(base, 2, handler);
      host.platform.describe({
        node: "pvpanic",
        compatible: ["qemu,pvpanic-mmio"],
        mmio: { base, size: 2 },
      });
    }
    return {
      // No state: events are counted by core's metrics, which snapshots save.
      save: () => ({ version: 1, state: null }),
      restore(saved) {
        if (saved.version !== 1) {
          throw new VmonError(
            `Cannot restore pvpanic: state version ${saved.version} is not supported (this build reads 1)`,
          );
        }
      },
      dispose: () => reg.unregister(),
    };
  },
});
