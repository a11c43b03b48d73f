/**
 * Guest memory as plugins see it.
 *
 * @module
 */

/**
 * Bounds-checked access to guest physical memory. Every address comes from the guest or the user
 * and is checked; an access outside RAM throws a {@linkcode GuestMemoryError} naming the address.
 * Accesses that cross from one RAM region into an adjacent one are handled.
 */
export interface GuestMemoryAccess {
  /** Total bytes of RAM over all regions. */
  readonly size: number;
  /** The RAM regions, sorted by guest physical address. */
  readonly regions: readonly MemoryRegionInfo[];
  /** True when `[gpa, gpa+len)` lies entirely in RAM. */
  contains(gpa: number, len: number): boolean;
  /** Copies `len` bytes starting at `gpa` into a new array. */
  read(gpa: number, len: number): Uint8Array;
  /** Copies `data` into guest memory at `gpa`. Read-only regions are writable from the monitor. */
  write(gpa: number, data: Uint8Array): void;
  /** Reads a little-endian unsigned 8-bit integer. */
  readU8(gpa: number): number;
  /** Reads a little-endian unsigned 16-bit integer. */
  readU16(gpa: number): number;
  /** Reads a little-endian unsigned 32-bit integer. */
  readU32(gpa: number): number;
  /** Reads a little-endian unsigned 64-bit integer. */
  readU64(gpa: number): bigint;
  /** Writes a little-endian 8-bit integer. */
  writeU8(gpa: number, value: number): void;
  /** Writes a little-endian 16-bit integer. */
  writeU16(gpa: number, value: number): void;
  /** Writes a little-endian 32-bit integer. */
  writeU32(gpa: number, value: number): void;
  /** Writes a little-endian 64-bit integer. */
  writeU64(gpa: number, value: bigint): void;
  /**
   * A zero-copy view of `[gpa, gpa+len)`. The range must lie inside one region; use `read`
   * for ranges that may cross regions.
   */
  view(gpa: number, len: number): Uint8Array;
}

/** One RAM region. */
export interface MemoryRegionInfo {
  /** Guest physical address of the first byte. */
  readonly gpa: number;
  /** Length in bytes. */
  readonly size: number;
  /** Guest writes fault or exit (ROM); the monitor can still write it. */
  readonly readonly: boolean;
  /** A name for messages, such as `ram` or `rom`. */
  readonly name: string;
}
