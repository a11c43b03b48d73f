import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { VmonError } from "../../../core/errors.ts";
import { type KernelImage, parseKernel, planLayout } from "./loader.ts";
import { makeElf, makeImage } from "./_test_support.ts";

const RAM = { name: "k", ramBase: 0x80000000, ramSize: 64 << 20 };

Deno.test("loader: a Linux Image goes to RAM base + text_offset", () => {
  const img = makeImage(4096, { imageSize: 0x10000n });
  const k = parseKernel(img, RAM);
  strictEqual(k.format, "image");
  strictEqual(k.entry, 0x80200000);
  strictEqual(k.start, 0x80200000);
  strictEqual(k.end, 0x80210000);
  strictEqual(k.segments.length, 1);
  strictEqual(k.segments[0]!.data.length, img.length);
  strictEqual(k.segments[0]!.memSize, 0x10000);
});

Deno.test("loader: Image errors say what is wrong", () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /not a RISC-V Linux Image or ELF file/],
    [new TextEncoder().encode("#!/bin/sh\necho hi\n"), /not a RISC-V Linux Image or ELF file/],
    [Uint8Array.of(0x1f, 0x8b, 8, 0), /gzip-compressed/],
    [makeImage(64).map((b, i) => i >= 0x38 && i < 0x3c ? 0 : b), /lacks the "RSC\\x05" magic/],
    [makeImage(64).subarray(0, 0x3c), /truncated|lacks/],
    [makeImage(64, { flags: 1n }), /big-endian/],
    [makeImage(64, { textOffset: 0x200001n }), /text_offset 0x200001/],
    [makeImage(64, { textOffset: 1n << 40n }), /text_offset/],
    [makeImage(64, { imageSize: 10n }), /image_size 0xa is smaller than the file/],
    [makeImage(64, { imageSize: 64n << 20n }), /image larger than RAM/],
    [makeImage(64, { imageSize: 1n << 62n }), /image_size|larger than RAM/],
  ];
  for (const [bytes, re] of cases) {
    throws(() => parseKernel(bytes, RAM), (e: unknown) => {
      ok(e instanceof VmonError, String(e));
      ok(re.test(e.message), `${e.message} !~ ${re}`);
      ok(e.message.startsWith('Cannot load kernel image "k": '), e.message);
      return true;
    });
  }
  const arm = new Uint8Array(64);
  arm.set([0x41, 0x52, 0x4d, 0x64], 0x38);
  throws(() => parseKernel(arm, RAM), /ARM64 Image/);
  const bz = new Uint8Array(0x300);
  bz.set([0x48, 0x64, 0x72, 0x53], 0x202);
  throws(() => parseKernel(bz, RAM), /x86 bzImage/);
});

Deno.test("loader: ELF64 RISC-V executables load their PT_LOAD segments", () => {
  const elf = makeElf([
    { paddr: 0x80000000, data: new Uint8Array(100).fill(1) },
    { paddr: 0x80010000, data: new Uint8Array(10).fill(2), memsz: 0x2000 },
  ], { entry: 0x80000010 });
  const k = parseKernel(elf, RAM);
  strictEqual(k.format, "elf");
  strictEqual(k.entry, 0x80000010);
  strictEqual(k.start, 0x80000000);
  strictEqual(k.end, 0x80012000);
  deepStrictEqual(k.segments.map((s) => [s.gpa, s.data.length, s.memSize]), [
    [0x80000000, 100, 100],
    [0x80010000, 10, 0x2000],
  ]);
  ok(k.segments[1]!.data.every((b) => b === 2));
});

Deno.test("loader: ELF errors say what is wrong", () => {
  const seg = [{ paddr: 0x80000000, data: new Uint8Array(16) }];
  const cases: [Uint8Array, RegExp][] = [
    [makeElf(seg, { machine: 62 }), /ELF machine 62 \(x86-64\) is not RISC-V/],
    [makeElf(seg, { machine: 183 }), /AArch64/],
    [makeElf(seg, { cls: 1 }), /32-bit ELF/],
    [makeElf(seg, { type: 3 }), /not an executable/],
    [makeElf([]), /no program headers/],
    [makeElf([{ paddr: 0x1000, data: new Uint8Array(16) }]), /does not fit in RAM/],
    [makeElf([{ paddr: 0x83fffff0, data: new Uint8Array(32) }]), /does not fit in RAM/],
    [makeElf(seg, { entry: 0x90000000 }), /entry point 0x90000000 is not inside/],
    [
      makeElf([{ paddr: 0x80000000, data: new Uint8Array(32) }, {
        paddr: 0x80000010,
        data: new Uint8Array(32),
      }]),
      /overlaps another segment/,
    ],
    [makeElf(seg).subarray(0, 40), /ELF header is truncated/],
    [makeElf(seg).subarray(0, 100), /program headers lie outside the file/],
    [makeElf([{ paddr: 0x80000000, data: new Uint8Array(16), memsz: 8 }]), /p_filesz larger/],
  ];
  for (const [bytes, re] of cases) {
    throws(() => parseKernel(bytes, RAM), (e: unknown) => {
      ok(e instanceof VmonError, String(e));
      ok(re.test(e.message), `${e.message} !~ ${re}`);
      return true;
    });
  }
});

Deno.test("loader: fuzzed headers give a VmonError or a kernel inside RAM, never a crash", () => {
  let seed = 0x1234567;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0);
  const bases = [
    makeImage(256),
    makeElf([
      { paddr: 0x80000000, data: new Uint8Array(64) },
      { paddr: 0x80100000, data: new Uint8Array(64), memsz: 0x1000 },
    ]),
  ];
  let parsed = 0;
  for (let i = 0; i < 4000; i++) {
    const base = bases[i % 2]!;
    let bytes: Uint8Array;
    if (i % 10 === 0) {
      bytes = new Uint8Array(rand() % 300).map(() => rand() & 0xff); // pure garbage
    } else {
      bytes = base.slice(0, i % 7 === 0 ? rand() % base.length : base.length);
      const flips = 1 + (rand() % 6);
      for (let j = 0; j < flips && bytes.length > 0; j++) {
        // Mostly header bytes, where the fields are.
        const at = rand() % Math.min(bytes.length, rand() % 2 ? 0xe0 : bytes.length);
        bytes[at] = rand() & 0xff;
      }
    }
    let k: KernelImage;
    try {
      k = parseKernel(bytes, RAM);
    } catch (e) {
      ok(e instanceof VmonError, `input ${i}: ${e}`);
      continue;
    }
    parsed++;
    const ramEnd = RAM.ramBase + RAM.ramSize;
    for (const s of k.segments) {
      ok(s.gpa >= RAM.ramBase && s.gpa + s.memSize <= ramEnd, `input ${i}: segment outside RAM`);
      ok(s.data.length <= s.memSize, `input ${i}: data larger than memSize`);
    }
    ok(k.entry >= k.start && k.entry < k.end, `input ${i}: entry outside the kernel`);
  }
  ok(parsed > 100, `only ${parsed} fuzzed inputs parsed: the fuzzer is not reaching the parser`);
});

Deno.test("loader: layout puts the DTB at the top and the initrd below it", () => {
  const k = parseKernel(makeImage(4096, { imageSize: 0x1000000n }), RAM);
  const ramEnd = RAM.ramBase + RAM.ramSize;
  const l = planLayout(k, { ...RAM, dtbSize: 0x1234, initrdSize: 0x10001 });
  strictEqual(l.dtb, ramEnd - 0x2000);
  strictEqual(l.dtb % 8, 0);
  strictEqual(l.initrd!.end, l.initrd!.start + 0x10001);
  ok(l.initrd!.end <= l.dtb);
  strictEqual(l.initrd!.start % 4096, 0);
  deepStrictEqual(planLayout(k, { ...RAM, dtbSize: 100, initrdSize: 0 }), { dtb: ramEnd - 4096 });
  throws(
    () => planLayout(k, { ...RAM, dtbSize: 100, initrdSize: 48 << 20, initrdName: "big.cpio" }),
    /Cannot load initrd "big.cpio": 50331648 bytes do not fit between the kernel end/,
  );
  const huge = parseKernel(makeImage(64, { imageSize: BigInt((64 << 20) - 0x200000) }), RAM);
  throws(() => planLayout(huge, { ...RAM, dtbSize: 100, initrdSize: 0 }), /no room for the/);
});
