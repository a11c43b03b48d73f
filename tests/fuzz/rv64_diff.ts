/**
 * Differential fuzzer of the rv64 block translator (`ffi/rv64/jit.h`): seeded random RV64GC
 * instruction sequences run on two machines, one interpreting and one translating (threshold 1,
 * a small code cache so that flushes happen), and everything architectural is compared: integer
 * and FP registers, pc, privilege, CSRs, every per-hart counter, the exit records one by one and
 * the guest memory the sequence could touch.
 *
 * A sequence is a loop (so its code runs again once decoded, and gets translated) of random
 * instructions of every class: integer ALU (RV64IM, W forms), LUI/AUIPC, loads and stores of every
 * width around a page boundary, into MMIO, into a write-protected page (paging exits) and into
 * the code itself (self-modifying code), branches and jumps inside the sequence, JALR through a
 * register, compressed parcels, F/D arithmetic, conversions and moves, CSR reads and writes, AMOs
 * and LR/SC, fences, ecall, ebreak, wfi, sret, sfence.vma and raw random words. It runs in S-mode
 * with bare or Sv39 translation (some pages unmapped or read-only: page faults; a third of the
 * Sv39 sequences under shadow paging, where stores to the page tables exit and are approved), or
 * in U-mode, with
 * a timer interrupt armed at a random instruction (`clock=icount`); the trap vector steps over
 * the trapping instruction and returns. A sequence ends at an SBI call (`ecall` in S-mode), WFI,
 * a trap the monitor gets, or the end of its instruction budget.
 *
 * @module
 */

import { ExitKind, PagingTrapCode } from "../../core/api/mod.ts";
import { loadRv64 } from "../../ffi/rv64/mod.ts";
import { Rv64Port } from "../../plugins/hostports/rv64/mod.ts";

const RAM = 0x8000_0000;
const RAM_SIZE = 64 * 4096;
const CODE = RAM; // pages 0, 1: the sequence
const HANDLER = RAM + 0x3000; // trap vector: skips the instruction
const DATA = RAM + 0x10000; // pages 0x10..0x13
const WP_PAGE = RAM + 0x14000; // write-protected: stores exit
const PT = RAM + 0x20000; // Sv39 tables: root, L1, L0, L1 for MMIO
const MMIO = 0x1000_0000;
/** Pages compared after each sequence. */
const PAGES = [0, 1, 2, 3, 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21, 0x22, 0x23];
const CSRS = [
  0x300,
  0x104,
  0x105,
  0x140,
  0x141,
  0x142,
  0x143,
  0x180,
  0x344,
  0x341,
  0x342,
  0x343,
  0x003,
  0xc02,
];

/** A small seeded PRNG (mulberry32). */
export class Rng {
  #s: number;
  /** @param seed Any 32-bit integer. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.u32() % n;
  }
  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

// ---- encoders ------------------------------------------------------------------------------

const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number) =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number) =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const s = (imm: number, rs2: number, rs1: number, f3: number, op: number) =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) |
    op) >>> 0;
const b = (imm: number, rs2: number, rs1: number, f3: number) =>
  ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
    (f3 << 12) | (((imm >> 1) & 0xf) << 8) | (((imm >> 11) & 1) << 7) | 0x63) >>> 0;
const j = (imm: number, rd: number) =>
  ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3ff) << 21) | (((imm >> 11) & 1) << 20) |
    (((imm >> 12) & 0xff) << 12) | (rd << 7) | 0x6f) >>> 0;

/** One generated item: a word, or a branch/jump whose offset is fixed once the layout is known. */
type Item =
  | { kind: "word"; value: number; len: 2 | 4 }
  | { kind: "branch"; f3: number; rs1: number; rs2: number; target: number }
  | { kind: "jal"; rd: number; target: number };

const R_OPS: ReadonlyArray<[number, number, number]> = [
  // [f7, f3, opcode]
  [0, 0, 0x33],
  [0x20, 0, 0x33],
  [0, 1, 0x33],
  [0, 2, 0x33],
  [0, 3, 0x33],
  [0, 4, 0x33],
  [0, 5, 0x33],
  [0x20, 5, 0x33],
  [0, 6, 0x33],
  [0, 7, 0x33],
  [1, 0, 0x33],
  [1, 1, 0x33],
  [1, 2, 0x33],
  [1, 3, 0x33],
  [1, 4, 0x33],
  [1, 5, 0x33],
  [1, 6, 0x33],
  [1, 7, 0x33],
  [0, 0, 0x3b],
  [0x20, 0, 0x3b],
  [0, 1, 0x3b],
  [0, 5, 0x3b],
  [0x20, 5, 0x3b],
  [1, 0, 0x3b],
  [1, 4, 0x3b],
  [1, 5, 0x3b],
  [1, 6, 0x3b],
  [1, 7, 0x3b],
];
const FP_F7 = [
  0x00,
  0x01,
  0x04,
  0x05,
  0x08,
  0x09,
  0x0c,
  0x0d,
  0x2c,
  0x2d,
  0x10,
  0x11,
  0x14,
  0x15,
  0x20,
  0x21,
  0x50,
  0x51,
  0x60,
  0x61,
  0x68,
  0x69,
  0x70,
  0x71,
  0x78,
  0x79,
];
const AMO_F5 = [0x00, 0x01, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c, 0x02, 0x03];
const CSR_LIST = [0x140, 0x001, 0x002, 0x003, 0xc00, 0xc01, 0xc02, 0x100, 0x104, 0x141, 0x143];

/** Interesting values for registers. */
function value(rng: Rng): bigint {
  switch (rng.int(6)) {
    case 0:
      return BigInt(rng.int(64)) - 32n;
    case 1:
      return BigInt.asUintN(64, (BigInt(rng.u32()) << 32n) | BigInt(rng.u32()));
    case 2:
      return rng.pick([0n, 1n, 0x7fff_ffffn, 0x8000_0000n, 1n << 63n, (1n << 64n) - 1n]);
    case 3:
      return BigInt(DATA + rng.int(0x4000));
    default:
      return BigInt(rng.u32());
  }
}

/** Generates one sequence's items (the loop body: instructions of every class). */
function body(rng: Rng, n: number): Item[] {
  const items: Item[] = [];
  // half the sequences are integer code (what the translator runs inline), with few others
  const integer = rng.int(2) === 0;
  const rd = () => (rng.int(8) === 0 ? 1 + rng.int(9) : 10 + rng.int(21));
  const rs = () => rng.int(32);
  const base = () => rng.pick([5, 5, 6, 6, 7, 8, 9, 2, rs()]);
  const word = (value: number) => items.push({ kind: "word", value, len: 4 });
  for (let k = 0; k < n; k++) {
    const c = integer && rng.int(16) ? rng.int(72) : rng.int(100);
    if (c < 22) {
      const [f7, f3, op] = rng.pick(R_OPS);
      word(r(f7, rs(), rs(), f3, rd(), op));
    } else if (c < 36) {
      const f3 = rng.pick([0, 2, 3, 4, 6, 7, 1, 5]);
      let imm = rng.int(4096) - 2048;
      if (f3 === 1) imm = rng.int(64);
      if (f3 === 5) imm = rng.int(64) | (rng.int(2) ? 0x400 : 0);
      if (rng.int(5) === 0) {
        const wf3 = rng.pick([0, 1, 5]);
        const wimm = wf3 === 0 ? imm : (rng.int(32) | (wf3 === 5 && rng.int(2) ? 0x400 : 0));
        word(i(wimm, rs(), wf3, rd(), 0x1b));
      } else {
        word(i(imm, rs(), f3, rd(), 0x13));
      }
    } else if (c < 39) {
      word(((rng.u32() & 0xfffff000) | (rd() << 7) | rng.pick([0x37, 0x17])) >>> 0);
    } else if (c < 51) {
      const imm = rng.pick([0, 8, -8, 1, 3, 4, 7, rng.int(64) - 32, rng.int(4096) - 2048]);
      word(i(imm, base(), rng.pick([0, 1, 2, 3, 4, 5, 6]), rd(), 0x03));
    } else if (c < 61) {
      const imm = rng.pick([0, 8, -8, 1, 3, 4, 7, rng.int(64) - 32]);
      word(s(imm, rs(), base(), rng.int(4), 0x23));
    } else if (c < 69) {
      items.push({
        kind: "branch",
        f3: rng.pick([0, 1, 4, 5, 6, 7]),
        rs1: rs(),
        rs2: rs(),
        target: rng.int(n + 1),
      });
    } else if (c < 71) {
      items.push({ kind: "jal", rd: rng.pick([0, 1, rd()]), target: rng.int(n + 1) });
    } else if (c < 72) {
      word(i(rng.int(64) & ~1, 8, 0, rng.pick([0, 1, rd()]), 0x67)); // jalr via x8
    } else if (c < 80) {
      let p = rng.u32() & 0xffff;
      if ((p & 3) === 3) p &= ~1;
      items.push({ kind: "word", value: p, len: 2 });
    } else if (c < 86) {
      const f7 = rng.pick(FP_F7);
      const rm = rng.pick([0, 1, 2, 3, 4, 7, 7, 7]);
      const rs2 = f7 >> 2 === 0x18 || f7 >> 2 === 0x1a ? rng.int(4) : f7 >> 2 === 0x0b ? 0 : rs();
      if (rng.int(6) === 0) {
        // fused multiply-add
        word(
          ((rs() << 27) | (rng.int(2) << 25) | (rs2 << 20) | (rs() << 15) | (rm << 12) |
            (rng.int(32) << 7) | rng.pick([0x43, 0x47, 0x4b, 0x4f])) >>> 0,
        );
      } else {
        word(r(f7, rs2, rs(), f7 >= 0x50 ? rng.int(3) : rm, rng.int(32), 0x53));
      }
    } else if (c < 88) {
      const f3 = rng.pick([2, 3]);
      if (rng.int(2)) word(i(rng.int(32) * 4 - 64, base(), f3, rng.int(32), 0x07));
      else word(s(rng.int(32) * 4 - 64, rng.int(32), base(), f3, 0x27));
    } else if (c < 91) {
      const f3 = rng.pick([1, 2, 3, 5, 6, 7]);
      const src = f3 >= 5 ? rng.int(32) : rng.pick([0, rs()]);
      word(i(rng.int(10) === 0 ? rng.int(4096) : rng.pick(CSR_LIST), src, f3, rd(), 0x73));
    } else if (c < 95) {
      const f5 = rng.pick(AMO_F5);
      word(
        ((f5 << 27) | (rng.int(4) << 25) | ((f5 === 2 ? 0 : rs()) << 20) |
          (rng.pick([5, 6, 7, 9]) << 15) | (rng.pick([2, 3]) << 12) | (rd() << 7) | 0x2f) >>> 0,
      );
    } else if (c < 98) {
      word(rng.pick([
        0x0ff0000f, // fence
        0x0000100f, // fence.i
        0x00100073, // ebreak
        0x10500073, // wfi
        0x12000073, // sfence.vma
        0x10200073, // sret
        0x00000073, // ecall
      ]));
    } else {
      word(rng.u32());
    }
  }
  return items;
}

/** The code bytes of a sequence (loop over `items`), starting at page offset `start`. */
function layout(items: Item[], start: number): { code: Uint8Array; entry: number } {
  // prologue: x31 = loop count; epilogue: x31--, bnez x31 -> body; ecall
  const bytes: number[] = [];
  const put = (v: number, len: number) => {
    for (let k = 0; k < len; k++) bytes.push((v >>> (8 * k)) & 0xff);
  };
  const offsets: number[] = [];
  let at = 4;
  for (const it of items) {
    offsets.push(at);
    at += it.kind === "word" ? it.len : 4;
  }
  offsets.push(at); // the epilogue
  put(i(3, 0, 0, 31, 0x13), 4);
  items.forEach((it, k) => {
    if (it.kind === "word") put(it.value, it.len);
    else if (it.kind === "branch") {
      put(b(offsets[it.target]! - offsets[k]!, it.rs2, it.rs1, it.f3), 4);
    } else put(j(offsets[it.target]! - offsets[k]!, it.rd), 4);
  });
  put(i(-1, 31, 0, 31, 0x13), 4);
  put(b(offsets[0]! - (offsets[items.length]! + 4), 0, 31, 1), 4);
  put(0x00000073, 4);
  const code = new Uint8Array(start + bytes.length);
  code.set(bytes, start);
  return { code, entry: start };
}

/** What one machine did with a sequence. */
interface Outcome {
  exits: string[];
  state: string[];
  memory: Uint8Array;
  translated: number;
}

/** One machine of the pair, reused across sequences. */
class Side {
  readonly port: Rv64Port;
  readonly ram: Uint8Array;
  readonly regs: BigUint64Array;
  readonly hart;
  #lib = loadRv64().symbols;

  constructor(jit: boolean, shadow: boolean) {
    this.port = new Rv64Port({
      harts: 1,
      clock: "icount",
      jit,
      jitThreshold: 1,
      jitCacheBytes: 1 << 20,
    });
    this.ram = new Uint8Array(this.port.addMemoryRegion(RAM, RAM_SIZE, { readonly: false }));
    this.hart = this.port.createVcpu(0);
    const ptr = this.#lib.rv64_registers(this.port.handle, 0)!;
    this.regs = new BigUint64Array(Deno.UnsafePointerView.getArrayBuffer(ptr, 66 * 8));
    this.port.paging.writeProtect(WP_PAGE, 4096, true);
    // shadow paging: the page-table pages a walk read are protected (stores exit as PtWrite)
    if (shadow) this.port.paging.setMode("shadow");
  }

  run(setup: Setup): Outcome {
    const { hart, port } = this;
    this.ram.set(setup.memory);
    port.invalidateCode();
    hart.flushTlb();
    hart.setStarted(true);
    for (let k = 0; k < 66; k++) this.regs[k] = setup.regs[k]!;
    this.regs[32] = 0n;
    hart.setPrivilege(setup.priv === 0 ? "user" : "supervisor");
    for (const [csr, v] of setup.csrs) hart.setCsr(csr, v);
    hart.setInterrupt("stip", false);
    hart.setInterrupt("ssip", false);
    hart.setInterrupt("seip", false);
    hart.setTimer(setup.timer === undefined ? (1n << 64n) - 1n : port.time() + setup.timer);
    hart.setSlice(setup.budget);
    const before = port.jitStats().jitInstructions!;
    // counters are compared per sequence (a difference in one does not spill into the next)
    const counted = hart.counters();
    const exits: string[] = [];
    for (let n = 0; n < 64; n++) {
      const kind = hart.run();
      const e = hart.exit;
      const rec = `${kind} pc=${e.pc} a=${e.address} s=${e.size} w=${e.isWrite} c=${e.code}` +
        ` d=${e.isWrite || kind !== ExitKind.Mmio ? e.data.getBigUint64(0, true) : ""}` +
        ` nr=${e.nr} fid=${e.fid} regs=${this.#digest()}`;
      exits.push(rec);
      if (kind === ExitKind.Mmio) {
        if (!e.isWrite) {
          e.data.setBigUint64(0, BigInt(Math.imul(e.address, 2654435761) >>> 0) << 3n, true);
        }
        continue;
      }
      if (kind === ExitKind.Paging) {
        // a page-table store is approved (it runs at the next run), a write-protected one skipped
        if (e.code === PagingTrapCode.PtWrite) port.paging.approve(0, true);
        else port.paging.skipInstruction(0);
        continue;
      }
      break;
    }
    const state: string[] = [];
    for (let k = 0; k < 66; k++) if (k !== 32) state.push(`r${k}=${this.regs[k]}`);
    state.push(`priv=${this.#lib.rv64_get_priv(port.handle, 0)}`);
    for (const csr of CSRS) state.push(`csr${csr.toString(16)}=${hart.getCsr(csr)}`);
    for (const [k, v] of Object.entries(hart.counters())) state.push(`${k}=${v - counted[k]!}`);
    const memory = new Uint8Array(PAGES.length * 4096);
    PAGES.forEach((p, k) => memory.set(this.ram.subarray(p * 4096, p * 4096 + 4096), k * 4096));
    return { exits, state, memory, translated: port.jitStats().jitInstructions! - before };
  }

  /** A digest of the registers (compared at every exit, not only at the end). */
  #digest(): string {
    let h = 0n;
    for (let k = 1; k < 66; k++) {
      if (k !== 32) h = BigInt.asUintN(64, (h ^ this.regs[k]!) * 0x100000001b3n + BigInt(k));
    }
    return h.toString(16);
  }

  dispose(): void {
    this.port.dispose();
  }
}

/** The initial machine state of one sequence. */
interface Setup {
  /** Shadow paging (page-table pages protected) instead of wired. */
  shadow: boolean;
  memory: Uint8Array;
  regs: BigUint64Array;
  priv: 0 | 1;
  csrs: Array<[number, bigint]>;
  timer: bigint | undefined;
  budget: number;
}

function pte(pa: number, flags: number): bigint {
  return (BigInt(pa >>> 12) << 10n) | BigInt(flags);
}

/** Builds the setup of sequence `seed`. */
export function makeSetup(seed: number): Setup {
  const rng = new Rng(seed);
  const memory = new Uint8Array(RAM_SIZE);
  for (let k = 0; k < 0x5000; k++) memory[0x10000 + k] = rng.u32() & 0xff;
  const items = body(rng, 8 + rng.int(40));
  const start = rng.int(4) === 0 ? 4096 - 2 * (1 + rng.int(40)) : 2 * rng.int(512);
  const { code, entry } = layout(items, start);
  memory.set(code.subarray(0, Math.min(code.length, 0x3000)), 0);
  // the trap vector steps over the trapping instruction (as if 4 bytes long) and returns
  [
    0x14102f73, // csrr x30, sepc
    0x004f0f13, // addi x30, x30, 4
    0x141f1073, // csrw sepc, x30
    0x10200073, // sret
  ].forEach((w, k) => new DataView(memory.buffer).setUint32(HANDLER - RAM + 4 * k, w, true));
  const priv = rng.int(4) === 0 ? 0 : 1;
  const paging = priv === 0 || rng.int(2) === 0;
  let satp = 0n;
  if (paging) {
    const dv = new DataView(memory.buffer);
    const put = (addr: number, v: bigint) => dv.setBigUint64(addr - RAM, v, true);
    const root = PT, l1 = PT + 0x1000, l0 = PT + 0x2000, l1io = PT + 0x3000;
    put(root + 2 * 8, pte(l1, 1));
    put(l1, pte(l0, 1));
    put(root + 0, pte(l1io, 1));
    put(l1io + (MMIO >>> 21) * 8, pte(MMIO, 0xc7)); // 2 MiB RW, A, D
    const hole = 0x10 + rng.int(5), ro = 0x10 + rng.int(5);
    for (let k = 0; k < 64; k++) {
      const user = priv === 0 && k !== 3 ? 0x10 : 0;
      let flags = 0xcf | user; // V R W X A D
      if (k === hole && rng.int(2)) flags = 0;
      if (k === ro && rng.int(2)) flags &= ~0x84; // read-only, not dirty
      if (rng.int(16) === 0) flags &= ~0x40; // A clear: set by the walk
      put(l0 + k * 8, pte(RAM + k * 4096, flags));
    }
    satp = (8n << 60n) | BigInt(PT >>> 12);
  }
  const regs = new BigUint64Array(66);
  for (let k = 1; k < 32; k++) regs[k] = value(rng);
  for (let k = 33; k < 65; k++) regs[k] = value(rng);
  regs[5] = BigInt(DATA + rng.int(0x3000));
  regs[6] = BigInt(DATA + 0x1000 - 1 - rng.int(8));
  regs[7] = BigInt(MMIO + rng.int(64));
  regs[8] = BigInt(CODE + (start & ~1) + 2 * rng.int(64));
  regs[9] = BigInt(rng.int(3) ? WP_PAGE + rng.int(4096) : PT + rng.int(0x4000)); // or the tables
  regs[2] = BigInt(DATA + 0x2000 + rng.int(0x800));
  regs[65] = BigInt(CODE + entry);
  const sie = rng.int(2) ? 0x2n : 0n; // SSTATUS.SIE
  const csrs: Array<[number, bigint]> = [
    [0x300, (1n << 13n) | (rng.int(4) ? 1n << 18n : 0n) | sie], // mstatus: FS initial, SUM, SIE
    [0x105, BigInt(HANDLER)],
    [0x140, value(rng)],
    [0x141, 0n],
    [0x142, 0n],
    [0x143, 0n],
    [0x104, rng.int(2) ? 0x20n : 0n], // sie.STIE
    [0x180, satp],
    [0x003, BigInt(rng.int(256))],
  ];
  const timer = rng.int(3) === 0 ? BigInt(rng.int(200)) : undefined;
  const shadow = paging && rng.int(3) === 0;
  return { shadow, memory, regs, priv, csrs, timer, budget: 200 + rng.int(3000) };
}

/** A sequence whose two runs differ. */
export interface Mismatch {
  /** The seed that reproduces it (`makeSetup(seed)`). */
  readonly seed: number;
  /** What differs first. */
  readonly what: string;
}

/** Runs sequences on the interpreter and on the translator and compares them. */
export class DiffFuzzer {
  /** Interpreter and translator machines, wired ([0]) and shadow paging ([1]). */
  #pairs = [[new Side(false, false), new Side(true, false)], [
    new Side(false, true),
    new Side(true, true),
  ]];
  /** Sequences run. */
  sequences = 0;
  /** Instructions retired (per side). */
  instructions = 0;
  /** Instructions retired in translated code. */
  translated = 0;
  /** What the sequences did (exit kinds, paging exit codes, traps, interrupts): coverage. */
  readonly coverage: Record<string, number> = {};

  /** Runs sequence `seed` on both sides; returns what differs, or undefined. */
  check(seed: number): Mismatch | undefined {
    const setup = makeSetup(seed);
    const pair = this.#pairs[setup.shadow ? 1 : 0]!;
    const a = pair[0]!.run(setup);
    const b = pair[1]!.run(setup);
    this.sequences++;
    this.translated += b.translated;
    const instr = (o: Outcome) => Number(/instructions=(\d+)/.exec(o.state.join(" "))?.[1] ?? 0);
    this.instructions += instr(a);
    for (const e of a.exits) {
      const [kind, code] = [/^(\d+)/.exec(e)![1]!, / c=(\d+)/.exec(e)![1]!];
      const key = Number(kind) === ExitKind.Paging ? `exit-${kind}-code-${code}` : `exit-${kind}`;
      this.coverage[key] = (this.coverage[key] ?? 0) + 1;
    }
    for (const name of ["traps", "interrupts", "decodeFlushes"]) {
      const v = Number(new RegExp(`(?:^| )${name}=(\\d+)`).exec(a.state.join(" "))?.[1] ?? 0);
      this.coverage[name] = (this.coverage[name] ?? 0) + v;
    }
    const m = this.#compare(seed, a, b);
    if (m) {
      // a difference can live on in the machines (time, reservations): start the next afresh
      pair.forEach((side) => side.dispose());
      pair[0] = new Side(false, setup.shadow);
      pair[1] = new Side(true, setup.shadow);
    }
    return m;
  }

  #compare(seed: number, a: Outcome, b: Outcome): Mismatch | undefined {
    for (let k = 0; k < Math.max(a.exits.length, b.exits.length); k++) {
      if (a.exits[k] !== b.exits[k]) {
        return { seed, what: `exit ${k}: interpreter ${a.exits[k]}, translator ${b.exits[k]}` };
      }
    }
    for (let k = 0; k < a.state.length; k++) {
      if (a.state[k] !== b.state[k]) {
        return { seed, what: `state: interpreter ${a.state[k]}, translator ${b.state[k]}` };
      }
    }
    for (let k = 0; k < a.memory.length; k++) {
      if (a.memory[k] !== b.memory[k]) {
        const page = PAGES[k >> 12]!;
        return { seed, what: `memory at ${(RAM + page * 4096 + (k & 0xfff)).toString(16)}` };
      }
    }
    return undefined;
  }

  /** The translator's statistics. */
  jitStats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const pair of this.#pairs) {
      for (const [k, v] of Object.entries(pair[1]!.port.jitStats())) out[k] = (out[k] ?? 0) + v;
    }
    return out;
  }

  /** Frees both machines. */
  dispose(): void {
    for (const pair of this.#pairs) pair.forEach((side) => side.dispose());
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
