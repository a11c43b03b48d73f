/**
 * The snapshot file format (core/snapshot_format.ts) and its parser against hostile files: round
 * trips, zero-page skipping, compression, and a seeded fuzz of mutated and truncated files that
 * must each be refused with one `VmonError` line or parse, never crash.
 */

import assert from "node:assert/strict";
import { VmonError } from "../mod.ts";
import {
  decodeRam,
  decodeSnapshot,
  decodeValue,
  encodeRam,
  encodeSnapshot,
  encodeValue,
  HEADER_SIZE,
  loadRam,
} from "../core/snapshot_format.ts";
import { parseSnapshot } from "../core/snapshot_vm.ts";
import { loadSnapshotCodec } from "../core/snapshot_codec.ts";

// Encoding and decoding files directly needs the checksum and compression code.
await loadSnapshotCodec();

function ram(pages: number, touched: number[]): Uint8Array {
  const r = new Uint8Array(pages * 4096);
  for (const p of touched) r.fill(p + 1, p * 4096 + 100, p * 4096 + 200);
  return r;
}

Deno.test("snapshot format: RAM round trip leaves out zero pages", () => {
  const src = ram(37, [0, 5, 6, 7, 36]);
  const payload = encodeRam(0x8000_0000, src);
  const image = decodeRam(payload, { name: "t" });
  assert.equal(image.gpa, 0x8000_0000);
  assert.equal(image.size, 37 * 4096);
  assert.equal(image.pages.length, 5 * 4096);
  const dst = new Uint8Array(src.length);
  loadRam(image, dst);
  assert.deepEqual(dst, src);
});

Deno.test("snapshot format: sections round trip, plain and deflated", () => {
  for (const compress of [false, true]) {
    const sections = [
      { tag: "META", payload: new TextEncoder().encode("{}") },
      { tag: "RAM ", payload: encodeRam(0, ram(8, [3])) },
    ];
    const file = encodeSnapshot(sections, { compress });
    const back = decodeSnapshot(file, { name: "t" });
    assert.deepEqual(back.map((s) => s.tag), ["META", "RAM "]);
    assert.deepEqual(back[1]!.payload, sections[1]!.payload);
  }
});

Deno.test("snapshot format: values keep bytes, bigints and $ keys", () => {
  const v = {
    a: new Uint8Array([1, 2, 255]),
    n: 2n ** 64n - 1n,
    list: [1, "x", null, true, { $weird: 1 }],
  };
  assert.deepEqual(decodeValue(encodeValue(v), { name: "t", what: "v" }), v);
  assert.throws(() => encodeValue({ f: (() => 1) as never }), /not a snapshot value/);
  assert.throws(() => encodeValue({ x: NaN }), /not a finite number/);
});

Deno.test("snapshot format: bad headers are refused with one line", () => {
  const file = encodeSnapshot([{ tag: "META", payload: new Uint8Array(10) }]);
  const refuse = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(() => decodeSnapshot(bytes, { name: "f" }), (e: Error) => {
      assert.ok(e instanceof VmonError);
      assert.match(e.message, pattern);
      assert.ok(!e.message.includes("\n"));
      return true;
    });
  refuse(new Uint8Array(0), /truncated/);
  refuse(new TextEncoder().encode("ELF\x7f"), /not a vmon snapshot/);
  refuse(file.subarray(0, 40), /truncated/);
  refuse(file.subarray(0, file.length - 1), /truncated/);
  const longer = new Uint8Array(file.length + 1);
  longer.set(file);
  refuse(longer, /trailing bytes/);
  const body = file.slice();
  body[HEADER_SIZE + 30]! ^= 1;
  refuse(body, /corrupted/);
  const head = file.slice();
  head[20]! ^= 1;
  refuse(head, /header is corrupted/);
});

/** A small deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

Deno.test("snapshot format: fuzz: mutated files parse or are refused with one line", () => {
  const meta = {
    manifest: { hostport: { use: "rv64" }, platform: { use: "riscv-virt" } },
    arch: "riscv64",
    plugins: ["rv64"],
    regions: [{ gpa: 0, size: 8 * 4096 }],
    created: "",
  };
  const core = encodeValue({
    bus: { exits: {}, plugins: {}, errors: {}, unclaimed: {} },
    metrics: {},
  });
  const good = [
    { tag: "META", payload: new TextEncoder().encode(JSON.stringify(meta)) },
    { tag: "CORE", payload: core },
    { tag: "PLUG", payload: encodeValue({ name: "rv64", version: 1, state: { a: 1n } }) },
    { tag: "RAM ", payload: encodeRam(0, ram(8, [1, 2])) },
  ];
  for (const compress of [false, true]) {
    const file = encodeSnapshot(good, { compress });
    parseSnapshot(file, { name: "good" });
    const next = rng(compress ? 7 : 11);
    for (let round = 0; round < 1500; round++) {
      const kind = next() % 4;
      let bytes: Uint8Array;
      if (kind === 0) {
        bytes = file.subarray(0, next() % file.length);
      } else {
        bytes = file.slice();
        const flips = 1 + (next() % 8);
        for (let k = 0; k < flips; k++) bytes[next() % bytes.length] = next() & 0xff;
      }
      if (kind === 3) {
        // Mutated sections with valid checksums: the parser's checks behind them are reached.
        const sections = good.map((s) => {
          const p = s.payload.slice();
          if (p.length > 0 && next() % 2 === 0) p[next() % p.length] = next() & 0xff;
          return {
            tag: s.tag,
            payload: next() % 5 === 0 ? p.subarray(0, next() % (p.length + 1)) : p,
          };
        });
        bytes = encodeSnapshot(sections, { compress });
      }
      try {
        parseSnapshot(bytes, { name: "fuzz" });
      } catch (e) {
        assert.ok(e instanceof VmonError, `round ${round}: ${(e as Error).stack}`);
        assert.ok(!e.message.includes("\n"), e.message);
        assert.match(e.message, /^Cannot restore snapshot "fuzz": /);
      }
    }
  }
});
