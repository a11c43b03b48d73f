/**
 * The monitor as RISC-V firmware: handlers for the SBI calls a supervisor-mode kernel makes
 * (RISC-V Supervisor Binary Interface specification v2.0). Extensions: BASE, TIME, IPI, RFENCE,
 * HSM, SRST, DBCN and the legacy v0.1 calls 0x00-0x08. Every value that comes from the guest
 * (hart masks, hart ids, addresses, lengths) is checked; a bad one is answered with an SBI error,
 * never a monitor crash.
 *
 * @module
 */

import {
  type ConsolePort,
  type DeviceBus,
  type GuestMemoryAccess,
  hex,
  type HypercallHandler,
  type HypercallRequest,
  type HypercallResult,
  type Logger,
  type Metrics,
  type Registration,
  type Rv64Hart,
  VmonError,
} from "../../../mod.ts";

/** SBI error codes (SBI v2.0, table 1). */
export const SbiError = {
  /** Completed successfully. */
  Success: 0,
  /** Failed. */
  Failed: -1,
  /** Not supported. */
  NotSupported: -2,
  /** Invalid parameter(s). */
  InvalidParam: -3,
  /** Denied or not allowed. */
  Denied: -4,
  /** Invalid address(es). */
  InvalidAddress: -5,
  /** Already available. */
  AlreadyAvailable: -6,
  /** Already started. */
  AlreadyStarted: -7,
  /** Already stopped. */
  AlreadyStopped: -8,
} as const;

/** SBI extension ids handled here. */
export const SbiExtension = {
  /** Base extension. */
  Base: 0x10,
  /** Timer extension ("TIME"). */
  Time: 0x54494d45,
  /** IPI extension ("sPI"). */
  Ipi: 0x735049,
  /** Remote fence extension ("RFNC"). */
  Rfence: 0x52464e43,
  /** Hart state management extension ("HSM"). */
  Hsm: 0x48534d,
  /** System reset extension ("SRST"). */
  Srst: 0x53525354,
  /** Debug console extension ("DBCN"). */
  Dbcn: 0x4442434e,
} as const;

/** HSM hart states (SBI v2.0, table 25). */
export const HartState = {
  /** Running. */
  Started: 0,
  /** Not running. */
  Stopped: 1,
  /** Suspended (retentive or not). */
  Suspended: 4,
} as const;

/** Implementation id reported by `sbi_get_impl_id`: "vmon" in ASCII. */
export const SBI_IMPL_ID = 0x766d6f6e;
/** Implementation version reported by `sbi_get_impl_version`. */
export const SBI_IMPL_VERSION = 0x10000;
/** Specification version reported by `sbi_get_spec_version`: 2.0. */
export const SBI_SPEC_VERSION = 2 << 24;

/** Exit status of a machine the guest reset (cold or warm reboot) with no failure reason. */
export const RESET_STATUS = 0;
/** Exit status of a machine the guest shut down or reset with reason "system failure". */
export const FAILURE_STATUS = 1;

/** Largest number of bytes one DBCN console_write copies (the guest is told how many). */
export const DBCN_MAX_WRITE = 65536;

const CSR_SSTATUS = 0x100;
const CSR_SATP = 0x180;
const CSR_SCOUNTEREN = 0x106;
/** scounteren.TM: user mode may read the `time` CSR. */
const SCOUNTEREN_TM = 2n;
const SSTATUS_SIE = 2n;
const U64_MAX = 0xffffffffffffffffn;
const PAGE = 4096n;
const PAGE_FLUSH_LIMIT = 64n;
const INPUT_LIMIT = 4096;

/** What the SBI handlers act on. The platform fills it; tests pass fakes. */
export interface SbiEnvironment {
  /** The harts, indexed by hart id (filled before the first call). */
  harts(): readonly Rv64Hart[];
  /** Guest physical memory (DBCN buffers, legacy hart masks). */
  readonly memory: GuestMemoryAccess;
  /** The terminal (debug console). */
  readonly console: ConsolePort;
  /** Ends the machine (SRST, legacy shutdown). */
  requestExit(status: number, reason?: string, options?: { failed?: boolean }): void;
  /** Makes a halted or newly started hart runnable. */
  wake(hart: number): void;
  /** Log output. */
  readonly log: Logger;
  /** Counters (`sbi_calls_<extension>`). */
  readonly metrics?: Metrics;
}

const ok = (value: bigint | number = 0): HypercallResult => ({ error: 0, value });
const err = (error: number): HypercallResult => ({ error, value: 0 });

/**
 * The SBI implementation. {@linkcode Sbi.register} claims every extension on the bus;
 * {@linkcode Sbi.handle} dispatches one call (for tests).
 */
export class Sbi {
  readonly #env: SbiEnvironment;
  readonly #handlers = new Map<number, HypercallHandler>();
  readonly #suspended = new Set<number>();
  #input: number[] = [];
  #inputState: "none" | "owned" | "denied" = "none";
  readonly #warned = new Set<string>();

  /** @param env The machine the calls act on. */
  constructor(env: SbiEnvironment) {
    this.#env = env;
    const h = this.#handlers;
    h.set(SbiExtension.Base, (c) => this.#base(c));
    h.set(SbiExtension.Time, (c) => this.#time(c));
    h.set(SbiExtension.Ipi, (c) => this.#ipi(c));
    h.set(SbiExtension.Rfence, (c) => this.#rfence(c));
    h.set(SbiExtension.Hsm, (c) => this.#hsm(c));
    h.set(SbiExtension.Srst, (c) => this.#srst(c));
    h.set(SbiExtension.Dbcn, (c) => this.#dbcn(c));
    for (let eid = 0; eid <= 8; eid++) h.set(eid, (c) => this.#legacy(c));
    const metrics = env.metrics;
    if (metrics) {
      for (const [eid, fn] of [...h]) {
        const counter = metrics.counter(
          `sbi_${extensionName(eid)}`,
          `SBI calls to extension ${hex(eid)}`,
        );
        h.set(eid, (c) => {
          counter.add();
          return fn(c);
        });
      }
    }
  }

  /** The extension ids implemented, ascending. */
  get extensions(): number[] {
    return [...this.#handlers.keys()].sort((a, b) => a - b);
  }

  /** Claims every extension on `bus`; returns the registrations. */
  register(bus: DeviceBus): Registration[] {
    return [...this.#handlers].map(([eid, fn]) => bus.registerHypercall(eid, fn));
  }

  /** Handles one call; extensions not implemented here answer `SBI_ERR_NOT_SUPPORTED`. */
  handle(call: HypercallRequest): HypercallResult {
    const fn = this.#handlers.get(call.nr);
    return fn ? fn(call) : err(SbiError.NotSupported);
  }

  #arg(call: HypercallRequest, i: number): bigint {
    return BigInt.asUintN(64, call.args[i] ?? 0n);
  }

  #warnOnce(key: string, message: string): void {
    if (this.#warned.has(key)) return;
    this.#warned.add(key);
    this.#env.log.warn(message);
  }

  #caller(call: HypercallRequest): Rv64Hart | undefined {
    return this.#env.harts()[call.vcpu];
  }

  // -- BASE ------------------------------------------------------------------------------------

  #base(call: HypercallRequest): HypercallResult {
    switch (call.fid) {
      case 0:
        return ok(SBI_SPEC_VERSION);
      case 1:
        return ok(SBI_IMPL_ID);
      case 2:
        return ok(SBI_IMPL_VERSION);
      case 3: {
        const eid = this.#arg(call, 0);
        return ok(eid <= 0xffffffffn && this.#handlers.has(Number(eid)) ? 1 : 0);
      }
      case 4: // mvendorid: not a commercial implementation
      case 5: // marchid
      case 6: // mimpid
        return ok(0);
      default:
        return err(SbiError.NotSupported);
    }
  }

  // -- TIME ------------------------------------------------------------------------------------

  #time(call: HypercallRequest): HypercallResult {
    if (call.fid !== 0) return err(SbiError.NotSupported);
    const hart = this.#caller(call);
    if (!hart) return err(SbiError.Failed);
    hart.setTimer(this.#arg(call, 0));
    return ok();
  }

  // -- hart masks ------------------------------------------------------------------------------

  /** Decodes (hart_mask, hart_mask_base) into hart ids, or undefined if any is invalid. */
  #targets(mask: bigint, base: bigint): number[] | undefined {
    const n = this.#env.harts().length;
    if (base === U64_MAX) return [...Array(n).keys()];
    const out: number[] = [];
    for (let i = 0n; mask !== 0n && i < 64n; i++, mask >>= 1n) {
      if ((mask & 1n) === 0n) continue;
      const id = base + i;
      if (id >= BigInt(n)) return undefined;
      out.push(Number(id));
    }
    return out;
  }

  // -- IPI -------------------------------------------------------------------------------------

  #ipi(call: HypercallRequest): HypercallResult {
    if (call.fid !== 0) return err(SbiError.NotSupported);
    const targets = this.#targets(this.#arg(call, 0), this.#arg(call, 1));
    if (!targets) return err(SbiError.InvalidParam);
    this.#sendIpi(targets);
    return ok();
  }

  #sendIpi(targets: readonly number[]): void {
    const harts = this.#env.harts();
    for (const id of targets) {
      harts[id]!.setInterrupt("ssip", true);
      this.#env.wake(id);
    }
  }

  // -- RFENCE ----------------------------------------------------------------------------------

  #rfence(call: HypercallRequest): HypercallResult {
    if (call.fid > 2) return err(SbiError.NotSupported); // hfence.* need the H extension
    const targets = this.#targets(this.#arg(call, 0), this.#arg(call, 1));
    if (!targets) return err(SbiError.InvalidParam);
    const start = this.#arg(call, 2);
    const size = this.#arg(call, 3);
    let asid: number | undefined;
    if (call.fid === 2) {
      const a = this.#arg(call, 4);
      if (a > 0xffffn) return err(SbiError.InvalidParam);
      asid = Number(a);
    }
    this.#fence(targets, { fid: call.fid, start, size, asid });
    return ok();
  }

  #fence(
    targets: readonly number[],
    f: { fid: number; start: bigint; size: bigint; asid?: number },
  ): void {
    const harts = this.#env.harts();
    const whole = (f.start === 0n && f.size === 0n) || f.size === U64_MAX || f.fid === 0;
    const pages = whole ? 0n : (((f.start & (PAGE - 1n)) + f.size + PAGE - 1n) / PAGE);
    for (const id of targets) {
      const hart = harts[id]!;
      if (whole || pages > PAGE_FLUSH_LIMIT || f.start + f.size > U64_MAX) {
        if (f.asid === undefined) hart.flushTlb();
        else hart.flushTlb(f.asid);
      } else {
        const first = f.start & ~(PAGE - 1n);
        for (let p = 0n; p < pages; p++) hart.flushTlb(f.asid, first + p * PAGE);
      }
    }
  }

  // -- HSM -------------------------------------------------------------------------------------

  #hsm(call: HypercallRequest): HypercallResult {
    const harts = this.#env.harts();
    switch (call.fid) {
      case 0: { // hart_start(hartid, start_addr, opaque)
        const id = this.#arg(call, 0);
        if (id >= BigInt(harts.length)) return err(SbiError.InvalidParam);
        const hart = harts[Number(id)]!;
        const addr = this.#arg(call, 1);
        if (addr > BigInt(Number.MAX_SAFE_INTEGER) || !this.#env.memory.contains(Number(addr), 4)) {
          return err(SbiError.InvalidAddress);
        }
        if (hart.started) return err(SbiError.AlreadyAvailable);
        enterSupervisor(hart, { pc: addr, a1: this.#arg(call, 2) });
        hart.setStarted(true);
        this.#suspended.delete(hart.id);
        this.#env.wake(hart.id);
        return ok();
      }
      case 1: { // hart_stop()
        const hart = this.#caller(call);
        if (!hart) return err(SbiError.Failed);
        hart.setStarted(false);
        this.#suspended.delete(hart.id);
        return ok();
      }
      case 2: { // hart_get_status(hartid)
        const id = this.#arg(call, 0);
        if (id >= BigInt(harts.length)) return err(SbiError.InvalidParam);
        const hart = harts[Number(id)]!;
        if (!hart.started) return ok(HartState.Stopped);
        return ok(this.#suspended.has(hart.id) ? HartState.Suspended : HartState.Started);
      }
      case 3: { // hart_suspend(suspend_type, resume_addr, opaque)
        const type = this.#arg(call, 0);
        if (type === 0n) return ok(); // default retentive: resumes at once, as after a wakeup
        if (type === 0x80000000n) {
          // Non-retentive suspend would need the hart to resume at resume_addr after the
          // call returns, which the host port's hypercall completion does not offer.
          return err(SbiError.NotSupported);
        }
        return err(SbiError.InvalidParam); // reserved or unimplemented platform-specific types
      }
      default:
        return err(SbiError.NotSupported);
    }
  }

  // -- SRST ------------------------------------------------------------------------------------

  #srst(call: HypercallRequest): HypercallResult {
    if (call.fid !== 0) return err(SbiError.NotSupported);
    const type = this.#arg(call, 0);
    const reason = this.#arg(call, 1);
    if (type > 2n || reason > 1n) return err(SbiError.InvalidParam);
    const kind = type === 0n ? "poweroff" : "reset";
    if (reason === 1n) {
      this.#env.requestExit(FAILURE_STATUS, `${kind}: system failure`, { failed: true });
    } else this.#env.requestExit(type === 0n ? 0 : RESET_STATUS, kind);
    return ok();
  }

  // -- DBCN ------------------------------------------------------------------------------------

  /**
   * Checks a DBCN buffer: all `num_bytes` the guest named must lie in RAM (even if fewer are
   * then transferred). Returns its guest address or undefined.
   */
  #buffer(call: HypercallRequest): number | undefined {
    const len = this.#arg(call, 0);
    const lo = this.#arg(call, 1);
    const hi = this.#arg(call, 2);
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    if (hi !== 0n || lo > max || len > max) return undefined;
    const gpa = Number(lo);
    return this.#env.memory.contains(gpa, Number(len)) ? gpa : undefined;
  }

  #dbcn(call: HypercallRequest): HypercallResult {
    switch (call.fid) {
      case 0: { // console_write(num_bytes, base_addr_lo, base_addr_hi)
        const want = this.#arg(call, 0);
        const len = Number(want > BigInt(DBCN_MAX_WRITE) ? BigInt(DBCN_MAX_WRITE) : want);
        const gpa = this.#buffer(call);
        if (gpa === undefined) return err(SbiError.InvalidParam);
        if (len > 0) this.#env.console.write(this.#env.memory.read(gpa, len));
        return ok(len);
      }
      case 1: { // console_read(num_bytes, base_addr_lo, base_addr_hi)
        const want = this.#arg(call, 0);
        const len = Number(want > BigInt(INPUT_LIMIT) ? BigInt(INPUT_LIMIT) : want);
        const gpa = this.#buffer(call);
        if (gpa === undefined) return err(SbiError.InvalidParam);
        if (!this.#ownInput()) return err(SbiError.Denied);
        const n = Math.min(len, this.#input.length);
        if (n > 0) this.#env.memory.write(gpa, Uint8Array.from(this.#input.splice(0, n)));
        return ok(n);
      }
      case 2: // console_write_byte(byte)
        this.#env.console.write(Uint8Array.of(Number(this.#arg(call, 0) & 0xffn)));
        return ok();
      default:
        return err(SbiError.NotSupported);
    }
  }

  /** The firmware's state for a snapshot: suspended harts, console input not yet read. */
  saveState(): { suspended: number[]; input: Uint8Array; inputOwned: boolean } {
    return {
      suspended: [...this.#suspended].sort((a, b) => a - b),
      input: Uint8Array.from(this.#input),
      inputOwned: this.#inputState === "owned",
    };
  }

  /** Loads what {@linkcode Sbi.saveState} returned. Throws when it is malformed. */
  restoreState(state: Readonly<Record<string, unknown>>): void {
    const { suspended, input, inputOwned } = state;
    if (
      !Array.isArray(suspended) || !suspended.every((n) => Number.isInteger(n) && n >= 0) ||
      !(input instanceof Uint8Array) || input.length > INPUT_LIMIT ||
      typeof inputOwned !== "boolean"
    ) {
      throw new VmonError("Cannot restore the SBI firmware state: it is malformed");
    }
    this.#suspended.clear();
    for (const n of suspended) this.#suspended.add(n);
    if (inputOwned) this.#ownInput();
    this.#input = [...input];
  }

  /** Subscribes to console input on first use (so that a UART set up earlier keeps it). */
  #ownInput(): boolean {
    if (this.#inputState === "none") {
      const owned = this.#env.console.onInput((bytes) => {
        for (const b of bytes) if (this.#input.length < INPUT_LIMIT) this.#input.push(b);
      });
      this.#inputState = owned ? "owned" : "denied";
      if (!owned) {
        this.#env.log.info("SBI console input is unavailable: another device owns the console");
      }
    }
    return this.#inputState === "owned";
  }

  // -- legacy (v0.1) ---------------------------------------------------------------------------

  /** Legacy calls return their result in a0 only: it travels in `error`. */
  #legacy(call: HypercallRequest): HypercallResult {
    const a0 = (v: number): HypercallResult => ({ error: v, value: 0 });
    switch (call.nr) {
      case 0x00: { // set_timer(stime_value)
        const hart = this.#caller(call);
        if (!hart) return a0(SbiError.Failed);
        hart.setTimer(this.#arg(call, 0));
        return a0(0);
      }
      case 0x01: // console_putchar(ch)
        this.#env.console.write(Uint8Array.of(Number(this.#arg(call, 0) & 0xffn)));
        return a0(0);
      case 0x02: // console_getchar()
        if (!this.#ownInput()) return a0(-1);
        return a0(this.#input.shift() ?? -1);
      case 0x03: { // clear_ipi()
        const hart = this.#caller(call);
        if (!hart) return a0(SbiError.Failed);
        hart.setInterrupt("ssip", false);
        return a0(0);
      }
      case 0x04: // send_ipi(const unsigned long *hart_mask)
      case 0x05: // remote_fence_i(hart_mask)
      case 0x06: // remote_sfence_vma(hart_mask, start, size)
      case 0x07: { // remote_sfence_vma_asid(hart_mask, start, size, asid)
        const targets = this.#legacyMask(call);
        if (targets === undefined) return a0(SbiError.InvalidAddress);
        if (targets === null) return a0(SbiError.InvalidParam);
        if (call.nr === 0x04) {
          this.#sendIpi(targets);
        } else {
          const asid = call.nr === 0x07 ? Number(this.#arg(call, 3) & 0xffffn) : undefined;
          this.#fence(targets, {
            fid: call.nr === 0x05 ? 0 : call.nr === 0x06 ? 1 : 2,
            start: this.#arg(call, 1),
            size: this.#arg(call, 2),
            asid,
          });
        }
        return a0(0);
      }
      case 0x08: // shutdown()
        this.#env.requestExit(0, "poweroff");
        return a0(0);
      default:
        return a0(SbiError.NotSupported);
    }
  }

  /**
   * Reads a legacy hart mask: a0 is an S-mode virtual address of an unsigned long (0 means all
   * harts). Returns hart ids, undefined for an unreadable address, null for invalid harts.
   */
  #legacyMask(call: HypercallRequest): number[] | undefined | null {
    const ptr = this.#arg(call, 0);
    const n = this.#env.harts().length;
    if (ptr === 0n) return [...Array(n).keys()];
    const hart = this.#caller(call);
    if (!hart) return undefined;
    const bytes = new Uint8Array(8);
    for (let i = 0; i < 8; i++) {
      const pa = translate(this.#env.memory, hart.getCsr(CSR_SATP), ptr + BigInt(i));
      if (pa === undefined) {
        this.#warnOnce("legacy-mask", `Cannot read legacy SBI hart mask at ${hex(ptr)}: unmapped`);
        return undefined;
      }
      bytes[i] = this.#env.memory.readU8(pa);
    }
    const mask = new DataView(bytes.buffer).getBigUint64(0, true);
    return this.#targets(mask, 0n) ?? null;
  }
}

/**
 * Puts a hart where the SBI specification starts supervisor software: at `pc` in S-mode with
 * a0 = its hart id, a1 = `a1` (the DTB address at boot, the opaque value of `hart_start`),
 * satp = 0 (no translation) and sstatus.SIE = 0. Its TLB is flushed. Whether it runs is up to
 * the caller (`setStarted`).
 *
 * scounteren starts with TM set, so user programs can read `time` (the vDSO's clock_gettime
 * does). The privileged spec leaves its reset value to the implementation; Linux 6.1 sets it
 * only from its SBI PMU driver, which vmon's firmware does not offer, and otherwise user
 * `rdtime` would raise SIGILL.
 *
 * @param hart The hart.
 * @param entry The program counter and a1.
 */
export function enterSupervisor(
  hart: Rv64Hart,
  entry: { readonly pc: bigint; readonly a1: bigint },
): void {
  hart.setPrivilege("supervisor");
  hart.setCsr(CSR_SATP, 0n);
  hart.setCsr(CSR_SCOUNTEREN, SCOUNTEREN_TM);
  hart.setCsr(CSR_SSTATUS, hart.getCsr(CSR_SSTATUS) & ~SSTATUS_SIE);
  hart.flushTlb();
  hart.setRegisters({ x10: BigInt(hart.id), x11: entry.a1 });
  hart.setPc(entry.pc);
}

function extensionName(eid: number): string {
  switch (eid) {
    case SbiExtension.Base:
      return "base";
    case SbiExtension.Time:
      return "time";
    case SbiExtension.Ipi:
      return "ipi";
    case SbiExtension.Rfence:
      return "rfence";
    case SbiExtension.Hsm:
      return "hsm";
    case SbiExtension.Srst:
      return "srst";
    case SbiExtension.Dbcn:
      return "dbcn";
    default:
      return `legacy_${eid}`;
  }
}

/**
 * Translates an S-mode virtual address through the page tables `satp` names (Bare, Sv39, Sv48,
 * Sv57), reading the tables from guest memory. Returns the guest physical address, or undefined
 * when the address is not mapped readable (or a table lies outside RAM).
 *
 * @param memory Guest memory holding the page tables.
 * @param satp The hart's satp CSR.
 * @param va The virtual address.
 */
export function translate(
  memory: GuestMemoryAccess,
  satp: bigint,
  va: bigint,
): number | undefined {
  const mode = Number((satp >> 60n) & 0xfn);
  const toNumber = (pa: bigint): number | undefined =>
    pa <= BigInt(Number.MAX_SAFE_INTEGER) && memory.contains(Number(pa), 1)
      ? Number(pa)
      : undefined;
  if (mode === 0) return toNumber(va);
  const levels = mode === 8 ? 3 : mode === 9 ? 4 : mode === 10 ? 5 : 0;
  if (levels === 0) return undefined;
  const vaBits = BigInt(12 + 9 * levels);
  // The upper bits must be a sign extension of the top translated bit.
  const top = va >> (vaBits - 1n);
  if (top !== 0n && top !== (1n << (65n - vaBits)) - 1n) return undefined;
  let table = (satp & ((1n << 44n) - 1n)) << 12n;
  for (let level = levels - 1; level >= 0; level--) {
    const vpn = (va >> BigInt(12 + 9 * level)) & 0x1ffn;
    const ptePa = toNumber(table + vpn * 8n);
    if (ptePa === undefined || !memory.contains(ptePa, 8)) return undefined;
    const pte = memory.readU64(ptePa);
    const v = pte & 1n, r = (pte >> 1n) & 1n, w = (pte >> 2n) & 1n, x = (pte >> 3n) & 1n;
    if (v === 0n || (r === 0n && w === 1n)) return undefined;
    const ppn = (pte >> 10n) & ((1n << 44n) - 1n);
    if (r === 1n || x === 1n) {
      if (r === 0n) return undefined;
      const span = BigInt(12 + 9 * level);
      if (level > 0 && (ppn & ((1n << BigInt(9 * level)) - 1n)) !== 0n) return undefined;
      return toNumber(((ppn << 12n) & ~((1n << span) - 1n)) | (va & ((1n << span) - 1n)));
    }
    table = ppn << 12n;
  }
  return undefined;
}
