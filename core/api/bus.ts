/**
 * The exit bus: what devices register (port I/O and MMIO ranges, hypercalls).
 *
 * @module
 */

/** Access width in bytes. */
export type AccessSize = 1 | 2 | 4 | 8;

/**
 * A handler for a PIO or MMIO range. It receives the offset inside its range (never the absolute
 * address). Values are numbers; 8-byte accesses are split by core into two 4-byte accesses
 * (low word first) unless `read64`/`write64` are given.
 */
export interface RangeHandler {
  /** Returns the value read at `offset` (only the low `size` bytes are used). */
  read(offset: number, size: AccessSize, vcpu: number): number;
  /** Handles a write of `value` (the low `size` bytes) at `offset`. */
  write(offset: number, size: AccessSize, value: number, vcpu: number): void;
  /** Optional full-width 8-byte read. */
  read64?(offset: number, vcpu: number): bigint;
  /** Optional full-width 8-byte write. */
  write64?(offset: number, value: bigint, vcpu: number): void;
}

/** A hypercall (x86 doorbell) or SBI call (RISC-V `ecall` from S-mode). */
export interface HypercallRequest {
  /** The call number: the SBI extension id (a7) on RISC-V, the call number on x86. */
  readonly nr: number;
  /** The function id (a6) on RISC-V; 0 on x86. */
  readonly fid: number;
  /** Up to six arguments (a0-a5 on RISC-V). */
  readonly args: readonly bigint[];
  /** The vCPU that made the call. */
  readonly vcpu: number;
}

/** What a hypercall handler returns: SBI's error and value pair (a0, a1). */
export interface HypercallResult {
  /** 0 for success, or a negative error code (SBI_ERR_*). */
  readonly error: number;
  /** The value returned with it. */
  readonly value: bigint | number;
}

/** Handles one hypercall number. */
export type HypercallHandler = (call: HypercallRequest) => HypercallResult;

/** What holds a range of ports or guest physical addresses (`PlatformHost.occupant`). */
export interface RangeOccupant {
  /** The plugin that registered it, or, for a reservation, its label (`RAM`). */
  readonly owner: string;
  /** True for a reservation (RAM, which the guest reaches without exits). */
  readonly reserved: boolean;
  /** First port or address. */
  readonly base: number;
  /** Length in bytes. */
  readonly size: number;
}

/** Something registered on the bus; `unregister` removes it. */
export interface Registration {
  /** Removes the registration. Idempotent. */
  unregister(): void;
}

/** The registries devices use. Overlapping registrations are refused with an error naming both. */
export interface DeviceBus {
  /** Claims port I/O ports `[base, base+size)`. */
  registerPio(base: number, size: number, handler: RangeHandler): Registration;
  /** Claims guest physical addresses `[base, base+size)` for MMIO. */
  registerMmio(base: number, size: number, handler: RangeHandler): Registration;
  /** Claims a hypercall (or SBI extension) number. */
  registerHypercall(nr: number, handler: HypercallHandler): Registration;
}
