/**
 * The `rv64` host port: a software RISC-V machine (RV64GC, M/S/U modes, Sv39/Sv48) in C, reached
 * through Deno FFI. The monitor plays firmware: `ecall` from S-mode is an SBI exit
 * (`ExitKind.Hypercall`), WFI with nothing pending is `ExitKind.Halt`, accesses outside RAM are
 * MMIO exits.
 *
 * @module
 */

import {
  definePlugin,
  ExitKind,
  type ExitKindCode,
  type ExitRecord,
  hex,
  type HostPacketEndpoint,
  type HostPortCapabilities,
  type HostPortHost,
  type HypercallResult,
  type PacketBackendSpec,
  PAGING_MECHANISM_NAMES,
  PAGING_MECHANISMS_VERSION,
  type PagingMechanisms,
  PLUGIN_API_VERSION,
  type PluginState,
  type RegisterSet,
  type Rv64Hart,
  type Rv64HostPort,
  type Rv64InterruptBit,
  type Rv64Privilege,
  type VcpuWakeSources,
  VmonError,
} from "../../../mod.ts";
import { loadRv64, openBuiltRv64, type Rv64Library } from "../../../ffi/rv64/mod.ts";
import { openBuiltNet, openPacketBackend } from "../../../ffi/net/mod.ts";
import {
  COUNTER_NAMES,
  EXIT_LAYOUT,
  JIT_STAT_NAMES,
  PAGING_COUNTER_NAMES,
  PagingMode,
  QUEUE_DIFF_WORDS,
  QUEUE_SLOTS,
  REG_LAYOUT,
} from "../../../ffi/rv64/symbols.ts";

/** The `mie` CSR, and its supervisor timer and external interrupt enables. */
const CSR_MIE = 0x304;
const MIE_STIE = 1 << 5;
const MIE_SEIE = 1 << 9;

/** Version of the state {@linkcode Rv64Port.save} returns (its blob has its own version too). */
const STATE_VERSION = 1;

/** Frequency of the `time` CSR: 10 MHz, as on QEMU's virt machine. */
export const TIMEBASE_HZ = 10_000_000;

const ABI_NAMES = [
  "zero",
  "ra",
  "sp",
  "gp",
  "tp",
  "t0",
  "t1",
  "t2",
  "s0",
  "s1",
  "a0",
  "a1",
  "a2",
  "a3",
  "a4",
  "a5",
  "a6",
  "a7",
  "s2",
  "s3",
  "s4",
  "s5",
  "s6",
  "s7",
  "s8",
  "s9",
  "s10",
  "s11",
  "t3",
  "t4",
  "t5",
  "t6",
];

/** Hart counters reported by `stats()` under the comparison's names (core/api/paging.ts). */
const COMPARISON_NAMES: Readonly<Record<string, string>> = {
  tlbFills: "tlb-fills",
  tlbFlushes: "tlb-flushes",
};

const PRIV_CODES: Record<Rv64Privilege, number> = { user: 0, supervisor: 1, machine: 3 };
const IRQ_BITS: Record<Rv64InterruptBit, number> = { ssip: 1, stip: 5, seip: 9 };

/** Maps a register name (`x5`, `t0`, `fp`, `pc`) to its index in the register block. */
function registerIndex(name: string): number | undefined {
  if (name === "pc") return REG_LAYOUT.pc;
  if (name === "fp") return 8;
  const m = /^x(\d{1,2})$/.exec(name);
  if (m) {
    const n = Number(m[1]);
    return n < 32 ? n : undefined;
  }
  const f = /^f(\d{1,2})$/.exec(name);
  if (f) {
    const n = Number(f[1]);
    return n < 32 ? REG_LAYOUT.f + n : undefined;
  }
  const abi = ABI_NAMES.indexOf(name);
  return abi >= 0 ? abi : undefined;
}

/** The exit record of one hart, read through typed arrays created once over the C record. */
class Rv64ExitRecord implements ExitRecord {
  #u32: Uint32Array;
  #u64: BigUint64Array;
  #bytes: Uint8Array;
  readonly data: DataView;
  readonly args: BigUint64Array;
  readonly count = 1;

  constructor(buffer: ArrayBuffer) {
    this.#u32 = new Uint32Array(buffer, 0, EXIT_LAYOUT.bytes / 4);
    this.#u64 = new BigUint64Array(buffer, 0, EXIT_LAYOUT.bytes / 8);
    this.#bytes = new Uint8Array(buffer, EXIT_LAYOUT.detail, EXIT_LAYOUT.detailLength);
    this.data = new DataView(buffer, EXIT_LAYOUT.data, 8);
    this.args = new BigUint64Array(buffer, EXIT_LAYOUT.args, 6);
  }

  get kind(): ExitKindCode {
    return this.#u32[0] as ExitKindCode;
  }
  get size(): number {
    return this.#u32[1]!;
  }
  get isWrite(): boolean {
    return this.#u32[2] !== 0;
  }
  get code(): number {
    return this.#u32[3]!;
  }
  get address(): number {
    return this.#u32[4]! + this.#u32[5]! * 0x1_0000_0000;
  }
  get nr(): number {
    return this.#u32[8]! + this.#u32[9]! * 0x1_0000_0000;
  }
  get fid(): number {
    return this.#u32[10]! + this.#u32[11]! * 0x1_0000_0000;
  }
  get pc(): bigint {
    return this.#u64[EXIT_LAYOUT.pc / 8]!;
  }
  get detail(): string {
    const end = this.#bytes.indexOf(0);
    return new TextDecoder().decode(this.#bytes.subarray(0, end < 0 ? undefined : end));
  }
}

/** One hart of the rv64 machine. */
class Rv64Vcpu implements Rv64Hart {
  readonly id: number;
  readonly exit: Rv64ExitRecord;
  #lib: Rv64Library["symbols"];
  #m: Deno.PointerObject;
  #regs: BigUint64Array;
  #counters: BigUint64Array;
  /** Low 32 bits of the retired-instruction counter (the same memory as #counters[0]). */
  #instretLo: Uint32Array;
  #budget: number;
  #defaultBudget: number;
  /** Instructions left in the current slice; undefined: the next run() starts a new slice. */
  #left: number | undefined;

  constructor(
    lib: Rv64Library["symbols"],
    machine: Deno.PointerObject,
    id: number,
    slice: number,
  ) {
    this.id = id;
    this.#lib = lib;
    this.#m = machine;
    this.#defaultBudget = slice;
    this.#budget = slice;
    const exitPtr = lib.rv64_exit_record(machine, id);
    const regPtr = lib.rv64_registers(machine, id);
    const cntPtr = lib.rv64_counters(machine, id);
    if (!exitPtr || !regPtr || !cntPtr) {
      throw new VmonError(`Cannot create hart ${id}: no such hart`);
    }
    this.exit = new Rv64ExitRecord(
      Deno.UnsafePointerView.getArrayBuffer(exitPtr, EXIT_LAYOUT.bytes),
    );
    this.#regs = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(regPtr, REG_LAYOUT.words * 8),
    );
    this.#counters = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(cntPtr, COUNTER_NAMES.length * 8),
    );
    this.#instretLo = new Uint32Array(this.#counters.buffer, 0, 1);
  }

  /**
   * Runs until an exit or the end of the slice. A slice counts instructions across exits, so a
   * hart that exits often (timer and fence calls, console output) still returns `Interrupted`
   * after `slice` instructions and the scheduler gets its turn (console flushes, timers); with a
   * fresh budget after every exit it could run for seconds without one.
   */
  run(): ExitKindCode {
    const budget = this.#left ?? this.#budget;
    const before = this.#instretLo[0]!;
    const kind = this.#lib.rv64_run(this.#m, this.id, budget) as ExitKindCode;
    if (kind === ExitKind.Interrupted) {
      this.#left = undefined;
    } else {
      const ran = (this.#instretLo[0]! - before) >>> 0;
      this.#left = ran >= budget ? 0 : budget - ran;
    }
    return kind;
  }

  /** Instructions per run; 0 selects the port's `slice` option (the worker must keep control). */
  setSlice(amount: number): void {
    const n = Math.floor(amount);
    this.#budget = n <= 0 ? this.#defaultBudget : Math.min(n, 0xffff_ffff);
    this.#left = undefined;
  }

  /** Writes a0 (error) and a1 (value); the pc was already advanced past the `ecall`. */
  completeHypercall(result: HypercallResult): void {
    this.#regs[10] = BigInt.asUintN(64, BigInt(result.error));
    this.#regs[11] = BigInt.asUintN(64, BigInt(result.value));
  }

  getRegisters(): RegisterSet {
    const out: RegisterSet = {};
    for (let i = 0; i < 32; i++) out[`x${i}`] = i === 0 ? 0n : this.#regs[i]!;
    out.pc = this.#regs[REG_LAYOUT.pc]!;
    return out;
  }

  setRegisters(regs: RegisterSet): void {
    for (const [name, value] of Object.entries(regs)) {
      const idx = registerIndex(name);
      if (idx === undefined) throw new VmonError(`Cannot set register "${name}": no such register`);
      if (idx === 0) continue;
      this.#regs[idx] = BigInt.asUintN(64, value);
    }
  }

  runnable(): boolean {
    return this.#lib.rv64_runnable(this.#m, this.id) !== 0;
  }

  wakeDeadline(): number {
    const ticks = this.#lib.rv64_ticks_to_deadline(this.#m, this.id);
    if (ticks < 0) return Infinity;
    // A timer whose interrupt the hart has disabled cannot wake it (running it would spin).
    if ((this.#mie() & MIE_STIE) === 0) return Infinity;
    return performance.now() + ticks / (TIMEBASE_HZ / 1000);
  }

  #mie(): number {
    return Number(this.#lib.rv64_get_csr(this.#m, this.id, CSR_MIE));
  }

  /**
   * What could wake this hart: stopped (only an SBI HSM start from another hart), halted in WFI
   * with its own timer armed and enabled (`sie.STIE`), with device interrupts enabled
   * (`sie.SEIE`; the platform's PLIC decides whether one can arrive), or running.
   */
  wakeSources(): VcpuWakeSources {
    const state = this.#lib.rv64_hart_state(this.#m, this.id);
    const pc = this.#regs[REG_LAYOUT.pc]!;
    if ((state & 1) === 0) return { state: "stopped", pc, timer: false, external: false };
    if ((state & 2) === 0 || this.runnable()) {
      return { state: "running", pc, timer: false, external: false };
    }
    const mie = this.#mie();
    return {
      state: "halted",
      // WFI moved the pc past itself before halting.
      pc: BigInt.asUintN(64, pc - 4n),
      timer: this.wakeDeadline() !== Infinity,
      external: (mie & MIE_SEIE) !== 0,
    };
  }

  dispose(): void {
    // The harts belong to the machine, which the host port frees.
  }

  /**
   * Instructions left in the current slice (-1: the next run starts a new one). Saved with a
   * snapshot: under `clock=icount` slices end at instruction counts, and a restored hart must
   * end its slices where the running one would.
   */
  get sliceLeft(): number {
    return this.#left ?? -1;
  }

  set sliceLeft(left: number) {
    this.#left = left < 0 ? undefined : Math.min(Math.floor(left), 0xffff_ffff);
  }

  setPc(pc: bigint): void {
    this.#regs[REG_LAYOUT.pc] = BigInt.asUintN(64, pc);
  }

  setPrivilege(level: Rv64Privilege): void {
    const code = PRIV_CODES[level];
    if (code === undefined || this.#lib.rv64_set_priv(this.#m, this.id, code) !== 0) {
      throw new VmonError(`Cannot set the privilege of hart ${this.id}: unknown level "${level}"`);
    }
  }

  getCsr(csr: number): bigint {
    return BigInt(this.#lib.rv64_get_csr(this.#m, this.id, csr));
  }

  setCsr(csr: number, value: bigint): void {
    if (this.#lib.rv64_set_csr(this.#m, this.id, csr, BigInt.asUintN(64, value)) !== 0) {
      throw new VmonError(`Cannot write CSR ${hex(csr)} of hart ${this.id}: not implemented`);
    }
  }

  setTimer(deadline: bigint): void {
    this.#lib.rv64_set_timer(this.#m, this.id, BigInt.asUintN(64, deadline));
  }

  setInterrupt(bit: Rv64InterruptBit, level: boolean): void {
    const n = IRQ_BITS[bit];
    if (n === undefined) throw new VmonError(`Cannot set interrupt "${bit}": unknown bit`);
    this.#lib.rv64_set_irq(this.#m, this.id, n, level ? 1 : 0);
  }

  flushTlb(_asid?: number, va?: bigint): void {
    // The TLB is not tagged by ASID, so an ASID-wide flush is a full flush.
    if (va === undefined) this.#lib.rv64_flush_tlb(this.#m, this.id, 1, 0n);
    else this.#lib.rv64_flush_tlb(this.#m, this.id, 0, BigInt.asUintN(64, va));
  }

  setStarted(started: boolean): void {
    this.#lib.rv64_set_started(this.#m, this.id, started ? 1 : 0);
  }

  get started(): boolean {
    return (this.#lib.rv64_hart_state(this.#m, this.id) & 1) !== 0;
  }

  get instret(): bigint {
    return this.#counters[0]!;
  }

  /** Per-hart counters (instructions, TLB fills and flushes, page walks, ...). */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    COUNTER_NAMES.forEach((name, i) => out[name] = Number(this.#counters[i]!));
    return out;
  }
}

/** Options of {@linkcode Rv64Port}. */
export interface Rv64PortOptions {
  /** Number of harts. */
  readonly harts: number;
  /** `host` (monotonic clock) or `icount` (retired instructions: deterministic). */
  readonly clock?: "host" | "icount";
  /** Instructions per scheduler slice (default 1,000,000). */
  readonly slice?: number;
  /** In icount mode: the assumed speed in MIPS, which fixes instructions per `time` tick. */
  readonly mipsForIcount?: number;
  /**
   * The block translator (guest code run as host code; `ffi/rv64/jit.h`): on or off (the default
   * here; the plugin's `jit` option defaults to on). On a host without a backend it stays off and
   * {@linkcode Rv64Port.jitNote} says why.
   */
  readonly jit?: boolean;
  /** Code-cache size of the translator in bytes (default 64 MiB; flushed when full). */
  readonly jitCacheBytes?: number;
  /** Hits on a jump target before its block is translated (1..254, default 32). */
  readonly jitThreshold?: number;
}

/**
 * The rv64 machine as a host port: RAM regions, harts, counters. Usable directly (tests,
 * benchmarks) or through the plugin's `setup`.
 *
 * @example
 * ```ts
 * import { Rv64Port } from "./mod.ts";
 * using port = new Rv64Port({ harts: 1 });
 * const ram = new Uint8Array(port.addMemoryRegion(0x8000_0000, 0x1000, { readonly: false }));
 * ram.set([0x13, 0x05, 0x70, 0x00, 0x73, 0x00, 0x00, 0x00]); // li a0, 7; ecall
 * const hart = port.createVcpu(0);
 * hart.setPc(0x8000_0000n);
 * hart.run();
 * if (hart.getRegisters().x10 !== 7n) throw new Error("expected a0 = 7");
 * ```
 */
export class Rv64Port implements Rv64HostPort {
  readonly arch = "riscv64" as const;
  readonly capabilities: HostPortCapabilities = {
    exitCounts: true,
    instructionCounts: true,
    tlbStats: true,
    paging: { version: PAGING_MECHANISMS_VERSION, mechanisms: PAGING_MECHANISM_NAMES },
  };
  /**
   * Every paging mechanism (core/api/paging.ts), in C: write protection, paging exits, skipping
   * an instruction, shadow tables, the page queue, counters.
   */
  readonly paging: PagingMechanisms;
  readonly timebaseHz: number = TIMEBASE_HZ;
  #lib: Rv64Library["symbols"];
  #m: Deno.PointerObject | null;
  #harts: number;
  #slice: number;
  #vcpus: Rv64Vcpu[] = [];
  #jitNote: string | undefined;

  /** @param options Number of harts, clock and slice. */
  constructor(options: Rv64PortOptions) {
    const harts = options.harts;
    if (!Number.isInteger(harts) || harts < 1 || harts > 64) {
      throw new VmonError(`Cannot create the rv64 machine: ${harts} harts (1 to 64 supported)`);
    }
    this.#lib = loadRv64().symbols;
    const icount = options.clock === "icount";
    const ipt = Math.max(1, Math.round((options.mipsForIcount ?? 100) * 1e6 / TIMEBASE_HZ));
    this.#m = this.#lib.rv64_create(harts, icount ? 1 : 0, ipt);
    if (!this.#m) throw new VmonError("Cannot create the rv64 machine: out of host memory");
    this.#harts = harts;
    this.#slice = Math.max(1, Math.min(options.slice ?? 1_000_000, 0xffff_ffff));
    if (options.jit) {
      const on = this.#lib.rv64_jit_config(
        this.#m,
        1,
        options.jitCacheBytes ?? 0,
        options.jitThreshold ?? 0,
      );
      if (on !== 1) {
        this.#jitNote = `rv64: the block translator is off: no backend for ${Deno.build.arch}` +
          " hosts (the interpreter runs the guest)";
      }
    }
    this.paging = this.#mechanisms();
  }

  #mechanisms(): PagingMechanisms {
    const lib = this.#lib;
    const m = () => this.#machine();
    let snapshots: Uint8Array | undefined;
    let counters: BigUint64Array | undefined;
    let diff: BigUint64Array | undefined; // rv64_queue_diff's buffer, made at the first use
    const checkVcpu = (vcpu: number, what: string) => {
      if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.#harts) {
        throw new VmonError(`Cannot ${what} of hart ${vcpu}: the machine has ${this.#harts} harts`);
      }
    };
    return {
      writeProtect(gpa, size, on) {
        const n = lib.rv64_write_protect(m(), BigInt(gpa), BigInt(size), on ? 1 : 0);
        if (n < 0) throw new VmonError(`Cannot write-protect ${hex(gpa)}+${hex(size)}: not RAM`);
        return n;
      },
      skipInstruction(vcpu) {
        checkVcpu(vcpu, "skip the instruction");
        if (lib.rv64_skip_instruction(m(), vcpu) < 0) {
          throw new VmonError(`Cannot skip the instruction of hart ${vcpu}: pc is not in RAM`);
        }
      },
      setMode(mode) {
        const code = PagingMode[mode];
        if (code === undefined || lib.rv64_paging_mode(m(), code) !== 0) {
          throw new VmonError(`Cannot select paging mode "${mode}": unknown mode or out of memory`);
        }
        snapshots = undefined;
        counters = undefined;
      },
      setLeafRanges(ranges) {
        if (ranges.length > 8) {
          throw new VmonError(`Cannot set ${ranges.length} leaf ranges: at most 8 are supported`);
        }
        const buf = new BigUint64Array(Math.max(2, ranges.length * 2));
        ranges.forEach(([lo, hi], i) => {
          buf[2 * i] = BigInt(lo);
          buf[2 * i + 1] = BigInt(hi);
        });
        if (lib.rv64_paging_set_ranges(m(), buf, ranges.length) !== 0) {
          throw new VmonError(`Cannot set leaf ranges: each range must have start < end`);
        }
      },
      setExits(vcpu, exits) {
        checkVcpu(vcpu, "set the paging exits");
        lib.rv64_set_paging_exits(
          m(),
          vcpu,
          (exits.sfence ? 1 : 0) | (exits.satp ? 2 : 0) | (exits.whileQueued ? 4 : 0),
        );
      },
      approve(vcpu, approve) {
        checkVcpu(vcpu, "answer the page-table write");
        if (lib.rv64_paging_approve(m(), vcpu, approve ? 1 : 0) !== 0) {
          throw new VmonError(
            `Cannot answer the page-table write of hart ${vcpu}: its last exit was not one`,
          );
        }
      },
      invalidate(gpa, size) {
        return lib.rv64_shadow_invalidate(m(), BigInt(gpa), BigInt(size));
      },
      flushShadow() {
        lib.rv64_shadow_flush(m());
      },
      isPageTable(gpa) {
        return lib.rv64_is_pt_page(m(), BigInt(gpa)) !== 0;
      },
      queuePage(gpa) {
        return lib.rv64_queue_page(m(), BigInt(gpa));
      },
      queuedPages() {
        const n = lib.rv64_queue_length(m());
        const out: number[] = [];
        for (let i = 0; i < n; i++) out.push(Number(lib.rv64_queue_gpa(m(), i)));
        return out;
      },
      snapshot(slot) {
        if (!Number.isInteger(slot) || slot < 0 || slot >= QUEUE_SLOTS) {
          throw new VmonError(`Cannot read queue slot ${slot}: slots are 0 to ${QUEUE_SLOTS - 1}`);
        }
        if (snapshots === undefined) {
          const ptr = lib.rv64_queue_snapshots(m());
          if (!ptr) throw new VmonError("Cannot read the page queue: paging mode is wired");
          snapshots = new Uint8Array(
            Deno.UnsafePointerView.getArrayBuffer(ptr, QUEUE_SLOTS * 4096),
          );
        }
        return snapshots.subarray(slot * 4096, slot * 4096 + 4096);
      },
      releaseQueue() {
        return lib.rv64_queue_release(m());
      },
      diffQueue() {
        // The pages and changed PTEs, diffed in C (shadow.c, rv64_queue_diff): this copy runs
        // only over what changed.
        diff ??= new BigUint64Array(QUEUE_DIFF_WORDS);
        const n = lib.rv64_queue_diff(m(), diff, QUEUE_DIFF_WORDS);
        if (n < 0) throw new VmonError("Cannot diff the page queue: the diff buffer is too small");
        const pages: number[] = [];
        for (let i = 0; i < Number(diff[0]!); i++) pages.push(Number(diff[1 + i]!));
        const changes = [];
        for (let i = 0, at = 1 + QUEUE_SLOTS; i < n; i++, at += 3) {
          changes.push({ address: Number(diff[at]!), old: diff[at + 1]!, value: diff[at + 2]! });
        }
        return { pages, changes };
      },
      requeue(gpas) {
        if (gpas.length > QUEUE_SLOTS) {
          throw new VmonError(
            `Cannot keep ${gpas.length} pages queued: the queue holds ${QUEUE_SLOTS}`,
          );
        }
        const list = new BigUint64Array(Math.max(1, gpas.length));
        gpas.forEach((gpa, i) => list[i] = BigInt(gpa));
        return lib.rv64_queue_keep(m(), list, gpas.length);
      },
      counters() {
        if (counters === undefined) {
          const ptr = lib.rv64_paging_counters(m());
          if (!ptr) throw new VmonError("Cannot read the paging counters: no machine");
          counters = new BigUint64Array(
            Deno.UnsafePointerView.getArrayBuffer(ptr, PAGING_COUNTER_NAMES.length * 8),
          );
        }
        const out: Record<string, number> = {};
        PAGING_COUNTER_NAMES.forEach((name, i) => out[name] = Number(counters![i]!));
        return out;
      },
    };
  }

  #machine(): Deno.PointerObject {
    if (!this.#m) throw new VmonError("Cannot use the rv64 machine: it was disposed");
    return this.#m;
  }

  /** Why the translator asked for is off (no backend for this host), or undefined. */
  get jitNote(): string | undefined {
    return this.#jitNote;
  }

  /** The block translator's statistics (all 0 when it is off). */
  jitStats(): Record<string, number> {
    const buf = new BigUint64Array(JIT_STAT_NAMES.length);
    this.#lib.rv64_jit_stats(this.#machine(), buf);
    const out: Record<string, number> = {};
    JIT_STAT_NAMES.forEach((name, i) => out[name] = Number(buf[i]!));
    return out;
  }

  /** The C machine handle (for tests and paging mechanisms of this port). */
  get handle(): Deno.PointerObject {
    return this.#machine();
  }

  addMemoryRegion(gpa: number, size: number, options: { readonly readonly: boolean }): ArrayBuffer {
    const where = `${hex(gpa)}-${hex(gpa + size - 1)}`;
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(size) || size <= 0) {
      throw new VmonError(`Cannot add RAM region ${where}: address and size must be integers`);
    }
    if (gpa % 4096 || size % 4096) {
      throw new VmonError(`Cannot add RAM region ${where}: address and size must be 4 KiB aligned`);
    }
    const ptr = this.#lib.rv64_add_ram(
      this.#machine(),
      BigInt(gpa),
      BigInt(size),
      options.readonly ? 1 : 0,
    );
    if (!ptr) {
      throw new VmonError(
        `Cannot add RAM region ${where}: it overlaps another region, there are too many, or the host is out of memory`,
      );
    }
    // Back writable RAM with huge pages where the host allows (MADV_HUGEPAGE, as QEMU does for
    // its guest RAM): a booting guest then faults its RAM in per 2 MiB instead of per 4 KiB page.
    // Measured here: time to Linux's /init 925 ms instead of 968 (median of 11, alternating), RSS
    // +3 MiB. A hint: a host without transparent huge pages ignores it.
    if (!options.readonly) this.#lib.rv64_ram_hint_bulk(this.#machine(), BigInt(gpa), BigInt(size));
    return Deno.UnsafePointerView.getArrayBuffer(ptr, size);
  }

  createVcpu(id: number): Rv64Vcpu {
    if (!Number.isInteger(id) || id < 0 || id >= this.#harts) {
      throw new VmonError(`Cannot create hart ${id}: the machine has ${this.#harts} harts`);
    }
    if (this.#vcpus[id]) throw new VmonError(`Cannot create hart ${id}: it exists already`);
    const v = new Rv64Vcpu(this.#lib, this.#machine(), id, this.#slice);
    this.#vcpus[id] = v;
    return v;
  }

  /**
   * Nothing to do on the machine's thread: harts run on it and halted harts are polled. Other
   * threads end a running slice through `rv64_kick` (see {@linkcode Rv64Port.openPacketEndpoint}).
   */
  kick(_vcpu: number): void {}

  /**
   * Opens a packet backend of `ffi/net` whose thread ends the running slice (`rv64_kick`, within
   * 262144 guest instructions) when packets arrive.
   */
  openPacketEndpoint(spec: PacketBackendSpec): HostPacketEndpoint {
    // The kick's argument is the machine: core closes endpoints before it disposes the port.
    // passt configures itself while the guest boots (its failure then fails the machine, with
    // the message a waiting start gives).
    return openPacketBackend(spec, {
      kick: { fn: this.#lib.rv64_kick_function(), arg: this.#machine() },
      wait: false,
    });
  }

  time(): bigint {
    return BigInt(this.#lib.rv64_time_now(this.#machine()));
  }

  /** Forgets decoded instructions (after the monitor rewrote guest code). */
  invalidateCode(): void {
    this.#lib.rv64_invalidate_code(this.#machine());
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    // One name per counter: TLB fills and flushes under the names every host port reports for
    // the paging comparison (core/api/paging.ts), the others as the C counters are named.
    out["tlb-fills"] = 0;
    out["tlb-flushes"] = 0;
    for (const v of this.#vcpus) {
      if (!v) continue;
      for (const [c, n] of Object.entries(v.counters())) {
        const k = COMPARISON_NAMES[c] ?? c;
        out[k] = (out[k] ?? 0) + n;
      }
    }
    if (this.#m) Object.assign(out, this.paging.counters());
    if (this.#m) {
      const jit = this.jitStats();
      if (jit.jitEnabled) {
        Object.assign(out, jit);
        // share of instructions run as translated code, in per mille
        out.jitSharePermille = out.instructions
          ? Math.round((jit.jitInstructions! / out.instructions) * 1000)
          : 0;
      }
    }
    return out;
  }

  /** Backs RAM about to be written in bulk (a snapshot restore) with huge pages (a hint). */
  hintBulkWrite(gpa: number, size: number): void {
    this.#lib.rv64_ram_hint_bulk(this.#machine(), BigInt(gpa), BigInt(size));
  }

  /**
   * The machine's state for a snapshot: every hart's registers, CSRs, counters and pending
   * exit (one blob written by `rv64_state_save` in C) and each hart's slice position. Drops the
   * TLBs, decode pages, translated code and shadow tables of this machine (a restored one
   * rebuilds them), so that it goes on exactly as a restored one does.
   */
  save(): PluginState {
    const lib = this.#lib;
    const m = this.#machine();
    const size = lib.rv64_state_size(m);
    const blob = new Uint8Array(new ArrayBuffer(size)); // 8-byte aligned (a fresh buffer)
    const n = lib.rv64_state_save(m, blob, size);
    if (n < 0) {
      throw new VmonError(
        `Cannot save the rv64 machine: ${
          n === -2 ? "out of host memory for the paging mechanism" : "bad state buffer"
        }`,
      );
    }
    const slices: number[] = [];
    for (let i = 0; i < this.#harts; i++) slices.push(this.#vcpus[i]?.sliceLeft ?? -1);
    return { version: STATE_VERSION, state: { machine: blob, slices } };
  }

  /** Loads what {@linkcode Rv64Port.save} returned into this freshly set-up machine. */
  restore(saved: PluginState): void {
    const bad = (why: string): never => {
      throw new VmonError(`Cannot restore the rv64 machine: ${why}`);
    };
    if (saved.version !== STATE_VERSION) {
      bad(`state version ${saved.version} is not supported (this build reads ${STATE_VERSION})`);
    }
    const st = saved.state as { machine?: unknown; slices?: unknown } | null;
    if (
      st === null || typeof st !== "object" || !(st.machine instanceof Uint8Array) ||
      !Array.isArray(st.slices) || st.slices.length !== this.#harts ||
      !st.slices.every((x) => Number.isInteger(x) && x >= -1 && x <= 0xffff_ffff)
    ) {
      return bad("the saved state is malformed");
    }
    const blob = new Uint8Array(new ArrayBuffer(st.machine.length));
    blob.set(st.machine);
    const rc = this.#lib.rv64_state_load(this.#machine(), blob, blob.length);
    if (rc !== 0) {
      bad(
        ({
          [-1]: "the saved state has the wrong length for this machine",
          [-2]: "the saved state is not an rv64 state of this version",
          [-3]: "it was saved with another number of harts",
          [-4]: "it was saved with another clock (clock or mips-for-icount differ)",
          [-5]: "it was saved with another paging strategy",
          [-6]: "the saved state holds a value out of range",
          [-7]: "out of host memory for the paging mechanism",
        } as Record<number, string>)[rc] ?? `error ${rc}`,
      );
    }
    st.slices.forEach((left, i) => {
      const v = this.#vcpus[i];
      if (v) v.sliceLeft = left as number;
    });
  }

  dispose(): void {
    if (!this.#m) return;
    this.#lib.rv64_destroy(this.#m);
    this.#m = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export default definePlugin({
  name: "rv64",
  kind: "hostport",
  arch: "riscv64",
  apiVersion: PLUGIN_API_VERSION,
  description: "Software RISC-V RV64GC machine in C (M/S/U modes, Sv39/Sv48, SBI exits)",
  options: {
    clock: {
      type: "string",
      description: "Source of the time CSR: host monotonic clock or retired instructions",
      enum: ["host", "icount"],
      default: "host",
    },
    slice: {
      type: "integer",
      description: "Instructions per scheduler slice",
      default: 1_000_000,
      min: 1000,
      max: 0xffff_ffff,
    },
    jit: {
      type: "string",
      description: "Block translator: run hot guest code as host code (x86-64 hosts)",
      enum: ["on", "off"],
      default: "on",
    },
    "jit-cache": {
      type: "integer",
      description: "Code-cache size of the block translator in MiB (flushed when full)",
      default: 64,
      min: 1,
      max: 2048,
    },
    "mips-for-icount": {
      type: "integer",
      description: "With clock=icount: assumed MIPS, fixing instructions per time tick",
      default: 100,
      min: 10,
      max: 100_000,
    },
  },
  // A machine worker started early opens the libraries (the machine's, and the packet backends'
  // for a network device) while the CLI loads; nothing is compiled.
  warm(): void {
    openBuiltRv64();
    openBuiltNet();
  },
  setup(host: HostPortHost, options): Rv64Port {
    if (options.clock === "icount" && host.machine.cpus > 1) {
      // With several harts the instruction clock stalls the kernel's SMP bring-up (RCU stalls,
      // tens of seconds of guest time): refuse rather than hang.
      throw new VmonError(
        `Cannot use clock "icount" with ${host.machine.cpus} harts: the deterministic clock supports one hart (use clock=host for SMP)`,
      );
    }
    const port = new Rv64Port({
      harts: host.machine.cpus,
      clock: options.clock === "icount" ? "icount" : "host",
      slice: options.slice,
      mipsForIcount: options["mips-for-icount"],
      jit: options.jit === "on",
      jitCacheBytes: options["jit-cache"] * 1024 * 1024,
    });
    if (port.jitNote !== undefined) host.log.info(port.jitNote);
    return port;
  },
});
