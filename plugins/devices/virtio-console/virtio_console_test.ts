import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import { createTestDeviceHost, setupTestDevice } from "../../../testing/mod.ts";
import { MmioReg, VirtioStatus } from "../../../core/virtio/mod.ts";
import { VirtioTestDriver } from "../../../testing/virtio.ts";
import virtioConsole, { ConsoleFeature } from "./mod.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function setup(options: Record<string, unknown> = {}) {
  const host = createTestDeviceHost({ hasPio: false });
  const dev = await setupTestDevice(virtioConsole, host, options);
  const driver = new VirtioTestDriver(host, host.descriptions[0]!.mmio!.base);
  return { host, dev, driver };
}

Deno.test("virtio-console: transmit queue goes to the console in one write", async () => {
  const { host, driver } = await setup();
  equal(driver.reg(MmioReg.DEVICE_ID), 3);
  ok(driver.init() & VirtioStatus.DRIVER_OK);
  ok(driver.deviceFeatures() & ConsoleFeature.EMERG_WRITE);
  driver.submit(1, [{ data: enc("hello ") }], { notify: false });
  driver.submit(1, [{ data: enc("wor") }, { data: enc("ld\n") }]);
  equal(host.outputText(), "hello world\n");
  equal(host.consoleWrites, 1);
  const used = driver.takeUsed(1);
  equal(used.length, 2);
  equal(used[0]!.len, 0);
  equal(host.counters().tx_bytes, 12);
});

Deno.test("virtio-console: input fills receive buffers, waiting for them if needed", async () => {
  const { host, driver } = await setup();
  // Input before the driver is ready is kept.
  ok(host.input("ab"));
  driver.init();
  driver.submit(0, [{ len: 4 }]);
  let [u] = driver.takeUsed(0);
  equal(dec(driver.readUsed(u!)), "ab");
  // Buffers first, then input.
  driver.submit(0, [{ len: 3 }]);
  driver.submit(0, [{ len: 3 }]);
  equal(driver.takeUsed(0).length, 0);
  host.input("12345");
  const used = driver.takeUsed(0);
  assertEquals(used.map((e) => dec(driver.readUsed(e))), ["123", "45"]);
  const irq = host.descriptions[0]!.irqs![0]!;
  ok(host.irq(irq).level);
  equal(host.counters().rx_bytes, 7);
  // No buffers left: input waits.
  host.input("xyz");
  equal(driver.takeUsed(0).length, 0);
  driver.submit(0, [{ len: 8 }]);
  [u] = driver.takeUsed(0);
  equal(dec(driver.readUsed(u!)), "xyz");
});

Deno.test("virtio-console: emergency write and config space", async () => {
  const { host, driver } = await setup();
  driver.init();
  equal(driver.config(4, 4), 1);
  host.mmioWrite(host.descriptions[0]!.mmio!.base + MmioReg.CONFIG + 8, 4, 0x21);
  equal(host.outputText(), "!");
});

Deno.test("virtio-console: input option off leaves input to other devices", async () => {
  const { host } = await setup({ input: false });
  equal(host.input("x"), false);
});

Deno.test("virtio-console: a malformed receive chain breaks nothing", async () => {
  const { host, driver } = await setup();
  driver.init();
  driver.submit(0, [{ addr: 0x7fff_0000, len: 4 }]);
  host.input("ok");
  equal(host.counters().malformed_chains, 1);
  driver.submit(0, [{ len: 4 }]);
  const used = driver.takeUsed(0);
  equal(dec(driver.readUsed(used[used.length - 1]!)), "ok");
  equal(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET, 0);
});
