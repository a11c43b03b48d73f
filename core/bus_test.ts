import { ExitBus, SBI_ERR_NOT_SUPPORTED } from "./bus.ts";
import { ExitKind, type ExitRecord, type RangeHandler } from "./api/mod.ts";
import { VmonError } from "./errors.ts";
import { Tracer } from "./trace.ts";

function eq(actual: unknown, expected: unknown): void {
  const f = (v: unknown) => JSON.stringify(v, (_k, x) => typeof x === "bigint" ? `${x}n` : x);
  if (f(actual) !== f(expected)) throw new Error(`expected ${f(expected)}, got ${f(actual)}`);
}

function throwsVmon(fn: () => unknown, message: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`expected VmonError, got ${e}`);
    if (e.message !== message) {
      throw new Error(
        `got message ${JSON.stringify(e.message)}, expected ${JSON.stringify(message)}`,
      );
    }
    return;
  }
  throw new Error(`expected ${JSON.stringify(message)}`);
}

/** An exit record like a host port fills: a 64-byte data area. */
function exitRecord(
  kind: number,
  address: number,
  size: number,
  opts: { write?: boolean; count?: number; bytes?: number[] } = {},
): ExitRecord {
  const buf = new Uint8Array(64);
  buf.set(opts.bytes ?? []);
  return {
    kind: kind as ExitRecord["kind"],
    address,
    size,
    isWrite: opts.write ?? false,
    count: opts.count ?? 1,
    data: new DataView(buf.buffer),
    nr: 0,
    fid: 0,
    args: new BigUint64Array(6),
    code: 0,
    pc: 0n,
    detail: "",
  };
}

/** A register file device that records every call. */
function recorder(calls: string[], regs = new Map<number, number>()): RangeHandler {
  return {
    read(offset, size, vcpu) {
      calls.push(`r${size}@${offset} v${vcpu}`);
      return regs.get(offset) ?? 0;
    },
    write(offset, size, value, vcpu) {
      calls.push(`w${size}@${offset}=${value.toString(16)} v${vcpu}`);
      regs.set(offset, value);
    },
  };
}

Deno.test("ExitBus reservations (RAM) refuse devices; occupant reports what holds a range", () => {
  const bus = new ExitBus();
  const ram = bus.reserve("MMIO", { base: 0x8000_0000, size: 0x1000_0000, label: "RAM" });
  bus.forPlugin("plic").registerMmio(0x0c00_0000, 0x60_0000, recorder([]));
  throwsVmon(
    () => bus.forPlugin("uart16550").registerMmio(0x8000_1000, 0x100, recorder([])),
    'Cannot place device "uart16550" at 0x80001000-0x800010ff: overlaps RAM at 0x80000000-0x8fffffff',
  );
  throwsVmon(
    () => bus.reserve("MMIO", { base: 0x0c10_0000, size: 0x1000, label: "ROM" }),
    'Cannot place ROM at 0xc100000-0xc100fff: overlaps "plic" at 0xc000000-0xc5fffff',
  );
  eq(bus.occupant("MMIO", 0x7fff_f000, 0x2000), {
    owner: "RAM",
    reserved: true,
    base: 0x8000_0000,
    size: 0x1000_0000,
  });
  eq(bus.occupant("MMIO", 0x0c5f_ff00, 0x20_0000)?.owner, "plic");
  eq(bus.occupant("MMIO", 0x1000_0000, 0x1000), undefined);
  eq(bus.occupant("PIO", 0x8000_0000, 1), undefined);
  // A reservation is never dispatched: the access is unclaimed.
  eq(bus.access({ space: "MMIO", address: 0x8000_0000, size: 4 }).claimed, false);
  ram.unregister();
  bus.forPlugin("uart16550").registerMmio(0x8000_1000, 0x100, recorder([]));
});

Deno.test("ExitBus refuses port I/O to a plugin bound without it", () => {
  const bus = new ExitBus();
  throwsVmon(
    () => bus.forPlugin("uart16550", { pio: false }).registerPio(0x3f8, 8, recorder([])),
    'Cannot place device "uart16550" at ports 0x3f8-0x3ff: this machine has no port I/O (its devices are placed by MMIO address)',
  );
  bus.forPlugin("uart16550", { pio: false }).registerMmio(0x1000_0000, 8, recorder([]));
  eq(bus.ranges().length, 1);
});

Deno.test("ExitBus refuses overlapping ranges naming both owners", () => {
  const bus = new ExitBus();
  bus.forPlugin("uart16550").registerMmio(0x1000_0000, 8, recorder([]));
  throwsVmon(
    () => bus.forPlugin("virtio-mmio").registerMmio(0x1000_0000, 0x100, recorder([])),
    'Cannot place device "virtio-mmio" at 0x10000000-0x100000ff: overlaps "uart16550" at 0x10000000-0x10000007',
  );
  throwsVmon(
    () => bus.forPlugin("x").registerMmio(0xfff_fff8, 9, recorder([])),
    'Cannot place device "x" at 0xffffff8-0x10000000: overlaps "uart16550" at 0x10000000-0x10000007',
  );
  // Adjacent is fine, and PIO is a separate space.
  bus.forPlugin("virtio-mmio").registerMmio(0x1000_0008, 0x100, recorder([]));
  bus.forPlugin("pio-dev").registerPio(0x1000, 8, recorder([]));
  throwsVmon(
    () => bus.forPlugin("uart0").registerPio(0x1004, 4, recorder([])),
    'Cannot place device "uart0" at ports 0x1004-0x1007: overlaps "pio-dev" at 0x1000-0x1007',
  );
  throwsVmon(
    () => bus.forPlugin("big").registerPio(0xfff8, 16, recorder([])),
    'Cannot register PIO range 0xfff8-0x10007 for "big": beyond the last PIO address 0xffff',
  );
  throwsVmon(
    () => bus.forPlugin("z").registerPio(0x10, 0, recorder([])),
    'Cannot register PIO range for "z": base and size must be whole numbers with size > 0, got base 16, size 0',
  );
  throwsVmon(
    () => bus.forPlugin("z").registerPio(0x10, 1, {} as RangeHandler),
    'Cannot register PIO range 0x10-0x10 for "z": the handler needs read and write functions',
  );
  eq(bus.ranges().map((r) => `${r.space} ${r.base.toString(16)}+${r.size} ${r.owner}`), [
    "PIO 1000+8 pio-dev",
    "MMIO 10000000+8 uart16550",
    "MMIO 10000008+256 virtio-mmio",
  ]);
  eq(bus.ownerOf(0x1000_0010), "virtio-mmio");
  eq(bus.ownerOf(0x1003, { space: "PIO" }), "pio-dev");
  eq(bus.ownerOf(0x2000_0000), undefined);
});

Deno.test("ExitBus hands handlers offsets and stores read values little-endian", () => {
  const bus = new ExitBus();
  const calls: string[] = [];
  const regs = new Map([[4, 0xa1b2c3d4], [2, 0xbeef], [7, 0x1ff]]);
  bus.forPlugin("dev").registerPio(0x3f8, 8, recorder(calls, regs));
  const w = exitRecord(ExitKind.Io, 0x3f9, 1, { write: true, bytes: [0x48] });
  eq(bus.dispatchIo(w, 2), true);
  const r4 = exitRecord(ExitKind.Io, 0x3fc, 4);
  eq(bus.dispatchIo(r4, 0), true);
  eq(r4.data.getUint32(0, true), 0xa1b2c3d4);
  const r2 = exitRecord(ExitKind.Io, 0x3fa, 2);
  bus.dispatchIo(r2, 0);
  eq([r2.data.getUint8(0), r2.data.getUint8(1)], [0xef, 0xbe]);
  // Only the low `size` bytes of a returned value are stored.
  const r1 = exitRecord(ExitKind.Io, 0x3ff, 1, { bytes: [0, 0x77] });
  bus.dispatchIo(r1, 0);
  eq([r1.data.getUint8(0), r1.data.getUint8(1)], [0xff, 0x77]);
  const w2 = exitRecord(ExitKind.Io, 0x3f8, 2, { write: true, bytes: [0x34, 0x12] });
  bus.dispatchIo(w2, 1);
  eq(calls, ["w1@1=48 v2", "r4@4 v0", "r2@2 v0", "r1@7 v0", "w2@0=1234 v1"]);
});

Deno.test("ExitBus splits 8-byte accesses unless the handler has read64/write64", () => {
  const bus = new ExitBus();
  const calls: string[] = [];
  bus.forPlugin("split").registerMmio(
    0x1000,
    0x100,
    recorder(calls, new Map([[0x10, 0x11223344], [0x14, 0x55667788]])),
  );
  const r = exitRecord(ExitKind.Mmio, 0x1010, 8);
  bus.dispatchMmio(r, 0);
  eq(r.data.getBigUint64(0, true), 0x5566778811223344n);
  const w = exitRecord(ExitKind.Mmio, 0x1020, 8, { write: true, bytes: [1, 2, 3, 4, 5, 6, 7, 8] });
  bus.dispatchMmio(w, 0);
  eq(calls, ["r4@16 v0", "r4@20 v0", "w4@32=4030201 v0", "w4@36=8070605 v0"]);

  const wide: string[] = [];
  bus.forPlugin("wide").registerMmio(0x2000, 0x100, {
    read: () => {
      throw new Error("narrow read used");
    },
    write: () => {
      throw new Error("narrow write used");
    },
    read64: (offset) => {
      wide.push(`r64@${offset}`);
      return 0xfedcba9876543210n;
    },
    write64: (offset, value) => void wide.push(`w64@${offset}=${value.toString(16)}`),
  });
  const r64 = exitRecord(ExitKind.Mmio, 0x2008, 8);
  eq(bus.dispatchMmio(r64, 0), true);
  eq(r64.data.getBigUint64(0, true), 0xfedcba9876543210n);
  bus.dispatchMmio(
    exitRecord(ExitKind.Mmio, 0x2010, 8, { write: true, bytes: [0xff, 0, 0, 0, 0, 0, 0, 0x80] }),
    0,
  );
  eq(wide, ["r64@8", "w64@16=80000000000000ff"]);
});

Deno.test("ExitBus handles string I/O over the data area", () => {
  const bus = new ExitBus();
  const calls: string[] = [];
  let next = 0x10;
  bus.forPlugin("ata").registerPio(0x1f0, 8, {
    read: (offset, size) => {
      calls.push(`r${size}@${offset}`);
      return next++;
    },
    write: (offset, size, value) => void calls.push(`w${size}@${offset}=${value.toString(16)}`),
  });
  const outs = exitRecord(ExitKind.Io, 0x1f0, 2, {
    write: true,
    count: 3,
    bytes: [1, 0, 2, 0, 3, 0],
  });
  bus.dispatchIo(outs, 0);
  const ins = exitRecord(ExitKind.Io, 0x1f0, 2, { count: 3 });
  bus.dispatchIo(ins, 0);
  eq(calls, ["w2@0=1", "w2@0=2", "w2@0=3", "r2@0", "r2@0", "r2@0"]);
  eq([...new Uint8Array(ins.data.buffer, 0, 8)], [0x10, 0, 0x11, 0, 0x12, 0, 0, 0]);
  // A count larger than the data area is clamped to it.
  const huge = exitRecord(ExitKind.Io, 0x1f0, 4, { count: 1000 });
  calls.length = 0;
  bus.dispatchIo(huge, 0);
  eq(calls.length, 16);
  eq(bus.counters().plugins, { ata: 3 });
});

Deno.test("ExitBus unclaimed accesses read all-ones, ignore writes and are counted", () => {
  const lines: string[] = [];
  const bus = new ExitBus({ tracer: new Tracer("io,mmio", { write: (l) => lines.push(l) }) });
  bus.forPlugin("dev").registerMmio(0x1000, 8, recorder([]));
  const r = exitRecord(ExitKind.Mmio, 0x5000, 4);
  eq(bus.dispatchMmio(r, 0), false);
  eq(r.data.getUint32(0, true), 0xffffffff);
  eq(r.data.getUint8(4), 0);
  // Starting inside a range but running past its end is unclaimed too.
  const past = exitRecord(ExitKind.Mmio, 0x1006, 4);
  eq(bus.dispatchMmio(past, 0), false);
  eq(past.data.getUint32(0, true), 0xffffffff);
  eq(bus.dispatchMmio(exitRecord(ExitKind.Mmio, 0x1000, 3), 0), false); // bad size
  eq(bus.dispatchIo(exitRecord(ExitKind.Io, 0x80, 1, { write: true, bytes: [7] }), 1), false);
  const rs = exitRecord(ExitKind.Io, 0x60, 1, { count: 4 });
  bus.dispatchIo(rs, 0);
  eq([...new Uint8Array(rs.data.buffer, 0, 5)], [0xff, 0xff, 0xff, 0xff, 0]);
  const c = bus.counters();
  eq(c.exits, { io: 2, mmio: 3 });
  eq(c.plugins, { unclaimed: 5 });
  eq(c.unclaimed, { io: 2, mmio: 3 });
  eq(lines, [
    "[vcpu0] mmio read 0x5000 size 4 = 0xffffffff -> unclaimed",
    "[vcpu0] mmio read 0x1006 size 4 = 0xffffffff -> unclaimed",
    "[vcpu0] mmio read 0x1000 size 3 = ? -> unclaimed",
    "[vcpu1] io out 0x80 size 1 = 0x7 -> unclaimed",
    "[vcpu0] io in 0x60 size 1 count 4 = 0xff -> unclaimed",
  ]);
});

Deno.test("ExitBus.access dispatches one access like an exit of one access", () => {
  const lines: string[] = [];
  const bus = new ExitBus({ tracer: new Tracer("io,mmio", { write: (l) => lines.push(l) }) });
  const calls: string[] = [];
  const regs = new Map([[0, 0x1234_5678], [4, 0x9abc_def0]]);
  bus.forPlugin("dev").registerMmio(0x1000, 8, recorder(calls, regs));
  bus.forPlugin("port").registerPio(0x80, 2, recorder(calls));
  eq(bus.access({ space: "MMIO", address: 0x1004, size: 2 }, 3), {
    claimed: true,
    value: 0xdef0n,
  });
  // 8 bytes without read64: split, low word first.
  eq(bus.access({ space: "MMIO", address: 0x1000, size: 8 }).value, 0x9abc_def0_1234_5678n);
  eq(bus.access({ space: "PIO", address: 0x81, size: 1, write: 0x1ff }), {
    claimed: true,
    value: 0xffn,
  });
  eq(bus.access({ space: "MMIO", address: 0x1000, size: 8, write: 2 ** 32 + 7 }).claimed, true);
  eq(calls, [
    "r2@4 v3",
    "r4@0 v0",
    "r4@4 v0",
    "w1@1=ff v0",
    "w4@0=7 v0",
    "w4@4=1 v0",
  ]);
  // Unclaimed: all ones over the width, 8 bytes included; past a range's end too.
  eq(bus.access({ space: "MMIO", address: 0x2000, size: 8 }), {
    claimed: false,
    value: 0xffff_ffff_ffff_ffffn,
  });
  eq(bus.access({ space: "MMIO", address: 0x1006, size: 4 }).value, 0xffff_ffffn);
  eq(bus.access({ space: "PIO", address: 0x90, size: 2, write: 5 }).claimed, false);
  const c = bus.counters();
  eq(c.exits, { io: 2, mmio: 5 });
  eq(c.plugins, { dev: 3, port: 1, unclaimed: 3 });
  eq(c.unclaimed, { io: 1, mmio: 2 });
  eq(lines[0], "[vcpu3] mmio read 0x1004 size 2 = 0xdef0 -> dev");
  eq(lines[4], "[vcpu0] mmio read 0x2000 size 8 = 0xffffffffffffffff -> unclaimed");
});

Deno.test("ExitBus survives handlers that throw, logging once per plugin", () => {
  const logs: string[] = [];
  const bus = new ExitBus({ log: (m) => logs.push(m) });
  let n = 0;
  bus.forPlugin("buggy").registerMmio(0x1000, 0x10, {
    read: () => {
      if (n++ >= 1) throw new TypeError("oops");
      return 0x1234;
    },
    write: () => {
      throw new Error("write bug");
    },
  });
  const r = exitRecord(ExitKind.Mmio, 0x1000, 4);
  eq(bus.dispatchMmio(r, 0), true);
  eq(r.data.getUint32(0, true), 0x1234);
  // A failing (split) 8-byte read: the whole access reads as all-ones.
  const r8 = exitRecord(ExitKind.Mmio, 0x1000, 8);
  eq(bus.dispatchMmio(r8, 0), false);
  eq(r8.data.getBigUint64(0, true), 0xffff_ffff_ffff_ffffn);
  eq(bus.dispatchMmio(exitRecord(ExitKind.Mmio, 0x1004, 4, { write: true }), 0), false);
  eq(logs, [
    'Plugin "buggy" failed handling MMIO read 0x1000: oops (treated as unclaimed; later failures are only counted)',
  ]);
  const c = bus.counters();
  eq(c.errors, { buggy: 2 });
  eq(c.plugins, { buggy: 1, unclaimed: 2 });
});

Deno.test("ExitBus routes hypercalls, refuses duplicates and answers unclaimed ones", () => {
  const lines: string[] = [];
  const logs: string[] = [];
  const bus = new ExitBus({
    tracer: new Tracer(["sbi"], { write: (l) => lines.push(l) }),
    log: (m) => logs.push(m),
  });
  const seen: string[] = [];
  bus.forPlugin("sbi-base").registerHypercall(0x10, (call) => {
    seen.push(`${call.nr}/${call.fid}/${call.args.join(",")}/v${call.vcpu}`);
    return { error: 0, value: BigInt(call.args[0] ?? 0n) + 1n };
  });
  throwsVmon(
    () => bus.forPlugin("other").registerHypercall(0x10, () => ({ error: 0, value: 0 })),
    'Cannot register hypercall 0x10 for "other": already registered by "sbi-base"',
  );
  throwsVmon(
    () => bus.forPlugin("other").registerHypercall(-1, () => ({ error: 0, value: 0 })),
    'Cannot register hypercall -1 for "other": the number must be a whole number 0-0xffffffff',
  );
  const x = exitRecord(ExitKind.Hypercall, 0, 0);
  x.nr = 0x10;
  x.fid = 3;
  x.args.set([41n, 2n, 0n, 0n, 0n, 5n]);
  eq(bus.dispatchHypercall(x, 1), { error: 0, value: 42n });
  eq(seen, ["16/3/41,2,0,0,0,5/v1"]);
  x.nr = 0x4442434e;
  eq(bus.dispatchHypercall(x, 0), { error: SBI_ERR_NOT_SUPPORTED, value: 0 });
  eq(bus.dispatchHypercall(x, 0).error, -2);
  const reg = bus.forPlugin("bad").registerHypercall(0x99, () => {
    throw new Error("boom");
  });
  x.nr = 0x99;
  eq(bus.dispatchHypercall(x, 0).error, -2);
  reg.unregister();
  reg.unregister();
  bus.forPlugin("junk").registerHypercall(0x99, () => undefined as never);
  eq(bus.dispatchHypercall(x, 0).error, -2);
  const c = bus.counters();
  eq(c.exits, { hypercall: 5 });
  eq(c.plugins, { "sbi-base": 1, unclaimed: 4 });
  eq(c.unclaimed, { "hypercall 0x99": 2, "hypercall 0x4442434e": 2 });
  eq(c.errors, { bad: 1, junk: 1 });
  eq(logs.length, 2);
  eq(lines[0], "[vcpu1] sbi 0x10 fid 3 (0x29, 0x2, 0x0, 0x0, 0x0, 0x5) -> sbi-base = 0 0x2a");
  eq(
    lines[1],
    "[vcpu0] sbi 0x4442434e fid 3 (0x29, 0x2, 0x0, 0x0, 0x0, 0x5) -> unclaimed = -2 0x0",
  );
  eq(
    lines[3],
    "[vcpu0] sbi 0x99 fid 3 (0x29, 0x2, 0x0, 0x0, 0x0, 0x5) -> unclaimed (bad failed) = -2 0x0",
  );
});

Deno.test("ExitBus unregister and removeOwner free ranges", () => {
  const bus = new ExitBus();
  const calls: string[] = [];
  const a = bus.forPlugin("a");
  const reg = a.registerMmio(0x1000, 0x10, recorder(calls));
  bus.dispatchMmio(exitRecord(ExitKind.Mmio, 0x1000, 4), 0); // warms the lookup cache
  reg.unregister();
  reg.unregister();
  eq(bus.dispatchMmio(exitRecord(ExitKind.Mmio, 0x1000, 4), 0), false);
  bus.forPlugin("b").registerMmio(0x1000, 0x10, recorder([]));
  a.registerPio(0x10, 1, recorder([]));
  a.registerHypercall(7, () => ({ error: 0, value: 0 }));
  bus.removeOwner("a");
  eq(bus.ranges().map((r) => r.owner), ["b"]);
  a.registerHypercall(7, () => ({ error: 0, value: 0 }));
});

Deno.test("ExitBus counts other exits and finds the right range among many", () => {
  const bus = new ExitBus();
  for (let i = 0; i < 64; i++) {
    bus.forPlugin(`dev${i}`).registerMmio(0x1000_0000 + (63 - i) * 0x1000, 0x100, {
      read: (offset) => i * 0x1000 + offset,
      write: () => {},
    });
  }
  for (let i = 0; i < 64; i++) {
    const r = exitRecord(ExitKind.Mmio, 0x1000_0000 + (63 - i) * 0x1000 + 0x20, 4);
    bus.dispatchMmio(r, 0);
    eq(r.data.getUint32(0, true), i * 0x1000 + 0x20);
    eq(
      bus.dispatchMmio(exitRecord(ExitKind.Mmio, 0x1000_0000 + (63 - i) * 0x1000 + 0x100, 4), 0),
      false,
    );
  }
  bus.countExit(ExitKind.Halt);
  bus.countExit(ExitKind.Halt);
  bus.countExit(ExitKind.Interrupted);
  eq(bus.counters().exits, { mmio: 128, hlt: 2, interrupted: 1 });
});
