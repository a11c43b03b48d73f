/**
 * Split virtqueues (virtio 1.2 section 2.7): the descriptor table, the driver (available) ring
 * and the device (used) ring, all in guest memory and all written by a possibly hostile guest.
 * Every index and address is checked before use; a malformed descriptor chain is returned to the
 * driver with a used length of 0 and counted, and a corrupt ring (a head index or available
 * index out of range) throws a {@linkcode VirtqueueError}, which the transport turns into
 * DEVICE_NEEDS_RESET.
 *
 * @module
 */

import type { GuestMemoryAccess } from "../api/mod.ts";
import { hex, VmonError } from "../errors.ts";

/** Descriptor flags. */
export const DescFlag = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;

/** Largest queue size virtio allows for split queues. */
export const MAX_QUEUE_SIZE = 32768;

/** Most entries accepted in one indirect descriptor table. */
export const MAX_INDIRECT = 1024;

const DESC_SIZE = 16;

/** The ring is corrupt: the queue cannot be used until the driver resets the device. */
export class VirtqueueError extends VmonError {
  /**
   * Creates the error for queue `queue`.
   *
   * @param queue The queue index, for the message.
   * @param detail What was wrong.
   */
  constructor(queue: number, detail: string) {
    super(`Virtqueue ${queue} is broken: ${detail}`);
    this.name = "VirtqueueError";
  }
}

/** One guest buffer of a descriptor chain, already checked to lie in RAM. */
export interface GuestBuffer {
  /** Guest physical address. */
  readonly addr: number;
  /** Length in bytes (may be 0). */
  readonly len: number;
}

/** A validated descriptor chain: device-readable buffers first, then device-writable ones. */
export interface DescriptorChain {
  /** The head descriptor index (what goes back in the used ring). */
  readonly head: number;
  /** Buffers the device reads (the driver's request). */
  readonly readable: readonly GuestBuffer[];
  /** Buffers the device writes (the response). */
  readonly writable: readonly GuestBuffer[];
  /** Total bytes of `readable`. */
  readonly readableLength: number;
  /** Total bytes of `writable`. */
  readonly writableLength: number;
}

/** Addresses and size of a queue as the driver programmed them. */
export interface QueueLayout {
  /** Number of entries (a power of 2, at most the device's maximum). */
  size: number;
  /** Descriptor table address. */
  desc: number;
  /** Driver area (available ring) address. */
  driver: number;
  /** Device area (used ring) address. */
  device: number;
}

/** Options of a {@linkcode Virtqueue}. */
export interface VirtqueueOptions {
  /** VIRTIO_F_EVENT_IDX was negotiated (used_event / avail_event suppression). */
  readonly eventIdx?: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  readonly indirect?: boolean;
  /** Told about every malformed chain (for a log line). */
  readonly onMalformed?: (message: string) => void;
}

function isPowerOf2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/**
 * Checks a queue layout against guest memory and the device's maximum size. Returns the problem
 * as a sentence, or undefined when the layout is usable.
 */
export function checkQueueLayout(
  memory: GuestMemoryAccess,
  layout: QueueLayout,
  options: { maxSize: number },
): string | undefined {
  const { size, desc, driver, device } = layout;
  if (!isPowerOf2(size) || size > options.maxSize) {
    return `queue size ${size} is not a power of 2 up to ${options.maxSize}`;
  }
  if (desc % 16 !== 0 || driver % 2 !== 0 || device % 4 !== 0) {
    return `ring addresses ${hex(desc)}/${hex(driver)}/${hex(device)} are misaligned`;
  }
  if (!memory.contains(desc, DESC_SIZE * size)) {
    return `descriptor table at ${hex(desc)} is outside RAM`;
  }
  if (!memory.contains(driver, 6 + 2 * size)) {
    return `driver ring at ${hex(driver)} is outside RAM`;
  }
  if (!memory.contains(device, 6 + 8 * size)) {
    return `device ring at ${hex(device)} is outside RAM`;
  }
  return undefined;
}

/**
 * A split virtqueue in guest memory, ready for use (its layout was checked with
 * {@linkcode checkQueueLayout}). The device pops chains, handles them and pushes them back
 * used, then asks {@linkcode Virtqueue.needsInterrupt} whether to interrupt the driver.
 */
export class Virtqueue {
  /** The queue index (for messages). */
  readonly index: number;
  /** Number of entries. */
  readonly size: number;
  #memory: GuestMemoryAccess;
  #desc: number;
  #avail: number;
  #used: number;
  #eventIdx: boolean;
  #indirect: boolean;
  #onMalformed?: (message: string) => void;
  #lastAvail = 0;
  #usedIdx = 0;
  #signalledUsed = 0;
  #malformed = 0;

  /**
   * Creates a queue over guest memory.
   *
   * @param memory Guest memory holding the rings.
   * @param layout The checked layout, plus the queue index.
   * @param options Negotiated features and the malformed-chain callback.
   */
  constructor(
    memory: GuestMemoryAccess,
    layout: QueueLayout & { index: number },
    options: VirtqueueOptions = {},
  ) {
    this.#memory = memory;
    this.index = layout.index;
    this.size = layout.size;
    this.#desc = layout.desc;
    this.#avail = layout.driver;
    this.#used = layout.device;
    this.#eventIdx = options.eventIdx ?? false;
    this.#indirect = options.indirect ?? false;
    this.#onMalformed = options.onMalformed;
  }

  /** Malformed chains returned with length 0 so far. */
  get malformed(): number {
    return this.#malformed;
  }

  /** The next available-ring index the device will read. */
  get lastAvail(): number {
    return this.#lastAvail;
  }

  /** The device-side ring positions, for a snapshot (the rings themselves are guest RAM). */
  saveIndices(): [number, number, number, number] {
    return [this.#lastAvail, this.#usedIdx, this.#signalledUsed, this.#malformed];
  }

  /** Loads what {@linkcode Virtqueue.saveIndices} returned. Throws when it is malformed. */
  restoreIndices(indices: readonly unknown[]): void {
    if (
      indices.length !== 4 ||
      !indices.every((n) => typeof n === "number" && Number.isInteger(n) && n >= 0) ||
      (indices as number[]).slice(0, 3).some((n) => n > 0xffff)
    ) {
      throw new VmonError(`Cannot restore virtqueue ${this.index}: its indices are malformed`);
    }
    const [lastAvail, usedIdx, signalled, malformed] = indices as number[];
    this.#lastAvail = lastAvail!;
    this.#usedIdx = usedIdx!;
    this.#signalledUsed = signalled!;
    this.#malformed = malformed!;
  }

  /** True when the driver has made buffers available that the device has not popped. */
  hasAvailable(): boolean {
    return this.#availIdx() !== this.#lastAvail;
  }

  #availIdx(): number {
    const idx = this.#memory.readU16(this.#avail + 2);
    const pending = (idx - this.#lastAvail) & 0xffff;
    if (pending > this.size) {
      throw new VirtqueueError(
        this.index,
        `available index ${idx} is ${pending} entries ahead of ${this.#lastAvail} (size ${this.size})`,
      );
    }
    return idx;
  }

  /**
   * Takes the next available descriptor chain, or returns undefined when there is none.
   * Malformed chains (loops, bad `next` indices, buffers outside RAM, readable after writable,
   * bad indirect tables) are returned to the driver with length 0, counted, and skipped.
   *
   * @throws {VirtqueueError} When the ring itself is corrupt.
   */
  pop(): DescriptorChain | undefined {
    for (;;) {
      const availIdx = this.#availIdx();
      if (availIdx === this.#lastAvail) {
        if (this.#eventIdx) {
          // avail_event: ask to be notified when the driver adds past what we have seen.
          this.#memory.writeU16(this.#used + 4 + 8 * this.size, this.#lastAvail);
        }
        return undefined;
      }
      const slot = this.#lastAvail % this.size;
      const head = this.#memory.readU16(this.#avail + 4 + 2 * slot);
      this.#lastAvail = (this.#lastAvail + 1) & 0xffff;
      if (this.#eventIdx) this.#memory.writeU16(this.#used + 4 + 8 * this.size, this.#lastAvail);
      if (head >= this.size) {
        throw new VirtqueueError(
          this.index,
          `head index ${head} in available slot ${slot} is beyond size ${this.size}`,
        );
      }
      const chain = this.#walk(head);
      if (typeof chain !== "string") return chain;
      this.#malformed++;
      this.#onMalformed?.(`Malformed descriptor chain ${head} on queue ${this.index}: ${chain}`);
      this.pushUsed(head, 0);
    }
  }

  /** Walks a chain from `head`; returns the chain or the reason it is malformed. */
  #walk(head: number): DescriptorChain | string {
    const readable: GuestBuffer[] = [];
    const writable: GuestBuffer[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let table = this.#desc;
    let tableSize = this.size;
    let index = head;
    let inIndirect = false;
    let count = 0;
    let limit = this.size;
    for (;;) {
      if (++count > limit) return `longer than ${limit} descriptors (a loop?)`;
      const at = table + DESC_SIZE * index;
      const lo = this.#memory.readU32(at);
      const hi = this.#memory.readU32(at + 4);
      const len = this.#memory.readU32(at + 8);
      const flags = this.#memory.readU16(at + 12);
      const next = this.#memory.readU16(at + 14);
      const addr = hi * 2 ** 32 + lo;
      if (flags & DescFlag.INDIRECT) {
        if (!this.#indirect) return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
        if (inIndirect) return "indirect descriptor inside an indirect table";
        if (flags & DescFlag.NEXT) return "indirect descriptor with NEXT set";
        if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > MAX_INDIRECT) {
          return `indirect table length ${len} is not a multiple of 16 up to ${MAX_INDIRECT}`;
        }
        // The spec asks no alignment of indirect tables (Linux kmallocs them, 8-byte aligned).
        if (!Number.isSafeInteger(addr) || !this.#memory.contains(addr, len)) {
          return `indirect table at ${hex(addr)} (${len} bytes) is outside RAM`;
        }
        inIndirect = true;
        table = addr;
        tableSize = len / DESC_SIZE;
        index = 0;
        count = 0;
        limit = tableSize;
        continue;
      }
      if (!Number.isSafeInteger(addr) || !this.#memory.contains(addr, len)) {
        return `buffer at ${hex(addr)} (${len} bytes) is outside RAM`;
      }
      if (flags & DescFlag.WRITE) {
        writable.push({ addr, len });
        writableLength += len;
      } else {
        if (writable.length > 0) return "device-readable buffer after a device-writable one";
        readable.push({ addr, len });
        readableLength += len;
      }
      if (!(flags & DescFlag.NEXT)) break;
      if (next >= tableSize) return `next index ${next} is beyond ${tableSize}`;
      index = next;
    }
    return { head, readable, writable, readableLength, writableLength };
  }

  /** Puts chain `head` into the used ring with `len` bytes written by the device. */
  pushUsed(head: number, len: number): void {
    const slot = this.#usedIdx % this.size;
    const at = this.#used + 4 + 8 * slot;
    this.#memory.writeU32(at, head);
    this.#memory.writeU32(at + 4, len >>> 0);
    this.#usedIdx = (this.#usedIdx + 1) & 0xffff;
    this.#memory.writeU16(this.#used + 2, this.#usedIdx);
  }

  /**
   * True when the driver wants an interrupt for the used entries pushed since the last time this
   * returned true (used_event with VIRTIO_F_EVENT_IDX, else the NO_INTERRUPT flag).
   */
  needsInterrupt(): boolean {
    const now = this.#usedIdx;
    const old = this.#signalledUsed;
    if (now === old) return false;
    let want: boolean;
    if (this.#eventIdx) {
      const usedEvent = this.#memory.readU16(this.#avail + 4 + 2 * this.size);
      want = ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
    } else {
      want = (this.#memory.readU16(this.#avail) & 1) === 0;
    }
    this.#signalledUsed = now;
    return want;
  }

  /**
   * Copies the readable part of a chain into one array.
   *
   * @param chain A chain from {@linkcode Virtqueue.pop}.
   * @param options `max`: the most bytes to copy (default: all), `skip`: bytes to skip first.
   */
  readChain(chain: DescriptorChain, options: { max?: number; skip?: number } = {}): Uint8Array {
    let skip = options.skip ?? 0;
    const total = Math.max(0, Math.min(chain.readableLength - skip, options.max ?? Infinity));
    const out = new Uint8Array(total);
    let at = 0;
    for (const b of chain.readable) {
      if (at >= total) break;
      if (skip >= b.len) {
        skip -= b.len;
        continue;
      }
      const n = Math.min(b.len - skip, total - at);
      out.set(this.#memory.read(b.addr + skip, n), at);
      at += n;
      skip = 0;
    }
    return out;
  }

  /**
   * Copies `data` into the writable part of a chain. Returns the bytes written (less than
   * `data.length` when the buffers are too short).
   *
   * @param chain A chain from {@linkcode Virtqueue.pop}.
   * @param data What to write.
   * @param options `skip`: bytes of the writable part to leave untouched first.
   */
  writeChain(chain: DescriptorChain, data: Uint8Array, options: { skip?: number } = {}): number {
    let skip = options.skip ?? 0;
    let at = 0;
    for (const b of chain.writable) {
      if (at >= data.length) break;
      if (skip >= b.len) {
        skip -= b.len;
        continue;
      }
      const n = Math.min(b.len - skip, data.length - at);
      this.#memory.write(b.addr + skip, data.subarray(at, at + n));
      at += n;
      skip = 0;
    }
    return at;
  }
}
