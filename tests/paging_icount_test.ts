// Under clock=icount, interrupts land at the same retired-instruction count whatever exits the
// monitor takes (ffi/rv64/cpu.c, the rule above rv64_run_hart): a small bare-metal guest takes
// timer interrupts while it stores to a page and runs straight-line code; each interrupt logs
// instret and sepc. The log must be identical when no store exits, when every store to the page
// exits to the monitor (a write-protected page whose stores the monitor performs itself, the
// shape of the shadow and queued strategies' page-table traps) and when slices are short, and
// identical in the end state too. Skips (visibly) without the riscv64 cross assembler.

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { ExitKind } from "../core/api/mod.ts";
import { assemble, haveCrossAssembler } from "../ffi/rv64/asm.ts";
import { PagingExitCode } from "../ffi/rv64/symbols.ts";
import { Rv64Port } from "../plugins/hostports/rv64/mod.ts";

const HAVE_AS = haveCrossAssembler();
if (!HAVE_AS) console.warn("icount interrupt tests skipped: riscv64-linux-gnu-as is not installed");

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const DATA = 0x8004_0000; // the page the guest stores to (write-protected in one run)
const LOG = 0x8005_0000; // (instret, sepc) per interrupt
const INTERRUPTS = 40;
const SBI_TIME = 0x54494d45;
const DONE = 99;

// Bare (satp 0) S-mode guest. The loop stores twice per round with straight-line code between
// (so exits fall between block points); the handler logs, re-arms the timer through SBI TIME
// (an SBI exit) 97 ticks ahead and returns.
const GUEST = `
  .text
  .globl _start
_start:
  la t0, handler
  csrw stvec, t0
  li t0, 32
  csrs sie, t0
  csrsi sstatus, 2
  li s0, ${DATA}
  li s1, 0
  li s2, ${INTERRUPTS}
  li s3, 0
loop:
  sd s1, 0(s0)
  addi s1, s1, 1
  slli t1, s1, 3
  xor t2, t1, s1
  add t3, t2, t1
  sub t4, t3, s1
  andi t5, t4, 255
  or t6, t5, t2
  sd t6, 8(s0)
  sw t5, 16(s0)
  addi t1, t1, 7
  xor t2, t2, t1
  blt s3, s2, loop
  li a7, ${DONE}
  ecall
  .align 2
handler:
  csrr t0, instret
  csrr t1, sepc
  li t2, ${LOG}
  slli t3, s3, 4
  add t2, t2, t3
  sd t0, 0(t2)
  sd t1, 8(t2)
  addi s3, s3, 1
  csrr a0, time
  addi a0, a0, 97
  li a7, ${SBI_TIME}
  li a6, 0
  ecall
  sret
`;

interface Outcome {
  log: bigint[];
  instret: bigint;
  s1: bigint;
  storeExits: number;
  slices: number;
}

function runGuest(options: { protect: boolean; slice: number }): Outcome {
  const port = new Rv64Port({ harts: 1, clock: "icount", slice: options.slice });
  try {
    const buf = port.addMemoryRegion(BASE, RAM, { readonly: false });
    const view = new DataView(buf);
    new Uint8Array(buf).set(assemble(GUEST));
    if (options.protect) port.paging.writeProtect(DATA, 4096, true);
    const hart = port.createVcpu(0);
    hart.setPc(BigInt(BASE));
    hart.setPrivilege("supervisor");
    hart.setTimer(53n);
    let storeExits = 0, slices = 0;
    for (let i = 0; i < 1_000_000; i++) {
      const k = hart.run();
      if (k === ExitKind.Interrupted) {
        slices++;
        continue;
      }
      if (k === ExitKind.Paging) {
        assertEquals(hart.exit.code, PagingExitCode.WriteProtected);
        // the monitor performs the store itself and steps over it (write-protect emulation)
        const at = hart.exit.address - BASE;
        const bytes = new Uint8Array(8);
        new DataView(bytes.buffer).setBigUint64(0, hart.exit.data.getBigUint64(0, true), true);
        new Uint8Array(buf, at, hart.exit.size).set(bytes.subarray(0, hart.exit.size));
        port.paging.skipInstruction(0);
        storeExits++;
        continue;
      }
      assertEquals(k, ExitKind.Hypercall, `exit ${k}: ${hart.exit.detail}`);
      const regs = hart.getRegisters();
      if (regs.x17 === BigInt(DONE)) break;
      assertEquals(regs.x17, BigInt(SBI_TIME));
      hart.setTimer(regs.x10!);
      hart.completeHypercall({ error: 0, value: 0 });
    }
    const log: bigint[] = [];
    for (let i = 0; i < 2 * INTERRUPTS; i++) log.push(view.getBigUint64(LOG - BASE + 8 * i, true));
    return { log, instret: hart.instret, s1: hart.getRegisters().x9!, storeExits, slices };
  } finally {
    port.dispose();
  }
}

Deno.test({
  name: "icount: interrupts land at the same instruction whatever exits and slices occur",
  ignore: !HAVE_AS,
  fn() {
    const quiet = runGuest({ protect: false, slice: 1_000_000 });
    const exiting = runGuest({ protect: true, slice: 1_000_000 });
    const sliced = runGuest({ protect: true, slice: 1000 });
    // the runs differ in what the monitor did...
    assertEquals(quiet.storeExits, 0);
    ok(exiting.storeExits > 3 * INTERRUPTS, `${exiting.storeExits} store exits`);
    ok(sliced.slices > exiting.slices, `${sliced.slices} vs ${exiting.slices} slices`);
    // ...and not in what the guest saw
    ok(quiet.log.every((v) => v !== 0n), "every interrupt was logged");
    assertEquals(exiting.log, quiet.log);
    assertEquals(sliced.log, quiet.log);
    assertEquals([exiting.instret, exiting.s1], [quiet.instret, quiet.s1]);
    assertEquals([sliced.instret, sliced.s1], [quiet.instret, quiet.s1]);
  },
});
