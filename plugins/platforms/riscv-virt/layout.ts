/**
 * The `riscv-virt` physical address map (like QEMU's `virt`) and the MMIO window allocator.
 *
 * | window             | base         | size       |
 * | ------------------ | ------------ | ---------- |
 * | sifive,test0       | 0x00100000   | 0x1000     |
 * | PLIC               | 0x0c000000   | 0x600000   |
 * | UART               | 0x10000000   | 0x100      |
 * | virtio-mmio slot n | 0x10001000 + n*0x1000 | 0x1000 |
 * | RAM                | 0x80000000   | memory size |
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { MmioAllocator, UART_BASE } from "./layout.ts";
 *
 * const mmio = new MmioAllocator({ ramBase: 0x80000000, ramSize: 64 << 20 });
 * strictEqual(mmio.allocate(0x100, { owner: "uart" }), UART_BASE);
 * strictEqual(mmio.allocate(0x200, { owner: "virtio" }), 0x10001000);
 * ```
 *
 * @module
 */

import { hex, VmonError } from "../../../mod.ts";

/** Guest physical address of RAM. */
export const RAM_BASE = 0x80000000;
/** The sifive,test0 (poweroff/reboot) device's conventional base. */
export const TEST_BASE = 0x100000;
/** The PLIC's base. */
export const PLIC_BASE = 0x0c000000;
/** The UART's conventional base, and where automatic MMIO allocation starts. */
export const UART_BASE = 0x10000000;
/** The first virtio-mmio slot. */
export const VIRTIO_BASE = 0x10001000;
/** Where automatic MMIO allocation stops (exclusive): the start of RAM. */
export const MMIO_LIMIT = RAM_BASE;

interface Window {
  readonly base: number;
  readonly size: number;
  readonly owner: string;
}

/**
 * Hands out MMIO windows below RAM. Automatic windows come first-fit, aligned to their size
 * rounded up to a power of two (at least 4 KiB): windows smaller than 4 KiB from 0x10000000
 * upwards, larger ones from 0x10001000 upwards. A preferred base is honoured if it is free. Overlaps are refused with an error naming both owners.
 */
export class MmioAllocator {
  readonly #windows: Window[] = [];
  readonly #ramBase: number;
  readonly #ramEnd: number;

  /** @param ram RAM base and size (never handed out). */
  constructor(ram: { readonly ramBase: number; readonly ramSize: number }) {
    this.#ramBase = ram.ramBase;
    this.#ramEnd = ram.ramBase + ram.ramSize;
  }

  /** The windows handed out, sorted by address. */
  get windows(): readonly Window[] {
    return [...this.#windows].sort((a, b) => a.base - b.base);
  }

  /**
   * Reserves `size` bytes, at `preferred` when given.
   *
   * @throws {VmonError} When the size is bad, the preferred window is taken or overlaps RAM, or
   * no space is left.
   */
  allocate(size: number, options: { readonly owner: string; readonly preferred?: number }): number {
    if (!Number.isSafeInteger(size) || size <= 0 || size > 0x40000000) {
      throw new VmonError(`Cannot allocate an MMIO window of ${size} bytes: size must be 1..1 GiB`);
    }
    const pref = options.preferred;
    if (pref !== undefined) {
      if (!Number.isSafeInteger(pref) || pref < 0 || pref + size > 2 ** 48) {
        throw new VmonError(`Cannot allocate MMIO window at ${String(pref)}: not a valid address`);
      }
      if (pref % 4 !== 0) {
        throw new VmonError(`Cannot allocate MMIO window at ${hex(pref)}: not 4-byte aligned`);
      }
      const clash = this.#clash(pref, size);
      if (clash) {
        throw new VmonError(
          `Cannot allocate MMIO window ${hex(pref)}-${hex(pref + size - 1)}: overlaps "${clash}"`,
        );
      }
      this.#windows.push({ base: pref, size, owner: options.owner });
      return pref;
    }
    let align = 4096;
    while (align < size) align *= 2;
    // Sub-page windows (the UART) start at 0x10000000, page-sized ones (virtio-mmio, the test
    // finisher) at the first virtio slot, so that the usual devices land where QEMU has them.
    const first = Math.ceil((size < 4096 ? UART_BASE : VIRTIO_BASE) / align) * align;
    for (let base = first; base + size <= MMIO_LIMIT; base += align) {
      if (!this.#clash(base, size)) {
        this.#windows.push({ base, size, owner: options.owner });
        return base;
      }
    }
    throw new VmonError(
      `Cannot allocate an MMIO window of ${size} bytes for "${options.owner}": no space left`,
    );
  }

  #clash(base: number, size: number): string | undefined {
    if (base < this.#ramEnd && this.#ramBase < base + size) return "ram";
    return this.#windows.find((w) => base < w.base + w.size && w.base < base + size)?.owner;
  }
}
