/**
 * Exit kinds and the decoded exit record a host port fills on every exit.
 *
 * @module
 */

/**
 * Exit kinds. Numeric so that the exit path compares small integers. The C backends use the same
 * values from `ffi/common/exits.h` (`VMON_EXIT_<KIND>`, checked by `ffi/exits_test.ts`).
 */
export const ExitKind = {
  /** Port I/O (x86). */
  Io: 1,
  /** MMIO access outside RAM (or a guest write to a read-only region). */
  Mmio: 2,
  /** HLT (x86) or WFI (RISC-V) with no interrupt pending. */
  Halt: 3,
  /** Triple fault or equivalent: the guest is dead. */
  Shutdown: 4,
  /** The hardware refused to enter the guest. */
  FailEntry: 5,
  /** The host port could not continue (KVM internal error, emulation failure). */
  InternalError: 6,
  /** The guest asked for reset, poweroff or crash (KVM system event). */
  SystemEvent: 7,
  /** A hypercall or SBI call. */
  Hypercall: 8,
  /** The time slice or instruction budget ended, or the vCPU was kicked. */
  Interrupted: 9,
  /** A debug exit (breakpoint, single step). */
  Debug: 10,
  /** A trap for the paging strategy (write to a protected page-table page, flush, satp). */
  Paging: 11,
  /** An exit the host port does not know. */
  Unknown: 12,
} as const;

/** One of the {@linkcode ExitKind} values. */
export type ExitKindCode = typeof ExitKind[keyof typeof ExitKind];

/**
 * System event types for {@linkcode ExitKind.SystemEvent} (KVM's values; `VMON_SYSTEM_EVENT_*` in
 * `ffi/common/exits.h`, checked by `ffi/exits_test.ts`).
 */
export const SystemEventType = { Shutdown: 1, Reset: 2, Crash: 3 } as const;

/**
 * The decoded exit record of one vCPU. The host port owns one per vCPU and refills it on every
 * `run()`; core reads only the fields of the current kind. Never keep a reference to `data`
 * across exits.
 */
export interface ExitRecord {
  /** The kind of the last exit. */
  kind: ExitKindCode;
  /** Io: the port; Mmio: the guest physical address. */
  address: number;
  /** Io/Mmio: access width in bytes. */
  size: number;
  /** Io/Mmio: true for OUT/store. */
  isWrite: boolean;
  /** Io: the repeat count of string I/O (1 otherwise). */
  count: number;
  /**
   * Io/Mmio: the data area: for writes it holds the value(s) written, for reads core stores the
   * value(s) here before the next `run()`. `count * size` bytes, little-endian.
   */
  data: DataView;
  /** Hypercall: number, function id and arguments. */
  nr: number;
  /** Hypercall: function id (RISC-V a6). */
  fid: number;
  /** Hypercall: arguments. Length 6. */
  args: BigUint64Array;
  /** InternalError: the suberror; FailEntry: the hardware reason; SystemEvent: the type. */
  code: number;
  /** Guest program counter at the exit, when known (for messages). */
  pc: bigint;
  /** A human-readable detail for fatal exits (decoded registers, instruction bytes). */
  detail: string;
}
