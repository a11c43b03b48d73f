/**
 * Platform plugins: boot, memory layout and the services a platform offers devices.
 *
 * @module
 */

import type { DeviceBus, RangeOccupant, Registration } from "./bus.ts";
import type { ExitRequestOptions, PlatformServices } from "./device.ts";
import type { ExitRecord } from "./exits.ts";
import type { HostPortInstance, Vcpu } from "./hostport.ts";
import type { GuestMemoryAccess } from "./memory.ts";
import type { ConsolePort, PluginHost, PluginInstance } from "./services.ts";

/** What a platform plugin's `setup` receives. */
export interface PlatformHost extends PluginHost {
  /** The host port (arch-specific platforms narrow its vCPUs to their own types). */
  readonly hostport: HostPortInstance;
  /** Guest memory (empty until `addRam`). */
  readonly memory: GuestMemoryAccess;
  /** The exit bus (platforms register firmware calls and interrupt controllers here). */
  readonly bus: DeviceBus;
  /** The terminal. */
  readonly console: ConsolePort;
  /**
   * What already holds any part of `[base, base+size)` of port I/O (`PIO`) or guest physical
   * addresses (`MMIO`): a range some plugin registered on the bus (a device placed at an address
   * the user gave), or RAM. Undefined when all of it is free. `allocateMmio` skips what this
   * reports and names it when a preferred base is taken.
   */
  occupant(space: "PIO" | "MMIO", base: number, size: number): RangeOccupant | undefined;
  /**
   * Holds ports or addresses the guest reaches without exits (an in-kernel interrupt controller)
   * so that no device is placed there: registrations over them are refused with `label` in the
   * message (`the in-kernel PIC`).
   */
  reserve(
    space: "PIO" | "MMIO",
    range: { readonly base: number; readonly size: number; readonly label: string },
  ): Registration;
  /** Adds a RAM (or ROM) region through the host port; no device may be placed over it. */
  addRam(gpa: number, size: number, options?: { readonly readonly?: boolean; name?: string }): void;
  /** The vCPUs; empty during `setup`, filled before `boot`. */
  readonly vcpus: readonly Vcpu[];
  /** Ends the machine with an exit status (poweroff, reset, guest panic). */
  requestExit(status: number, reason?: string, options?: ExitRequestOptions): void;
  /** Wakes the scheduler (after raising an interrupt from a timer or input). */
  wake(vcpu?: number): void;
}

/** Boot inputs given to a platform (from `--image`, `--kernel`, `--initrd`, `--append`). */
export interface BootSpec {
  /** Path of the kernel or guest image. */
  readonly kernel?: string;
  /** Path of an initramfs. */
  readonly initrd?: string;
  /** Kernel command line. */
  readonly cmdline?: string;
}

/** What a platform plugin's `setup` returns. */
export interface PlatformInstance extends PluginInstance {
  /** Resources for devices. */
  readonly services: PlatformServices;
  /**
   * Called after every device is set up and every vCPU exists: load the image, build firmware
   * tables from the device descriptions, and set each vCPU's initial state.
   */
  boot(spec: BootSpec): void | Promise<void>;
  /**
   * Optional: handles HLT/WFI, shutdown and system-event exits before core's default policy.
   * Returns true if handled.
   */
  onExit?(vcpu: Vcpu, exit: ExitRecord): boolean;
  /**
   * Optional: true when a device interrupt can still reach vCPU `vcpu` (its interrupt controller
   * routes to it, unmasked, a line some device owns). Core asks only about vCPUs that wait with
   * device interrupts enabled, for the stuck-guest check; without this method one always can.
   */
  canInterrupt?(vcpu: number): boolean;
}
