/**
 * The `uart16550` device plugin: a 16550A serial port wired to the machine's console. On port
 * I/O platforms it sits at port 0x3f8 with interrupt line 4 (COM1); on MMIO platforms it takes an
 * MMIO window (registers `1 << mmioRegShift` bytes apart) and describes itself as an `ns16550a`
 * devicetree node marked as the console.
 *
 * @module
 */

import {
  type AccessSize,
  definePlugin,
  hex,
  type IrqLine,
  PLUGIN_API_VERSION,
  type RangeHandler,
  VmonError,
} from "../../../mod.ts";
import { Uart16550 } from "./uart.ts";

export { Uart16550 } from "./uart.ts";

/** The UART's input clock on PC port I/O (1.8432 MHz, 115200 baud at divisor 1). */
const PC_CLOCK_HZ = 1_843_200;
/** The clock described on MMIO platforms (the value QEMU's virt machine uses). */
const MMIO_CLOCK_HZ = 3_686_400;

export default definePlugin({
  name: "uart16550",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "16550A serial port (COM1 on x86, ns16550a on MMIO platforms) on the console",
  options: {
    base: {
      type: "integer",
      description: "Port (PIO platforms, default 0x3f8) or MMIO address (default: allocated)",
      min: 0,
    },
    irq: {
      type: "integer",
      description: "Interrupt line (default 4 on PIO platforms, allocated on MMIO platforms)",
      min: 0,
    },
    input: {
      type: "boolean",
      description: "Take console input (keyboard) into the receiver",
      default: true,
    },
    console: {
      type: "boolean",
      description: "Describe this port as the kernel console (stdout-path)",
      default: true,
    },
    polled: {
      type: "boolean",
      description: "Do not use an interrupt line (the guest polls LSR)",
      default: false,
    },
  },
  setup(host, options) {
    const pio = host.platform.hasPio;
    const shift = pio ? 0 : host.platform.mmioRegShift;
    if (!Number.isInteger(shift) || shift < 0 || shift > 3) {
      throw new VmonError(`Cannot set up uart16550: unsupported register shift ${shift}`);
    }
    const stride = 1 << shift;
    // Eight registers; on MMIO the window is at least 0x100 bytes, as QEMU's virt machine has it.
    const windowSize = pio ? 8 : Math.max(8 * stride, 0x100);

    let irq: IrqLine | undefined;
    if (!options.polled) irq = host.platform.allocateIrq(options.irq ?? (pio ? 4 : undefined));

    const counter = (name: string, description: string) => host.metrics.counter(name, description);
    const uart = new Uart16550({
      irq,
      output: (bytes) => host.console.write(bytes),
      timers: host.timers,
      clockHz: pio ? PC_CLOCK_HZ : MMIO_CLOCK_HZ,
      counters: {
        tx: counter("tx_bytes", "Bytes the guest transmitted"),
        rx: counter("rx_bytes", "Bytes delivered into the receiver"),
        overruns: counter("rx_overruns", "Bytes lost to receiver overrun"),
        dropped: counter("input_dropped", "Console input dropped (backlog full)"),
      },
    });

    const handler: RangeHandler = {
      read(offset: number, size: AccessSize): number {
        const reg = offset >> shift;
        if (offset & (stride - 1) || reg > 7) return 0;
        if (stride > 1 || size === 1) return uart.read(reg);
        // A wide access to byte registers is split into byte accesses, low address first.
        let v = 0;
        for (let i = 0; i < size && reg + i < 8; i++) v |= uart.read(reg + i) << (8 * i);
        return v >>> 0;
      },
      write(offset: number, size: AccessSize, value: number): void {
        const reg = offset >> shift;
        if (offset & (stride - 1) || reg > 7) return;
        if (stride > 1 || size === 1) return uart.write(reg, value & 0xff);
        for (let i = 0; i < size && reg + i < 8; i++) uart.write(reg + i, value >>> (8 * i) & 0xff);
      },
    };

    let base: number;
    if (pio) {
      base = options.base ?? 0x3f8;
      if (base + windowSize > 0x10000) {
        throw new VmonError(`Cannot place uart16550 at port ${hex(base)}: beyond port 0xffff`);
      }
    } else {
      base = options.base ?? host.platform.allocateMmio(windowSize);
    }
    const registration = pio
      ? host.bus.registerPio(base, windowSize, handler)
      : host.bus.registerMmio(base, windowSize, handler);

    host.platform.describe({
      node: "serial",
      compatible: ["ns16550a"],
      ...(pio ? { pio: { base, size: windowSize } } : { mmio: { base, size: windowSize } }),
      ...(irq ? { irqs: [irq.number] } : {}),
      props: {
        "clock-frequency": pio ? PC_CLOCK_HZ : MMIO_CLOCK_HZ,
        "reg-shift": shift,
        "reg-io-width": 1,
      },
      console: options.console,
    });

    if (options.input && !host.console.onInput((bytes) => uart.receive(bytes))) {
      host.log.info("console input goes to another device");
    }
    host.log.debug(
      `at ${pio ? "port" : "address"} ${hex(base)}, ${irq ? `irq ${irq.number}` : "polled"}`,
    );

    let disposed = false;
    return {
      save: () => ({ version: 1, state: uart.saveState() }),
      restore(saved) {
        if (saved.version !== 1 || typeof saved.state !== "object" || saved.state === null) {
          throw new VmonError(
            `Cannot restore uart16550: state version ${saved.version} is not supported (this build reads 1)`,
          );
        }
        uart.restoreState(saved.state as Record<string, unknown>);
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        uart.dispose();
        registration.unregister();
        irq?.set(false);
      },
    };
  },
});
