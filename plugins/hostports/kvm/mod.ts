/**
 * The `kvm` host port: x86-64 guests on Linux `/dev/kvm`, through the C layer in `ffi/kvm/`.
 *
 * Guest RAM is allocated once in C (mmap) and handed to TypeScript zero-copy; vCPUs run with a
 * synchronous `run()` whose exit is read through typed arrays made once over the C exit record
 * and the `kvm_run` area (no allocation per exit). Time slices end with a one-shot timer that sets
 * KVM's `immediate_exit` ({@linkcode ExitKind.Interrupted}). OUTs to the optional doorbell port
 * become {@linkcode ExitKind.Hypercall} exits (KVM_EXIT_HYPERCALL does not arrive on every host).
 *
 * @module
 */

import {
  definePlugin,
  ExitKind,
  type ExitKindCode,
  type ExitRecord,
  hex,
  type HostPortCapabilities,
  type HostPortHost,
  type HostPortPluginDefinition,
  type HypercallResult,
  type OptionsSchema,
  PAGING_MECHANISMS_VERSION,
  PLUGIN_API_VERSION,
  type RegisterSet,
  type VcpuWakeSources,
  VmonError,
  type X86DescriptorTable,
  type X86HostPort,
  type X86Segment,
  type X86SpecialRegisters,
  type X86Vcpu,
} from "../../../mod.ts";
import {
  EXIT_FLAGS,
  EXIT_RECORD_SIZE,
  EXIT_U32,
  EXIT_U64,
  INTERNAL_ERROR_NAMES,
  KVM_CAP,
  KVM_EXIT_NAMES,
  type KvmLibrary,
  loadKvm,
  REGISTER_NAMES,
  SEGMENT_NAMES,
  SREGS_WORDS,
} from "../../../ffi/kvm/mod.ts";

const EXIT_KIND_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(ExitKind).map((
    [name, code],
  ) => [code, name.replace(/[a-z][A-Z]/g, (m) => `${m[0]}_${m[1]}`).toLowerCase()]),
);

const REGISTER_INDEX: ReadonlyMap<string, number> = new Map(
  REGISTER_NAMES.map((name, i) => [name, i]),
);

const MAX_GSI = 23;

/** Errno values the messages distinguish. */
const ERRNO = { EPERM: 1, ENOENT: 2, ENXIO: 6, EACCES: 13, EEXIST: 17, ENODEV: 19, EPROTO: 71 };

function lastError(lib: KvmLibrary): { errno: number; message: string } {
  const buf = new Uint8Array(256);
  const errno = lib.symbols.vmon_kvm_last_error(buf, buf.length);
  const end = buf.indexOf(0);
  return { errno, message: new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end)) };
}

function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

function u64(value: bigint | number): bigint {
  return BigInt.asUintN(64, typeof value === "bigint" ? value : BigInt(Math.trunc(value)));
}

function byteList(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** The exit record of one vCPU: getters over the C record and the kvm_run area. */
export class KvmExitRecord implements ExitRecord {
  readonly #u32: Uint32Array;
  readonly #u64: BigUint64Array;
  readonly #run: ArrayBuffer;
  readonly #mmioData: DataView;
  #ioData: DataView;
  #ioOffset: number;
  /** Hypercall arguments (a view into the C record). */
  readonly args: BigUint64Array;
  /** Filled by the vCPU for fatal exits; empty otherwise. */
  detail = "";
  /** 0 on x86. */
  readonly fid = 0;

  /** Made by {@linkcode KvmVcpu} over its C exit record and `kvm_run` mapping. */
  constructor(record: ArrayBuffer, run: ArrayBuffer, mmioOffset: number) {
    this.#u32 = new Uint32Array(record, 0, EXIT_RECORD_SIZE / 4);
    this.#u64 = new BigUint64Array(record, 0, EXIT_RECORD_SIZE / 8);
    this.args = new BigUint64Array(record, EXIT_U64.args * 8, 6);
    this.#run = run;
    this.#mmioData = new DataView(run, mmioOffset, 8);
    this.#ioOffset = 0;
    this.#ioData = new DataView(run, 0, 0);
  }

  get kind(): ExitKindCode {
    return this.#u32[EXIT_U32.kind] as ExitKindCode;
  }
  get address(): number {
    return this.#u32[EXIT_U32.addressLo]! + this.#u32[EXIT_U32.addressHi]! * 0x1_0000_0000;
  }
  get size(): number {
    return this.#u32[EXIT_U32.size]!;
  }
  get isWrite(): boolean {
    return this.#u32[EXIT_U32.isWrite] !== 0;
  }
  get count(): number {
    return this.#u32[EXIT_U32.count]!;
  }
  get data(): DataView {
    if (this.#u32[EXIT_U32.kind] === ExitKind.Mmio) return this.#mmioData;
    const offset = this.#u32[EXIT_U32.dataOffset]!;
    if (offset !== this.#ioOffset) {
      // KVM keeps the port-I/O data at one fixed offset: this runs once per vCPU.
      this.#ioOffset = offset;
      this.#ioData = new DataView(this.#run, offset, this.#run.byteLength - offset);
    }
    return this.#ioData;
  }
  get nr(): number {
    return this.#u32[EXIT_U32.nr]!;
  }
  get code(): number {
    return this.#u32[EXIT_U32.code]!;
  }
  get pc(): bigint {
    return (this.#u32[EXIT_U32.flags]! & EXIT_FLAGS.pc) !== 0 ? this.#u64[EXIT_U64.pc]! : 0n;
  }
  /** The raw KVM exit reason. */
  get rawReason(): number {
    return this.#u32[EXIT_U32.rawReason]!;
  }
  /** Valid words of the internal-error / fail-entry / debug data. */
  dataWords(): bigint[] {
    const n = Math.min(this.#u32[EXIT_U32.ndata]!, 16);
    return [...this.#u64.subarray(EXIT_U64.data, EXIT_U64.data + n)];
  }
  /** Exits per ExitKind code since the vCPU was created, plus KVM_RUN calls and signals. */
  counters(): { counts: number[]; runs: number; signals: number } {
    const counts = [...this.#u64.subarray(EXIT_U64.counts, EXIT_U64.counts + 16)].map(Number);
    return {
      counts,
      runs: Number(this.#u64[EXIT_U64.runs]),
      signals: Number(this.#u64[EXIT_U64.signals]),
    };
  }
}

function segmentFrom(w: BigUint64Array, at: number): X86Segment {
  return {
    base: w[at]!,
    limit: Number(w[at + 1]),
    selector: Number(w[at + 2]),
    type: Number(w[at + 3]),
    present: w[at + 4] !== 0n,
    dpl: Number(w[at + 5]),
    db: w[at + 6] !== 0n,
    s: w[at + 7] !== 0n,
    l: w[at + 8] !== 0n,
    g: w[at + 9] !== 0n,
    avl: w[at + 10] !== 0n,
    unusable: w[at + 11] !== 0n,
  };
}

function segmentTo(w: BigUint64Array, at: number, s: X86Segment): void {
  w[at] = u64(s.base);
  w[at + 1] = BigInt(s.limit >>> 0);
  w[at + 2] = BigInt(s.selector & 0xffff);
  w[at + 3] = BigInt(s.type & 0xff);
  w[at + 4] = s.present ? 1n : 0n;
  w[at + 5] = BigInt(s.dpl & 3);
  w[at + 6] = s.db ? 1n : 0n;
  w[at + 7] = s.s ? 1n : 0n;
  w[at + 8] = s.l ? 1n : 0n;
  w[at + 9] = s.g ? 1n : 0n;
  w[at + 10] = s.avl ? 1n : 0n;
  w[at + 11] = s.unusable ? 1n : 0n;
}

/** A vCPU of the kvm host port. */
export class KvmVcpu implements X86Vcpu {
  /** The vCPU index. */
  readonly id: number;
  /** The exit record `run()` fills. */
  readonly exit: KvmExitRecord;
  readonly #port: KvmHostPort;
  readonly #lib: KvmLibrary;
  readonly #runFn: (v: Deno.PointerValue) => number;
  #ptr: Deno.PointerValue;
  #halted = false;
  readonly #regs = new BigUint64Array(REGISTER_NAMES.length);
  readonly #sregs = new BigUint64Array(SREGS_WORDS);

  /** Use {@linkcode KvmHostPort.createVcpu}. */
  constructor(port: KvmHostPort, lib: KvmLibrary, init: { id: number; ptr: Deno.PointerValue }) {
    this.#port = port;
    this.#lib = lib;
    this.id = init.id;
    this.#ptr = init.ptr;
    const s = lib.symbols;
    const record = Deno.UnsafePointerView.getArrayBuffer(
      s.vmon_kvm_vcpu_exit_record(init.ptr)!,
      EXIT_RECORD_SIZE,
    );
    const runSize = s.vmon_kvm_vcpu_run_size(init.ptr);
    const run = Deno.UnsafePointerView.getArrayBuffer(s.vmon_kvm_vcpu_run_area(init.ptr)!, runSize);
    // offsetof(struct kvm_run, mmio.data): the exit union starts at 32; mmio is phys_addr, data.
    this.exit = new KvmExitRecord(record, run, 32 + 8);
    this.#runFn = s.vmon_kvm_vcpu_run;
  }

  #live(what: string): Deno.PointerValue {
    if (this.#ptr === null) {
      throw new VmonError(`Cannot ${what} vCPU ${this.id}: it was disposed`);
    }
    return this.#ptr;
  }

  #fail(what: string): never {
    const { message } = lastError(this.#lib);
    throw new VmonError(`Cannot ${what} on vCPU ${this.id}: ${message}`);
  }

  /** Runs the guest until an exit or the end of the slice; returns the exit kind. */
  run(): ExitKindCode {
    const kind = this.#runFn(this.#ptr);
    if (kind <= ExitKind.Mmio && kind > 0) {
      if (this.exit.detail !== "") this.exit.detail = "";
      return kind as ExitKindCode;
    }
    return this.#slowExit(kind);
  }

  #slowExit(kind: number): ExitKindCode {
    if (kind < 0) {
      this.#live("run");
      this.#fail("run the guest");
    }
    this.exit.detail = "";
    switch (kind) {
      case ExitKind.Halt:
        if (!this.#port.hasIrqchip) this.#halted = true;
        break;
      case ExitKind.Shutdown:
      case ExitKind.FailEntry:
      case ExitKind.InternalError:
      case ExitKind.Unknown:
      case ExitKind.Debug:
        this.exit.detail = this.describeExit();
        break;
    }
    return kind as ExitKindCode;
  }

  /**
   * Describes the last (fatal) exit: what KVM reported, the guest RIP and the instruction bytes
   * there, for example `KVM internal error 1 (emulation failure); guest RIP 0x1000 bytes: f3 0f`.
   */
  describeExit(): string {
    const e = this.exit;
    let what: string;
    switch (e.kind) {
      case ExitKind.InternalError: {
        const words = e.dataWords().map((w) => hex(w)).join(" ");
        what = `KVM internal error ${e.code} (${INTERNAL_ERROR_NAMES[e.code] ?? "unknown"})${
          words ? `, data ${words}` : ""
        }`;
        break;
      }
      case ExitKind.FailEntry:
        what = `KVM could not enter the guest (hardware entry failure reason ${
          hex(e.dataWords()[0] ?? 0n)
        })`;
        break;
      case ExitKind.Shutdown:
        what = "triple fault (KVM_EXIT_SHUTDOWN)";
        break;
      case ExitKind.Debug:
        what = `debug exit (exception ${e.code})`;
        break;
      default:
        what = `unknown KVM exit ${e.rawReason} (${KVM_EXIT_NAMES[e.rawReason] ?? "?"}), code ${
          hex(e.code)
        }`;
    }
    const code = this.readCode(16);
    if (code === undefined) return what;
    const bytes = code.bytes.length > 0 ? byteList(code.bytes) : "(not in guest RAM)";
    return `${what}; guest RIP ${hex(code.rip)} bytes: ${bytes}`;
  }

  /** Reads up to `len` instruction bytes at the guest's CS:RIP, or undefined if disposed. */
  readCode(len: number): { rip: bigint; bytes: Uint8Array } | undefined {
    if (this.#ptr === null) return undefined;
    const buf = new Uint8Array(len);
    const rip = new BigUint64Array(1);
    const n = this.#lib.symbols.vmon_kvm_vcpu_read_code(this.#ptr, buf, len, rip);
    if (n < 0) return undefined;
    return { rip: rip[0]!, bytes: buf.subarray(0, n) };
  }

  /** Sets the time slice in microseconds of host time; 0 means unbounded. */
  setSlice(amount: number): void {
    const us = Math.max(0, Math.min(Math.trunc(amount), 0xffff_ffff));
    this.#lib.symbols.vmon_kvm_vcpu_set_slice(this.#live("set the slice of"), us);
  }

  /**
   * Completes a hypercall. Doorbell hypercalls return `rax = error` and `rdx = value`; real
   * KVM_EXIT_HYPERCALL returns `error` if non-zero, else `value`, in rax.
   */
  completeHypercall(result: HypercallResult): void {
    const r = this.#lib.symbols.vmon_kvm_vcpu_complete_hypercall(
      this.#live("complete a hypercall on"),
      result.error | 0,
      u64(result.value),
    );
    if (r < 0) this.#fail("complete the hypercall");
  }

  /** Completes a pending port-I/O or MMIO exit now, without running guest code. */
  completeIo(): void {
    if (this.#lib.symbols.vmon_kvm_vcpu_complete_io(this.#live("complete I/O on")) < 0) {
      this.#fail("complete the pending I/O");
    }
  }

  /**
   * Reads the general registers. While a port-I/O or MMIO exit is pending, `rip` still points
   * at the instruction (it completes on the next `run()` or register write).
   */
  getRegisters(): RegisterSet {
    if (this.#lib.symbols.vmon_kvm_vcpu_get_regs(this.#live("read registers of"), this.#regs) < 0) {
      this.#fail("read the registers");
    }
    const out: RegisterSet = {};
    for (let i = 0; i < REGISTER_NAMES.length; i++) out[REGISTER_NAMES[i]!] = this.#regs[i]!;
    return out;
  }

  /** Writes the named registers (`rax`..`r15`, `rip`, `rflags`); the others keep their values. */
  setRegisters(regs: RegisterSet): void {
    const ptr = this.#live("write registers of");
    for (const name of Object.keys(regs)) {
      if (!REGISTER_INDEX.has(name)) {
        throw new VmonError(
          `Cannot set register "${name}" on vCPU ${this.id}: not an x86-64 register (rax..r15, rip, rflags)`,
        );
      }
    }
    const s = this.#lib.symbols;
    if (s.vmon_kvm_vcpu_complete_io(ptr) < 0) this.#fail("complete the pending I/O");
    if (s.vmon_kvm_vcpu_get_regs(ptr, this.#regs) < 0) this.#fail("read the registers");
    for (const [name, value] of Object.entries(regs)) {
      this.#regs[REGISTER_INDEX.get(name)!] = u64(value);
    }
    if (s.vmon_kvm_vcpu_set_regs(ptr, this.#regs) < 0) this.#fail("write the registers");
  }

  /** Reads the special registers. */
  getSpecialRegisters(): X86SpecialRegisters {
    const w = this.#sregs;
    if (this.#lib.symbols.vmon_kvm_vcpu_get_sregs(this.#live("read registers of"), w) < 0) {
      this.#fail("read the special registers");
    }
    const seg = (i: number) => segmentFrom(w, i * 12);
    const table = (at: number): X86DescriptorTable => ({ base: w[at]!, limit: Number(w[at + 1]) });
    return {
      cs: seg(0),
      ds: seg(1),
      es: seg(2),
      fs: seg(3),
      gs: seg(4),
      ss: seg(5),
      tr: seg(6),
      ldt: seg(7),
      gdt: table(96),
      idt: table(98),
      cr0: w[100]!,
      cr2: w[101]!,
      cr3: w[102]!,
      cr4: w[103]!,
      cr8: w[104]!,
      efer: w[105]!,
      apicBase: w[106]!,
    };
  }

  /** Writes the special registers (completing a pending I/O exit first). */
  setSpecialRegisters(sregs: X86SpecialRegisters): void {
    const w = this.#sregs;
    SEGMENT_NAMES.forEach((name, i) => segmentTo(w, i * 12, sregs[name]));
    w[96] = u64(sregs.gdt.base);
    w[97] = BigInt(sregs.gdt.limit & 0xffff);
    w[98] = u64(sregs.idt.base);
    w[99] = BigInt(sregs.idt.limit & 0xffff);
    w[100] = u64(sregs.cr0);
    w[101] = u64(sregs.cr2);
    w[102] = u64(sregs.cr3);
    w[103] = u64(sregs.cr4);
    w[104] = u64(sregs.cr8);
    w[105] = u64(sregs.efer);
    w[106] = u64(sregs.apicBase);
    if (this.#lib.symbols.vmon_kvm_vcpu_set_sregs(this.#live("write registers of"), w) < 0) {
      this.#fail("write the special registers");
    }
  }

  /**
   * Reads `len` bytes at guest virtual address `gva` through the vCPU's page tables (or
   * linear = physical with paging off). Returns the bytes up to the first unmapped one, or
   * undefined if none could be read.
   */
  readVirtual(gva: bigint, len: number): Uint8Array | undefined {
    const n0 = Math.max(0, Math.min(Math.trunc(len), 1 << 24));
    const buf = new Uint8Array(n0);
    const n = this.#lib.symbols.vmon_kvm_vcpu_read_virtual(
      this.#live("read memory through"),
      u64(gva),
      buf,
      n0,
    );
    if (n < 0) this.#fail("read guest virtual memory");
    return n > 0 ? buf.subarray(0, n) : undefined;
  }

  /**
   * The C pure-KVM_RUN loop of the exits benchmark: runs until `n` port-I/O exits, answering INs
   * with `inValue` and counting OUTs, without returning to JavaScript.
   */
  benchLoop(n: number, inValue = 0): { ns: number; ios: number; outs: number; stop: number } {
    const out = new Uint32Array(3);
    const ns = this.#lib.symbols.vmon_kvm_bench_loop(
      this.#live("benchmark"),
      n >>> 0,
      inValue >>> 0,
      out,
    );
    return { ns, ios: out[0]!, outs: out[1]!, stop: out[2]! };
  }

  /** False after a HLT exit (without the in-kernel irqchip) until the host port's `kick`. */
  runnable(): boolean {
    return !this.#halted && this.#ptr !== null;
  }

  /** KVM vCPUs have no timers of their own: always Infinity. */
  wakeDeadline(): number {
    return Infinity;
  }

  /**
   * What could wake this vCPU. Without the in-kernel irqchip no interrupt reaches the guest and
   * no timer of its own exists, so a vCPU halted by HLT waits until the monitor kicks it; with
   * the irqchip, HLT waits inside KVM and the port cannot tell (undefined).
   */
  wakeSources(): VcpuWakeSources | undefined {
    if (this.#port.hasIrqchip || this.#ptr === null) return undefined;
    if (!this.#halted) return { state: "running", pc: 0n, timer: false, external: false };
    const pc = this.exit.pc !== 0n ? this.exit.pc : this.getRegisters().rip ?? 0n;
    return { state: "halted", pc, timer: false, external: false };
  }

  /** @internal Called by the host port's `kick`. */
  wake(): void {
    this.#halted = false;
  }

  /** Releases the vCPU (its fd, kvm_run mapping and timer). Idempotent. */
  dispose(): void {
    if (this.#ptr === null) return;
    this.#lib.symbols.vmon_kvm_vcpu_destroy(this.#ptr);
    this.#ptr = null;
    this.#port.forget(this);
  }
}

/** Options of {@linkcode KvmHostPort}. */
export interface KvmHostPortOptions {
  /** The KVM device path (default `/dev/kvm`). */
  device?: string;
  /** Initial time slice of new vCPUs in microseconds (default 5000; 0 = unbounded). */
  sliceUs?: number;
  /** Port whose OUTs become hypercall exits (0 = none). */
  doorbellPort?: number;
}

/** A KVM virtual machine: the x86-64 host port instance. */
export class KvmHostPort implements X86HostPort {
  /** Guest architecture. */
  readonly arch = "x86_64" as const;
  /** What the port measures and supports. */
  readonly capabilities: HostPortCapabilities = {
    exitCounts: true,
    instructionCounts: false,
    tlbStats: false,
    // the hardware walks the guest's tables: no paging mechanism (only `wired` runs here)
    paging: { version: PAGING_MECHANISMS_VERSION, mechanisms: [] },
  };
  readonly #lib: KvmLibrary;
  #vm: Deno.PointerValue;
  readonly #device: string;
  readonly #sliceUs: number;
  readonly #doorbell: number;
  readonly #vcpus = new Map<number, KvmVcpu>();
  readonly #retired = { counts: new Array<number>(16).fill(0), runs: 0, signals: 0 };
  #irqchip = false;
  #regionBytes = 0;
  #regions = 0;

  /**
   * Opens the KVM device and creates the VM.
   *
   * @throws {VmonError} `Cannot open /dev/kvm: no such device (KVM is not available on this
   * host)`, a permission message, or an API version mismatch.
   */
  constructor(options: KvmHostPortOptions = {}) {
    this.#lib = loadKvm();
    this.#device = options.device ?? "/dev/kvm";
    this.#sliceUs = options.sliceUs ?? 5000;
    this.#doorbell = options.doorbellPort ?? 0;
    const s = this.#lib.symbols;
    const fd = s.vmon_kvm_open(cString(this.#device));
    if (fd < 0) {
      const { message } = lastError(this.#lib);
      const dev = this.#device;
      switch (-fd) {
        case ERRNO.ENOENT:
        case ERRNO.ENODEV:
        case ERRNO.ENXIO:
          throw new VmonError(
            `Cannot open ${dev}: no such device (KVM is not available on this host)`,
          );
        case ERRNO.EACCES:
        case ERRNO.EPERM:
          throw new VmonError(
            `Cannot open ${dev}: permission denied (add your user to the "kvm" group or run as root)`,
          );
        case ERRNO.EPROTO:
          throw new VmonError(`Cannot use ${dev}: ${message}`);
        default:
          throw new VmonError(`Cannot open ${dev}: ${message}`);
      }
    }
    const vm = s.vmon_kvm_vm_create(fd);
    if (vm === null) {
      throw new VmonError(`Cannot create a KVM virtual machine: ${lastError(this.#lib).message}`);
    }
    this.#vm = vm;
  }

  #live(what: string): Deno.PointerValue {
    if (this.#vm === null) throw new VmonError(`Cannot ${what}: the KVM machine was disposed`);
    return this.#vm;
  }

  /** True once the in-kernel interrupt controller exists. */
  get hasIrqchip(): boolean {
    return this.#irqchip;
  }

  /** Allocates guest RAM in C and maps it at `gpa`; returns it zero-copy. */
  addMemoryRegion(gpa: number, size: number, options: { readonly readonly: boolean }): ArrayBuffer {
    const vm = this.#live("add guest RAM");
    const where = `${hex(gpa)}-${hex(gpa + size - 1)}`;
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(size) || gpa < 0 || size <= 0) {
      throw new VmonError(`Cannot add guest RAM at ${where}: address and size must be positive`);
    }
    const ptr = this.#lib.symbols.vmon_kvm_vm_add_region(
      vm,
      BigInt(gpa),
      BigInt(size),
      options.readonly ? 1 : 0,
    );
    if (ptr === null) {
      throw new VmonError(`Cannot add guest RAM at ${where}: ${lastError(this.#lib).message}`);
    }
    this.#regions++;
    this.#regionBytes += size;
    return Deno.UnsafePointerView.getArrayBuffer(ptr, size);
  }

  /** Creates vCPU `id` with the host's CPUID, the default slice and the doorbell. */
  createVcpu(id: number): KvmVcpu {
    const vm = this.#live("create a vCPU");
    if (!Number.isInteger(id) || id < 0 || id > 255) {
      throw new VmonError(`Cannot create vCPU ${id}: ids are 0-255`);
    }
    if (this.#vcpus.has(id)) throw new VmonError(`Cannot create vCPU ${id}: it exists already`);
    const s = this.#lib.symbols;
    const ptr = s.vmon_kvm_vcpu_create(vm, id);
    if (ptr === null) {
      throw new VmonError(`Cannot create vCPU ${id}: ${lastError(this.#lib).message}`);
    }
    const vcpu = new KvmVcpu(this, this.#lib, { id, ptr });
    s.vmon_kvm_vcpu_set_doorbell(ptr, this.#doorbell);
    vcpu.setSlice(this.#sliceUs);
    this.#vcpus.set(id, vcpu);
    return vcpu;
  }

  /** @internal Called by a vCPU's dispose: keeps its counters for `stats()`. */
  forget(vcpu: KvmVcpu): void {
    if (this.#vcpus.get(vcpu.id) !== vcpu) return;
    this.#vcpus.delete(vcpu.id);
  }

  /**
   * Creates the in-kernel PIC/IOAPIC/LAPIC. Must come before `createVcpu`. Returns false if this
   * KVM has none. With it, HLT waits in the kernel (until an interrupt or the slice's end).
   */
  createIrqchip(): boolean {
    const vm = this.#live("create the irqchip");
    if (this.#irqchip) return true;
    if (this.#vcpus.size > 0) {
      throw new VmonError("Cannot create the in-kernel irqchip: vCPUs exist already");
    }
    const r = this.#lib.symbols.vmon_kvm_vm_create_irqchip(vm);
    if (r < 0) {
      if (-r === ERRNO.EEXIST) {
        throw new VmonError(
          `Cannot create the in-kernel irqchip: ${lastError(this.#lib).message}`,
        );
      }
      return false;
    }
    this.#irqchip = true;
    return true;
  }

  /** Sets interrupt line `gsi` (0-23) of the in-kernel irqchip. */
  setIrqLine(gsi: number, level: boolean): void {
    const vm = this.#live("set an interrupt line");
    if (!this.#irqchip) {
      throw new VmonError(`Cannot set interrupt line ${gsi}: no in-kernel irqchip (createIrqchip)`);
    }
    if (!Number.isInteger(gsi) || gsi < 0 || gsi > MAX_GSI) {
      throw new VmonError(`Cannot set interrupt line ${gsi}: lines are 0-${MAX_GSI}`);
    }
    if (this.#lib.symbols.vmon_kvm_vm_irq_line(vm, gsi, level ? 1 : 0) < 0) {
      throw new VmonError(
        `Cannot set interrupt line ${gsi}: ${lastError(this.#lib).message}`,
      );
    }
  }

  /** Marks a halted vCPU runnable again. */
  kick(vcpu: number): void {
    this.#vcpus.get(vcpu)?.wake();
  }

  /** Exit counts per kind, KVM_RUN calls, signals, RAM and vCPUs. */
  stats(): Record<string, number> {
    const counts = [...this.#retired.counts];
    let runs = this.#retired.runs;
    let signals = this.#retired.signals;
    for (const v of this.#vcpus.values()) {
      const c = v.exit.counters();
      c.counts.forEach((n, i) => counts[i] = (counts[i] ?? 0) + n);
      runs += c.runs;
      signals += c.signals;
    }
    const out: Record<string, number> = {
      kvm_runs: runs,
      signals,
      vcpus: this.#vcpus.size,
      memory_regions: this.#regions,
      memory_bytes: this.#regionBytes,
    };
    counts.forEach((n, code) => {
      const name = EXIT_KIND_NAMES[code];
      if (name !== undefined) out[`exits_${name}`] = n;
    });
    return out;
  }

  /** True when this KVM supports read-only memory slots. */
  get readonlyMemory(): boolean {
    return this.#check(KVM_CAP.readonlyMem);
  }

  #check(cap: number): boolean {
    const vm = this.#live("check a capability");
    return this.#lib.symbols.vmon_kvm_check_extension(
      this.#lib.symbols.vmon_kvm_vm_fd(vm),
      cap,
    ) > 0;
  }

  /** Destroys every vCPU and the VM (its RAM is unmapped: drop the buffers first). Idempotent. */
  dispose(): void {
    if (this.#vm === null) return;
    for (const v of [...this.#vcpus.values()]) {
      const c = v.exit.counters();
      c.counts.forEach((n, i) => this.#retired.counts[i] = (this.#retired.counts[i] ?? 0) + n);
      this.#retired.runs += c.runs;
      this.#retired.signals += c.signals;
      v.dispose();
    }
    this.#lib.symbols.vmon_kvm_vm_destroy(this.#vm);
    this.#vm = null;
  }
}

/** The options schema of the kvm host port. */
export const KVM_OPTIONS = {
  device: {
    type: "path",
    description: "KVM device node",
    default: "/dev/kvm",
  },
  "slice-us": {
    type: "integer",
    description: "time slice of each vCPU run in microseconds (0 = unbounded)",
    default: 5000,
    min: 0,
    max: 10_000_000,
  },
  "doorbell-port": {
    type: "integer",
    description: "I/O port whose OUTs are hypercalls (rax = nr, rbx..r8 = args; 0 = none)",
    default: 0,
    min: 0,
    max: 0xffff,
  },
} as const satisfies OptionsSchema;

/** The kvm host port plugin. */
const plugin: HostPortPluginDefinition<typeof KVM_OPTIONS> = definePlugin({
  name: "kvm",
  kind: "hostport",
  arch: "x86_64",
  apiVersion: PLUGIN_API_VERSION,
  description: "x86-64 guests on Linux /dev/kvm (C layer with time-sliced KVM_RUN)",
  options: KVM_OPTIONS,
  setup(_host: HostPortHost, options) {
    return new KvmHostPort({
      device: options.device,
      sliceUs: options["slice-us"],
      doorbellPort: options["doorbell-port"],
    });
  },
});

export default plugin;
