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

/** What else holds guest physical addresses (the machine's bus: RAM, registered ranges). */
export type MmioOccupant = (
  base: number,
  size: number,
) => {
  readonly owner: string;
  readonly reserved: boolean;
  readonly base: number;
  readonly size: number;
} | undefined;

/**
 * Hands out MMIO windows below RAM. Automatic windows come first-fit, aligned to their size
 * rounded up to a power of two (at least 4 KiB): windows smaller than 4 KiB from 0x10000000
 * upwards, larger ones from 0x10001000 upwards. A preferred base is honoured if it is free.
 * Windows never overlap RAM, each other, or what `occupant` reports (ranges devices registered
 * at addresses they were given); a preferred base that does is refused with an error naming the
 * device and what holds the window.
 */
export class MmioAllocator {
  readonly #windows: Window[] = [];
  readonly #ramBase: number;
  readonly #ramEnd: number;
  readonly #occupant: MmioOccupant;

  /**
   * @param ram RAM base and size (never handed out), and `occupant`, what else holds addresses
   *   (default: nothing).
   */
  constructor(
    ram: { readonly ramBase: number; readonly ramSize: number; readonly occupant?: MmioOccupant },
  ) {
    this.#ramBase = ram.ramBase;
    this.#ramEnd = ram.ramBase + ram.ramSize;
    this.#occupant = ram.occupant ?? (() => undefined);
  }

  /** The windows handed out, sorted by address. */
  get windows(): readonly Window[] {
    return [...this.#windows].sort((a, b) => a.base - b.base);
  }

  /**
   * Reserves `size` bytes for `owner` (the device's name), at `preferred` when given.
   *
   * @throws {VmonError} When the size is bad, the preferred window is not a valid address or is
   * held by RAM, another window or a registered range, or no space is left.
   */
  allocate(size: number, options: { readonly owner: string; readonly preferred?: number }): number {
    const who = `device "${options.owner}"`;
    if (!Number.isSafeInteger(size) || size <= 0 || size > 0x40000000) {
      throw new VmonError(
        `Cannot place ${who}: an MMIO window of ${size} bytes is not 1 byte to 1 GiB`,
      );
    }
    const pref = options.preferred;
    if (pref !== undefined) {
      if (!Number.isSafeInteger(pref) || pref < 0 || pref + size > 2 ** 48) {
        throw new VmonError(`Cannot place ${who} at ${String(pref)}: not a valid address`);
      }
      if (pref % 4 !== 0) {
        throw new VmonError(`Cannot place ${who} at ${hex(pref)}: not 4-byte aligned`);
      }
      const clash = this.#clash(pref, size);
      if (clash) {
        throw new VmonError(
          `Cannot place ${who} at ${hex(pref)}-${hex(pref + size - 1)}: overlaps ${clash}`,
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
      `Cannot place ${who}: no MMIO window of ${size} bytes is left below RAM`,
    );
  }

  /** What holds part of `[base, base+size)`, described for a message, or undefined. */
  #clash(base: number, size: number): string | undefined {
    const range = (b: number, n: number) => `${hex(b)}-${hex(b + n - 1)}`;
    if (base < this.#ramEnd && this.#ramBase < base + size) {
      return `RAM at ${range(this.#ramBase, this.#ramEnd - this.#ramBase)}`;
    }
    const w = this.#windows.find((w) => base < w.base + w.size && w.base < base + size);
    if (w) return `"${w.owner}" at ${range(w.base, w.size)}`;
    const o = this.#occupant(base, size);
    if (o) return `${o.reserved ? o.owner : `"${o.owner}"`} at ${range(o.base, o.size)}`;
    return undefined;
  }
}
