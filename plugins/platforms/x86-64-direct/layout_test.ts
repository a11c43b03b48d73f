import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import {
  buildGdt,
  buildHandler,
  buildIdt,
  buildIoBitmap,
  buildPageTables,
  buildStubs,
  buildTss,
  encodeInterruptGate,
  encodeSegmentDescriptor,
  encodeTssDescriptor,
  exceptionStackTop,
  FAULT_PORT,
  LAYOUT,
  MAX_MAPPED,
  MAX_VCPUS,
  SELECTORS,
  taskSegment,
  tssAddress,
  tssLimit,
} from "./layout.ts";

const u64 = (b: Uint8Array, off: number) =>
  new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);

Deno.test("segment descriptors match the well-known flat encodings", () => {
  assertEquals(
    encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0x9b, flags: 0xa }),
    0x00af9b000000ffffn,
  );
  assertEquals(
    encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0x93, flags: 0xc }),
    0x00cf93000000ffffn,
  );
  assertEquals(
    encodeSegmentDescriptor({ base: 0x12345678, limit: 0xabcde, access: 0x89, flags: 0 }),
    0x120a89345678bcden,
  );
  const gdt = buildGdt(2);
  assertEquals(gdt.length, SELECTORS.tss + 32);
  assertEquals(u64(gdt, 0), 0n);
  assertEquals(u64(gdt, SELECTORS.kernelCode), 0x00af9b000000ffffn);
  assertEquals(u64(gdt, SELECTORS.kernelData), 0x00cf93000000ffffn);
  assertEquals(u64(gdt, SELECTORS.userData & ~3), 0x00cff3000000ffffn);
  assertEquals(u64(gdt, SELECTORS.userCode & ~3), 0x00affb000000ffffn);
});

Deno.test("TSS descriptors, TSSs and the I/O bitmap agree", () => {
  const [low, high] = encodeTssDescriptor(0x1_2345_6000, 0x2067);
  assertEquals(low & 0xffffn, 0x2067n); // limit 15:0
  assertEquals((low >> 16n) & 0xffffffn, 0x456000n); // base 23:0
  assertEquals((low >> 40n) & 0xffn, 0x8bn); // present, busy 64-bit TSS
  assertEquals((low >> 56n) & 0xffn, 0x23n); // base 31:24
  assertEquals(high, 1n); // base 63:32
  const gdt = buildGdt(3);
  for (let id = 0; id < 3; id++) {
    const d = u64(gdt, SELECTORS.tss + 16 * id);
    assertEquals((d >> 16n) & 0xffffffn, BigInt(tssAddress(id)));
    assertEquals(d & 0xffffn, BigInt(tssLimit(id) & 0xffff));
    const tss = buildTss(id);
    const v = new DataView(tss.buffer);
    assertEquals(v.getBigUint64(4, true), BigInt(exceptionStackTop(id))); // RSP0
    assertEquals(v.getBigUint64(36, true), BigInt(exceptionStackTop(id))); // IST1
    const ioBase = v.getUint16(102, true);
    assertEquals(tssAddress(id) + ioBase, LAYOUT.ioBitmap);
    // The limit covers the 8 KiB bitmap and its final 0xff byte.
    assertEquals(tssAddress(id) + tssLimit(id), LAYOUT.ioBitmap + 0x2000);
    assertEquals(taskSegment(id).limit, tssLimit(id));
  }
  const bitmap = buildIoBitmap();
  assertEquals(bitmap.length, 0x2001);
  ok(bitmap.subarray(0, 0x2000).every((b) => b === 0), "every port allowed");
  assertEquals(bitmap[0x2000], 0xff);
});

Deno.test("interrupt gates point at the stubs on IST 1", () => {
  const [low, high] = encodeInterruptGate(0x1_0000_3a50);
  assertEquals(low & 0xffffn, 0x3a50n);
  assertEquals((low >> 16n) & 0xffffn, BigInt(SELECTORS.kernelCode));
  assertEquals((low >> 32n) & 7n, 1n);
  assertEquals((low >> 40n) & 0xffn, 0x8en);
  assertEquals((low >> 48n) & 0xffffn, 0n);
  assertEquals(high, 1n);
  const idt = buildIdt();
  assertEquals(idt.length, 4096);
  for (const v of [0, 13, 14, 255]) {
    const gate = u64(idt, v * 16);
    assertEquals(gate & 0xffffn, BigInt(LAYOUT.stubs + 16 * v));
  }
});

Deno.test("exception stubs push the vector (and a zero error code where needed)", () => {
  const stubs = buildStubs();
  const v = new DataView(stubs.buffer);
  const jumpTarget = (at: number) => LAYOUT.stubs + at + 5 + v.getInt32(at + 1, true);
  // #UD (6): push 0; push 6; jmp handler
  assertEquals([...stubs.subarray(6 * 16, 6 * 16 + 7)], [0x6a, 0, 0x68, 6, 0, 0, 0]);
  assertEquals(stubs[6 * 16 + 7], 0xe9);
  assertEquals(jumpTarget(6 * 16 + 7), LAYOUT.handler);
  // #PF (14): the CPU pushes the error code; push 14; jmp handler
  assertEquals([...stubs.subarray(14 * 16, 14 * 16 + 5)], [0x68, 14, 0, 0, 0]);
  assertEquals(jumpTarget(14 * 16 + 5), LAYOUT.handler);
  assertEquals(jumpTarget(255 * 16 + 7), LAYOUT.handler);
  const handler = buildHandler();
  ok(handler.length < 0x1000, "the handler fits its page");
  // It ends halted with interrupts off, and its last port write is the vector to the commit port.
  assertEquals([...handler.subarray(-4)], [0xfa, 0xf4, 0xeb, 0xfc]);
  assertEquals([...handler.subarray(-12, -8)], [0x66, 0xba, FAULT_PORT & 0xff, FAULT_PORT >> 8]);
});

Deno.test("page tables identity-map with 2 MiB pages, the platform area supervisor-only", () => {
  const [pml4, pdpt, pd] = buildPageTables(2 ** 32 + 1);
  assertEquals(pml4!.gpa, LAYOUT.pml4);
  assertEquals(u64(pml4!.bytes, 0), BigInt(LAYOUT.pdpt) | 0x27n);
  assertEquals(u64(pml4!.bytes, 8), 0n);
  for (let g = 0; g < 5; g++) {
    assertEquals(u64(pdpt!.bytes, g * 8), BigInt(LAYOUT.pd + g * 4096) | 0x27n);
  }
  assertEquals(u64(pdpt!.bytes, 5 * 8), 0n);
  assertEquals(pd!.bytes.length, 5 * 4096);
  assertEquals(u64(pd!.bytes, 0), 0xe3n); // 0: present, writable, supervisor, 2 MiB
  assertEquals(u64(pd!.bytes, 8), 0x200000n | 0xe7n); // 2 MiB: user
  const last = 5 * 512 - 1;
  assertEquals(u64(pd!.bytes, last * 8), BigInt(last) * 0x200000n | 0xe7n);
});

Deno.test("the layout's areas do not overlap at the largest machine", () => {
  ok(SELECTORS.tss + 16 * MAX_VCPUS <= LAYOUT.idt - LAYOUT.gdt, "GDT fits");
  ok(LAYOUT.stubs + 256 * 16 <= LAYOUT.handler);
  ok(LAYOUT.handler + buildHandler().length <= LAYOUT.tss);
  ok(tssAddress(MAX_VCPUS - 1) + 104 <= LAYOUT.ioBitmap, "TSSs end before the bitmap");
  ok(LAYOUT.ioBitmap + 0x2001 <= LAYOUT.pml4);
  ok(LAYOUT.pdpt + 4096 <= LAYOUT.pd);
  ok(LAYOUT.pd + (MAX_MAPPED / 2 ** 30) * 4096 <= LAYOUT.pdEnd);
  ok(LAYOUT.pdEnd <= LAYOUT.exceptionStacks);
  ok(exceptionStackTop(MAX_VCPUS - 1) <= LAYOUT.imageStart);
  ok(tssLimit(0) <= 0xfffff && LAYOUT.ioBitmap - tssAddress(0) <= 0xffff, "16-bit I/O map base");
});
