/**
 * A virtio-mmio *driver* for tests: it plays the guest, through a
 * {@linkcode TestDeviceHost}'s bus and RAM: the initialization sequence, feature negotiation,
 * split virtqueues laid out in test RAM, descriptor chains (direct or indirect) and the used
 * ring. Virtio device plugins test against it.
 *
 * @example
 * ```ts
 * import { createTestDeviceHost } from "./hosts.ts";
 * import { attachVirtioMmio, type VirtioActivation, VirtioStatus } from "../core/virtio/mod.ts";
 * import { VirtioTestDriver } from "./virtio.ts";
 *
 * let act: VirtioActivation | undefined;
 * const host = createTestDeviceHost({ hasPio: false });
 * const dev = attachVirtioMmio(host, {
 *   deviceId: 99,
 *   features: 0n,
 *   queueMaxSizes: [8],
 *   configSize: 0,
 *   readConfig: () => 0,
 *   writeConfig: () => {},
 *   activate: (a) => act = a,
 *   notify(i) {
 *     const q = act!.queues[i]!;
 *     for (let c = q.pop(); c; c = q.pop()) q.pushUsed(c.head, c.readableLength);
 *     act!.signalUsed(q);
 *   },
 *   reset() {},
 * });
 * const driver = new VirtioTestDriver(host, dev.base);
 * driver.init();
 * if (!(driver.status() & VirtioStatus.DRIVER_OK)) throw new Error("not ready");
 * driver.submit(0, [{ data: new Uint8Array(5) }]);
 * const [used] = driver.takeUsed(0);
 * if (used?.len !== 5) throw new Error("not used");
 * ```
 *
 * @module
 */

import type { TestDeviceHost } from "./hosts.ts";
import { VmonError } from "../core/errors.ts";
import { VirtioStatus } from "../core/virtio/device.ts";
import { MmioReg } from "../core/virtio/mmio.ts";
import { DescFlag } from "../core/virtio/queue.ts";

/** One buffer of a chain the test driver submits. */
export interface TestBuffer {
  /** Device-readable bytes (omit for a writable buffer). */
  readonly data?: Uint8Array;
  /** Length of a device-writable buffer. */
  readonly len?: number;
  /** Use this exact guest address instead of allocating one (to test bad addresses). */
  readonly addr?: number;
}

/** A queue as the test driver laid it out. */
export interface TestQueue {
  /** Queue index. */
  readonly index: number;
  /** Entries. */
  readonly size: number;
  /** Descriptor table address. */
  readonly desc: number;
  /** Available ring address. */
  readonly avail: number;
  /** Used ring address. */
  readonly used: number;
  /** The next available index the driver publishes. */
  availIdx: number;
  /** The used index the driver has consumed up to. */
  lastUsed: number;
  /** Next free descriptor (descriptors are handed out round-robin). */
  nextDesc: number;
}

/** One used-ring entry. */
export interface UsedEntry {
  /** The head descriptor index. */
  readonly id: number;
  /** Bytes the device wrote. */
  readonly len: number;
  /** Writable buffers of the chain (address and length), to read results. */
  readonly writable: readonly { addr: number; len: number }[];
}

/** Options of {@linkcode VirtioTestDriver.init}. */
export interface TestDriverInit {
  /** Features to accept (default: everything offered). */
  readonly accept?: bigint;
  /** Queue sizes to use (default: each queue's maximum). */
  readonly sizes?: readonly number[];
  /** Stop after FEATURES_OK (do not set up queues or DRIVER_OK). */
  readonly featuresOnly?: boolean;
}

/** A minimal virtio-mmio driver running against a test host's bus and RAM. */
export class VirtioTestDriver {
  #host: TestDeviceHost;
  #base: number;
  #heap: number;
  #heapEnd: number;
  #queues: TestQueue[] = [];
  #chains = new Map<string, { addr: number; len: number }[]>();

  /**
   * Makes a driver for the device whose MMIO window is at `base` in `host`.
   *
   * @param host The test host the device is attached to.
   * @param base The device's MMIO base.
   */
  constructor(host: TestDeviceHost, base: number) {
    this.#host = host;
    this.#base = base;
    const r = host.memory.regions[0];
    if (!r) throw new VmonError("Cannot create a virtio test driver: the test host has no RAM");
    this.#heap = r.gpa + 0x1000;
    this.#heapEnd = r.gpa + r.size;
  }

  /** Reads a 32-bit transport register. */
  reg(offset: number): number {
    return this.#host.mmioRead(this.#base + offset, 4);
  }

  /** Writes a 32-bit transport register. */
  setReg(offset: number, value: number): void {
    this.#host.mmioWrite(this.#base + offset, 4, value >>> 0);
  }

  /** The device status. */
  status(): number {
    return this.reg(MmioReg.STATUS);
  }

  /** The 64 feature bits offered. */
  deviceFeatures(): bigint {
    this.setReg(MmioReg.DEVICE_FEATURES_SEL, 0);
    const lo = BigInt(this.reg(MmioReg.DEVICE_FEATURES));
    this.setReg(MmioReg.DEVICE_FEATURES_SEL, 1);
    const hi = BigInt(this.reg(MmioReg.DEVICE_FEATURES));
    return hi << 32n | lo;
  }

  /** Allocates zeroed test RAM (bump allocator). */
  alloc(len: number, align = 16): number {
    const addr = Math.ceil(this.#heap / align) * align;
    if (addr + len > this.#heapEnd) throw new VmonError("Test driver out of RAM");
    this.#heap = addr + len;
    this.#host.memory.write(addr, new Uint8Array(len));
    return addr;
  }

  /** The queue `index` as laid out by `init`. */
  queue(index: number): TestQueue {
    const q = this.#queues[index];
    if (!q) throw new VmonError(`Test driver has no queue ${index}`);
    return q;
  }

  /**
   * Resets the device and runs the initialization sequence (virtio 1.2 section 3.1.1). Returns
   * the status after FEATURES_OK (or DRIVER_OK) was written.
   */
  init(options: TestDriverInit = {}): number {
    this.setReg(MmioReg.STATUS, 0);
    this.setReg(MmioReg.STATUS, VirtioStatus.ACKNOWLEDGE);
    this.setReg(MmioReg.STATUS, VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER);
    const features = this.deviceFeatures() & (options.accept ?? ~0n);
    this.setReg(MmioReg.DRIVER_FEATURES_SEL, 0);
    this.setReg(MmioReg.DRIVER_FEATURES, Number(features & 0xffffffffn));
    this.setReg(MmioReg.DRIVER_FEATURES_SEL, 1);
    this.setReg(MmioReg.DRIVER_FEATURES, Number(features >> 32n));
    let status = VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK;
    this.setReg(MmioReg.STATUS, status);
    if (!(this.status() & VirtioStatus.FEATURES_OK) || options.featuresOnly) return this.status();
    this.#queues = [];
    for (let i = 0;; i++) {
      this.setReg(MmioReg.QUEUE_SEL, i);
      const max = this.reg(MmioReg.QUEUE_NUM_MAX);
      if (max === 0) break;
      const size = options.sizes?.[i] ?? max;
      const q: TestQueue = {
        index: i,
        size,
        desc: this.alloc(16 * size, 16),
        avail: this.alloc(6 + 2 * size, 2),
        used: this.alloc(6 + 8 * size, 4),
        availIdx: 0,
        lastUsed: 0,
        nextDesc: 0,
      };
      this.#queues.push(q);
      this.setReg(MmioReg.QUEUE_NUM, size);
      this.setReg(MmioReg.QUEUE_DESC_LOW, q.desc);
      this.setReg(MmioReg.QUEUE_DESC_HIGH, 0);
      this.setReg(MmioReg.QUEUE_DRIVER_LOW, q.avail);
      this.setReg(MmioReg.QUEUE_DRIVER_HIGH, 0);
      this.setReg(MmioReg.QUEUE_DEVICE_LOW, q.used);
      this.setReg(MmioReg.QUEUE_DEVICE_HIGH, 0);
      this.setReg(MmioReg.QUEUE_READY, 1);
    }
    status |= VirtioStatus.DRIVER_OK;
    this.setReg(MmioReg.STATUS, status);
    return this.status();
  }

  /** Writes descriptor `i` of a table at `table`. */
  writeDesc(
    table: number,
    i: number,
    d: { addr: number; len: number; flags: number; next: number },
  ) {
    const m = this.#host.memory;
    const at = table + 16 * i;
    m.writeU32(at, d.addr % 2 ** 32);
    m.writeU32(at + 4, Math.floor(d.addr / 2 ** 32));
    m.writeU32(at + 8, d.len);
    m.writeU16(at + 12, d.flags);
    m.writeU16(at + 14, d.next);
  }

  /** Publishes head `head` in the available ring of `queue` (without notifying). */
  publish(queue: number, head: number): void {
    const q = this.queue(queue);
    const m = this.#host.memory;
    m.writeU16(q.avail + 4 + 2 * (q.availIdx % q.size), head);
    q.availIdx = (q.availIdx + 1) & 0xffff;
    m.writeU16(q.avail + 2, q.availIdx);
  }

  /** Notifies the device about `queue`. */
  notify(queue: number): void {
    this.setReg(MmioReg.QUEUE_NOTIFY, queue);
  }

  /**
   * Builds a chain from `buffers` (readable ones first, as virtio requires unless the test wants
   * otherwise), publishes it and notifies. Returns the head index.
   *
   * @param queue The queue index.
   * @param buffers The buffers, in chain order.
   * @param options `indirect`: put the chain in an indirect table (`indirectOffset` bytes past a
   *   16-byte boundary, as Linux's 8-byte aligned kmalloc tables can be); `notify`: default true.
   */
  submit(
    queue: number,
    buffers: readonly TestBuffer[],
    options: { indirect?: boolean; indirectOffset?: number; notify?: boolean } = {},
  ): number {
    const q = this.queue(queue);
    const m = this.#host.memory;
    const placed = buffers.map((b) => {
      const len = b.data?.length ?? b.len ?? 0;
      const addr = b.addr ?? this.alloc(Math.max(len, 1), 8);
      if (b.data && b.addr === undefined) m.write(addr, b.data);
      return { addr, len, flags: b.data ? 0 : DescFlag.WRITE };
    });
    let head: number;
    if (options.indirect) {
      const offset = options.indirectOffset ?? 0;
      const table = this.alloc(16 * placed.length + offset, 16) + offset;
      placed.forEach((p, i) =>
        this.writeDesc(table, i, {
          ...p,
          flags: p.flags | (i + 1 < placed.length ? DescFlag.NEXT : 0),
          next: i + 1,
        })
      );
      head = q.nextDesc;
      q.nextDesc = (q.nextDesc + 1) % q.size;
      this.writeDesc(q.desc, head, {
        addr: table,
        len: 16 * placed.length,
        flags: DescFlag.INDIRECT,
        next: 0,
      });
    } else {
      const ids = placed.map((_, i) => (q.nextDesc + i) % q.size);
      q.nextDesc = (q.nextDesc + placed.length) % q.size;
      head = ids[0] ?? 0;
      placed.forEach((p, i) =>
        this.writeDesc(q.desc, ids[i]!, {
          ...p,
          flags: p.flags | (i + 1 < placed.length ? DescFlag.NEXT : 0),
          next: ids[i + 1] ?? 0,
        })
      );
    }
    this.#chains.set(
      `${queue}:${head}`,
      placed.filter((p) => p.flags & DescFlag.WRITE).map(({ addr, len }) => ({ addr, len })),
    );
    this.publish(queue, head);
    if (options.notify ?? true) this.notify(queue);
    return head;
  }

  /** Consumes the new used-ring entries of `queue`. */
  takeUsed(queue: number): UsedEntry[] {
    const q = this.queue(queue);
    const m = this.#host.memory;
    const idx = m.readU16(q.used + 2);
    const out: UsedEntry[] = [];
    while (q.lastUsed !== idx) {
      const at = q.used + 4 + 8 * (q.lastUsed % q.size);
      const id = m.readU32(at);
      const len = m.readU32(at + 4);
      out.push({ id, len, writable: this.#chains.get(`${queue}:${id}`) ?? [] });
      q.lastUsed = (q.lastUsed + 1) & 0xffff;
    }
    return out;
  }

  /** Reads the first `len` bytes of an entry's writable buffers, concatenated. */
  readUsed(entry: UsedEntry, len = entry.len): Uint8Array {
    const out = new Uint8Array(len);
    let at = 0;
    for (const b of entry.writable) {
      const n = Math.min(b.len, len - at);
      if (n <= 0) break;
      out.set(this.#host.memory.read(b.addr, n), at);
      at += n;
    }
    return out;
  }

  /** Reads and acknowledges the interrupt status; returns it. */
  ackInterrupt(): number {
    const s = this.reg(MmioReg.INTERRUPT_STATUS);
    if (s) this.setReg(MmioReg.INTERRUPT_ACK, s);
    return s;
  }

  /** Reads `size` bytes of config space at `offset`. */
  config(offset: number, size: 1 | 2 | 4): number {
    return this.#host.mmioRead(this.#base + MmioReg.CONFIG + offset, size);
  }
}
