// Fuzz: random descriptor chains on both queues of virtio-net (receive and transmit), written
// straight into the rings like a hostile driver would: random addresses (inside and outside RAM),
// lengths, flags (NEXT, WRITE, INDIRECT), next indices, indirect tables, heads and available
// indices, interleaved with packets arriving from the backend. The device must never throw out
// of the bus, never send a packet outside Ethernet's limits or with an offload header, never
// report more used bytes than a chain's writable room, and keep working after a reset. Seeded:
// a failure names its seed.

import { deepStrictEqual as assertEquals, equal, ok } from "node:assert/strict";
import type { PacketBackendStats, PacketEndpoint } from "../core/api/mod.ts";
import { DescFlag, MmioReg, VirtioStatus } from "../core/virtio/mod.ts";
import { createTestDeviceHost, setupTestDevice, VirtioTestDriver } from "../testing/mod.ts";
import virtioNet, { NetQueue } from "../plugins/devices/virtio-net/mod.ts";

/** xorshift32: a small seeded generator. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

class Endpoint implements PacketEndpoint {
  readonly description = "fuzz endpoint";
  inbox: Uint8Array[] = [];
  sent: Uint8Array[] = [];
  accept = true;
  #fn: (() => void) | undefined;
  receive(into: Uint8Array): number {
    const p = this.inbox.shift();
    if (!p) return 0;
    into.set(p);
    return p.length;
  }
  send(packet: Uint8Array): boolean {
    if (!this.accept) return false;
    this.sent.push(packet.slice());
    return true;
  }
  flush(): void {}
  onEvent(fn: () => void): void {
    this.#fn = fn;
  }
  error(): string | undefined {
    return undefined;
  }
  stats(): PacketBackendStats {
    return { rxFrames: 0, rxDropped: 0, txFrames: 0, txDropped: 0, kicks: 0 };
  }
  close(): void {}
  event(): void {
    this.#fn?.();
  }
}

const RAM = 1 << 20;

async function fuzz(seed: number, steps: number): Promise<void> {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const ep = new Endpoint();
  const host = createTestDeviceHost({
    hasPio: false,
    memorySize: RAM,
    net: { open: () => ep },
    name: "virtio-net",
  });
  const dev = await setupTestDevice(virtioNet, host, {});
  const driver = new VirtioTestDriver(host, host.descriptions[0]!.mmio!.base);
  ok(driver.init({ sizes: [16, 16] }) & VirtioStatus.DRIVER_OK);
  const m = host.memory;
  const queues = [driver.queue(NetQueue.RX), driver.queue(NetQueue.TX)];
  const scratch = driver.alloc(256 * 1024, 16);
  // A canary right after the scratch area: no descriptor reaches it, so it must stay intact.
  const canary = driver.alloc(64 * 1024, 16);
  m.write(canary, new Uint8Array(64 * 1024).fill(0xa5));
  const randomDesc = (table: number, i: number, size: number) => {
    const r = rand();
    const addr = r < 0.85 ? scratch + int(128 * 1024) : r < 0.95 ? RAM - int(64) : int(2 ** 32);
    const len = rand() < 0.2 ? int(20) : rand() < 0.8 ? int(2048) : int(70_000);
    let flags = 0;
    if (rand() < 0.5) flags |= DescFlag.NEXT;
    if (rand() < 0.6) flags |= DescFlag.WRITE;
    if (rand() < 0.05) flags |= DescFlag.INDIRECT;
    const next = rand() < 0.9 ? int(size) : int(65536);
    driver.writeDesc(table, i, { addr, len, flags, next });
  };
  for (let step = 0; step < steps; step++) {
    const qi = int(2);
    const q = queues[qi]!;
    const action = rand();
    if (action < 0.45) {
      // a random chain (sometimes through an indirect table) published and notified
      const head = int(q.size);
      const n = 1 + int(4);
      if (rand() < 0.15) {
        const table = scratch + 200 * 1024 + 16 * int(200);
        for (let i = 0; i < n; i++) randomDesc(table, i, n);
        driver.writeDesc(q.desc, head, {
          addr: table,
          len: rand() < 0.9 ? 16 * n : int(100),
          flags: DescFlag.INDIRECT | (rand() < 0.1 ? DescFlag.NEXT : 0),
          next: 0,
        });
      } else {
        for (let i = 0; i < n; i++) randomDesc(q.desc, (head + i) % q.size, q.size);
      }
      driver.publish(qi, rand() < 0.97 ? head : int(65536));
      if (rand() < 0.8) driver.notify(qi);
    } else if (action < 0.5) {
      // a wild available index
      m.writeU16(q.avail + 2, int(65536));
      driver.notify(qi);
    } else if (action < 0.8) {
      // packets from the host: runts to jumbo frames
      const len = 14 + int(rand() < 0.8 ? 1500 : 65535 + 18 - 14);
      const p = new Uint8Array(12 + len);
      p[12] = int(256);
      ep.inbox.push(p);
      ep.accept = rand() < 0.9;
      ep.event();
    } else if (action < 0.85) {
      // notifications for queues that exist and do not
      driver.notify(int(4));
    } else if (action < 0.9) {
      driver.ackInterrupt();
    } else if (action < 0.95) {
      // used entries never claim more than the chain's writable room
      for (const u of driver.takeUsed(qi)) {
        ok(u.id < q.size, `seed ${seed}: used id ${u.id} out of range`);
        if (qi === NetQueue.TX) equal(u.len, 0, `seed ${seed}: transmit used length`);
        else ok(u.len <= 12 + 65535 + 18, `seed ${seed}: receive used length ${u.len}`);
      }
    } else if (action < 0.97) {
      // the driver resets and starts over
      ok(driver.init({ sizes: [16, 16] }) & VirtioStatus.DRIVER_OK, `seed ${seed}: re-init`);
      queues[0] = driver.queue(NetQueue.RX);
      queues[1] = driver.queue(NetQueue.TX);
    } else {
      ep.accept = true;
      ep.event();
    }
  }
  // Nothing escaped to the bus and every packet sent was well-formed.
  assertEquals(host.busCounters().errors, {}, `seed ${seed}: a handler threw`);
  for (const p of ep.sent) {
    ok(p.length >= 12 + 14 && p.length <= 12 + 65535 + 18, `seed ${seed}: sent ${p.length} bytes`);
    equal(p[0], 0, `seed ${seed}: flags`);
    equal(p[1], 0, `seed ${seed}: gso_type`);
  }
  const c = host.counters();
  if (Deno.env.get("FUZZ_DEBUG")) console.log(seed, JSON.stringify(c));
  equal(c.tx_packets, ep.sent.length, `seed ${seed}: tx_packets`);
  ok(
    m.read(canary, 64 * 1024).every((b) => b === 0xa5),
    `seed ${seed}: memory outside the buffers`,
  );
  // After a reset the device works normally.
  ep.accept = true;
  ep.inbox = [];
  ok(driver.init() & VirtioStatus.DRIVER_OK, `seed ${seed}: final init`);
  equal(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET, 0);
  const before = ep.sent.length;
  const good = new Uint8Array(12 + 60).fill(0x5a, 12);
  driver.submit(NetQueue.TX, [{ data: good }]);
  assertEquals(ep.sent.slice(before), [good]);
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  ep.inbox.push(good);
  ep.event();
  const [u] = driver.takeUsed(NetQueue.RX);
  equal(u?.len, 72, `seed ${seed}: receive after the fuzz`);
  equal(driver.reg(MmioReg.DEVICE_ID), 1);
  dev.dispose();
}

Deno.test("virtio-net fuzz: random chains on both queues never break the device", async () => {
  for (let seed = 1; seed <= 40; seed++) await fuzz(seed * 7919, 1500);
});
