/**
 * Guest physical memory: bounds-checked, zero-copy access to the RAM regions a host port
 * allocates. Plugins see it through the {@linkcode GuestMemoryAccess} interface; adding and
 * removing regions is core's alone.
 *
 * @module
 */

import type { GuestMemoryAccess, MemoryRegionInfo } from "./api/mod.ts";
import { hex, VmonError } from "./errors.ts";

/**
 * An access outside guest RAM: `Guest memory access out of range: 0x9000 (+8 bytes) is outside
 * RAM`. Devices that take addresses from the guest catch it and report a guest-visible error.
 */
export class GuestMemoryError extends VmonError {
  /** The first guest physical address of the access. */
  readonly gpa: number;
  /** The length of the access in bytes. */
  readonly length: number;

  /**
   * Creates the error for an access of `length` bytes at `gpa`.
   *
   * @param gpa The first address of the failed access.
   * @param length Its length in bytes.
   * @param options `reason` replaces the default detail `is outside RAM`.
   */
  constructor(gpa: number, length: number, options: { reason?: string } = {}) {
    super(
      `Guest memory access out of range: ${
        Number.isSafeInteger(gpa) && gpa >= 0 ? hex(gpa) : String(gpa)
      } (+${length} bytes) ${options.reason ?? "is outside RAM"}`,
    );
    this.name = "GuestMemoryError";
    this.gpa = gpa;
    this.length = length;
  }
}

interface Region extends MemoryRegionInfo {
  readonly end: number;
  readonly buffer: ArrayBufferLike;
  readonly bytes: Uint8Array;
  readonly dv: DataView;
}

function isAddress(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * Guest RAM over one or more regions, each backed by an `ArrayBuffer` (zero-copy over the host
 * port's mapping). Reads and writes are bounds-checked; integers are little-endian; an access
 * that runs from one region into an adjacent one is split. Read-only regions (ROM) are read-only
 * for the guest only: the monitor can write them.
 *
 * The common case (an access inside the region that served the previous access) takes a fast
 * path with one range check and a cached `DataView`.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "./memory.ts";
 * const mem = new GuestMemory();
 * mem.addRegion(0x8000_0000, new ArrayBuffer(0x10000), { name: "ram" });
 * mem.writeU32(0x8000_0010, 0xdeadbeef);
 * if (mem.readU16(0x8000_0012) !== 0xdead) throw new Error("not little-endian");
 * ```
 */
export class GuestMemory implements GuestMemoryAccess {
  #regions: Region[] = [];
  #infos: readonly MemoryRegionInfo[] = [];
  #size = 0;
  /** The region that served the last access (fast path). */
  #last: Region | undefined;

  /** Total bytes of RAM over all regions. */
  get size(): number {
    return this.#size;
  }

  /** The RAM regions, sorted by guest physical address. */
  get regions(): readonly MemoryRegionInfo[] {
    return this.#infos;
  }

  /**
   * Adds a region backed by `buffer` (not copied: guest accesses and monitor accesses share it).
   *
   * @param gpa Guest physical address of the first byte.
   * @param buffer The backing memory; its whole length is the region.
   * @param options `name` for messages (default `ram`), `readonly` for ROM.
   * @throws {VmonError} If the region is empty, misplaced or overlaps another region.
   */
  addRegion(
    gpa: number,
    buffer: ArrayBufferLike,
    options: { readonly?: boolean; name?: string } = {},
  ): MemoryRegionInfo {
    const name = options.name ?? "ram";
    const size = buffer.byteLength;
    if (!isAddress(gpa) || !Number.isSafeInteger(gpa + size)) {
      throw new VmonError(`Cannot add memory region "${name}": bad guest address ${gpa}`);
    }
    if (size === 0) {
      throw new VmonError(`Cannot add memory region "${name}" at ${hex(gpa)}: it is empty`);
    }
    const end = gpa + size;
    for (const r of this.#regions) {
      if (gpa < r.end && r.gpa < end) {
        throw new VmonError(
          `Cannot add memory region "${name}" at ${hex(gpa)}-${
            hex(end - 1)
          }: overlaps "${r.name}" at ${hex(r.gpa)}-${hex(r.end - 1)}`,
        );
      }
    }
    const region: Region = {
      gpa,
      size,
      end,
      readonly: options.readonly ?? false,
      name,
      buffer,
      bytes: new Uint8Array(buffer),
      dv: new DataView(buffer),
    };
    this.#regions.push(region);
    this.#regions.sort((a, b) => a.gpa - b.gpa);
    this.#refresh();
    return this.#infos.find((i) => i.gpa === gpa) as MemoryRegionInfo;
  }

  /**
   * Removes the region that starts at `gpa`. Views obtained earlier stay valid as far as the
   * backing buffer does; the host port decides when to unmap it.
   *
   * @throws {VmonError} If no region starts there.
   */
  removeRegion(gpa: number): void {
    const i = this.#regions.findIndex((r) => r.gpa === gpa);
    if (i < 0) {
      throw new VmonError(`Cannot remove memory region at ${hex(gpa)}: no region starts there`);
    }
    this.#regions.splice(i, 1);
    this.#refresh();
  }

  #refresh(): void {
    this.#infos = Object.freeze(
      this.#regions.map((r) =>
        Object.freeze({ gpa: r.gpa, size: r.size, readonly: r.readonly, name: r.name })
      ),
    );
    this.#size = this.#regions.reduce((n, r) => n + r.size, 0);
    this.#last = this.#regions[0];
  }

  /** Finds the region holding `gpa` (binary search), or undefined. */
  #find(gpa: number): Region | undefined {
    const rs = this.#regions;
    let lo = 0, hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = rs[mid] as Region;
      if (gpa < r.gpa) hi = mid - 1;
      else if (gpa >= r.end) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  /**
   * The region that holds all of `[gpa, gpa+len)`, or undefined when the range is outside RAM or
   * crosses a region boundary. Updates the fast-path cache.
   */
  #within(gpa: number, len: number): Region | undefined {
    const last = this.#last;
    if (last !== undefined && gpa >= last.gpa && gpa + len <= last.end && Number.isInteger(gpa)) {
      return last;
    }
    if (!isAddress(gpa)) return undefined;
    const r = this.#find(gpa);
    if (r === undefined || gpa + len > r.end) return undefined;
    this.#last = r;
    return r;
  }

  /**
   * Calls `fn(region, offsetInRegion, offsetInAccess, n)` for each piece of `[gpa, gpa+len)`,
   * after checking that the whole range is RAM (so nothing is touched when it is not).
   */
  #pieces(
    gpa: number,
    len: number,
    fn: (r: Region, off: number, pos: number, n: number) => void,
  ): void {
    if (!isAddress(gpa) || !Number.isSafeInteger(len) || len < 0 || !isAddress(gpa + len)) {
      throw new GuestMemoryError(gpa, len);
    }
    if (!this.contains(gpa, len)) throw new GuestMemoryError(gpa, len);
    let pos = 0;
    while (pos < len) {
      const a = gpa + pos;
      const r = this.#find(a) as Region;
      const n = Math.min(len - pos, r.end - a);
      fn(r, a - r.gpa, pos, n);
      pos += n;
    }
  }

  /**
   * True when `[gpa, gpa+len)` lies entirely in RAM (adjacent regions count as one). An empty
   * range is contained anywhere.
   */
  contains(gpa: number, len: number): boolean {
    if (!isAddress(gpa) || !Number.isSafeInteger(len) || len < 0) return false;
    if (len === 0) return true;
    let a = gpa;
    const end = gpa + len;
    do {
      const r = this.#find(a);
      if (r === undefined) return false;
      a = r.end;
    } while (a < end);
    return true;
  }

  /** Copies `len` bytes starting at `gpa` into a new array. */
  read(gpa: number, len: number): Uint8Array {
    const r = this.#within(gpa, len);
    if (r !== undefined && Number.isSafeInteger(len) && len >= 0) {
      const off = gpa - r.gpa;
      return r.bytes.slice(off, off + len);
    }
    const out = new Uint8Array(Number.isSafeInteger(len) && len > 0 ? len : 0);
    this.#pieces(gpa, len, (reg, off, pos, n) => out.set(reg.bytes.subarray(off, off + n), pos));
    return out;
  }

  /** Copies `data` into guest memory at `gpa`. Read-only regions are writable from the monitor. */
  write(gpa: number, data: Uint8Array): void {
    const len = data.length;
    const r = this.#within(gpa, len);
    if (r !== undefined) {
      r.bytes.set(data, gpa - r.gpa);
      return;
    }
    this.#pieces(gpa, len, (reg, off, pos, n) => reg.bytes.set(data.subarray(pos, pos + n), off));
  }

  /** Reads `n` (2, 4 or 8) bytes little-endian across a region boundary. */
  #readSlow(gpa: number, n: number): bigint {
    const b = this.read(gpa, n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
    return v;
  }

  #writeSlow(gpa: number, n: number, value: bigint): void {
    const b = new Uint8Array(n);
    let v = BigInt.asUintN(n * 8, value);
    for (let i = 0; i < n; i++) {
      b[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    this.write(gpa, b);
  }

  /** Reads an unsigned 8-bit integer. */
  readU8(gpa: number): number {
    const r = this.#within(gpa, 1);
    if (r === undefined) throw new GuestMemoryError(gpa, 1);
    return r.bytes[gpa - r.gpa] as number;
  }

  /** Reads a little-endian unsigned 16-bit integer. */
  readU16(gpa: number): number {
    const r = this.#within(gpa, 2);
    if (r !== undefined) return r.dv.getUint16(gpa - r.gpa, true);
    return Number(this.#readSlow(gpa, 2));
  }

  /** Reads a little-endian unsigned 32-bit integer. */
  readU32(gpa: number): number {
    const r = this.#within(gpa, 4);
    if (r !== undefined) return r.dv.getUint32(gpa - r.gpa, true);
    return Number(this.#readSlow(gpa, 4));
  }

  /** Reads a little-endian unsigned 64-bit integer. */
  readU64(gpa: number): bigint {
    const r = this.#within(gpa, 8);
    if (r !== undefined) return r.dv.getBigUint64(gpa - r.gpa, true);
    return this.#readSlow(gpa, 8);
  }

  /** Writes an 8-bit integer (the low 8 bits of `value`). */
  writeU8(gpa: number, value: number): void {
    const r = this.#within(gpa, 1);
    if (r === undefined) throw new GuestMemoryError(gpa, 1);
    r.bytes[gpa - r.gpa] = value;
  }

  /** Writes a little-endian 16-bit integer (the low 16 bits of `value`). */
  writeU16(gpa: number, value: number): void {
    const r = this.#within(gpa, 2);
    if (r !== undefined) r.dv.setUint16(gpa - r.gpa, value, true);
    else this.#writeSlow(gpa, 2, BigInt(value >>> 0));
  }

  /** Writes a little-endian 32-bit integer (the low 32 bits of `value`). */
  writeU32(gpa: number, value: number): void {
    const r = this.#within(gpa, 4);
    if (r !== undefined) r.dv.setUint32(gpa - r.gpa, value, true);
    else this.#writeSlow(gpa, 4, BigInt(value >>> 0));
  }

  /** Writes a little-endian 64-bit integer (the low 64 bits of `value`). */
  writeU64(gpa: number, value: bigint): void {
    const r = this.#within(gpa, 8);
    if (r !== undefined) r.dv.setBigUint64(gpa - r.gpa, value, true);
    else this.#writeSlow(gpa, 8, value);
  }

  /**
   * A zero-copy view of `[gpa, gpa+len)`; writes to it are guest memory writes. The range must
   * lie inside one region; use `read` for ranges that may cross regions.
   */
  view(gpa: number, len: number): Uint8Array {
    const r = this.#within(gpa, len);
    if (r === undefined || !Number.isSafeInteger(len) || len < 0) {
      if (this.contains(gpa, len)) {
        throw new GuestMemoryError(gpa, len, { reason: "crosses a memory region boundary" });
      }
      throw new GuestMemoryError(gpa, len);
    }
    return new Uint8Array(r.buffer, r.bytes.byteOffset + gpa - r.gpa, len);
  }
}
