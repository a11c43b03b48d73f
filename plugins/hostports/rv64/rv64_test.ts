/**
 * Execution tests of the rv64 host port: small bare-metal programs assembled with the cross
 * assembler, run in S-mode (the monitor plays firmware), checked through registers and memory.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ExitKind, PAGING_MECHANISMS_VERSION } from "../../../core/api/mod.ts";
import { assemble, haveCrossAssembler } from "../../../ffi/rv64/asm.ts";
import { PagingExitCode } from "../../../ffi/rv64/symbols.ts";
import plugin, { Rv64Port, type Rv64PortOptions } from "./mod.ts";

const HAVE_AS = haveCrossAssembler();
if (!HAVE_AS) console.warn("rv64 execution tests skipped: riscv64-linux-gnu-as is not installed");

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const u64 = (v: bigint) => BigInt.asUintN(64, v);

/**
 * Common prologue: a trap handler that logs (cause, tval) pairs at 0x80020000 and resumes after
 * the trapping instruction (at `ra` for instruction page faults; in S-mode after a U-mode ecall).
 */
const TRAP_LOG = 0x8002_0000;
const PROLOGUE = `
  .text
  .globl _start
_start:
  la t0, trap_handler
  csrw stvec, t0
  j main
  .align 2
trap_handler:
  li t5, 0x80020000
  ld t6, 0(t5)
  addi t6, t6, 1
  sd t6, 0(t5)
  slli t6, t6, 4
  add t6, t6, t5
  csrr t5, scause
  sd t5, -8(t6)
  csrr t5, stval
  sd t5, 0(t6)
  csrr t5, scause
  li t6, 12
  beq t5, t6, 1f
  li t6, 8
  bne t5, t6, 2f
  li t6, 0x100
  csrs sstatus, t6
2:
  csrr t5, sepc
  addi t5, t5, 4
  csrw sepc, t5
  sret
1:
  csrw sepc, ra
  sret
main:
`;

interface Booted {
  port: Rv64Port;
  hart: ReturnType<Rv64Port["createVcpu"]>;
  ram: Uint8Array;
  view: DataView;
}

function boot(body: string, options: Partial<Rv64PortOptions> = {}): Booted {
  const prog = assemble(PROLOGUE + body);
  const port = new Rv64Port({ harts: 1, ...options });
  const buf = port.addMemoryRegion(BASE, RAM, { readonly: false });
  const ram = new Uint8Array(buf);
  ram.set(prog);
  const hart = port.createVcpu(0);
  hart.setPc(BigInt(BASE));
  hart.setPrivilege("supervisor");
  return { port, hart, ram, view: new DataView(buf) };
}

/** Runs until the next exit that is not the end of a slice. */
function runUntilExit(hart: Booted["hart"]): number {
  for (let i = 0; i < 1000; i++) {
    const k = hart.run();
    if (k !== ExitKind.Interrupted) return k;
  }
  throw new Error("the guest did not exit");
}

/** Runs to the final `ecall` and returns x registers. */
function runToEcall(b: Booted): Record<string, bigint> {
  const k = runUntilExit(b.hart);
  assertEquals(k, ExitKind.Hypercall, `exit ${k}: ${b.hart.exit.detail}`);
  return b.hart.getRegisters();
}

function trapLog(b: Booted): bigint[][] {
  const off = TRAP_LOG - BASE;
  const n = Number(b.view.getBigUint64(off, true));
  const out: bigint[][] = [];
  for (let i = 0; i < n; i++) {
    out.push([
      b.view.getBigUint64(off + 8 + 16 * i, true),
      b.view.getBigUint64(off + 16 + 16 * i, true),
    ]);
  }
  return out;
}

function test(name: string, fn: () => void) {
  Deno.test({ name: `rv64: ${name}`, ignore: !HAVE_AS, fn });
}

test("integer, compressed and control-flow instructions", () => {
  const b = boot(`
    li a0, 0x123456789abcdef0
    li a1, -7
    add a2, a0, a1
    sub a3, a1, a0
    srai a4, a1, 1
    srli a5, a1, 60
    sltu s2, a1, a0
    slt s3, a1, a0
    addiw s4, a1, 0x7ff
    lui s5, 0x80000
    sraw s6, a0, a1
    sllw s7, a0, a1
    c.li s8, 5
    c.slli s8, 3
    c.addi s8, -1
    call func
    mv s9, t0
    auipc s10, 0
    la s11, data
    sd a0, 0(s11)
    lw t1, 4(s11)
    lbu t2, 7(s11)
    lh t3, 6(s11)
    ld t4, 1(s11)
    ecall
  func:
    li t0, 99
    ret
    .align 3
  data:
    .zero 64
  `);
  try {
    const r = runToEcall(b);
    const a0 = 0x123456789abcdef0n, a1 = u64(-7n);
    assertEquals(r.x12, u64(a0 + a1));
    assertEquals(r.x13, u64(a1 - a0));
    assertEquals(r.x14, u64(-4n));
    assertEquals(r.x15, 0xfn);
    assertEquals(r.x18, 0n);
    assertEquals(r.x19, 1n);
    assertEquals(r.x20, u64(BigInt.asIntN(32, -7n + 0x7ffn)));
    assertEquals(r.x21, 0xffffffff80000000n);
    assertEquals(r.x22, u64(BigInt.asIntN(32, 0x9abcdef0n) >> 25n)); // shift amount -7 & 31 = 25
    assertEquals(r.x23, u64(BigInt.asIntN(32, (0x9abcdef0n << 25n) & 0xffffffffn)));
    assertEquals(r.x24, 39n);
    assertEquals(r.x25, 99n);
    assert(r.x26! >= BigInt(BASE) && r.x26! < BigInt(BASE + 0x1000));
    assertEquals(r.x6, u64(BigInt.asIntN(32, 0x12345678n)));
    assertEquals(r.x7, 0x12n);
    assertEquals(r.x28, 0x1234n);
    assertEquals(r.x29, 0x00123456789abcden); // misaligned load
    assertEquals(r.x0, 0n);
  } finally {
    b.port.dispose();
  }
});

test("M extension edge cases", () => {
  const b = boot(`
    li a0, -1
    li a1, 0x7fffffffffffffff
    li a2, 0x8000000000000000
    mulh s0, a1, a1
    mulhu s1, a0, a0
    mulhsu s2, a0, a0
    div s3, a2, a0
    rem s4, a2, a0
    div s5, a1, zero
    divu s6, a1, zero
    rem s7, a1, zero
    li t0, 0x80000000
    li t1, -1
    divw s8, t0, t1
    remuw s9, a1, zero
    mulw s10, a1, a1
    li t2, -17
    li t3, 5
    rem s11, t2, t3
    ecall
  `);
  try {
    const r = runToEcall(b);
    const max = 0x7fffffffffffffffn;
    assertEquals(r.x8, u64((max * max) >> 64n));
    assertEquals(r.x9, u64(((2n ** 64n - 1n) ** 2n) >> 64n));
    assertEquals(r.x18, u64((-1n * (2n ** 64n - 1n)) >> 64n));
    assertEquals(r.x19, 0x8000000000000000n);
    assertEquals(r.x20, 0n);
    assertEquals(r.x21, u64(-1n));
    assertEquals(r.x22, u64(-1n));
    assertEquals(r.x23, max);
    assertEquals(r.x24, 0xffffffff80000000n);
    assertEquals(r.x25, u64(-1n));
    assertEquals(r.x26, 1n);
    assertEquals(r.x27, u64(-2n));
  } finally {
    b.port.dispose();
  }
});

test("A extension: LR/SC reservation and AMOs", () => {
  const b = boot(`
    la s0, data
    li t0, 10
    sd t0, 0(s0)
    lr.d a0, (s0)
    addi a0, a0, 5
    sc.d a1, a0, (s0)
    ld a2, 0(s0)
    sc.d a3, a0, (s0)
    li t1, 3
    amoadd.d a4, t1, (s0)
    ld a5, 0(s0)
    li t2, -100
    addi a6, s0, 8
    amomax.w s1, t2, (a6)
    lw s2, 8(s0)
    amominu.w s3, t2, (a6)
    lw s4, 8(s0)
    amoswap.d s5, t0, (s0)
    ld s6, 0(s0)
    ecall
    .align 3
  data:
    .dword 0, 7
  `);
  try {
    const r = runToEcall(b);
    assertEquals(r.x10, 15n);
    assertEquals(r.x11, 0n);
    assertEquals(r.x12, 15n);
    assertEquals(r.x13, 1n); // no reservation any more
    assertEquals(r.x14, 15n);
    assertEquals(r.x15, 18n);
    assertEquals(r.x9, 7n);
    assertEquals(r.x18, 7n);
    assertEquals(r.x19, 7n);
    assertEquals(r.x20, 7n);
    assertEquals(r.x21, 18n);
    assertEquals(r.x22, 10n);
  } finally {
    b.port.dispose();
  }
});

test("F/D: rounding modes, flags, NaN rules, saturation, NaN-boxing", () => {
  const b = boot(`
    li t0, 0x6000
    csrs sstatus, t0
    li a0, 1
    fcvt.d.l f0, a0
    li a1, 3
    fcvt.d.l f1, a1
    fdiv.d f2, f0, f1, rne
    fmv.x.d s0, f2
    fdiv.d f3, f0, f1, rup
    fmv.x.d s1, f3
    frflags s2
    fscsr zero
    fcvt.d.l f4, zero
    fdiv.d f5, f4, f4
    fmv.x.d s3, f5
    fcvt.w.d s4, f5
    frflags s5
    li t1, 3000000000
    fcvt.d.l f6, t1
    fcvt.w.d s6, f6
    fcvt.d.l f7, a1
    fneg.d f7, f7
    fcvt.wu.d s7, f7
    fmin.d f8, f5, f0
    fmv.x.d s8, f8
    fclass.d s9, f7
    la t2, data
    flw f9, 0(t2)
    fmv.x.d s10, f9
    fmv.d.x f10, a0
    fadd.s f11, f10, f9
    fmv.x.d s11, f11
    fsflags zero
    fdiv.d f12, f0, f4
    frflags a2
    fmv.x.d a3, f12
    fcvt.s.d f13, f2, rtz
    fmv.x.w a4, f13
    fcvt.w.d a5, f3, rdn
    ecall
    .align 3
  data:
    .word 0x3f800000
  `);
  try {
    const r = runToEcall(b);
    assertEquals(r.x8, 0x3fd5555555555555n);
    assertEquals(r.x9, 0x3fd5555555555556n);
    assertEquals(r.x18, 1n); // NX
    assertEquals(r.x19, 0x7ff8000000000000n); // canonical NaN from 0/0
    assertEquals(r.x20, 0x7fffffffn); // NaN -> max
    assertEquals(r.x21, 0x10n); // NV
    assertEquals(r.x22, 0x7fffffffn); // saturated
    assertEquals(r.x23, 0n); // -3 -> wu saturates at 0
    assertEquals(r.x24, 0x3ff0000000000000n); // fmin(NaN, 1) = 1
    assertEquals(r.x25, 2n); // negative normal
    assertEquals(r.x26, 0xffffffff3f800000n); // NaN-boxed single
    assertEquals(r.x27, 0xffffffff7fc00000n); // unboxed input is a canonical NaN
    assertEquals(r.x12, 8n); // DZ
    assertEquals(r.x13, 0x7ff0000000000000n);
    assertEquals(r.x14, 0x3eaaaaaan); // 1/3 rounded toward zero in single
    assertEquals(r.x15, 0n);
  } finally {
    b.port.dispose();
  }
});

test("traps: illegal instruction, FP disabled, CSR privilege, ecall from U-mode", () => {
  const b = boot(`
    .word 0x0000707b
    fadd.d f0, f0, f0
    csrr a0, mstatus
    la t0, user
    csrw sepc, t0
    li t0, 0x100
    csrc sstatus, t0
    sret
  user:
    li a0, 77
    ecall
    csrr a1, sstatus
    ecall
  `);
  try {
    const r = runToEcall(b);
    assertEquals(trapLog(b), [
      [2n, 0x707bn],
      [2n, 0x02007053n],
      [2n, 0x30002573n],
      [8n, 0n],
    ]);
    assertEquals(r.x10, 77n);
    assertEquals(r.x11, 0x200000000n | (r.x11! & 0xffffn)); // sstatus read back in S-mode
    assertEquals(b.hart.exit.nr, 0);
  } finally {
    b.port.dispose();
  }
});

test("Sv39 and Sv48 translation, A/D updates, page faults delegated to S", () => {
  const b = boot(`
    li s0, 0x80010000
    li t0, (0x80000 << 10) | 0xcf
    sd t0, 16(s0)
    li t0, (0x80000 << 10) | 0xc7
    sd t0, 24(s0)
    li t0, (0x80011 << 10) | 1
    sd t0, 8(s0)
    li s1, 0x80011000
    li t0, (0x80012 << 10) | 1
    sd t0, 0(s1)
    li s2, 0x80012000
    li t0, (0x80003 << 10) | 0x07
    sd t0, 0(s2)
    li t0, (8 << 60) | 0x80010
    csrw satp, t0
    sfence.vma
    li t1, 0xc0003000
    li t2, 0x1234
    sd t2, 0(t1)
    li t3, 0x40000000
    ld a0, 0(t3)
    li t4, 0x55
    sd t4, 8(t3)
    ld a1, 0(s2)
    li t3, 0x40001000
    ld a2, 0(t3)
    li t3, 0xc0000000
    jalr ra, 0(t3)
    li t0, (10 << 60) | 0x80010
    csrw satp, t0
    csrr a3, satp
    li s3, 0x80013000
    li t0, (0x80010 << 10) | 1
    sd t0, 0(s3)
    li t0, (9 << 60) | 0x80013
    csrw satp, t0
    sfence.vma
    li t3, 0x40000000
    ld a4, 8(t3)
    li t0, 0
    csrw satp, t0
    ecall
  `);
  try {
    const r = runToEcall(b);
    assertEquals(r.x10, 0x1234n);
    assertEquals(r.x11, (0x80003n << 10n) | 0xc7n); // A and D set by the walk
    assertEquals(trapLog(b), [[13n, 0x40001000n], [12n, 0xc0000000n]]);
    assertEquals(r.x13, (8n << 60n) | 0x80010n); // Sv57 is not supported: write ignored
    assertEquals(r.x14, 0x55n);
    assert((b.port.stats().pageWalks ?? 0) > 0);
  } finally {
    b.port.dispose();
  }
});

test("MMIO exits: loads complete with sign/zero extension, stores carry their value", () => {
  const b = boot(`
    li t0, 0x10000000
    lb a0, 0(t0)
    lbu a1, 1(t0)
    lh a2, 2(t0)
    li a3, 0xdeadbeef
    sw a3, 4(t0)
    ld a4, 8(t0)
    ecall
  `);
  try {
    const h = b.hart;
    const seen: string[] = [];
    const values = new Map<number, bigint>([
      [0x1000_0000, 0x80n],
      [0x1000_0001, 0x80n],
      [0x1000_0002, 0x8001n],
      [0x1000_0008, 0x0123456789abcdefn],
    ]);
    for (;;) {
      const k = runUntilExit(h);
      if (k !== ExitKind.Mmio) break;
      const e = h.exit;
      seen.push(`${e.isWrite ? "w" : "r"}${e.size}@${e.address.toString(16)}`);
      if (e.isWrite) assertEquals(e.data.getUint32(0, true), 0xdeadbeef);
      else e.data.setBigUint64(0, values.get(e.address) ?? 0n, true);
    }
    assertEquals(h.exit.kind, ExitKind.Hypercall);
    assertEquals(seen, ["r1@10000000", "r1@10000001", "r2@10000002", "w4@10000004", "r8@10000008"]);
    const r = h.getRegisters();
    assertEquals(r.x10, u64(-128n));
    assertEquals(r.x11, 128n);
    assertEquals(r.x12, 0xffffffffffff8001n);
    assertEquals(r.x14, 0x0123456789abcdefn);
  } finally {
    b.port.dispose();
  }
});

const TIMER_PROGRAM = `
    la t0, irq
    csrw stvec, t0
    li t0, 0x20
    csrs sie, t0
    csrsi sstatus, 2
  1:
    wfi
    j 1b
    .align 2
  irq:
    csrr a0, scause
    li a7, 0x54494d45
    ecall
`;

test("WFI halts until the supervisor timer fires (host clock)", async () => {
  const b = boot(TIMER_PROGRAM);
  try {
    const h = b.hart;
    assertEquals(runUntilExit(h), ExitKind.Halt);
    assertEquals(h.runnable(), false);
    assertEquals(h.wakeDeadline(), Infinity);
    h.setTimer(b.port.time() + 20_000n); // 2 ms at 10 MHz
    assert(h.wakeDeadline() > performance.now());
    const start = performance.now();
    while (!h.runnable()) {
      assert(performance.now() - start < 2000, "the timer never fired");
      await new Promise((r) => setTimeout(r, 1));
    }
    assertEquals(runUntilExit(h), ExitKind.Hypercall);
    assertEquals(h.exit.nr, 0x54494d45);
    assertEquals(h.getRegisters().x10, (1n << 63n) | 5n);
  } finally {
    b.port.dispose();
  }
});

test("WFI with the icount clock jumps to the deadline deterministically", () => {
  const results: bigint[] = [];
  for (let i = 0; i < 2; i++) {
    const b = boot(TIMER_PROGRAM, { clock: "icount" });
    try {
      b.hart.setTimer(1000n);
      assertEquals(runUntilExit(b.hart), ExitKind.Hypercall);
      assertEquals(b.hart.getRegisters().x10, (1n << 63n) | 5n);
      results.push(b.port.time(), b.hart.instret);
    } finally {
      b.port.dispose();
    }
  }
  assertEquals(results[0], results[2]);
  assertEquals(results[1], results[3]);
  assert(results[0]! >= 1000n);
});

test("paging mechanisms: write-protect exits, skip, sfence and satp exits", () => {
  const b = boot(`
    li t0, 0x80005000
    li t1, 0xabcdef
    sd t1, 8(t0)
    li t1, 5
    sd t1, 16(t0)
    sfence.vma
    csrw satp, zero
    ecall
  `);
  try {
    const h = b.hart;
    b.port.paging.writeProtect(0x8000_5000, 4096, true);
    b.port.paging.setExits(0, { sfence: true, satp: true });
    assertEquals(runUntilExit(h), ExitKind.Paging);
    assertEquals(h.exit.code, PagingExitCode.WriteProtected);
    assertEquals(h.exit.address, 0x8000_5008);
    assertEquals(h.exit.size, 8);
    assertEquals(h.exit.data.getBigUint64(0, true), 0xabcdefn);
    // the monitor applies the store itself and steps over it
    b.view.setBigUint64(0x5008, 0xabcdefn, true);
    b.port.paging.skipInstruction(0);
    assertEquals(runUntilExit(h), ExitKind.Paging);
    assertEquals(h.exit.address, 0x8000_5010);
    b.port.paging.writeProtect(0x8000_5000, 4096, false); // unprotect and re-execute
    assertEquals(runUntilExit(h), ExitKind.Paging);
    assertEquals(h.exit.code, PagingExitCode.Sfence);
    assertEquals(runUntilExit(h), ExitKind.Paging);
    assertEquals(h.exit.code, PagingExitCode.Satp);
    assertEquals(runUntilExit(h), ExitKind.Hypercall);
    assertEquals(b.view.getBigUint64(0x5010, true), 5n);
    assertEquals(b.port.stats().pagingExits, 4);
  } finally {
    b.port.dispose();
  }
});

test("self-modifying code is re-decoded (also after many stores to the code page)", () => {
  const b = boot(`
    li a0, 1
    la t0, patch
    li t1, 0x02a00513
    li t2, 100
  1:
    sw t1, 0(t0)
    addi t2, t2, -1
    bnez t2, 1b
    fence.i
    .option norvc
  patch:
    addi a0, a0, 1
    ecall
  `);
  try {
    assertEquals(runToEcall(b).x10, 42n);
  } finally {
    b.port.dispose();
  }
});

test("code the monitor rewrites (as a device would) is re-decoded after fence.i", () => {
  const b = boot(`
    call f
    mv s1, a0
    ecall
    fence.i
    call f
    mv s2, a0
    ecall
    .option norvc
  f:
    li a0, 1
    ret
  `);
  try {
    assertEquals(runToEcall(b).x10, 1n); // f ran once: its instructions are decoded
    // the monitor rewrites `li a0, 1` into `li a0, 2` behind the harts' back
    let at = -1;
    for (let i = 0; i + 8 <= b.ram.length; i += 2) {
      if (
        b.view.getUint32(i, true) === 0x00100513 && b.view.getUint32(i + 4, true) === 0x00008067
      ) {
        at = i;
        break;
      }
    }
    assert(at >= 0, "f not found in RAM");
    b.view.setUint32(at, 0x00200513, true);
    b.hart.completeHypercall({ error: 0, value: 0 });
    const r = runToEcall(b);
    assertEquals(r.x9, 1n);
    assertEquals(r.x18, 2n);
  } finally {
    b.port.dispose();
  }
});

test("instructions outside RAM raise an access fault; trap without handler ends the guest", () => {
  const b = boot(`
    csrw stvec, zero
    li t0, 0x1000
    jr t0
  `);
  try {
    // stvec = 0 sends the fault to address 0, which is not RAM either: the fault at the trap
    // vector itself would repeat forever, so the guest ends (a shutdown exit naming it).
    b.hart.setSlice(5000);
    assertEquals(b.hart.run(), ExitKind.Shutdown);
    assertEquals(b.port.stats().traps, 2);
    assertEquals(b.hart.getCsr(0x142), 1n);
    assert(b.hart.exit.detail.includes("exception 1 at its own trap vector 0x0"));
  } finally {
    b.port.dispose();
  }
});

Deno.test("rv64 plugin definition", () => {
  assertEquals(plugin.name, "rv64");
  assertEquals(plugin.kind, "hostport");
  assertEquals(plugin.arch, "riscv64");
  using port = new Rv64Port({ harts: 2 });
  assertEquals(port.capabilities.paging, {
    version: PAGING_MECHANISMS_VERSION,
    mechanisms: [
      "write-protect",
      "paging-exits",
      "skip-instruction",
      "shadow-tables",
      "page-queue",
      "queue-diff",
      "counters",
    ],
  });
  assertEquals(port.timebaseHz, 10_000_000);
  port.addMemoryRegion(0x8000_0000, 0x10000, { readonly: false });
  let threw = false;
  try {
    port.addMemoryRegion(0x8000_8000, 0x10000, { readonly: false });
  } catch (e) {
    threw = (e as Error).message.startsWith("Cannot add RAM region 0x80008000-0x80017fff");
  }
  assert(threw, "overlapping regions are refused");
  const h1 = port.createVcpu(1);
  assertEquals(h1.started, false);
  assertEquals(h1.runnable(), false);
  h1.setStarted(true);
  assertEquals(h1.runnable(), true);
  h1.setCsr(0x140, 0x1234n);
  assertEquals(h1.getCsr(0x140), 0x1234n);
  assertEquals(h1.getCsr(0xf14), 1n);
});

Deno.test("rv64: random guest code never crashes the monitor", () => {
  let seed = 0x2545f491;
  const next = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const kinds = new Map<number, number>();
  for (let round = 0; round < 6; round++) {
    using port = new Rv64Port({ harts: 1, slice: 20_000 });
    const ram = new Uint32Array(port.addMemoryRegion(BASE, 1 << 16, { readonly: false }));
    for (let i = 0; i < ram.length; i++) ram[i] = next();
    const h = port.createVcpu(0);
    h.setPc(BigInt(BASE + (next() & 0xfffc)));
    h.setCsr(0x105, BigInt(BASE + (next() & 0xfffc))); // stvec
    h.setCsr(0x100, 0x6000n); // FS on, so FP code runs too
    for (let i = 0; i < 100; i++) {
      const k = h.run();
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
      if (k === ExitKind.Mmio && !h.exit.isWrite) h.exit.data.setBigUint64(0, BigInt(next()), true);
      else if (k === ExitKind.Hypercall) h.completeHypercall({ error: -2, value: 0 });
      else if (k === ExitKind.Halt) h.setInterrupt("ssip", true);
      else if (k === ExitKind.Shutdown) break;
    }
    assert(h.instret > 0n);
  }
  assert(kinds.size > 1, `exit kinds seen: ${[...kinds.keys()]}`);
});
