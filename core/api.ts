/**
 * The public plugin API of vmon: every type a plugin author (device, platform, host port or
 * paging strategy) sees. Plugins import from `mod.ts` (or this file through it), never from other
 * files in `core/`.
 *
 * @module
 */

/** The plugin API version this build of vmon implements. Plugins declare the version they target. */
export const PLUGIN_API_VERSION = 1;

/** The four kinds of plugin. */
export type PluginKind = "hostport" | "platform" | "device" | "paging";

/** Guest architectures a host port can run. */
export type GuestArch = "x86_64" | "riscv64";

// ---------------------------------------------------------------------------------------------
// Options schemas
// ---------------------------------------------------------------------------------------------

/**
 * Type of one plugin option. `size` accepts a byte count or a string such as `64M`, `2G`, `4k`
 * and is delivered as a number of bytes. `path` is a string naming a host file.
 */
export type OptionType = "string" | "integer" | "number" | "boolean" | "size" | "path";

/** Describes one option a plugin accepts. */
export interface OptionSpec {
  /** The value type. */
  readonly type: OptionType;
  /** One line of help text, shown by `vmon plugins`. */
  readonly description: string;
  /** The value used when the option is not given. */
  readonly default?: string | number | boolean;
  /** For `string`: the accepted values. */
  readonly enum?: readonly string[];
  /** For numeric types: the smallest accepted value. */
  readonly min?: number;
  /** For numeric types: the largest accepted value. */
  readonly max?: number;
  /** The option must be given (and has no default). */
  readonly required?: boolean;
}

/** A plugin's options schema: option name to its spec. */
export type OptionsSchema = Readonly<Record<string, OptionSpec>>;

/** The value type of an option of type `T`. */
export type ValueOf<T extends OptionType> = T extends "boolean" ? boolean
  : T extends "string" | "path" ? string
  : number;

/** The validated option values a plugin's `setup` receives for schema `S`. */
export type OptionValues<S extends OptionsSchema> = {
  readonly [K in keyof S]: S[K] extends { default: unknown } | { required: true }
    ? ValueOf<S[K]["type"]>
    : ValueOf<S[K]["type"]> | undefined;
};

// ---------------------------------------------------------------------------------------------
// Guest memory
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The exit bus: what devices register
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Interrupts, timers, console, logging, metrics
// ---------------------------------------------------------------------------------------------

/** One interrupt line into the platform's interrupt controller. */
export interface IrqLine {
  /** The line number as the platform numbers it (GSI on x86, PLIC source on RISC-V). */
  readonly number: number;
  /** Sets the line level (level-triggered devices). */
  set(level: boolean): void;
  /** Raises and lowers the line (edge-triggered devices). */
  pulse(): void;
}

/** Host timers, running on the machine worker between vCPU slices. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds of host time. Returns an id for `clear`. */
  setTimeout(fn: () => void, ms: number): number;
  /** Cancels a timer. */
  clear(id: number): void;
  /** Host monotonic time in milliseconds. */
  now(): number;
}

/** The machine's console: the user's terminal (or the embedding program's callbacks). */
export interface ConsolePort {
  /** Writes guest output. Never blocks the vCPU. */
  write(bytes: Uint8Array): void;
  /**
   * Subscribes to user input. Only one device owns input: the first to subscribe, unless the
   * manifest names another. Returns false if another device owns input.
   */
  onInput(fn: (bytes: Uint8Array) => void): boolean;
}

/** Log output, prefixed with the plugin's name. */
export interface Logger {
  /** Debug detail, shown with `--trace plugins`. */
  debug(message: string): void;
  /** Information for the user. */
  info(message: string): void;
  /** A problem the machine survives, such as a malformed guest request. */
  warn(message: string): void;
}

/** A monotonically increasing counter reported with `--stats`. */
export interface Counter {
  /** Adds `n` (default 1). */
  add(n?: number): void;
  /** The current value. */
  readonly value: number;
}

/** Per-plugin metrics, reported by `--stats`. */
export interface Metrics {
  /** Returns the counter called `name`, creating it at zero. */
  counter(name: string, description?: string): Counter;
}

/** What every plugin gets. */
export interface PluginHost {
  /** The plugin's own name, as loaded. */
  readonly name: string;
  /** Facts about the machine being built. */
  readonly machine: MachineInfo;
  /** Log output. */
  readonly log: Logger;
  /** Counters. */
  readonly metrics: Metrics;
  /** Host timers. */
  readonly timers: Timers;
  /** Reads a host file the user named (a disk, a kernel), with clear errors. */
  readonly files: HostFiles;
}

/** Facts about the machine, fixed before any plugin is set up. */
export interface MachineInfo {
  /** Number of vCPUs. */
  readonly cpus: number;
  /** RAM size in bytes. */
  readonly memorySize: number;
  /** Guest architecture of the host port. */
  readonly arch: GuestArch;
  /** The host port's name. */
  readonly hostport: string;
}

/** File access for plugins; errors name the file and say why. */
export interface HostFiles {
  /** Reads a whole file. */
  readFile(path: string): Uint8Array;
  /** Opens a file for random access (disk images). */
  open(path: string, options: { readonly write: boolean }): HostFile;
}

/** A host file opened for random access. */
export interface HostFile {
  /** The file's size in bytes. */
  readonly size: number;
  /** Reads into `buf` at byte `offset`; returns bytes read. */
  readAt(buf: Uint8Array, offset: number): number;
  /** Writes `buf` at byte `offset`. */
  writeAt(buf: Uint8Array, offset: number): void;
  /** Makes written data durable (fdatasync). */
  sync(): void;
  /** Closes the file. Idempotent. */
  close(): void;
}

// ---------------------------------------------------------------------------------------------
// Platform services devices use, and what devices describe back
// ---------------------------------------------------------------------------------------------

/**
 * A device's self-description, collected by the platform to build firmware tables (the RISC-V
 * device tree, for example).
 */
export interface DeviceDescription {
  /** Node name stem, such as `serial` or `virtio_mmio`. */
  readonly node: string;
  /** Devicetree `compatible` strings. */
  readonly compatible: readonly string[];
  /** MMIO window, if any. */
  readonly mmio?: { readonly base: number; readonly size: number };
  /** PIO window, if any. */
  readonly pio?: { readonly base: number; readonly size: number };
  /** Interrupt line numbers. */
  readonly irqs?: readonly number[];
  /** Extra properties: numbers become u32 cells, bigints u64, strings strings. */
  readonly props?: Readonly<Record<string, number | bigint | string | readonly number[]>>;
  /** True for the console the kernel should use (`stdout-path`). */
  readonly console?: boolean;
}

/** Resources the platform hands out to devices. */
export interface PlatformServices {
  /** True if the architecture has port I/O (x86). */
  readonly hasPio: boolean;
  /**
   * Reserves an MMIO window of `size` bytes (aligned to `size` rounded up to 4 KiB). A device
   * that has a conventional address (the UART at 0x10000000 on RISC-V `virt`) may pass it as
   * `preferredBase`; the platform returns it, or throws if that window is taken.
   */
  allocateMmio(size: number, preferredBase?: number): number;
  /** Reserves a free interrupt line, or the one asked for. */
  allocateIrq(preferred?: number): IrqLine;
  /** Register shift for byte-wide register devices (UART) on MMIO buses. */
  readonly mmioRegShift: number;
  /** Records a device for firmware tables. */
  describe(description: DeviceDescription): void;
}

/** What a device plugin's `setup` receives. */
export interface DeviceHost extends PluginHost {
  /** Guest physical memory (for DMA: virtqueues, buffers). */
  readonly memory: GuestMemoryAccess;
  /** The exit bus registries. */
  readonly bus: DeviceBus;
  /** The platform's resource allocator and table builder. */
  readonly platform: PlatformServices;
  /** The terminal. */
  readonly console: ConsolePort;
  /**
   * Ends the machine with an exit status (the guest asked, e.g. through debug-exit). With
   * `failed`, the machine failed (a guest crash or panic) and the CLI prints `reason`.
   */
  requestExit(status: number, reason?: string, options?: ExitRequestOptions): void;
}

/** Options of `requestExit`. */
export interface ExitRequestOptions {
  /** The machine failed (guest crash, kernel panic, guest fault) rather than exited. */
  readonly failed?: boolean;
}

/** Every plugin instance can be disposed; dispose must be idempotent. */
export interface PluginInstance {
  /** Releases host resources (files, timers). Called in reverse setup order. */
  dispose(): void;
}

// ---------------------------------------------------------------------------------------------
// Host ports: vCPUs and exits
// ---------------------------------------------------------------------------------------------

/** Exit kinds. Numeric so that the exit path compares small integers. */
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

/** System event types for {@linkcode ExitKind.SystemEvent}. */
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

/** Register values by name: `rax`..`r15`, `rip`, `rflags` on x86; `x0`..`x31`, `pc` on RISC-V. */
export type RegisterSet = Record<string, bigint>;

/** A virtual CPU, owned by core's scheduler and driven by its `run()`. */
export interface Vcpu {
  /** The vCPU index, from 0. */
  readonly id: number;
  /** The exit record `run()` fills. */
  readonly exit: ExitRecord;
  /**
   * Runs guest code until an exit or until the time slice (kvm) or instruction budget (rv64)
   * set by `setSlice` ends. Returns `exit.kind`.
   */
  run(): ExitKindCode;
  /** Sets the slice: microseconds of host time (kvm) or instructions (rv64). 0 means unbounded. */
  setSlice(amount: number): void;
  /** Completes a hypercall: writes the result registers before the next `run()`. */
  completeHypercall(result: HypercallResult): void;
  /** Reads general registers. */
  getRegisters(): RegisterSet;
  /** Writes some general registers; others keep their values. */
  setRegisters(regs: RegisterSet): void;
  /**
   * True when the vCPU has work: not halted, or halted with an interrupt now pending. The
   * scheduler skips vCPUs for which this is false.
   */
  runnable(): boolean;
  /** Host monotonic ms at which a halted vCPU's timer fires, or Infinity. */
  wakeDeadline(): number;
  /** Releases the vCPU. */
  dispose(): void;
}

/** What a host port measures and supports. */
export interface HostPortCapabilities {
  /** Counts exits per kind (always true: core counts them). */
  readonly exitCounts: boolean;
  /** Can report retired guest instructions. */
  readonly instructionCounts: boolean;
  /** Can report TLB statistics. */
  readonly tlbStats: boolean;
  /** Paging strategy names this port supports. */
  readonly pagingStrategies: readonly string[];
}

/** What a host port plugin's `setup` returns: the VM. */
export interface HostPortInstance extends PluginInstance {
  /** Guest architecture. */
  readonly arch: GuestArch;
  /** Capabilities. */
  readonly capabilities: HostPortCapabilities;
  /**
   * Allocates a RAM region at `gpa` (host memory allocated once in C) and returns it zero-copy.
   * Core calls this; platforms ask core through `PlatformHost.addRam`.
   */
  addMemoryRegion(gpa: number, size: number, options: { readonly readonly: boolean }): ArrayBuffer;
  /** Creates vCPU `id`. Core calls this once per vCPU, after the platform's setup. */
  createVcpu(id: number): Vcpu;
  /** Wakes a halted vCPU (an interrupt was raised for it from the monitor). */
  kick(vcpu: number): void;
  /** Port-specific counters for `--stats` (instructions, TLB fills, ...). */
  stats(): Record<string, number>;
  /**
   * Mechanisms for paging strategies other than `wired` (shadow tables, page-table write traps,
   * the page queue), when the port has them (the rv64 port does).
   */
  readonly paging?: PagingMechanisms;
}

/**
 * The counters every paging strategy reports from `PagingInstance.stats()`, zero where not
 * applicable: `traps` (all causes) and one per cause, updates applied, batches, validations,
 * rejections, shadow fills and flushes. Host ports report `instructions`, `tlb-fills` and
 * `tlb-flushes` from `stats()`.
 */
export const PAGING_COUNTER_NAMES = [
  "traps",
  "traps.pt-write",
  "traps.flush",
  "traps.satp",
  "traps.hypercall",
  "updates-applied",
  "batches",
  "validations",
  "rejections",
  "shadow-fills",
  "shadow-flushes",
] as const;

/** One of {@linkcode PAGING_COUNTER_NAMES}. */
export type PagingCounterName = typeof PAGING_COUNTER_NAMES[number];

/** Exit codes of an {@linkcode ExitKind.Paging} exit (`exit.code`). */
export const PagingTrapCode = {
  /** A store to a page protected with a host port's generic write protection. */
  WriteProtected: 1,
  /** `sfence.vma` ran (`address` = its virtual address, 0 for all). */
  Sfence: 2,
  /** `satp` was written (`data` = the new value). */
  Satp: 3,
  /**
   * A store, AMO or SC to a shadowed page-table page; not performed: `address` = guest physical
   * address, `size`, `data` = the bytes it would store. Answer with `PagingMechanisms.approve`.
   */
  PtWrite: 4,
} as const;

/**
 * What a host port with a software MMU offers paging strategies: the mechanisms (in C on rv64),
 * for the strategy's policy (in TypeScript). Addresses are guest physical.
 */
export interface PagingMechanisms {
  /**
   * How TLB misses are served: `wired` walks the guest's tables; `shadow` and `queued` keep
   * shadow translations per address space (kept across `satp` switches), write-protect every
   * page-table page a walk reads, and exit with {@linkcode PagingTrapCode.PtWrite} on stores to
   * them. Switching drops every shadow entry.
   */
  setMode(mode: "wired" | "shadow" | "queued"): void;
  /**
   * Physical ranges (`[start, end)`) a leaf PTE may map; a walk that finds a leaf outside them
   * raises an access fault in the guest. An empty list allows every address.
   */
  setLeafRanges(ranges: readonly (readonly [number, number])[]): void;
  /**
   * Exits after `sfence.vma` and/or `satp` writes on vCPU `vcpu`; with `whileQueued` only while
   * page-table pages are queued.
   */
  setExits(
    vcpu: number,
    exits: { readonly sfence?: boolean; readonly satp?: boolean; readonly whileQueued?: boolean },
  ): void;
  /**
   * Answers a {@linkcode PagingTrapCode.PtWrite} exit: `true` runs the store once when the vCPU
   * resumes (dropping the shadow entries derived from the PTEs it overwrites), `false` drops it
   * (the vCPU steps over the instruction).
   */
  approve(vcpu: number, approve: boolean): void;
  /** Drops the shadow entries derived from PTEs in `[gpa, gpa+size)`; returns how many. */
  invalidate(gpa: number, size: number): number;
  /** Drops every shadow entry. */
  flushShadow(): void;
  /** True when the page of `gpa` is a shadowed (write-protected) page-table page. */
  isPageTable(gpa: number): boolean;
  /**
   * Unhooks the shadowed page-table page of `gpa` into the queue: its contents are snapshotted
   * and guest stores to it stop exiting (walks read it live and still map only the leaf
   * ranges). Returns the slot, or -1 (not a
   * shadowed page-table page, or queued already) or -2 (queue full).
   */
  queuePage(gpa: number): number;
  /** The guest physical page addresses of the queued pages, by slot. */
  queuedPages(): number[];
  /** The snapshot of queue slot `slot`: 4096 bytes, valid until `releaseQueue`. */
  snapshot(slot: number): Uint8Array;
  /** Empties the queue and protects its pages again; returns how many were queued. */
  releaseQueue(): number;
  /** Mechanism counters (shadow fills, drops, address-space evictions, shadowed pages). */
  counters(): Record<string, number>;
}

/** What a host port plugin's `setup` receives. */
export type HostPortHost = PluginHost;

// ---------------------------------------------------------------------------------------------
// Platforms
// ---------------------------------------------------------------------------------------------

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
  /** Adds a RAM (or ROM) region through the host port. */
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
}

// ---------------------------------------------------------------------------------------------
// Paging strategies
// ---------------------------------------------------------------------------------------------

/** What a paging plugin's `setup` receives. */
export interface PagingHost extends PluginHost {
  /** The host port, which must list the strategy in `capabilities.pagingStrategies`. */
  readonly hostport: HostPortInstance;
  /** Guest memory. */
  readonly memory: GuestMemoryAccess;
  /** The exit bus (paravirtual strategies register their hypercall here). */
  readonly bus: DeviceBus;
}

/** What a paging plugin's `setup` returns. */
export interface PagingInstance extends PluginInstance {
  /** The strategy's name, as reported in stats. */
  readonly strategy: string;
  /** Handles an {@linkcode ExitKind.Paging} exit. */
  onTrap?(vcpu: Vcpu, exit: ExitRecord): void;
  /** Strategy counters (traps by cause, updates, batches, validations, rejections). */
  stats(): Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Plugin definitions
// ---------------------------------------------------------------------------------------------

/** What every plugin definition has. */
export interface PluginCommon<S extends OptionsSchema> {
  /** The name users type (`--device uart16550`). Lowercase letters, digits and dashes. */
  readonly name: string;
  /** The plugin API version the plugin was written for. */
  readonly apiVersion: number;
  /** One line shown by `vmon plugins`. */
  readonly description: string;
  /** The options schema. */
  readonly options?: S;
}

/** A device plugin definition. */
export interface DevicePluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "device";
  /** Creates the device: claims ranges, lines and host resources. */
  setup(host: DeviceHost, options: OptionValues<S>): PluginInstance | Promise<PluginInstance>;
}

/** A platform plugin definition. */
export interface PlatformPluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "platform";
  /** The guest architecture the platform builds machines for. */
  readonly arch: GuestArch;
  /** Lays out memory and interrupt controllers; returns the services devices use. */
  setup(host: PlatformHost, options: OptionValues<S>): PlatformInstance | Promise<PlatformInstance>;
}

/** A host port plugin definition. */
export interface HostPortPluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "hostport";
  /** The guest architecture this port runs. */
  readonly arch: GuestArch;
  /** Creates the VM. Throws a clear error when the host cannot run it (no /dev/kvm, ...). */
  setup(host: HostPortHost, options: OptionValues<S>): HostPortInstance | Promise<HostPortInstance>;
}

/** A paging strategy plugin definition. */
export interface PagingPluginDefinition<S extends OptionsSchema = OptionsSchema>
  extends PluginCommon<S> {
  /** The kind. */
  readonly kind: "paging";
  /** Installs the strategy on the host port's MMU. */
  setup(host: PagingHost, options: OptionValues<S>): PagingInstance | Promise<PagingInstance>;
}

/** Any plugin definition. */
export type PluginDefinition =
  // deno-lint-ignore no-explicit-any
  | DevicePluginDefinition<any>
  // deno-lint-ignore no-explicit-any
  | PlatformPluginDefinition<any>
  // deno-lint-ignore no-explicit-any
  | HostPortPluginDefinition<any>
  // deno-lint-ignore no-explicit-any
  | PagingPluginDefinition<any>;

// ---------------------------------------------------------------------------------------------
// Machines (the embedding API)
// ---------------------------------------------------------------------------------------------

/** A plugin reference in a manifest: a built-in name, a file path or a URL, and its options. */
export interface PluginRef {
  /** Built-in name (`uart16550`), path (`./my_dev.ts`, `./bundle.js`) or URL. */
  readonly use: string;
  /** Option values (validated against the plugin's schema). */
  readonly options?: Readonly<Record<string, unknown>>;
}

/** A machine description. The CLI builds the same object from its flags. */
export interface MachineManifest {
  /** Number of vCPUs (default 1). */
  readonly cpus?: number;
  /** RAM size: bytes or a size string (`64M`). */
  readonly memory?: number | string;
  /** The host port. */
  readonly hostport: PluginRef;
  /** The platform. */
  readonly platform: PluginRef;
  /** The paging strategy (default `wired`). */
  readonly paging?: PluginRef;
  /** Devices, set up in order. */
  readonly devices?: readonly PluginRef[];
  /** What to boot. */
  readonly boot?: BootSpec;
}

/** Exit counters of a finished (or running) machine. */
export interface MachineStats {
  /** Exits by kind name (`io`, `mmio`, `hlt`, ...). */
  readonly exits: Record<string, number>;
  /** Exits by the plugin that handled them (`unclaimed` for none). */
  readonly plugins: Record<string, number>;
  /** Plugin metrics: plugin name to counter name to value. */
  readonly metrics: Record<string, Record<string, number>>;
  /** Host port counters. */
  readonly hostport: Record<string, number>;
  /** Wall time the machine ran, in milliseconds. */
  readonly wallMs: number;
}

/** How a machine ended. */
export interface MachineExit {
  /** Exit status: the guest's (debug-exit, poweroff, `--exec`), or non-zero on failure. */
  readonly status: number;
  /** Why: `guest exit`, `poweroff`, `triple fault: ...`. */
  readonly reason: string;
  /** True when the machine failed (guest crash, host error) rather than exited. */
  readonly failed: boolean;
  /** Final counters. */
  readonly stats: MachineStats;
}

// ---------------------------------------------------------------------------------------------
// Architecture-specific vCPU views (platforms narrow `Vcpu` to these after checking `arch`)
// ---------------------------------------------------------------------------------------------

/** An x86 segment register, shaped like KVM's `struct kvm_segment`. */
export interface X86Segment {
  /** Base address. */
  base: bigint;
  /** Limit (bytes, or pages with `g`). */
  limit: number;
  /** Selector. */
  selector: number;
  /** Descriptor type field. */
  type: number;
  /** Present bit. */
  present: boolean;
  /** Descriptor privilege level. */
  dpl: number;
  /** Default operation size (D/B). */
  db: boolean;
  /** Code/data (true) or system (false) descriptor. */
  s: boolean;
  /** 64-bit code segment. */
  l: boolean;
  /** Granularity. */
  g: boolean;
  /** Available bit. */
  avl: boolean;
  /** Unusable segment. */
  unusable: boolean;
}

/** An x86 descriptor table register (GDTR/IDTR). */
export interface X86DescriptorTable {
  /** Base address. */
  base: bigint;
  /** Limit in bytes minus one. */
  limit: number;
}

/** x86 special registers, shaped like KVM's `struct kvm_sregs`. */
export interface X86SpecialRegisters {
  /** Segment registers. */
  cs: X86Segment;
  /** Segment registers. */
  ds: X86Segment;
  /** Segment registers. */
  es: X86Segment;
  /** Segment registers. */
  fs: X86Segment;
  /** Segment registers. */
  gs: X86Segment;
  /** Segment registers. */
  ss: X86Segment;
  /** Task register. */
  tr: X86Segment;
  /** LDT register. */
  ldt: X86Segment;
  /** GDTR. */
  gdt: X86DescriptorTable;
  /** IDTR. */
  idt: X86DescriptorTable;
  /** Control registers. */
  cr0: bigint;
  /** Control registers. */
  cr2: bigint;
  /** Control registers. */
  cr3: bigint;
  /** Control registers. */
  cr4: bigint;
  /** Control registers. */
  cr8: bigint;
  /** Extended feature enable register. */
  efer: bigint;
  /** APIC base MSR. */
  apicBase: bigint;
}

/** An x86-64 vCPU (kvm host port). */
export interface X86Vcpu extends Vcpu {
  /** Reads the special registers. */
  getSpecialRegisters(): X86SpecialRegisters;
  /** Writes the special registers. */
  setSpecialRegisters(sregs: X86SpecialRegisters): void;
  /** Reads guest memory bytes at a guest virtual address through the vCPU's page tables. */
  readVirtual?(gva: bigint, len: number): Uint8Array | undefined;
}

/** An x86-64 host port: adds interrupt injection. */
export interface X86HostPort extends HostPortInstance {
  /** Creates the in-kernel interrupt controller (PIC/IOAPIC); returns false if unsupported. */
  createIrqchip(): boolean;
  /** Sets the level of interrupt line `gsi` (needs `createIrqchip`). */
  setIrqLine(gsi: number, level: boolean): void;
}

/** RISC-V privilege levels. */
export type Rv64Privilege = "user" | "supervisor" | "machine";

/** RISC-V interrupt-pending bits the monitor drives. */
export type Rv64InterruptBit = "ssip" | "stip" | "seip";

/** A RISC-V hart (rv64 host port). */
export interface Rv64Hart extends Vcpu {
  /** Sets the program counter. */
  setPc(pc: bigint): void;
  /** Sets the privilege level the hart runs at. */
  setPrivilege(level: Rv64Privilege): void;
  /** Reads a CSR by number. */
  getCsr(csr: number): bigint;
  /** Writes a CSR by number. */
  setCsr(csr: number, value: bigint): void;
  /** Sets the supervisor timer deadline in `time` ticks (SBI set_timer); clears STIP. */
  setTimer(deadline: bigint): void;
  /** Sets or clears a pending interrupt bit (SSIP for IPIs, SEIP from the PLIC). */
  setInterrupt(bit: Rv64InterruptBit, level: boolean): void;
  /** Flushes the hart's TLB (all, or one address space / one page). */
  flushTlb(asid?: number, va?: bigint): void;
  /** Starts or stops the hart (SBI HSM). A stopped hart is never runnable. */
  setStarted(started: boolean): void;
  /** Whether the hart is started. */
  readonly started: boolean;
  /** Retired instructions. */
  readonly instret: bigint;
}

/** A RISC-V host port. */
export interface Rv64HostPort extends HostPortInstance {
  /** Frequency of the `time` CSR in Hz (the devicetree's timebase-frequency). */
  readonly timebaseHz: number;
  /** The current value of the `time` CSR. */
  time(): bigint;
}
