// The queued strategy's flush rule on the rv64 port's mechanisms (a small bare-metal Sv39 guest,
// no Linux): at sfence.vma or a satp write the port exits to the strategy only when a queued
// page-table page gained or widened a valid entry since its snapshot; a flush after changes that
// only remove or narrow mappings is handled by the port itself, which drops the shadow and TLB
// entries derived from the changed PTEs (so the removed mapping is gone at once) and keeps the
// page queued with its snapshot, the changes pending for the strategy's next batch. The
// strategy's batch is the port's diff (`diffQueue`, in C): the changed entries only, their shadow
// entries dropped.
// Skips (visibly) without the riscv64 cross assembler.

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ExitKind } from "../core/api/mod.ts";
import { assemble, haveCrossAssembler } from "../ffi/rv64/asm.ts";
import { PagingExitCode } from "../ffi/rv64/symbols.ts";
import { Rv64Port } from "../plugins/hostports/rv64/mod.ts";

const HAVE_AS = haveCrossAssembler();
if (!HAVE_AS) console.warn("queued fence tests skipped: riscv64-linux-gnu-as is not installed");

const BASE = 0x8000_0000;
const RAM = 1 << 20;
const ROOT = 0x8001_0000; // L2
const L1 = 0x8001_1000;
const L0 = 0x8001_2000;
const DATA = 0x8003_0000; // data pages at DATA, DATA + 0x1000, DATA + 0x2000
const LOG = 0x8002_0000; // trap log: count, then (scause, stval) pairs
// mapped through L0 entries IDX..IDX+2 (IDX: a shadow slot no code or data page of the test uses)
const IDX = 0x50;
const VA = 0x4000_0000 + IDX * 0x1000;
const PTE = L0 + 8 * IDX;

/** A table pointer, and a leaf with the given flag bits (A and D included). */
const table = (pa: number) => BigInt(pa >>> 12) << 10n | 1n;
const leaf = (pa: number, flags: number) => BigInt(pa >>> 12) << 10n | BigInt(flags | 0xc1);
const R = 2, W = 4, X = 8;

// The guest: identity map of RAM by a gigapage (root entry 2), VA..VA+0x3000 through L1/L0.
// Each step stores to the L0 page, fences and probes the mapping; the trap handler logs and
// skips a faulting access. a0..a2 keep the probed values.
const GUEST = `
  .text
  .globl _start
_start:
  la t0, handler
  csrw stvec, t0
  li t0, ${8n << 60n | BigInt(ROOT >>> 12)}
  csrw satp, t0
  sfence.vma
  li t0, ${VA}
  li s1, ${VA + 0x1000}
  li s2, ${VA + 0x2000}
  ld a0, 0(t0)          # fills the shadow and TLB from L0[IDX]
  ld a1, 0(s1)          # from L0[IDX + 1]
  sd a1, 0(s1)          # a store TLB entry from L0[IDX + 1]
  # step 1: remove L0[IDX] (the first store to L0 traps once and queues it), fence that page
  li t1, ${L0}
  sd zero, ${8 * IDX}(t1)
  sfence.vma t0
  ld a0, 0(t0)          # must fault: the removal is visible after the fence
  # step 2: narrow L0[IDX + 1] to read-only, fence everything
  ld t2, ${8 * IDX + 8}(t1)
  andi t2, t2, ~${W}
  sd t2, ${8 * IDX + 8}(t1)
  sfence.vma
  li t3, 0x77
  sd t3, 0(s1)          # must fault: no stale writable entry
  ld a1, 0(s1)          # still readable
  # step 3: a new valid entry (L0[IDX + 2]) must be validated: this fence exits
  li t2, ${leaf(DATA + 0x2000, R | W)}
  sd t2, ${8 * IDX + 16}(t1)
  sfence.vma s2
  ld a2, 0(s2)
  ecall
  .align 2
handler:
  li t5, ${LOG}
  ld t6, 0(t5)
  addi t6, t6, 1
  sd t6, 0(t5)
  slli t6, t6, 4
  add t6, t6, t5
  csrr t5, scause
  sd t5, -8(t6)
  csrr t5, stval
  sd t5, 0(t6)
  csrr t5, sepc
  addi t5, t5, 4
  csrw sepc, t5
  sret
`;

Deno.test({
  name: "queued flush rule: removals and narrowings are applied by the port without an exit",
  ignore: !HAVE_AS,
  fn() {
    const port = new Rv64Port({ harts: 1 });
    try {
      const buf = port.addMemoryRegion(BASE, RAM, { readonly: false });
      const ram = new Uint8Array(buf);
      const view = new DataView(buf);
      ram.set(assemble(GUEST));
      const put = (pa: number, v: bigint) => view.setBigUint64(pa - BASE, v, true);
      const get = (pa: number) => view.getBigUint64(pa - BASE, true);
      put(ROOT + 8 * 2, leaf(BASE & ~0x3fff_ffff, R | W | X)); // gigapage 0x80000000
      put(ROOT + 8 * 1, table(L1));
      put(L1, table(L0));
      put(PTE, leaf(DATA, R | W));
      put(PTE + 8, leaf(DATA + 0x1000, R | W));
      put(PTE + 24, leaf(DATA + 0x3000, R) & ~0xc0n); // A and D clear
      put(DATA, 0x1111n);
      put(DATA + 0x1000, 0x2222n);
      put(DATA + 0x2000, 0x3333n);
      const mech = port.paging;
      mech.setMode("queued");
      // no leaf ranges: the identity gigapage is larger than the 1 MiB of RAM
      mech.setExits(0, { sfence: true, satp: true, whileQueued: true });
      const hart = port.createVcpu(0);
      hart.setPc(BigInt(BASE));
      hart.setPrivilege("supervisor");
      const exits: string[] = [];
      let last = -1;
      for (let i = 0; i < 100; i++) {
        const k = hart.run();
        last = k;
        if (k === ExitKind.Interrupted) continue;
        if (k === ExitKind.Hypercall) break;
        assertEquals(k, ExitKind.Paging, `exit ${k}: ${hart.exit.detail}`);
        if (hart.exit.code === PagingExitCode.PtWrite) {
          exits.push(`pt-write ${(hart.exit.address - L0).toString(16)}`);
          assertEquals(mech.queuePage(L0), 0);
        } else if (hart.exit.code === PagingExitCode.Sfence) {
          exits.push("sfence");
          // what the strategy sees: the pending removal and narrowing, and the new entry
          const snap = new DataView(mech.snapshot(0).slice().buffer);
          assertEquals(snap.getBigUint64(8 * IDX, true), leaf(DATA, R | W));
          assertEquals(snap.getBigUint64(8 * IDX + 8, true), leaf(DATA + 0x1000, R | W));
          assertEquals(get(PTE), 0n);
          assertEquals(get(PTE + 8), leaf(DATA + 0x1000, R));
          assertEquals(get(PTE + 16), leaf(DATA + 0x2000, R | W));
          // an entry whose A and D bits the walker set is no change (the monitor plays walker)
          put(PTE + 24, get(PTE + 24) | 0xc0n);
          // the port's diff (C): exactly the three changed entries; it drops the one shadow
          // entry derived from them (VA + 0x1000, walked read-only since the narrowing)
          const drops = mech.counters().shadowDrops!;
          assertEquals(mech.diffQueue(), {
            pages: [L0],
            changes: [
              { address: PTE, old: leaf(DATA, R | W), value: 0n },
              { address: PTE + 8, old: leaf(DATA + 0x1000, R | W), value: leaf(DATA + 0x1000, R) },
              { address: PTE + 16, old: 0n, value: leaf(DATA + 0x2000, R | W) },
            ],
          });
          assertEquals(mech.counters().shadowDrops! - drops, 1);
          assertEquals(mech.diffQueue().changes.length, 3, "the diff leaves the queue as it is");
          // requeue keeps the pages still shadowed, queued with a fresh snapshot (ROOT: the
          // gigapage's translations derive from it), not L0 (the diff dropped its last
          // translation) nor a data page, and drops nothing
          assertEquals(mech.requeue([L0, DATA, ROOT]), 1);
          assertEquals(mech.diffQueue(), { pages: [ROOT], changes: [] });
          assertEquals(mech.counters().shadowDrops! - drops, 1);
          assertEquals(mech.releaseQueue(), 1);
          assertEquals(mech.diffQueue(), { pages: [], changes: [] });
        } else {
          exits.push(`code ${hart.exit.code}`);
        }
      }
      assertEquals(last, ExitKind.Hypercall);
      // one trap to queue L0, one fence exit (step 3); steps 1 and 2 fenced without an exit
      assertEquals(exits, ["pt-write 280", "sfence"]);
      const regs = hart.getRegisters();
      const log: bigint[] = [];
      for (let i = 0; i < Number(get(LOG)); i++) {
        log.push(get(LOG + 8 + 16 * i), get(LOG + 16 + 16 * i));
      }
      // a load page fault at VA (removed) and a store page fault at VA + 0x1000 (read-only now)
      assertEquals(log, [13n, BigInt(VA), 15n, BigInt(VA + 0x1000)]);
      assertEquals(regs.x11, 0x2222n);
      assertEquals(regs.x12, 0x3333n);
      assertEquals(get(DATA + 0x1000), 0x2222n);
    } finally {
      port.dispose();
    }
  },
});
