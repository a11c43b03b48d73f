/**
 * Device plugins: platform services devices use, and what devices describe back.
 *
 * @module
 */

import type { DeviceBus } from "./bus.ts";
import type { GuestMemoryAccess } from "./memory.ts";
import type { NetService } from "./net.ts";
import type { ConsolePort, IrqLine, PluginHost } from "./services.ts";

/**
 * A device's self-description, collected by the platform to build firmware tables (the RISC-V
 * device tree, for example).
 */
export interface DeviceDescription {
  /** Node name stem, such as `serial` or `virtio_mmio`. */
  readonly node: string;
  /** Devicetree `compatible` strings. */
  readonly compatible: readonly string[];
  /** MMIO window, if any. */
  readonly mmio?: { readonly base: number; readonly size: number };
  /** PIO window, if any. */
  readonly pio?: { readonly base: number; readonly size: number };
  /** Interrupt line numbers. */
  readonly irqs?: readonly number[];
  /** Extra properties: numbers become u32 cells, bigints u64, strings strings. */
  readonly props?: Readonly<Record<string, number | bigint | string | readonly number[]>>;
  /** True for the console the kernel should use (`stdout-path`). */
  readonly console?: boolean;
}

/** Resources the platform hands out to devices. */
export interface PlatformServices {
  /** True if the architecture has port I/O (x86). */
  readonly hasPio: boolean;
  /**
   * Reserves an MMIO window of `size` bytes (aligned to `size` rounded up to 4 KiB) that overlaps
   * neither RAM nor any other window or registered range. A device that has a conventional
   * address (the UART at 0x10000000 on RISC-V `virt`), or was given one (`base=`), passes it as
   * `preferredBase`; the platform returns it, or throws naming the device and what holds the
   * window. Core fills `owner` with the device's name; devices need not pass it.
   */
  allocateMmio(size: number, preferredBase?: number, options?: { readonly owner?: string }): number;
  /** Reserves a free interrupt line, or the one asked for. */
  allocateIrq(preferred?: number): IrqLine;
  /** Register shift for byte-wide register devices (UART) on MMIO buses. */
  readonly mmioRegShift: number;
  /** Records a device for firmware tables. */
  describe(description: DeviceDescription): void;
}

/** What a device plugin's `setup` receives. */
export interface DeviceHost extends PluginHost {
  /** Guest physical memory (for DMA: virtqueues, buffers). */
  readonly memory: GuestMemoryAccess;
  /** The exit bus registries. */
  readonly bus: DeviceBus;
  /** The platform's resource allocator and table builder. */
  readonly platform: PlatformServices;
  /** The terminal. */
  readonly console: ConsolePort;
  /**
   * Packet endpoints on the host's network (passt, TAP), for network devices. Core's machines
   * always offer it (opening fails with one line when the host port has no packet backends);
   * test hosts offer it when given one.
   */
  readonly net?: NetService;
  /**
   * Ends the machine with an exit status (the guest asked, e.g. through debug-exit). With
   * `failed`, the machine failed (a guest crash or panic) and the CLI prints `reason`.
   */
  requestExit(status: number, reason?: string, options?: ExitRequestOptions): void;
}

/** Options of `requestExit`. */
export interface ExitRequestOptions {
  /** The machine failed (guest crash, kernel panic, guest fault) rather than exited. */
  readonly failed?: boolean;
}
