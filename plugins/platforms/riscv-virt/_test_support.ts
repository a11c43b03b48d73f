// Test support for the riscv-virt tests only: a hart that records what the platform does to it,
// and a PlatformHost built on core's in-memory test host. Never used by the plugin itself.

import type {
  ExitKindCode,
  ExitRecord,
  HypercallResult,
  PlatformHost,
  RegisterSet,
  Rv64Hart,
  Rv64HostPort,
  Rv64InterruptBit,
  Rv64Privilege,
  Vcpu,
} from "../../../core/api/mod.ts";
import { ExitKind, PAGING_MECHANISMS_VERSION } from "../../../core/api/mod.ts";
import { createTestDeviceHost, type TestDeviceHost } from "../../../testing/mod.ts";
import { RAM_BASE } from "./layout.ts";

/** A recorded call on a {@linkcode RecordingHart}. */
export type HartCall =
  | { op: "setPc"; pc: bigint }
  | { op: "setPrivilege"; level: Rv64Privilege }
  | { op: "setCsr"; csr: number; value: bigint }
  | { op: "setTimer"; deadline: bigint }
  | { op: "setInterrupt"; bit: Rv64InterruptBit; level: boolean }
  | { op: "flushTlb"; asid?: number; va?: bigint }
  | { op: "setStarted"; started: boolean }
  | { op: "setRegisters"; regs: RegisterSet };

/** A hart that only records calls and keeps the state they set (no instruction execution). */
export class RecordingHart implements Rv64Hart {
  readonly id: number;
  readonly calls: HartCall[] = [];
  readonly csrs = new Map<number, bigint>();
  readonly regs: RegisterSet = {};
  readonly pending = new Set<Rv64InterruptBit>();
  pc = 0n;
  privilege: Rv64Privilege = "machine";
  timer = -1n;
  #started = true;
  readonly exit: ExitRecord = {
    kind: ExitKind.Unknown,
    address: 0,
    size: 0,
    isWrite: false,
    count: 1,
    data: new DataView(new ArrayBuffer(8)),
    nr: 0,
    fid: 0,
    args: new BigUint64Array(6),
    code: 0,
    pc: 0n,
    detail: "",
  };

  constructor(id: number) {
    this.id = id;
  }

  get started(): boolean {
    return this.#started;
  }

  get instret(): bigint {
    return 0n;
  }

  /** Calls of one kind. */
  callsOf<K extends HartCall["op"]>(op: K): Extract<HartCall, { op: K }>[] {
    return this.calls.filter((c): c is Extract<HartCall, { op: K }> => c.op === op);
  }

  setPc(pc: bigint): void {
    this.calls.push({ op: "setPc", pc });
    this.pc = pc;
  }
  setPrivilege(level: Rv64Privilege): void {
    this.calls.push({ op: "setPrivilege", level });
    this.privilege = level;
  }
  getCsr(csr: number): bigint {
    return this.csrs.get(csr) ?? 0n;
  }
  setCsr(csr: number, value: bigint): void {
    this.calls.push({ op: "setCsr", csr, value });
    this.csrs.set(csr, value);
  }
  setTimer(deadline: bigint): void {
    this.calls.push({ op: "setTimer", deadline });
    this.timer = deadline;
    this.pending.delete("stip");
  }
  setInterrupt(bit: Rv64InterruptBit, level: boolean): void {
    this.calls.push({ op: "setInterrupt", bit, level });
    if (level) this.pending.add(bit);
    else this.pending.delete(bit);
  }
  flushTlb(asid?: number, va?: bigint): void {
    this.calls.push({
      op: "flushTlb",
      ...(asid !== undefined ? { asid } : {}),
      ...(va !== undefined ? { va } : {}),
    });
  }
  setStarted(started: boolean): void {
    this.calls.push({ op: "setStarted", started });
    this.#started = started;
  }
  run(): ExitKindCode {
    throw new Error("RecordingHart does not run guest code");
  }
  setSlice(_amount: number): void {}
  completeHypercall(_result: HypercallResult): void {}
  getRegisters(): RegisterSet {
    return { ...this.regs, pc: this.pc };
  }
  setRegisters(regs: RegisterSet): void {
    this.calls.push({ op: "setRegisters", regs: { ...regs } });
    Object.assign(this.regs, regs);
  }
  runnable(): boolean {
    return this.#started;
  }
  wakeDeadline(): number {
    return Infinity;
  }
  dispose(): void {}
}

/** A PlatformHost for tests, with the test controls of core's device test host. */
export interface TestPlatformHost extends PlatformHost {
  /** The underlying device test host (bus access, console output, exits, logs). */
  readonly test: TestDeviceHost;
  /** The harts (created by `createHarts`, as core does after setup). */
  readonly harts: RecordingHart[];
  /** Creates the harts, as core does between setup and boot. */
  createHarts(): void;
  /** `wake` calls, by hart. */
  readonly wakes: (number | undefined)[];
  /** `addRam` calls. */
  readonly ramAdded: { gpa: number; size: number }[];
}

/** Builds a PlatformHost for `cpus` recording harts and `memorySize` bytes at 0x80000000. */
export function createTestPlatformHost(
  options: { cpus?: number; memorySize?: number; timebaseHz?: number } = {},
): TestPlatformHost {
  const cpus = options.cpus ?? 1;
  const memorySize = options.memorySize ?? 64 << 20;
  const test = createTestDeviceHost({
    name: "riscv-virt",
    memoryBase: RAM_BASE,
    memorySize,
    hasPio: false,
    arch: "riscv64",
  });
  const harts: RecordingHart[] = [];
  const vcpus: Vcpu[] = [];
  const wakes: (number | undefined)[] = [];
  const ramAdded: { gpa: number; size: number }[] = [];
  const reserved: { space: string; base: number; size: number; label: string }[] = [];
  const hostport: Rv64HostPort = {
    arch: "riscv64",
    capabilities: {
      exitCounts: true,
      instructionCounts: false,
      tlbStats: false,
      paging: { version: PAGING_MECHANISMS_VERSION, mechanisms: [] },
    },
    timebaseHz: options.timebaseHz ?? 10_000_000,
    time: () => 0n,
    addMemoryRegion: () => new ArrayBuffer(0),
    createVcpu: (id) => new RecordingHart(id),
    kick: () => {},
    stats: () => ({}),
    dispose: () => {},
  };
  return {
    name: "riscv-virt",
    machine: { cpus, memorySize, arch: "riscv64", hostport: "rv64" },
    log: test.log,
    metrics: test.metrics,
    timers: test.timers,
    files: test.files,
    hostport,
    memory: test.memory,
    bus: test.bus,
    console: test.console,
    occupant(space, base, size) {
      // RAM and reservations, then what was registered on the test bus (all by this plugin).
      const ram = ramAdded.find((r) => base < r.gpa + r.size && r.gpa < base + size);
      if (space === "MMIO" && ram) {
        return { owner: "RAM", reserved: true, base: ram.gpa, size: ram.size };
      }
      const held = reserved.find((r) =>
        r.space === space && base < r.base + r.size && r.base < base + size
      );
      if (held) return { owner: held.label, reserved: true, base: held.base, size: held.size };
      const ranges = space === "MMIO" ? test.mmioRanges : test.pioRanges;
      const r = ranges.find((r) => base < r.base + r.size && r.base < base + size);
      return r && { owner: test.name, reserved: false, base: r.base, size: r.size };
    },
    reserve(space, range) {
      const r = { space, ...range };
      reserved.push(r);
      return {
        unregister: () => {
          const i = reserved.indexOf(r);
          if (i >= 0) reserved.splice(i, 1);
        },
      };
    },
    addRam(gpa, size) {
      ramAdded.push({ gpa, size });
    },
    vcpus,
    requestExit: (status, reason) => test.requestExit(status, reason),
    wake: (vcpu) => wakes.push(vcpu),
    test,
    harts,
    createHarts() {
      for (let i = 0; i < cpus; i++) {
        const h = new RecordingHart(i);
        harts.push(h);
        vcpus.push(h);
      }
    },
    wakes,
    ramAdded,
  };
}

/** A RISC-V Linux Image header followed by `body` bytes. */
export function makeImage(
  body: number,
  fields: { textOffset?: bigint; imageSize?: bigint; flags?: bigint } = {},
): Uint8Array {
  const img = new Uint8Array(64 + body);
  const v = new DataView(img.buffer);
  v.setUint32(0, 0x0000006f, true); // code0: j . (any instruction)
  v.setBigUint64(8, fields.textOffset ?? 0x200000n, true);
  v.setBigUint64(16, fields.imageSize ?? BigInt(img.length + 0x1000), true);
  v.setBigUint64(24, fields.flags ?? 0n, true);
  v.setUint32(32, 2, true); // version 0.2
  img.set(new TextEncoder().encode("RISCV\0\0\0RSC\x05"), 0x30);
  return img;
}

/** A minimal ELF64 executable with the given PT_LOAD segments. */
export function makeElf(
  segments: { paddr: number; data: Uint8Array; memsz?: number }[],
  fields: { machine?: number; entry?: number; type?: number; cls?: number } = {},
): Uint8Array {
  const phoff = 64;
  let dataOff = phoff + 56 * segments.length;
  const total = dataOff + segments.reduce((n, s) => n + s.data.length, 0);
  const elf = new Uint8Array(total);
  const v = new DataView(elf.buffer);
  elf.set([0x7f, 0x45, 0x4c, 0x46, fields.cls ?? 2, 1, 1], 0);
  v.setUint16(16, fields.type ?? 2, true);
  v.setUint16(18, fields.machine ?? 243, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(fields.entry ?? segments[0]?.paddr ?? 0), true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, segments.length, true);
  segments.forEach((s, i) => {
    const at = phoff + i * 56;
    v.setUint32(at, 1, true);
    v.setUint32(at + 4, 5, true);
    v.setBigUint64(at + 8, BigInt(dataOff), true);
    v.setBigUint64(at + 16, BigInt(s.paddr), true);
    v.setBigUint64(at + 24, BigInt(s.paddr), true);
    v.setBigUint64(at + 32, BigInt(s.data.length), true);
    v.setBigUint64(at + 40, BigInt(s.memsz ?? s.data.length), true);
    elf.set(s.data, dataOff);
    dataOff += s.data.length;
  });
  return elf;
}

/** Writes a newc cpio archive of directories, character devices and files (for test initrds). */
export function newcCpio(
  entries: readonly (
    | { path: string; dir: true }
    | { path: string; char: [number, number] }
    | { path: string; data: Uint8Array; mode?: number }
  )[],
): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    size += b.length;
  };
  const pad4 = () => {
    if (size % 4) push(new Uint8Array(4 - (size % 4)));
  };
  const h = (n: number) => n.toString(16).padStart(8, "0");
  const add = (
    name: string,
    mode: number,
    data: Uint8Array,
    rdev: [number, number],
    ino: number,
  ) => {
    const nameBytes = new TextEncoder().encode(name + "\0");
    const header = "070701" + h(ino) + h(mode) + h(0) + h(0) + h(1) + h(0) + h(data.length) +
      h(0) + h(0) + h(rdev[0]) + h(rdev[1]) + h(nameBytes.length) + h(0);
    push(new TextEncoder().encode(header));
    push(nameBytes);
    pad4();
    push(data);
    pad4();
  };
  entries.forEach((e, i) => {
    if ("dir" in e) add(e.path, 0o040755, new Uint8Array(0), [0, 0], i + 1);
    else if ("char" in e) add(e.path, 0o020600, new Uint8Array(0), e.char, i + 1);
    else add(e.path, 0o100000 | (e.mode ?? 0o644), e.data, [0, 0], i + 1);
  });
  add("TRAILER!!!", 0, new Uint8Array(0), [0, 0], 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
