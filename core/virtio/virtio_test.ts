import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import { createTestDeviceHost, type TestDeviceHost } from "../../testing/mod.ts";
import {
  attachVirtioMmio,
  DescFlag,
  MmioReg,
  type VirtioActivation,
  type VirtioDevice,
  VirtioFeature,
  VirtioInterrupt,
  VirtioStatus,
} from "./mod.ts";
import { VirtioTestDriver } from "../../testing/virtio.ts";

const OK = VirtioStatus.ACKNOWLEDGE | VirtioStatus.DRIVER | VirtioStatus.FEATURES_OK |
  VirtioStatus.DRIVER_OK;

/** A device that copies each chain's readable bytes into its writable buffers. */
class EchoDevice implements VirtioDevice {
  readonly deviceId = 0x7f;
  readonly features = 1n << 3n;
  readonly queueMaxSizes = [8, 4];
  readonly configSize = 8;
  config = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  activation: VirtioActivation | undefined;
  resets = 0;
  handled = 0;
  readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = 0; i < size; i++) v |= this.config[offset + i]! << (8 * i);
    return v >>> 0;
  }
  writeConfig(offset: number, _size: number, value: number): void {
    this.config[offset] = value & 0xff;
  }
  activate(a: VirtioActivation): void {
    this.activation = a;
  }
  notify(index: number): void {
    const a = this.activation!;
    const q = a.queues[index]!;
    for (let c = q.pop(); c; c = q.pop()) {
      const data = q.readChain(c);
      const n = q.writeChain(c, data);
      q.pushUsed(c.head, n);
      this.handled++;
    }
    a.signalUsed(q);
  }
  reset(): void {
    this.activation = undefined;
    this.resets++;
  }
}

function setup(memorySize = 1 << 20) {
  const host = createTestDeviceHost({ hasPio: false, memorySize });
  const device = new EchoDevice();
  const dev = attachVirtioMmio(host, device);
  const driver = new VirtioTestDriver(host, dev.base);
  const irq = () => host.irq(host.descriptions[0]!.irqs![0]!).level;
  return { host, device, dev, driver, irq };
}

const bytes = (...v: number[]) => new Uint8Array(v);

Deno.test("virtio-mmio: identification registers and description", () => {
  const { host, driver, dev } = setup();
  equal(driver.reg(MmioReg.MAGIC), 0x74726976);
  equal(driver.reg(MmioReg.VERSION), 2);
  equal(driver.reg(MmioReg.DEVICE_ID), 0x7f);
  equal(driver.reg(MmioReg.VENDOR_ID), 0x4e4f4d56);
  const f = driver.deviceFeatures();
  equal(
    f,
    1n << 3n | VirtioFeature.VERSION_1 | VirtioFeature.INDIRECT_DESC | VirtioFeature.EVENT_IDX,
  );
  driver.setReg(MmioReg.DEVICE_FEATURES_SEL, 2);
  equal(driver.reg(MmioReg.DEVICE_FEATURES), 0);
  driver.setReg(MmioReg.QUEUE_SEL, 1);
  equal(driver.reg(MmioReg.QUEUE_NUM_MAX), 4);
  driver.setReg(MmioReg.QUEUE_SEL, 2);
  equal(driver.reg(MmioReg.QUEUE_NUM_MAX), 0);
  equal(driver.reg(MmioReg.SHM_LEN_LOW), 0xffffffff);
  const d = host.descriptions[0]!;
  assertEquals(d.compatible, ["virtio,mmio"]);
  assertEquals(d.mmio, { base: dev.base, size: 0x200 });
  equal(host.mmioAllocations[0]!.size, 0x200);
  equal(host.mmioRead(dev.base + MmioReg.MAGIC, 2), 0, "narrow register reads give 0");
});

Deno.test("virtio-mmio: negotiation refuses legacy drivers and unoffered features", () => {
  const { driver, device, host } = setup();
  let s = driver.init({ accept: ~VirtioFeature.VERSION_1 });
  equal(s & VirtioStatus.FEATURES_OK, 0, "no VERSION_1: FEATURES_OK is not kept");
  ok(host.logs.some((l) => l.message.includes("legacy driver refused")));
  // Accept a feature that was not offered.
  driver.setReg(MmioReg.STATUS, 0);
  driver.setReg(MmioReg.STATUS, 3);
  driver.setReg(MmioReg.DRIVER_FEATURES_SEL, 0);
  driver.setReg(MmioReg.DRIVER_FEATURES, 1 << 5);
  driver.setReg(MmioReg.DRIVER_FEATURES_SEL, 1);
  driver.setReg(MmioReg.DRIVER_FEATURES, 1);
  driver.setReg(MmioReg.STATUS, 11);
  equal(driver.status() & VirtioStatus.FEATURES_OK, 0);
  // DRIVER_OK without FEATURES_OK: the device needs a reset.
  driver.setReg(MmioReg.STATUS, 7);
  ok(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET);
  equal(device.activation, undefined);
  s = driver.init();
  equal(s, OK);
  ok(device.activation);
  equal((device.activation as VirtioActivation | undefined)?.features, driver.deviceFeatures());
});

Deno.test("virtio-mmio: reset returns everything to the initial state", () => {
  const { driver, device, irq } = setup();
  driver.init();
  driver.submit(0, [{ data: bytes(1) }, { len: 1 }]);
  ok(irq());
  driver.setReg(MmioReg.QUEUE_SEL, 0);
  equal(driver.reg(MmioReg.QUEUE_READY), 1);
  driver.setReg(MmioReg.STATUS, 0);
  equal(driver.status(), 0);
  equal(device.resets, 1);
  equal(device.activation, undefined);
  equal(driver.reg(MmioReg.INTERRUPT_STATUS), 0);
  equal(irq(), false);
  driver.setReg(MmioReg.QUEUE_SEL, 0);
  equal(driver.reg(MmioReg.QUEUE_READY), 0);
  // Notifications after reset do nothing.
  driver.notify(0);
  equal(device.handled, 1);
});

Deno.test("virtio-mmio: config space and config generation", () => {
  const { driver, device, irq } = setup();
  driver.init();
  equal(driver.config(0, 4), 0x04030201);
  equal(driver.config(6, 2), 0x0807);
  equal(driver.config(7, 2), 0, "past the end reads 0");
  equal(driver.config(100, 1), 0);
  const gen = driver.reg(MmioReg.CONFIG_GENERATION);
  device.config[0] = 9;
  device.activation!.configChanged();
  equal(driver.reg(MmioReg.CONFIG_GENERATION), gen + 1);
  equal(driver.ackInterrupt(), VirtioInterrupt.CONFIG_CHANGE);
  equal(irq(), false);
  equal(driver.config(0, 1), 9);
});

Deno.test("virtio-mmio: queue setup is checked", () => {
  for (
    const [what, sizes] of [["not a power of 2", [6]], ["too big", [16]], ["zero", [0]]] as const
  ) {
    const { driver, host } = setup();
    driver.init({ sizes });
    ok(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET, what);
    equal(host.counters().device_errors! >= 1, true, what);
    // A fresh init with good sizes works again.
    equal(driver.init(), OK, what);
  }
  // Rings outside RAM.
  const { driver, host } = setup();
  driver.setReg(MmioReg.STATUS, 0);
  driver.setReg(MmioReg.STATUS, 3);
  driver.setReg(MmioReg.DRIVER_FEATURES_SEL, 1);
  driver.setReg(MmioReg.DRIVER_FEATURES, 1);
  driver.setReg(MmioReg.STATUS, 11);
  driver.setReg(MmioReg.QUEUE_SEL, 0);
  driver.setReg(MmioReg.QUEUE_NUM, 8);
  driver.setReg(MmioReg.QUEUE_DESC_LOW, 0xfff00000);
  driver.setReg(MmioReg.QUEUE_DESC_HIGH, 0x10);
  driver.setReg(MmioReg.QUEUE_READY, 1);
  equal(driver.reg(MmioReg.QUEUE_READY), 0);
  ok(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET);
  ok(host.logs.some((l) => l.message.includes("outside RAM")));
});

Deno.test("virtqueue: direct and indirect chains are processed", () => {
  const { driver, irq, host } = setup();
  driver.init();
  driver.submit(0, [{ data: bytes(1, 2) }, { data: bytes(3) }, { len: 2 }, { len: 4 }]);
  let [u, ...rest] = driver.takeUsed(0);
  equal(rest.length, 0);
  equal(u!.len, 3);
  assertEquals([...driver.readUsed(u!)], [1, 2, 3]);
  ok(irq());
  equal(driver.ackInterrupt(), VirtioInterrupt.USED_BUFFER);
  equal(irq(), false);
  driver.submit(0, [{ data: bytes(9, 8, 7) }, { len: 1 }, { len: 8 }], { indirect: true });
  [u] = driver.takeUsed(0);
  equal(u!.len, 3);
  assertEquals([...driver.readUsed(u!)], [9, 8, 7]);
  // An indirect table only 8-byte aligned (Linux kmallocs them) is valid: the spec asks none.
  driver.submit(0, [{ data: bytes(5, 6) }, { len: 2 }], { indirect: true, indirectOffset: 8 });
  [u] = driver.takeUsed(0);
  equal(u!.len, 2);
  assertEquals([...driver.readUsed(u!)], [5, 6]);
  // Short writable space: the device writes what fits.
  driver.submit(1, [{ data: bytes(1, 2, 3, 4) }, { len: 2 }]);
  [u] = driver.takeUsed(1);
  equal(u!.len, 2);
  // Many requests, wrapping the rings several times.
  for (let i = 0; i < 40; i++) {
    driver.submit(0, [{ data: bytes(i) }, { len: 1 }]);
    const [e] = driver.takeUsed(0);
    equal(driver.readUsed(e!)[0], i);
  }
  equal(host.counters().malformed_chains ?? 0, 0);
});

Deno.test("virtqueue: NO_INTERRUPT and EVENT_IDX suppress interrupts", () => {
  {
    const { driver, host, irq } = setup();
    driver.init({ accept: ~VirtioFeature.EVENT_IDX });
    host.memory.writeU16(driver.queue(0).avail, 1); // VRING_AVAIL_F_NO_INTERRUPT
    driver.submit(0, [{ data: bytes(1) }, { len: 1 }]);
    equal(driver.takeUsed(0).length, 1);
    equal(irq(), false);
    host.memory.writeU16(driver.queue(0).avail, 0);
    driver.submit(0, [{ data: bytes(1) }, { len: 1 }]);
    equal(irq(), true);
  }
  {
    const { driver, host, irq } = setup();
    driver.init();
    const q = driver.queue(0);
    // used_event = 2: interrupt only when the used index passes 2 (the third entry).
    host.memory.writeU16(q.avail + 4 + 2 * q.size, 2);
    driver.submit(0, [{ data: bytes(1) }, { len: 1 }]);
    driver.submit(0, [{ data: bytes(1) }, { len: 1 }]);
    equal(irq(), false);
    driver.submit(0, [{ data: bytes(1) }, { len: 1 }]);
    equal(irq(), true);
    // avail_event tells the driver the device has seen all three.
    equal(host.memory.readU16(q.used + 4 + 8 * q.size), 3);
  }
});

Deno.test("virtqueue: malformed chains are returned unused, the device keeps working", () => {
  const { driver, host, device } = setup();
  driver.init();
  const q = driver.queue(0);
  const buf = driver.alloc(64);
  const checkStillWorks = () => {
    driver.submit(0, [{ data: bytes(42) }, { len: 1 }]);
    const used = driver.takeUsed(0);
    const last = used[used.length - 1]!;
    equal(driver.readUsed(last)[0], 42);
    equal(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET, 0);
  };
  const bad = (descs: { addr: number; len: number; flags: number; next: number }[]) => {
    descs.forEach((d, i) => driver.writeDesc(q.desc, i, d));
    q.nextDesc = descs.length;
    driver.publish(0, 0);
    driver.notify(0);
    const used = driver.takeUsed(0);
    equal(used.length, 1);
    equal(used[0]!.id, 0);
    equal(used[0]!.len, 0);
  };
  // A loop.
  bad([
    { addr: buf, len: 1, flags: DescFlag.NEXT, next: 1 },
    { addr: buf, len: 1, flags: DescFlag.NEXT, next: 0 },
  ]);
  // next beyond the table.
  bad([{ addr: buf, len: 1, flags: DescFlag.NEXT, next: 200 }]);
  // A buffer outside RAM, and one beyond 2^53.
  bad([{ addr: 0x7fff_0000, len: 16, flags: 0, next: 0 }]);
  bad([{ addr: 2 ** 64 - 2 ** 32, len: 16, flags: DescFlag.WRITE, next: 0 }]);
  // Readable after writable.
  bad([
    { addr: buf, len: 1, flags: DescFlag.NEXT | DescFlag.WRITE, next: 1 },
    { addr: buf, len: 1, flags: 0, next: 0 },
  ]);
  // Indirect tables: bad length, outside RAM, nested, with NEXT.
  bad([{ addr: buf, len: 15, flags: DescFlag.INDIRECT, next: 0 }]);
  bad([{ addr: 0x7fff_0000, len: 32, flags: DescFlag.INDIRECT, next: 0 }]);
  driver.writeDesc(buf, 0, { addr: buf, len: 16, flags: DescFlag.INDIRECT, next: 0 });
  bad([{ addr: buf, len: 16, flags: DescFlag.INDIRECT, next: 0 }]);
  bad([{ addr: buf, len: 16, flags: DescFlag.INDIRECT | DescFlag.NEXT, next: 1 }]);
  // A loop inside an indirect table.
  driver.writeDesc(buf, 0, { addr: buf + 32, len: 1, flags: DescFlag.NEXT, next: 1 });
  driver.writeDesc(buf, 1, { addr: buf + 32, len: 1, flags: DescFlag.NEXT, next: 0 });
  bad([{ addr: buf, len: 32, flags: DescFlag.INDIRECT, next: 0 }]);
  equal(host.counters().malformed_chains, 10);
  equal(device.handled, 0);
  // Zero-length buffers are fine.
  driver.submit(0, [{ data: new Uint8Array(0) }, { len: 0 }]);
  equal(driver.takeUsed(0)[0]!.len, 0);
  checkStillWorks();
});

Deno.test("virtqueue: a corrupt ring sets DEVICE_NEEDS_RESET until the driver resets", () => {
  const { driver, host, device, irq } = setup();
  driver.init();
  const q = driver.queue(0);
  // Head index beyond the queue size.
  host.memory.writeU16(q.avail + 4, 100);
  host.memory.writeU16(q.avail + 2, 1);
  driver.notify(0);
  ok(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET);
  ok(irq());
  equal(driver.ackInterrupt(), VirtioInterrupt.CONFIG_CHANGE);
  // Further notifications are ignored.
  driver.notify(0);
  equal(host.counters().device_errors, 1);
  // Reset and re-init: works again.
  equal(driver.init(), OK);
  driver.submit(0, [{ data: bytes(5) }, { len: 1 }]);
  equal(driver.readUsed(driver.takeUsed(0)[0]!)[0], 5);
  // An available index far ahead of the device.
  host.memory.writeU16(driver.queue(0).avail + 2, 5000);
  driver.notify(0);
  ok(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET);
  equal(device.handled, 1);
});

/** A small deterministic PRNG (xorshift32). */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

function fuzzRound(host: TestDeviceHost, driver: VirtioTestDriver, rand: (n: number) => number) {
  const q = driver.queue(rand(2));
  const ramEnd = host.memory.size;
  const pickAddr = () => {
    switch (rand(5)) {
      case 0:
        return rand(ramEnd);
      case 1:
        return ramEnd - rand(64);
      case 2:
        return ramEnd + rand(1 << 20);
      case 3:
        return 2 ** 32 * (1 + rand(1 << 16)) + rand(2 ** 31);
      default:
        return 0x40000 + rand(0x10000);
    }
  };
  for (let i = 0; i < q.size; i++) {
    driver.writeDesc(q.desc, i, {
      addr: pickAddr(),
      len: [0, 1, 16, 512, rand(0x20000), 0xffffffff][rand(6)]!,
      flags: rand(8),
      next: rand(4) === 0 ? rand(0x10000) : rand(q.size),
    });
  }
  const n = 1 + rand(q.size);
  for (let i = 0; i < n; i++) {
    driver.publish(q.index, rand(10) === 0 ? rand(0x10000) : rand(q.size));
  }
  if (rand(20) === 0) host.memory.writeU16(q.avail + 2, rand(0x10000));
  if (rand(20) === 0) host.memory.writeU16(q.avail + 4 + 2 * q.size, rand(0x10000));
  driver.notify(q.index);
  driver.takeUsed(q.index);
}

Deno.test("virtqueue fuzz: random descriptor tables never crash the host", () => {
  const { host, driver, device } = setup(1 << 19);
  const rand = rng(0x5eed);
  let resets = 0;
  for (let round = 0; round < 400; round++) {
    if (round % 10 === 0 || driver.status() & VirtioStatus.DEVICE_NEEDS_RESET) {
      if (driver.status() & VirtioStatus.DEVICE_NEEDS_RESET) resets++;
      equal(driver.init(), OK);
    }
    fuzzRound(host, driver, rand);
    driver.ackInterrupt();
  }
  const c = host.counters();
  ok(c.malformed_chains! > 100, `malformed chains seen: ${c.malformed_chains}`);
  ok(resets > 0, "some rounds corrupted the ring");
  ok(device.handled > 0, "some random chains were valid");
  // A valid request after all that.
  equal(driver.init(), OK);
  driver.submit(0, [{ data: bytes(7, 7) }, { len: 2 }], { indirect: true });
  assertEquals([...driver.readUsed(driver.takeUsed(0)[0]!)], [7, 7]);
});
