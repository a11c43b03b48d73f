import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { createTestDeviceHost } from "./mod.ts";
import { GuestMemoryError } from "../core/memory.ts";

Deno.test("test host memory checks bounds", () => {
  const mem = createTestDeviceHost({ memorySize: 0x1000, memoryBase: 0x8000_0000 }).memory;
  mem.writeU64(0x8000_0ff8, 0x1122334455667788n);
  assertEquals(mem.readU64(0x8000_0ff8), 0x1122334455667788n);
  assertEquals(mem.readU8(0x8000_0ff8), 0x88);
  assertThrows(() => mem.readU32(0x8000_0ffe), GuestMemoryError);
  assertThrows(() => mem.read(0x7fff_ffff, 1), GuestMemoryError);
  assertThrows(() => mem.write(0x8000_0000, new Uint8Array(0x1001)), GuestMemoryError);
  assertEquals(mem.contains(0x8000_0000, 0x1000), true);
  assertEquals(mem.contains(0x8000_0000, 0x1001), false);
  assertEquals(mem.contains(NaN, 1), false);
});

Deno.test("test bus refuses overlaps and routes offsets", () => {
  const host = createTestDeviceHost({ name: "dev0", hasPio: false });
  const seen: number[] = [];
  host.bus.registerMmio(0x1000, 0x100, {
    read: (off) => off,
    write: (off, _size, value) => void seen.push(off, value),
  });
  assertThrows(
    () => host.bus.registerMmio(0x10ff, 4, { read: () => 0, write: () => {} }),
    /Cannot place device "dev0" at 0x10ff-0x1102: overlaps "dev0" at 0x1000-0x10ff/,
  );
  assertThrows(() => host.bus.registerPio(0x3f8, 8, { read: () => 0, write: () => {} }));
  assertEquals(host.mmioRead(0x1010, 4), 0x10);
  host.mmioWrite(0x1004, 2, 0x12345);
  assertEquals(seen, [4, 0x2345]);
  host.mmioWrite(0x1008, 8, 2 ** 32 + 7);
  assertEquals(seen.slice(2), [8, 7, 12, 1]);
  assertEquals(host.mmioRead(0x2000, 2), 0xffff);
  assertEquals(host.unclaimed, 1);
});

Deno.test("test bus is core's exit bus: unclaimed, 8-byte, failing handlers, hypercalls", () => {
  const host = createTestDeviceHost({ name: "dev0" });
  host.bus.registerPio(0x60, 4, { read: () => 0x1ff, write: () => {} });
  host.bus.registerPio(0x10, 2, { read: () => 0, write: () => {} });
  host.bus.registerMmio(0x1000, 8, {
    read: (off) => off === 0 ? 0x9abc_def0 : 0x1234_5678,
    write: () => {
      throw new Error("write bug");
    },
  });
  host.bus.registerHypercall(0x10, (req) => ({ error: 0, value: req.args[0]! + 1n }));
  assertEquals(host.pioRanges, [{ base: 0x10, size: 2 }, { base: 0x60, size: 4 }]);
  assertEquals(host.pioRead(0x60, 1), 0xff);
  assertEquals(host.mmioRead64(0x1000), 0x1234_5678_9abc_def0n);
  // Unclaimed: all ones over the width, 8 bytes included (the machine's answer).
  assertEquals(host.mmioRead64(0x2000), 0xffff_ffff_ffff_ffffn);
  assertEquals(host.mmioRead(0x2000, 8), 2 ** 64);
  assertEquals(host.mmioRead64(0x1004), 0xffff_ffff_ffff_ffffn, "past the end: unclaimed");
  // A failing handler does not throw out of the helper: unclaimed, counted, logged once.
  host.mmioWrite(0x1000, 4, 1);
  host.mmioWrite(0x1000, 4, 2);
  assertEquals(host.unclaimed, 5);
  assertEquals(host.busCounters().errors, { dev0: 2 });
  assertEquals(host.logs.length, 1);
  assertEquals(host.logs[0]?.level, "warn");
  assertEquals(host.hypercall(0x10, 0, [41n]), { error: 0, value: 42n });
  assertEquals(host.hypercall(0x11, 0), { error: -2, value: 0n });
  assertThrows(() => host.metrics.counter("c").add(-1), /counters only increase/);
  host.metrics.counter("c").add(2);
  assertEquals(host.counters(), { c: 2 });
});

Deno.test("test platform allocates irqs and mmio windows", () => {
  const host = createTestDeviceHost({ hasPio: false, firstIrq: 1 });
  const a = host.platform.allocateIrq();
  const b = host.platform.allocateIrq(2);
  const c = host.platform.allocateIrq();
  assertEquals([a.number, b.number, c.number], [1, 2, 3]);
  assertThrows(() => host.platform.allocateIrq(2), /already in use/);
  a.pulse();
  assertEquals(host.irq(1).history, [true, false]);
  assertEquals(host.irq(1).raises, 1);
  const m1 = host.platform.allocateMmio(0x200);
  const m2 = host.platform.allocateMmio(0x200);
  assertEquals(m1 % 0x1000, 0);
  assertEquals(m2 >= m1 + 0x1000, true);
});

Deno.test("test host files are real files", () => {
  const host = createTestDeviceHost();
  const path = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(path, new Uint8Array([1, 2, 3, 4]));
    const f = host.files.open(path, { write: true });
    f.writeAt(new Uint8Array([9, 9]), 3);
    f.sync();
    assertEquals(f.size, 5);
    const buf = new Uint8Array(8);
    assertEquals(f.readAt(buf, 1), 4);
    assertEquals([...buf.subarray(0, 4)], [2, 3, 9, 9]);
    f.close();
    f.close();
    const ro = host.files.open(path, { write: false });
    assertThrows(() => ro.writeAt(new Uint8Array(1), 0), /read-only/);
    ro.close();
    assertThrows(() => host.files.open(path + ".missing", { write: false }), /no such file/);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("fake timers fire in order, including nested ones", () => {
  const host = createTestDeviceHost();
  const order: string[] = [];
  host.timers.setTimeout(() => {
    order.push("b");
    host.timers.setTimeout(() => order.push("c"), 1);
  }, 5);
  host.timers.setTimeout(() => order.push("a"), 2);
  const id = host.timers.setTimeout(() => order.push("never"), 3);
  host.timers.clear(id);
  host.advance(10);
  assertEquals(order, ["a", "b", "c"]);
  assertEquals(host.timers.now(), 10);
});
