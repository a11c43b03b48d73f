/**
 * The `debug-exit` device plugin: lets a guest end the machine with a status.
 *
 * - Port I/O platforms: a write of 1, 2 or 4 bytes to port `base` (default 0x501) ends the
 *   machine with the value written as the exit status (unlike QEMU's isa-debug-exit, which exits
 *   with `value << 1 | 1`).
 * - MMIO platforms: a SiFive test finisher (`sifive,test0`, as on QEMU's virt machine): a 32-bit
 *   write of 0x5555 powers off (status 0), `0x3333 | code << 16` fails with status `code`, 0x7777
 *   asks for a reset (vmon ends the machine with status 0 and reason `reset`).
 *
 * @module
 */

import {
  type AccessSize,
  definePlugin,
  hex,
  PLUGIN_API_VERSION,
  type RangeHandler,
  VmonError,
} from "../../../mod.ts";

/** SiFive test finisher commands (low 16 bits of the value written at offset 0). */
export const Finisher = { FAIL: 0x3333, PASS: 0x5555, RESET: 0x7777 } as const;

/** Size of the SiFive test device's MMIO window. */
export const FINISHER_SIZE = 0x1000;

/** Ports claimed on port I/O platforms (so that 1-, 2- and 4-byte writes all land). */
export const PORT_WINDOW = 4;

export default definePlugin({
  name: "debug-exit",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "Guest-requested exit: port 0x501 on x86, a SiFive test finisher on MMIO platforms",
  options: {
    base: {
      type: "integer",
      description: "Port (PIO platforms, default 0x501) or MMIO address (default: allocated)",
      min: 0,
    },
  },
  setup(host, options) {
    const pio = host.platform.hasPio;
    const requests = host.metrics.counter("requests", "Exit requests written by the guest");
    const ignored = host.metrics.counter("ignored", "Writes that were not an exit request");
    let handler: RangeHandler;
    let base: number;
    let size: number;

    if (pio) {
      base = options.base ?? 0x501;
      size = PORT_WINDOW;
      if (base + size > 0x10000) {
        throw new VmonError(`Cannot place debug-exit at port ${hex(base)}: beyond port 0xffff`);
      }
      handler = {
        read: () => 0,
        write(offset: number, accessSize: AccessSize, value: number): void {
          if (offset !== 0) {
            ignored.add();
            return;
          }
          requests.add();
          const mask = accessSize === 1 ? 0xff : accessSize === 2 ? 0xffff : 0xffffffff;
          host.requestExit((value & mask) >>> 0, "guest exit");
        },
      };
    } else {
      size = FINISHER_SIZE;
      base = options.base ?? host.platform.allocateMmio(size);
      handler = {
        read: () => 0,
        write(offset: number, accessSize: AccessSize, value: number): void {
          const cmd = value & 0xffff;
          if (offset !== 0 || accessSize !== 4) {
            ignored.add();
            return;
          }
          if (cmd === Finisher.PASS) {
            requests.add();
            host.requestExit(0, "poweroff");
          } else if (cmd === Finisher.FAIL) {
            requests.add();
            const code = value >>> 16;
            host.requestExit(code, `guest failure: code ${code}`);
          } else if (cmd === Finisher.RESET) {
            requests.add();
            host.requestExit(0, "reset");
          } else {
            ignored.add();
            host.log.warn(
              `Ignored write to the test finisher: unknown command ${hex(value >>> 0)}`,
            );
          }
        },
      };
    }

    const registration = pio
      ? host.bus.registerPio(base, size, handler)
      : host.bus.registerMmio(base, size, handler);
    host.platform.describe(
      pio ? { node: "debug-exit", compatible: ["vmon,debug-exit"], pio: { base, size } } : {
        node: "test",
        compatible: ["sifive,test1", "sifive,test0", "syscon"],
        mmio: { base, size },
        props: {
          // For the platform: the syscon-poweroff / syscon-reboot values (offset 0).
          "vmon,poweroff-value": Finisher.PASS,
          "vmon,reboot-value": Finisher.RESET,
        },
      },
    );
    host.log.debug(`at ${pio ? "port" : "address"} ${hex(base)}`);

    return {
      // No state: requests are counted by core's metrics, which snapshots save.
      save: () => ({ version: 1, state: null }),
      restore(saved) {
        if (saved.version !== 1) {
          throw new VmonError(
            `Cannot restore debug-exit: state version ${saved.version} is not supported (this build reads 1)`,
          );
        }
      },
      dispose() {
        registration.unregister();
      },
    };
  },
});
