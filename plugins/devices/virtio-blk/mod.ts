/**
 * The `virtio-blk` device plugin: a virtio block device (device id 2) backed by a raw host file
 * (`host.files.open`). Requests IN, OUT, FLUSH (fdatasync before the status byte is written) and
 * GET_ID; anything malformed gets VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP, never a crash.
 *
 * @module
 */

import {
  attachVirtioMmio,
  type Counter,
  definePlugin,
  type DescriptorChain,
  type GuestBuffer,
  type GuestMemoryAccess,
  type HostFile,
  type Logger,
  PLUGIN_API_VERSION,
  type SnapshotValue,
  type VirtioActivation,
  type VirtioDevice,
  VirtioDeviceId,
  type Virtqueue,
  VmonError,
} from "../../../mod.ts";

/** Block feature bits. */
export const BlkFeature = {
  SIZE_MAX: 1n << 1n,
  SEG_MAX: 1n << 2n,
  RO: 1n << 5n,
  BLK_SIZE: 1n << 6n,
  FLUSH: 1n << 9n,
} as const;

/** Request types. */
export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8 } as const;

/** Status values (the last byte the device writes). */
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** Sector size in bytes. */
export const SECTOR = 512;
/** Length of the GET_ID answer. */
export const ID_LEN = 20;
/** Queue size. */
export const QUEUE_SIZE = 256;
const HEADER = 16;
const CONFIG_SIZE = 24;

/** Counters the device updates. */
export interface BlkCounters {
  /** IN requests. */
  readonly reads?: Counter;
  /** OUT requests. */
  readonly writes?: Counter;
  /** FLUSH requests. */
  readonly flushes?: Counter;
  /** Bytes read from the file. */
  readonly bytesRead?: Counter;
  /** Bytes written to the file. */
  readonly bytesWritten?: Counter;
  /** Requests answered IOERR. */
  readonly ioErrors?: Counter;
  /** Requests answered UNSUPP. */
  readonly unsupported?: Counter;
}

/** Options of {@linkcode VirtioBlk}. */
export interface VirtioBlkOptions {
  /** Refuse writes (and offer VIRTIO_BLK_F_RO). */
  readonly readonly: boolean;
  /** The GET_ID answer (up to 20 bytes). */
  readonly serial: string;
  /** For warnings about failed requests. */
  readonly log?: Logger;
  /** Counters. */
  readonly counters?: BlkCounters;
}

/** The virtio-blk device model over an open host file. */
export class VirtioBlk implements VirtioDevice {
  /** Device id 2. */
  readonly deviceId: number = VirtioDeviceId.BLOCK;
  /** SEG_MAX, BLK_SIZE, FLUSH, and RO when read-only. */
  readonly features: bigint;
  /** One request queue. */
  readonly queueMaxSizes: readonly number[] = [QUEUE_SIZE];
  /** capacity, size_max, seg_max, geometry, blk_size. */
  readonly configSize = CONFIG_SIZE;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;
  #file: HostFile;
  #options: VirtioBlkOptions;
  #config = new Uint8Array(CONFIG_SIZE);
  #serial: Uint8Array;
  #activation: VirtioActivation | undefined;
  #warnings = 0;

  /**
   * @param file The backing file, opened writable unless `readonly`. The device closes it on
   *   dispose.
   * @param options Read-only flag, serial, logger and counters.
   */
  constructor(file: HostFile, options: VirtioBlkOptions) {
    this.#file = file;
    this.#options = options;
    this.capacity = Math.floor(file.size / SECTOR);
    this.features = BlkFeature.SEG_MAX | BlkFeature.BLK_SIZE | BlkFeature.FLUSH |
      (options.readonly ? BlkFeature.RO : 0n);
    const cfg = new DataView(this.#config.buffer);
    cfg.setBigUint64(0, BigInt(this.capacity), true);
    cfg.setUint32(8, 0, true); // size_max (SIZE_MAX not offered)
    cfg.setUint32(12, QUEUE_SIZE - 2, true); // seg_max: header and status take two
    cfg.setUint32(20, SECTOR, true); // blk_size
    this.#serial = new TextEncoder().encode(options.serial).slice(0, ID_LEN);
  }

  /** Reads config space (little-endian). */
  readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.#config[offset + i] ?? 0);
    return v;
  }

  /** Config space is read-only here (no writeback toggle). */
  writeConfig(): void {}

  /** Remembers the queue. */
  activate(activation: VirtioActivation): void {
    this.#activation = activation;
  }

  /** Handles every available request. */
  notify(index: number): void {
    const a = this.#activation;
    const q = a?.queues[index];
    if (!a || !q) return;
    for (let chain = q.pop(); chain; chain = q.pop()) this.#handle(a.memory, q, chain);
    a.signalUsed(q);
  }

  /** Forgets the queue. */
  reset(): void {
    this.#activation = undefined;
  }

  /** Closes the file. */
  dispose(): void {
    this.#file.close();
  }

  /**
   * Snapshot state: nothing but what identifies the disk (requests complete before the exit
   * that notified them returns; the image is referenced, not copied).
   */
  saveState(): SnapshotValue {
    return { capacity: this.capacity, readonly: this.#options.readonly };
  }

  /** Refuses a disk that changed size or mode since the snapshot. */
  restoreState(state: SnapshotValue): void {
    const st = state as { capacity?: unknown; readonly?: unknown } | null;
    if (st === null || typeof st !== "object" || typeof st.capacity !== "number") {
      throw new VmonError("Cannot restore virtio-blk: the saved state is malformed");
    }
    if (st.capacity !== this.capacity) {
      throw new VmonError(
        `Cannot restore virtio-blk: the disk image has ${this.capacity} sectors, the snapshot was taken with ${st.capacity}`,
      );
    }
    if (st.readonly !== this.#options.readonly) {
      throw new VmonError(
        `Cannot restore virtio-blk: the snapshot was taken with readonly=${st.readonly}, this disk has readonly=${this.#options.readonly}`,
      );
    }
  }

  #warn(message: string): void {
    if (this.#warnings++ < 16) this.#options.log?.warn(message);
  }

  #handle(memory: GuestMemoryAccess, q: Virtqueue, chain: DescriptorChain): void {
    const c = this.#options.counters;
    if (chain.writableLength < 1) {
      // Nowhere to put the status: give the chain back untouched.
      this.#warn(`Request ${chain.head} has no status byte`);
      c?.ioErrors?.add();
      q.pushUsed(chain.head, 0);
      return;
    }
    const finish = (status: number, written: number) => {
      if (status === BlkStatus.IOERR) c?.ioErrors?.add();
      if (status === BlkStatus.UNSUPP) c?.unsupported?.add();
      q.writeChain(chain, new Uint8Array([status]), { skip: chain.writableLength - 1 });
      q.pushUsed(chain.head, written + 1);
    };
    if (chain.readableLength < HEADER) {
      this.#warn(`Request ${chain.head} has a short header (${chain.readableLength} bytes)`);
      return finish(BlkStatus.IOERR, 0);
    }
    const header = new DataView(q.readChain(chain, { max: HEADER }).buffer);
    const type = header.getUint32(0, true);
    const sector = header.getBigUint64(8, true);
    switch (type) {
      case BlkType.IN: {
        const len = chain.writableLength - 1;
        const at = this.#range(sector, len);
        if (at === undefined) return finish(BlkStatus.IOERR, 0);
        c?.reads?.add();
        if (!this.#transfer(memory, chain.writable, { skip: 0, len, at, toGuest: true })) {
          return finish(BlkStatus.IOERR, 0);
        }
        c?.bytesRead?.add(len);
        return finish(BlkStatus.OK, len);
      }
      case BlkType.OUT: {
        const len = chain.readableLength - HEADER;
        c?.writes?.add();
        if (this.#options.readonly) {
          this.#warn(`Write refused at sector ${sector}: the disk is read-only`);
          return finish(BlkStatus.IOERR, 0);
        }
        const at = this.#range(sector, len);
        if (at === undefined) return finish(BlkStatus.IOERR, 0);
        if (!this.#transfer(memory, chain.readable, { skip: HEADER, len, at, toGuest: false })) {
          return finish(BlkStatus.IOERR, 0);
        }
        c?.bytesWritten?.add(len);
        return finish(BlkStatus.OK, 0);
      }
      case BlkType.FLUSH: {
        c?.flushes?.add();
        if (!this.#options.readonly) {
          try {
            this.#file.sync();
          } catch (err) {
            this.#warn(`Flush failed: ${err instanceof Error ? err.message : String(err)}`);
            return finish(BlkStatus.IOERR, 0);
          }
        }
        return finish(BlkStatus.OK, 0);
      }
      case BlkType.GET_ID: {
        const room = Math.min(ID_LEN, chain.writableLength - 1);
        const id = new Uint8Array(room);
        id.set(this.#serial.subarray(0, room));
        const n = q.writeChain(chain, id);
        return finish(BlkStatus.OK, n);
      }
      default:
        return finish(BlkStatus.UNSUPP, 0);
    }
  }

  /** The byte offset of a request, or undefined if it is misaligned or beyond the disk. */
  #range(sector: bigint, len: number): number | undefined {
    if (len % SECTOR !== 0) {
      this.#warn(`Request of ${len} bytes is not a whole number of sectors`);
      return undefined;
    }
    if (sector > BigInt(this.capacity) || Number(sector) + len / SECTOR > this.capacity) {
      this.#warn(`Request for sectors ${sector}+${len / SECTOR} is beyond ${this.capacity}`);
      return undefined;
    }
    return Number(sector) * SECTOR;
  }

  /**
   * Moves `len` bytes between the file at byte `at` and the guest buffers (after skipping `skip`
   * bytes of them), buffer by buffer, zero-copy where the buffer lies in one RAM region.
   */
  #transfer(
    memory: GuestMemoryAccess,
    buffers: readonly GuestBuffer[],
    options: { skip: number; len: number; at: number; toGuest: boolean },
  ): boolean {
    let { skip, len, at } = options;
    try {
      for (const b of buffers) {
        if (len === 0) break;
        if (skip >= b.len) {
          skip -= b.len;
          continue;
        }
        const n = Math.min(b.len - skip, len);
        const addr = b.addr + skip;
        skip = 0;
        const inOneRegion = memory.regions.some((r) => addr >= r.gpa && addr + n <= r.gpa + r.size);
        if (options.toGuest) {
          const dst = inOneRegion ? memory.view(addr, n) : new Uint8Array(n);
          if (this.#file.readAt(dst, at) !== n) throw new Error("short read (file shrank?)");
          if (!inOneRegion) memory.write(addr, dst);
        } else {
          this.#file.writeAt(inOneRegion ? memory.view(addr, n) : memory.read(addr, n), at);
        }
        at += n;
        len -= n;
      }
      return true;
    } catch (err) {
      this.#warn(`I/O failed at byte ${at}: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }
}

/**
 * An image that cannot be opened for writing (permission denied, a read-only file system) may
 * still be attached read-only: the error says how, once.
 */
function withReadonlyHint(err: unknown): unknown {
  if (!(err instanceof Error) || err.message.includes("readonly=true")) return err;
  const cause = err.cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (!(cause instanceof Deno.errors.PermissionDenied) && code !== "EROFS") return err;
  return new VmonError(`${err.message} (attach it read-only: readonly=true)`, { cause });
}

export default definePlugin({
  name: "virtio-blk",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "virtio block device backed by a raw disk image file",
  options: {
    file: { type: "path", description: "Raw disk image (host file)", required: true },
    readonly: { type: "boolean", description: "Refuse guest writes", default: false },
    serial: { type: "string", description: "Serial number (GET_ID, up to 20 bytes)" },
    lock: {
      type: "string",
      enum: ["on", "off"],
      description: "Lock the image (off: another process may write it too; see the README)",
      default: "on",
    },
    base: { type: "integer", description: "MMIO address (default: allocated)", min: 0 },
    irq: { type: "integer", description: "Interrupt line (default: allocated)", min: 0 },
  },
  setup(host, options) {
    let file: HostFile;
    try {
      file = host.files.open(options.file, {
        write: !options.readonly,
        lock: options.lock !== "off",
      });
    } catch (err) {
      throw options.readonly ? err : withReadonlyHint(err);
    }
    try {
      if (file.size % SECTOR !== 0) {
        host.log.warn(
          `Disk image "${options.file}" is not a whole number of sectors: the last ${
            file.size % SECTOR
          } bytes are not visible`,
        );
      }
      const m = host.metrics;
      const serial = options.serial ?? options.file.split("/").pop() ?? "vmon";
      const device = new VirtioBlk(file, {
        readonly: options.readonly,
        serial,
        log: host.log,
        counters: {
          reads: m.counter("reads", "IN requests"),
          writes: m.counter("writes", "OUT requests"),
          flushes: m.counter("flushes", "FLUSH requests"),
          bytesRead: m.counter("bytes_read", "Bytes read from the image"),
          bytesWritten: m.counter("bytes_written", "Bytes written to the image"),
          ioErrors: m.counter("io_errors", "Requests answered IOERR"),
          unsupported: m.counter("unsupported", "Requests answered UNSUPP"),
        },
      });
      return attachVirtioMmio(host, device, { base: options.base, irq: options.irq });
    } catch (err) {
      file.close();
      throw err;
    }
  },
});
