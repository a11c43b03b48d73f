import {
  deepStrictEqual as assertEquals,
  equal,
  match,
  ok,
  rejects,
  throws,
} from "node:assert/strict";
import type {
  NetService,
  PacketBackendSpec,
  PacketBackendStats,
  PacketEndpoint,
  PluginState,
  SnapshotValue,
} from "../../../core/api/mod.ts";
import { decodeValue, encodeValue } from "../../../core/snapshot_format.ts";
import { createTestDeviceHost, setupTestDevice } from "../../../testing/mod.ts";
import { MmioReg, VirtioFeature, VirtioStatus } from "../../../core/virtio/mod.ts";
import { type UsedEntry, VirtioTestDriver } from "../../../testing/virtio.ts";
import virtioNet, {
  defaultMac,
  NET_STATE_VERSION,
  NetFeature,
  NetQueue,
  parseHostForwards,
} from "./mod.ts";

/**
 * An endpoint in memory: packets the test queues in `inbox` are what the "host" sends, `sent`
 * collects what the device sent. `room` limits how many sends it takes before refusing.
 */
class MemoryEndpoint implements PacketEndpoint {
  readonly description = "memory endpoint";
  inbox: Uint8Array[] = [];
  sent: Uint8Array[] = [];
  room = Infinity;
  failure: string | undefined;
  closed = false;
  flushes = 0;
  #handler: (() => void) | undefined;

  receive(into: Uint8Array): number {
    const p = this.inbox.shift();
    if (!p) return 0;
    into.set(p);
    return p.length;
  }
  send(packet: Uint8Array): boolean {
    if (this.room <= 0) return false;
    this.room--;
    this.sent.push(packet.slice());
    return true;
  }
  flush(): void {
    this.flushes++;
  }
  onEvent(fn: () => void): void {
    this.#handler = fn;
  }
  error(): string | undefined {
    return this.failure;
  }
  stats(): PacketBackendStats {
    return { rxFrames: 0, rxDropped: 0, txFrames: this.sent.length, txDropped: 0, kicks: 0 };
  }
  close(): void {
    this.closed = true;
  }
  /** What core does after the backend's event. */
  event(): void {
    this.#handler?.();
  }
}

function service(ep: MemoryEndpoint, specs: PacketBackendSpec[] = []): NetService {
  return {
    open(spec) {
      specs.push(spec);
      return ep;
    },
  };
}

/** A packet as the endpoint carries it: a zero header, then an Ethernet frame of `len` bytes. */
/** The bytes of used buffers `used`, in order: one received packet spread over them. */
function joinUsed(driver: VirtioTestDriver, used: UsedEntry[]): Uint8Array {
  const all = new Uint8Array(used.reduce((n, u) => n + u.len, 0));
  let at = 0;
  for (const u of used) {
    all.set(driver.readUsed(u), at);
    at += u.len;
  }
  return all;
}

function packet(len: number, seed = 1): Uint8Array {
  const p = new Uint8Array(12 + len);
  for (let i = 0; i < len; i++) p[12 + i] = (i * 13 + seed) & 0xff;
  return p;
}

async function setup(
  options: Record<string, unknown> = {},
  init: { accept?: bigint } = {},
) {
  const ep = new MemoryEndpoint();
  const specs: PacketBackendSpec[] = [];
  const host = createTestDeviceHost({
    hasPio: false,
    memorySize: 4 << 20,
    net: service(ep, specs),
    name: "virtio-net",
  });
  const dev = await setupTestDevice(virtioNet, host, options);
  const driver = new VirtioTestDriver(host, host.descriptions[0]!.mmio!.base);
  ok(driver.init(init) & VirtioStatus.DRIVER_OK);
  return { host, dev, driver, ep, specs };
}

Deno.test("virtio-net: id, features, MAC and link status", async () => {
  const { driver, dev, ep, specs } = await setup();
  equal(driver.reg(MmioReg.DEVICE_ID), 1);
  const f = driver.deviceFeatures();
  ok(f & NetFeature.MAC && f & NetFeature.STATUS && f & NetFeature.MRG_RXBUF);
  ok(f & VirtioFeature.VERSION_1);
  const mac = [0, 1, 2, 3, 4, 5].map((i) => driver.config(i, 1));
  assertEquals(mac, [0x02, 0x76, 0x6d, 0x6f, 0x6e, 0x00]);
  equal(driver.config(6, 2), 1); // LINK_UP
  assertEquals(specs, [{ kind: "user", hostfwd: [] }]);
  dev.dispose();
  ok(ep.closed);
});

Deno.test("virtio-net: a MAC option, and the default MAC of a second device", async () => {
  const { driver, dev } = await setup({ mac: "52:54:00:12:34:56" });
  equal(driver.config(0, 1), 0x52);
  equal(driver.config(5, 1), 0x56);
  dev.dispose();
  equal(defaultMac("virtio-net.1"), "02:76:6d:6f:6e:01");
  const host = createTestDeviceHost({ hasPio: false, net: service(new MemoryEndpoint()) });
  await rejects(setupTestDevice(virtioNet, host, { mac: "01:00:5e:00:00:01" }), /Invalid MAC/);
  await rejects(setupTestDevice(virtioNet, host, { mac: "02:00:00" }), /Invalid MAC/);
});

Deno.test("virtio-net: transmit, one buffer and split header and frame", async () => {
  const { driver, dev, ep, host } = await setup();
  const p = packet(60);
  driver.submit(NetQueue.TX, [{ data: p }]);
  driver.submit(NetQueue.TX, [{ data: p.subarray(0, 12) }, { data: p.subarray(12) }], {
    indirect: true,
  });
  assertEquals(ep.sent, [p, p]);
  ok(ep.flushes > 0);
  const used = driver.takeUsed(NetQueue.TX);
  equal(used.length, 2);
  ok(used.every((u) => u.len === 0));
  equal(host.counters().tx_packets, 2);
  equal(host.counters().tx_bytes, 120);
  dev.dispose();
});

Deno.test("virtio-net: malformed transmit chains are counted and dropped", async () => {
  const { driver, dev, ep, host } = await setup();
  const bad = packet(60);
  bad[0] = 1; // NEEDS_CSUM without VIRTIO_NET_F_CSUM
  driver.submit(NetQueue.TX, [{ data: packet(10) }]); // frame shorter than an Ethernet header
  driver.submit(NetQueue.TX, [{ data: packet(60) }, { len: 16 }]); // a writable buffer
  driver.submit(NetQueue.TX, [{ data: bad }]);
  driver.submit(NetQueue.TX, [{ data: new Uint8Array(4) }]); // no whole header
  driver.submit(NetQueue.TX, [{ data: packet(60), addr: 0x7fff_f000 }]); // outside RAM
  driver.submit(NetQueue.TX, [{ data: packet(60) }]); // the good one still goes out
  assertEquals(ep.sent, [packet(60)]);
  equal(driver.takeUsed(NetQueue.TX).length, 6);
  const c = host.counters();
  equal(c.tx_malformed, 4);
  equal(c.malformed_chains, 1);
  equal(c.tx_packets, 1);
  dev.dispose();
});

Deno.test("virtio-net: receive into a buffer, with num_buffers 1", async () => {
  const { driver, dev, ep, host } = await setup();
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  const p = packet(100, 7);
  ep.inbox.push(p);
  ep.event();
  const [u] = driver.takeUsed(NetQueue.RX);
  equal(u!.len, 112);
  const got = driver.readUsed(u!);
  equal(got[10], 1);
  assertEquals(got.subarray(12), p.subarray(12));
  ok(driver.ackInterrupt() & 1);
  equal(host.counters().rx_packets, 1);
  equal(host.counters().rx_bytes, 100);
  dev.dispose();
});

Deno.test("virtio-net: a packet waits for buffers, then spreads over mergeable buffers", async () => {
  const { driver, dev, ep } = await setup();
  const p = packet(5000, 3);
  ep.inbox.push(p);
  ep.event(); // no buffers yet: kept
  equal(driver.takeUsed(NetQueue.RX).length, 0);
  for (let i = 0; i < 3; i++) driver.submit(NetQueue.RX, [{ len: 1526 }]);
  equal(driver.takeUsed(NetQueue.RX).length, 0); // 4578 bytes of room: not enough
  driver.submit(NetQueue.RX, [{ len: 1000 }, { len: 526 }]);
  const used = driver.takeUsed(NetQueue.RX);
  equal(used.length, 4);
  assertEquals(used.map((u) => u.len), [1526, 1526, 1526, 5012 - 3 * 1526]);
  const all = joinUsed(driver, used);
  equal(all[10], 4); // num_buffers
  assertEquals(all.subarray(12), p.subarray(12));
  dev.dispose();
});

Deno.test("virtio-net: without mergeable buffers a packet too large for a buffer is dropped", async () => {
  const accept = ~NetFeature.MRG_RXBUF;
  const { driver, dev, ep, host } = await setup({}, { accept });
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  ep.inbox.push(packet(3000), packet(64, 9));
  ep.event();
  const used = driver.takeUsed(NetQueue.RX);
  equal(used.length, 1); // the small packet took the buffer the large one could not use
  equal(used[0]!.len, 76);
  equal(driver.readUsed(used[0]!)[10], 1);
  equal(host.counters().rx_dropped, 1);
  dev.dispose();
});

Deno.test("virtio-net: malformed receive chains are counted and returned unused", async () => {
  const { driver, dev, ep, host } = await setup();
  driver.submit(NetQueue.RX, [{ data: new Uint8Array(4) }, { len: 1526 }]); // readable part
  driver.submit(NetQueue.RX, [{ len: 8 }]); // no room for the header
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  ep.inbox.push(packet(60));
  ep.event();
  const used = driver.takeUsed(NetQueue.RX);
  assertEquals(used.map((u) => u.len), [0, 0, 72]);
  equal(host.counters().rx_malformed, 2);
  dev.dispose();
});

Deno.test("virtio-net: a full backend queue holds the chain until the backend's event", async () => {
  const { driver, dev, ep } = await setup();
  ep.room = 1;
  driver.submit(NetQueue.TX, [{ data: packet(60, 1) }]);
  driver.submit(NetQueue.TX, [{ data: packet(60, 2) }]);
  driver.submit(NetQueue.TX, [{ data: packet(60, 3) }]);
  equal(ep.sent.length, 1);
  equal(driver.takeUsed(NetQueue.TX).length, 1);
  ep.room = Infinity;
  ep.event();
  assertEquals(ep.sent, [packet(60, 1), packet(60, 2), packet(60, 3)]);
  equal(driver.takeUsed(NetQueue.TX).length, 2);
  dev.dispose();
});

Deno.test("virtio-net: the link goes down when the backend stops", async () => {
  const { driver, dev, ep, host } = await setup();
  driver.ackInterrupt();
  ep.failure = "passt closed the connection";
  ep.event();
  equal(driver.config(6, 2), 0);
  ok(driver.ackInterrupt() & 2); // configuration change
  driver.submit(NetQueue.TX, [{ data: packet(60) }]);
  equal(ep.sent.length, 0);
  equal(host.counters().tx_dropped, 1);
  ok(host.logs.some((l) => /backend stopped: passt closed/.test(l.message)));
  dev.dispose();
});

Deno.test("virtio-net: backend none has no link and opens nothing", async () => {
  const { driver, dev, specs, host } = await setup({ backend: "none" });
  assertEquals(specs, []);
  equal(driver.config(6, 2), 0);
  driver.submit(NetQueue.TX, [{ data: packet(60) }]);
  equal(driver.takeUsed(NetQueue.TX).length, 1);
  equal(host.counters().tx_dropped, 1);
  dev.dispose();
});

Deno.test("virtio-net: packets that arrive without a driver are dropped", async () => {
  const { driver, dev, ep, host } = await setup();
  driver.setReg(MmioReg.STATUS, 0); // reset
  ep.inbox.push(packet(60), packet(60));
  ep.event();
  equal(ep.inbox.length, 0);
  equal(host.counters().rx_dropped, 2);
  dev.dispose();
});

Deno.test("virtio-net: backend options", async () => {
  const { dev, specs } = await setup({ hostfwd: "tcp:8080-:80 tcp:0.0.0.0:2222-10.0.2.15:22" });
  assertEquals(specs, [{
    kind: "user",
    hostfwd: [
      { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80 },
      { protocol: "tcp", hostAddress: "0.0.0.0", hostPort: 2222, guestPort: 22 },
    ],
  }]);
  dev.dispose();
  const tap = await setup({ backend: "tap", ifname: "vmtap0" });
  assertEquals(tap.specs, [{ kind: "tap", ifname: "vmtap0" }]);
  tap.dev.dispose();
  const host = createTestDeviceHost({ hasPio: false, net: service(new MemoryEndpoint()) });
  await rejects(
    setupTestDevice(virtioNet, host, { backend: "tap", hostfwd: "tcp:1-:1" }),
    /Cannot forward host ports with backend "tap"/,
  );
  await rejects(
    setupTestDevice(virtioNet, host, { backend: "user", ifname: "x" }),
    /Cannot use ifname with backend "user"/,
  );
  const bare = createTestDeviceHost({ hasPio: false });
  await rejects(setupTestDevice(virtioNet, bare, {}), /has no packet endpoints/);
});

Deno.test("virtio-net: hostfwd rules", () => {
  throws(() => parseHostForwards("tcp:80"), /expected tcp:\[hostaddr\]:hostport-/);
  throws(() => parseHostForwards("udp:53-:53"), /only tcp/);
  throws(() => parseHostForwards("tcp:70000-:80"), /port "70000" is not 1 to 65535/);
  throws(() => parseHostForwards("tcp:8080-10.0.2.9:80"), /the guest's own/);
  throws(() => parseHostForwards("tcp:300.1.1.1:8080-:80"), /not an IPv4 address/);
  equal(parseHostForwards(" tcp:1-:2 ;tcp:3-:4 ").length, 2);
});

/** A host whose backends are the endpoints in `eps`, opened in order. */
function restorableHost(eps: MemoryEndpoint[]) {
  return createTestDeviceHost({
    hasPio: false,
    memorySize: 4 << 20,
    net: { open: () => eps.shift() ?? new MemoryEndpoint() },
    name: "virtio-net",
  });
}

/** A state as it comes back from a snapshot file (bytes and bigints through the encoding). */
function throughFile(saved: PluginState): PluginState {
  return {
    version: saved.version,
    state: decodeValue(encodeValue(saved.state), { name: "test", what: "virtio-net" }),
  };
}

Deno.test("virtio-net: save and restore keep taken chains, a waiting packet, a held send", async () => {
  const ep = new MemoryEndpoint();
  const ep2 = new MemoryEndpoint();
  const host = restorableHost([ep, ep2]);
  const dev = await setupTestDevice(virtioNet, host, {});
  const base = host.descriptions[0]!.mmio!.base;
  const driver = new VirtioTestDriver(host, base);
  ok(driver.init() & VirtioStatus.DRIVER_OK);
  // Traffic before: one packet delivered, one sent.
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  ep.inbox.push(packet(80, 5));
  ep.event();
  equal(driver.takeUsed(NetQueue.RX).length, 1);
  driver.submit(NetQueue.TX, [{ data: packet(60, 1) }]);
  equal(driver.takeUsed(NetQueue.TX).length, 1);
  // A 5000-byte packet waits with two receive chains taken; a send waits for a full backend.
  const big = packet(5000, 3);
  ep.inbox.push(big);
  ep.event();
  const heads = [0, 1].map(() => driver.submit(NetQueue.RX, [{ len: 1526 }]));
  equal(driver.takeUsed(NetQueue.RX).length, 0);
  ep.room = 0;
  const txHead = driver.submit(NetQueue.TX, [{ data: packet(60, 2) }]);
  equal(driver.takeUsed(NetQueue.TX).length, 0);
  const before = host.counters();

  const saved = throughFile(dev.save!());
  equal(saved.version, NET_STATE_VERSION);
  dev.dispose();
  ok(ep.closed);
  // The same window again (the test host keeps its line allocated: another line), then the saved
  // state: RAM is as it was.
  const restored = await setupTestDevice(virtioNet, host, { base });
  restored.restore!(saved);
  equal(driver.status() & VirtioStatus.DRIVER_OK, VirtioStatus.DRIVER_OK);
  equal(driver.config(6, 2), 1); // link up on the new backend
  // The held send went to the new backend and its chain came back.
  assertEquals(ep2.sent, [packet(60, 2)]);
  assertEquals(driver.takeUsed(NetQueue.TX).map((u) => u.id), [txHead]);
  // Two more buffers: the waiting packet spreads over the two taken before and these.
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  const used = driver.takeUsed(NetQueue.RX);
  assertEquals(used.slice(0, 2).map((u) => u.id), heads);
  assertEquals(used.map((u) => u.len), [1526, 1526, 1526, 5012 - 3 * 1526]);
  const all = joinUsed(driver, used);
  equal(all[10], 4); // num_buffers
  assertEquals(all.subarray(12), big.subarray(12));
  // Traffic goes on through the new backend; the rings stay in step.
  ep2.inbox.push(packet(70, 9));
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  ep2.event();
  const [u] = driver.takeUsed(NetQueue.RX);
  assertEquals(driver.readUsed(u!).subarray(12), packet(70, 9).subarray(12));
  driver.submit(NetQueue.TX, [{ data: packet(60, 4) }]);
  assertEquals(ep2.sent, [packet(60, 2), packet(60, 4)]);
  equal(host.counters().malformed_chains, 0);
  ok(host.counters().rx_packets! > before.rx_packets!);
  restored.dispose();
});

Deno.test("virtio-net: a state that does not fit is refused with one line", async () => {
  const host = restorableHost([]);
  const dev = await setupTestDevice(virtioNet, host, {});
  const base = host.descriptions[0]!.mmio!.base;
  const driver = new VirtioTestDriver(host, base);
  driver.init();
  driver.submit(NetQueue.RX, [{ len: 1526 }]);
  const good = throughFile(dev.save!());
  const st = good.state as Record<string, SnapshotValue>;
  const device = st.device as Record<string, SnapshotValue>;
  const withDevice = (patch: Record<string, SnapshotValue>): PluginState => ({
    version: good.version,
    state: { ...st, device: { ...device, ...patch } },
  });
  const refused = async (saved: PluginState, pattern: RegExp) => {
    const fresh = createTestDeviceHost({
      hasPio: false,
      memorySize: 4 << 20,
      net: service(new MemoryEndpoint()),
      name: "virtio-net",
    });
    const d = await setupTestDevice(virtioNet, fresh, {});
    throws(() => d.restore!(saved), (e: Error) => {
      match(e.message, pattern);
      ok(!e.message.includes("\n"), e.message);
      return true;
    });
    d.dispose();
  };
  await refused(
    { ...good, version: 2 },
    /Cannot restore virtio-net: state version 2 is not supported/,
  );
  await refused({ ...good, state: null }, /Cannot restore virtio-net: state version/);
  await refused(
    withDevice({ mac: new Uint8Array([2, 0, 0, 0, 0, 1]) }),
    /MAC is 02:00:00:00:00:01/,
  );
  await refused(withDevice({ mac: "02:76:6d:6f:6e:00" }), /malformed: mac/);
  await refused(withDevice({ linkUp: 1 }), /malformed: linkUp/);
  await refused(withDevice({ rxPacket: new Uint8Array(70000) }), /malformed: rxPacket/);
  await refused(withDevice({ rxChains: [[0, 0x7fff_f000, 1526]] }), /outside RAM/);
  await refused(withDevice({ rxChains: [[999, 0x2000, 1526]] }), /receive chain 0/);
  await refused(withDevice({ rxChains: [[0, 0x2000]] }), /receive chain 0/);
  await refused(withDevice({ rxChains: [[0, 0x2000, 4]] }), /receive chain 0/);
  await refused(withDevice({ txHeld: { head: 0, packet: new Uint8Array(3) } }), /txHeld/);
  await refused(withDevice({ txHeld: 5 }), /txHeld/);
  await refused(
    { ...good, state: { ...st, transport: { status: -1 } } },
    /virtio device 1: "status" is malformed/,
  );
  // A corrupted file: flipped bytes in the encoded state are refused by the decoder or here.
  const text = new TextDecoder().decode(encodeValue(good.state)).replace(
    '"linkUp":true',
    '"linkUp":"yes"',
  );
  await refused(
    {
      version: good.version,
      state: decodeValue(new TextEncoder().encode(text), { name: "t", what: "s" }),
    },
    /malformed: linkUp/,
  );
  dev.dispose();
});
