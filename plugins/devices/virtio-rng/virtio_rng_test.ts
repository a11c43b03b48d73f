import { equal, notDeepStrictEqual, ok } from "node:assert/strict";
import { createTestDeviceHost, setupTestDevice } from "../../../testing/mod.ts";
import { MmioReg, VirtioStatus } from "../../../core/virtio/mod.ts";
import { VirtioTestDriver } from "../../../testing/virtio.ts";
import virtioRng from "./mod.ts";

async function setup() {
  const host = createTestDeviceHost({ hasPio: false });
  const dev = await setupTestDevice(virtioRng, host);
  const driver = new VirtioTestDriver(host, host.descriptions[0]!.mmio!.base);
  return { host, dev, driver };
}

Deno.test("virtio-rng: fills writable buffers with random bytes", async () => {
  const { host, driver } = await setup();
  equal(driver.reg(MmioReg.DEVICE_ID), 4);
  ok(driver.init() & VirtioStatus.DRIVER_OK);
  driver.submit(0, [{ len: 64 }, { len: 64 }]);
  const [u] = driver.takeUsed(0);
  equal(u!.len, 128);
  const data = driver.readUsed(u!);
  notDeepStrictEqual([...data.subarray(0, 64)], [...data.subarray(64)]);
  ok(data.some((b) => b !== 0));
  equal(host.counters().bytes, 128);
  const irq = host.descriptions[0]!.irqs![0]!;
  ok(host.irq(irq).level);
});

Deno.test("virtio-rng: caps one request and ignores readable buffers", async () => {
  const { driver } = await setup();
  driver.init();
  driver.submit(0, [{ data: new Uint8Array(8) }, { len: 100_000 }]);
  const [u] = driver.takeUsed(0);
  equal(u!.len, 65536);
  driver.submit(0, [{ data: new Uint8Array(8) }]);
  equal(driver.takeUsed(0)[0]!.len, 0);
});
