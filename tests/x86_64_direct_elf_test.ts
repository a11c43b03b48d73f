import { deepStrictEqual as assertEquals, ok, throws } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import { buildImage } from "../images/mod.ts";
import { parseElf64 } from "../plugins/platforms/x86-64-direct/elf.ts";
import { makeElf, rng } from "../plugins/platforms/x86-64-direct/_test_elf.ts";

const code = new Uint8Array([0x90, 0x90, 0xeb, 0xfe]);
const valid = () =>
  makeElf({
    entry: 0x200002,
    segments: [
      { paddr: 0x200000, data: code },
      { paddr: 0x201000, data: new Uint8Array([1, 2, 3]), memSize: 0x2000, flags: 6 },
    ],
  });

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  throws(() => parseElf64(bytes, { name: "t.elf" }), (e: unknown) => {
    ok(e instanceof VmonError, `expected VmonError, got ${e}`);
    ok(e.message.startsWith('Cannot load kernel image "t.elf": '), e.message);
    ok(pattern.test(e.message), `${e.message} does not match ${pattern}`);
    return true;
  });
}

Deno.test("parseElf64 reads entry and segments of a valid file", () => {
  const image = parseElf64(valid(), { name: "t.elf" });
  assertEquals(image.entry, 0x200002);
  assertEquals(image.segments.map((s) => [s.paddr, s.fileSize, s.memSize, s.flags]), [
    [0x200000, 4, 4, 5],
    [0x201000, 3, 0x2000, 6],
  ]);
  const first = image.segments[0]!;
  assertEquals(valid().subarray(first.offset, first.offset + 4), code);
});

Deno.test("parseElf64 rejects malformed headers with clear messages", () => {
  const mutate = (f: (b: Uint8Array, v: DataView) => void) => {
    const b = valid();
    f(b, new DataView(b.buffer));
    return b;
  };
  rejects(new TextEncoder().encode("MZ\x90\x00 not an elf"), /not an ELF file/);
  rejects(new Uint8Array(0), /not an ELF file/);
  rejects(valid().subarray(0, 40), /truncated ELF header \(40 bytes\)/);
  rejects(mutate((b) => b[4] = 1), /not a 64-bit ELF/);
  rejects(mutate((b) => b[5] = 2), /not a little-endian/);
  rejects(mutate((b) => b[6] = 9), /unsupported ELF version 9/);
  rejects(mutate((_, v) => v.setUint16(18, 243, true)), /built for RISC-V, not x86-64/);
  rejects(mutate((_, v) => v.setUint16(18, 999, true)), /built for machine 999/);
  rejects(mutate((_, v) => v.setUint16(16, 3, true)), /ET_DYN\) are not supported/);
  rejects(mutate((_, v) => v.setUint16(16, 1, true)), /not an executable \(ELF type 1\)/);
  rejects(mutate((_, v) => v.setUint16(56, 0, true)), /no program headers/);
  rejects(mutate((_, v) => v.setUint16(56, 1000, true)), /too many program headers/);
  rejects(mutate((_, v) => v.setUint16(54, 32, true)), /program header size 32/);
  rejects(mutate((_, v) => v.setBigUint64(32, 0xffffffffffffn, true)), /outside the file/);
  rejects(mutate((_, v) => v.setBigUint64(32, 2n ** 64n - 1n, true)), /outside the file/);
  rejects(mutate((_, v) => v.setUint16(56, 40, true)), /program headers lie outside the file/);
});

Deno.test("parseElf64 rejects bad segments", () => {
  rejects(
    makeElf({ entry: 0x200000, segments: [{ paddr: 0x200000, data: code, memSize: 2 }] }),
    /file size 0x4 larger than memory size 0x2/,
  );
  const bad = valid();
  new DataView(bad.buffer).setBigUint64(64 + 8, 0x10000n, true);
  rejects(bad, /segment 0 data \(offset 0x10000, 0x4 bytes\) lies outside the file/);
  rejects(
    makeElf({
      entry: 0x200000,
      segments: [{ paddr: 0x200000, vaddr: 0xffffffff80200000, data: code }],
    }),
    /virtual address 0xffffffff80200000 but physical address 0x200000/,
  );
  rejects(
    makeElf({
      entry: 0x200000,
      segments: [{ paddr: 0x200000, data: code, memSize: 0x2000 }, { paddr: 0x201000, data: code }],
    }),
    /segment 1 at 0x201000 overlaps the segment at 0x200000/,
  );
  rejects(
    makeElf({ entry: 0x200000, segments: [{ paddr: 2 ** 47 - 2, data: code }] }),
    /beyond addressable memory/,
  );
  rejects(
    makeElf({ entry: 0x200000, segments: [{ paddr: 0x200000, data: code, type: 4 }] }),
    /no loadable segments/,
  );
  rejects(
    makeElf({ entry: 0x300000, segments: [{ paddr: 0x200000, data: code }] }),
    /entry point 0x300000 is not inside an executable segment/,
  );
  rejects(
    makeElf({ entry: 0x200000, segments: [{ paddr: 0x200000, data: code, flags: 6 }] }),
    /entry point 0x200000 is not inside an executable segment/,
  );
});

function survives(bytes: Uint8Array): void {
  try {
    const image = parseElf64(bytes, { name: "fuzz" });
    for (const s of image.segments) {
      ok(s.offset + s.fileSize <= bytes.length, "segment data inside the file");
      ok(s.fileSize <= s.memSize);
    }
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`parseElf64 threw ${e}`, { cause: e });
  }
}

Deno.test("parseElf64 survives every truncation of a valid file", () => {
  const full = valid();
  for (let n = 0; n < full.length; n++) survives(full.subarray(0, n));
  for (let n = 0; n < full.length; n++) survives(full.slice(0, n));
});

Deno.test("parseElf64 survives random headers and random corruption", () => {
  const next = rng(0x5eed);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(64 + (next() % 400));
    for (let j = 0; j < b.length; j++) b[j] = next() & 0xff;
    if (i % 2 === 0) b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
    if (i % 4 === 0) new DataView(b.buffer).setUint16(18, 62, true);
    survives(b);
  }
  const base = valid();
  for (let i = 0; i < 3000; i++) {
    const b = base.slice();
    const flips = 1 + (next() % 6);
    for (let f = 0; f < flips; f++) b[next() % 180] = next() & 0xff;
    survives(b);
  }
});

Deno.test("parseElf64 reads the project's own hello guest", async () => {
  const image = await buildImage("hello");
  const parsed = parseElf64(Deno.readFileSync(image.kernel), { name: image.kernel });
  assertEquals(parsed.entry, 0x200000);
  ok(parsed.segments.every((s) => s.paddr >= 0x200000));
});
