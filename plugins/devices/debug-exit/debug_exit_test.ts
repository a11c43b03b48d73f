import { deepStrictEqual as assertEquals, equal } from "node:assert/strict";
import { createTestDeviceHost, setupTestDevice } from "../../../testing/mod.ts";
import debugExit from "./mod.ts";

Deno.test("debug-exit: port writes of 1, 2 and 4 bytes give the status directly", async () => {
  const host = createTestDeviceHost({ hasPio: true });
  const dev = await setupTestDevice(debugExit, host);
  assertEquals(host.pioRanges, [{ base: 0x501, size: 4 }]);
  host.pioWrite(0x501, 1, 0x42);
  host.pioWrite(0x501, 2, 0x1234);
  host.pioWrite(0x501, 4, 0xdeadbeef);
  host.pioWrite(0x502, 1, 7); // not the exit register
  equal(host.pioRead(0x501, 1), 0);
  assertEquals(host.exits.map((e) => e.status), [0x42, 0x1234, 0xdeadbeef]);
  equal(host.exits[0]!.reason, "guest exit");
  equal(host.counters().requests, 3);
  equal(host.counters().ignored, 1);
  dev.dispose();
  dev.dispose();
  host.pioWrite(0x501, 1, 1);
  equal(host.exits.length, 3);
});

Deno.test("debug-exit: explicit port", async () => {
  const host = createTestDeviceHost({ hasPio: true });
  await setupTestDevice(debugExit, host, { base: 0xf4 });
  host.pioWrite(0xf4, 1, 0);
  assertEquals(host.exits, [{ status: 0, reason: "guest exit" }]);
});

Deno.test("debug-exit: SiFive test finisher on MMIO platforms", async () => {
  const host = createTestDeviceHost({ hasPio: false });
  await setupTestDevice(debugExit, host);
  const d = host.descriptions[0]!;
  assertEquals(d.compatible, ["sifive,test1", "sifive,test0", "syscon"]);
  const base = d.mmio!.base;
  equal(d.mmio!.size, 0x1000);
  host.mmioWrite(base, 4, 0x5555);
  host.mmioWrite(base, 4, 0x3333 | 7 << 16);
  host.mmioWrite(base, 4, 0x7777);
  host.mmioWrite(base, 4, 0x1234); // unknown: ignored with a warning
  host.mmioWrite(base + 4, 4, 0x5555); // wrong offset
  host.mmioWrite(base, 2, 0x5555); // wrong width
  assertEquals(host.exits, [
    { status: 0, reason: "poweroff" },
    { status: 7, reason: "guest failure: code 7" },
    { status: 0, reason: "reset" },
  ]);
  equal(host.counters().ignored, 3);
  equal(host.logs.some((l) => l.level === "warn" && l.message.includes("0x1234")), true);
});

Deno.test("debug-exit: explicit MMIO base", async () => {
  const host = createTestDeviceHost({ hasPio: false });
  await setupTestDevice(debugExit, host, { base: 0x100000 });
  host.mmioWrite(0x100000, 4, 0x3333 | 0xffff << 16);
  assertEquals(host.exits.map((e) => e.status), [0xffff]);
  equal(host.mmioAllocations.length, 0);
});
