import { GuestMemory, GuestMemoryError } from "./memory.ts";
import { VmonError } from "./errors.ts";

function eq(actual: unknown, expected: unknown): void {
  const f = (v: unknown) => JSON.stringify(v, (_k, x) => typeof x === "bigint" ? `${x}n` : x);
  if (f(actual) !== f(expected)) throw new Error(`expected ${f(expected)}, got ${f(actual)}`);
}

// deno-lint-ignore no-explicit-any
function throws(fn: () => unknown, cls: new (...args: any[]) => Error, message: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof cls)) throw new Error(`expected ${cls.name}, got ${e}`);
    if (!e.message.includes(message)) {
      throw new Error(`message ${JSON.stringify(e.message)} lacks ${JSON.stringify(message)}`);
    }
    return;
  }
  throw new Error(`expected ${cls.name} ${JSON.stringify(message)}`);
}

Deno.test("GuestMemory reads and writes little-endian integers", () => {
  const buf = new ArrayBuffer(0x1000);
  const mem = new GuestMemory();
  mem.addRegion(0x1000, buf, { name: "ram" });
  mem.writeU64(0x1008, 0x0102030405060708n);
  const raw = new Uint8Array(buf, 8, 8);
  eq([...raw], [8, 7, 6, 5, 4, 3, 2, 1]);
  eq(mem.readU8(0x1008), 8);
  eq(mem.readU16(0x1008), 0x0708);
  eq(mem.readU32(0x100c), 0x01020304);
  eq(mem.readU64(0x1008), 0x0102030405060708n);
  mem.writeU32(0x1000, 0xffffffff);
  eq(mem.readU32(0x1000), 0xffffffff);
  mem.writeU16(0x1000, 0x1_2345);
  eq(mem.readU16(0x1000), 0x2345);
  mem.writeU8(0x1002, 0x1ff);
  eq(mem.readU8(0x1002), 0xff);
  mem.writeU64(0x1010, -1n);
  eq(mem.readU64(0x1010), 0xffff_ffff_ffff_ffffn);
  eq(mem.size, 0x1000);
  eq(mem.regions, [{ gpa: 0x1000, size: 0x1000, readonly: false, name: "ram" }]);
});

Deno.test("GuestMemory is zero-copy over its buffers and view() shares memory", () => {
  const buf = new ArrayBuffer(64);
  const mem = new GuestMemory();
  mem.addRegion(0, buf);
  new Uint8Array(buf)[5] = 0x42;
  eq(mem.readU8(5), 0x42);
  const v = mem.view(4, 4);
  v[0] = 0x99;
  eq(new Uint8Array(buf)[4], 0x99);
  const copy = mem.read(4, 4);
  copy[0] = 0;
  eq(mem.readU8(4), 0x99);
  mem.write(60, new Uint8Array([1, 2, 3, 4]));
  eq([...mem.read(60, 4)], [1, 2, 3, 4]);
  eq(mem.read(10, 0).length, 0);
});

Deno.test("GuestMemory works over a SharedArrayBuffer", () => {
  const mem = new GuestMemory();
  mem.addRegion(0x8000_0000, new SharedArrayBuffer(4096));
  mem.writeU32(0x8000_0ffc, 7);
  eq(mem.readU32(0x8000_0ffc), 7);
});

Deno.test("GuestMemory errors name the address and the length", () => {
  const mem = new GuestMemory();
  mem.addRegion(0x1000, new ArrayBuffer(0x1000));
  throws(
    () => mem.readU64(0x1ffc),
    GuestMemoryError,
    "Guest memory access out of range: 0x1ffc (+8 bytes) is outside RAM",
  );
  throws(() => mem.readU8(0xfff), GuestMemoryError, "0xfff (+1 bytes)");
  throws(() => mem.writeU32(0x2000, 1), GuestMemoryError, "0x2000 (+4 bytes)");
  throws(() => mem.read(0x1800, 0x1000), GuestMemoryError, "0x1800 (+4096 bytes)");
  throws(() => mem.write(0x0, new Uint8Array(2)), GuestMemoryError, "0x0 (+2 bytes)");
  throws(() => mem.view(0x1ff0, 0x20), GuestMemoryError, "0x1ff0 (+32 bytes) is outside RAM");
  throws(() => mem.readU16(-1), GuestMemoryError, "-1 (+2 bytes)");
  throws(() => mem.readU16(1.5 + 0x1000), GuestMemoryError, "4097.5");
  throws(() => mem.readU32(NaN), GuestMemoryError, "NaN");
  throws(() => mem.read(0x1000, -1), GuestMemoryError, "(+-1 bytes)");
  throws(() => mem.read(0x1000, NaN), GuestMemoryError, "(+NaN bytes)");
  throws(() => mem.read(2 ** 60, 1), GuestMemoryError, "out of range");
  const e = (() => {
    try {
      mem.readU32(0x5000);
    } catch (e) {
      return e as GuestMemoryError;
    }
  })();
  eq([e?.gpa, e?.length, e instanceof VmonError], [0x5000, 4, true]);
  // A failed write touches nothing.
  mem.writeU8(0x1fff, 0xaa);
  throws(() => mem.write(0x1fff, new Uint8Array([1, 2])), GuestMemoryError, "0x1fff (+2 bytes)");
  eq(mem.readU8(0x1fff), 0xaa);
});

Deno.test("GuestMemory handles accesses crossing adjacent regions", () => {
  const mem = new GuestMemory();
  const a = new ArrayBuffer(0x1000), b = new ArrayBuffer(0x1000);
  mem.addRegion(0x2000, b, { name: "high" });
  mem.addRegion(0x1000, a, { name: "low", readonly: true });
  eq(mem.regions.map((r) => r.name), ["low", "high"]);
  eq(mem.size, 0x2000);
  mem.writeU64(0x1ffc, 0x1122334455667788n);
  eq([...new Uint8Array(a, 0xffc, 4)], [0x88, 0x77, 0x66, 0x55]);
  eq([...new Uint8Array(b, 0, 4)], [0x44, 0x33, 0x22, 0x11]);
  eq(mem.readU64(0x1ffc), 0x1122334455667788n);
  eq(mem.readU32(0x1ffe), 0x33445566);
  eq(mem.readU16(0x1fff), 0x4455);
  mem.writeU32(0x1ffd, 0xa1b2c3d4);
  eq(mem.readU32(0x1ffd), 0xa1b2c3d4);
  mem.writeU16(0x1fff, 0xbeef);
  eq(mem.readU16(0x1fff), 0xbeef);
  eq(mem.contains(0x1000, 0x2000), true);
  eq(mem.contains(0x1000, 0x2001), false);
  eq(mem.read(0x1ff0, 0x20).length, 0x20);
  throws(
    () => mem.view(0x1ff0, 0x20),
    GuestMemoryError,
    "0x1ff0 (+32 bytes) crosses a memory region boundary",
  );
  // A gap is not crossed.
  mem.addRegion(0x4000, new ArrayBuffer(0x1000));
  eq(mem.contains(0x2ffc, 8), false);
  throws(() => mem.readU64(0x2ffc), GuestMemoryError, "0x2ffc (+8 bytes) is outside RAM");
  mem.removeRegion(0x4000);
  eq(mem.regions.length, 2);
  throws(() => mem.removeRegion(0x4000), VmonError, "no region starts there");
});

Deno.test("GuestMemory refuses overlapping and malformed regions", () => {
  const mem = new GuestMemory();
  mem.addRegion(0x1000, new ArrayBuffer(0x1000), { name: "ram" });
  throws(
    () => mem.addRegion(0x1800, new ArrayBuffer(0x1000), { name: "rom" }),
    VmonError,
    'Cannot add memory region "rom" at 0x1800-0x27ff: overlaps "ram" at 0x1000-0x1fff',
  );
  throws(() => mem.addRegion(0x0, new ArrayBuffer(0x1001)), VmonError, "overlaps");
  throws(() => mem.addRegion(0x8000, new ArrayBuffer(0)), VmonError, "it is empty");
  throws(() => mem.addRegion(-4096, new ArrayBuffer(16)), VmonError, "bad guest address");
  mem.addRegion(0x0, new ArrayBuffer(0x1000));
  eq(mem.size, 0x2000);
});

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("GuestMemory matches a byte-array reference model under random accesses", () => {
  const rand = rng(12345);
  const int = (n: number) => Math.floor(rand() * n);
  // Address space 0..0x3000: RAM at [0x400,0xc00) + [0xc00,0x1400) (adjacent) and [0x2000,0x2800).
  const layout = [[0x400, 0x800], [0xc00, 0x800], [0x2000, 0x800]] as const;
  const SPACE = 0x3000;
  const ref = new Uint8Array(SPACE);
  const inRam = new Uint8Array(SPACE);
  const mem = new GuestMemory();
  for (const [gpa, size] of layout) {
    mem.addRegion(gpa, new ArrayBuffer(size));
    inRam.fill(1, gpa, gpa + size);
  }
  const ok = (a: number, n: number) => {
    if (n === 0) return a >= 0;
    if (a < 0 || a + n > SPACE) return false;
    for (let i = a; i < a + n; i++) if (!inRam[i]) return false;
    return true;
  };
  const refRead = (a: number, n: number) => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(ref[a + i] as number);
    return v;
  };
  const refWrite = (a: number, n: number, v: bigint) => {
    for (let i = 0; i < n; i++) {
      ref[a + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    }
  };
  // Bias addresses towards region edges so crossings and near misses are frequent.
  const edges = [0x400, 0xc00, 0x1400, 0x2000, 0x2800];
  const addr = () =>
    rand() < 0.5 ? (edges[int(edges.length)] as number) + int(17) - 8 : int(SPACE + 16) - 8;
  let faults = 0, crossings = 0;
  for (let iter = 0; iter < 20000; iter++) {
    const a = addr();
    const n = [1, 2, 4, 8][int(4)] as 1 | 2 | 4 | 8;
    const write = rand() < 0.5;
    const expectOk = ok(a, n);
    if (expectOk && a < 0xc00 && a + n > 0xc00) crossings++;
    const v = BigInt(int(2 ** 32)) << 32n | BigInt(int(2 ** 32));
    try {
      if (write) {
        if (n === 8) mem.writeU64(a, v);
        else if (n === 4) mem.writeU32(a, Number(v & 0xffffffffn));
        else if (n === 2) mem.writeU16(a, Number(v & 0xffffn));
        else mem.writeU8(a, Number(v & 0xffn));
        if (!expectOk) throw new Error(`write ${n} at ${a} should have failed`);
        refWrite(a, n, v);
      } else {
        const got = n === 8
          ? mem.readU64(a)
          : BigInt(n === 4 ? mem.readU32(a) : n === 2 ? mem.readU16(a) : mem.readU8(a));
        if (!expectOk) throw new Error(`read ${n} at ${a} should have failed`);
        if (got !== refRead(a, n)) throw new Error(`read ${n} at ${a}: ${got} != ${refRead(a, n)}`);
      }
    } catch (e) {
      if (!(e instanceof GuestMemoryError)) throw e;
      if (expectOk) throw new Error(`access ${n} at ${a} failed: ${e.message}`);
      faults++;
    }
    if (iter % 97 === 0) {
      const len = int(64);
      const b = mem.contains(a, len);
      if (b !== ok(a, len)) throw new Error(`contains(${a}, ${len}) = ${b}`);
      if (b) eq([...mem.read(a, len)], [...ref.subarray(a, a + len)]);
    }
  }
  if (faults < 100 || crossings < 100) {
    throw new Error(`weak coverage: ${faults} faults, ${crossings} crossings`);
  }
});
