import { buildMachineStats, MetricsRegistry } from "./stats.ts";
import { ExitBus } from "./bus.ts";
import { ExitKind, type ExitRecord } from "./api/mod.ts";
import { VmonError } from "./errors.ts";

function eq(actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

Deno.test("MetricsRegistry keeps counters per plugin", () => {
  const reg = new MetricsRegistry();
  const a = reg.forPlugin("virtio-blk");
  const reads = a.counter("reads", "Sectors read");
  reads.add(8);
  a.counter("reads").add();
  eq(a.counter("reads") === reads, true);
  reg.forPlugin("uart16550").counter("tx");
  reg.forPlugin("idle");
  eq(reg.snapshot(), { "virtio-blk": { reads: 9 }, uart16550: { tx: 0 } });
  eq(reg.descriptions(), { "virtio-blk": { reads: "Sectors read" }, uart16550: { tx: "" } });
  // The same plugin name shares its counters.
  eq(reg.forPlugin("virtio-blk").counter("reads").value, 9);
});

Deno.test("Counters refuse to go down", () => {
  const c = new MetricsRegistry().forPlugin("p").counter("n");
  for (const bad of [-1, NaN, Infinity]) {
    try {
      c.add(bad);
      throw new Error("no error");
    } catch (e) {
      if (!(e instanceof VmonError)) throw e;
      eq(e.message, `Cannot add ${bad} to counter "n" of plugin "p": counters only increase`);
    }
  }
  eq(c.value, 0);
  try {
    new MetricsRegistry().forPlugin("p").counter("");
    throw new Error("no error");
  } catch (e) {
    if (!(e instanceof VmonError)) throw e;
  }
});

Deno.test("buildMachineStats assembles bus counters, metrics, paging and host port stats", () => {
  const bus = new ExitBus({ log: () => {} });
  bus.forPlugin("uart16550").registerPio(0x3f8, 8, { read: () => 0, write: () => {} });
  const exit = {
    kind: ExitKind.Io,
    address: 0x3f8,
    size: 1,
    isWrite: true,
    count: 1,
    data: new DataView(new ArrayBuffer(8)),
  } as ExitRecord;
  bus.dispatchIo(exit, 0);
  bus.dispatchIo({ ...exit, address: 0x80 }, 0);
  bus.dispatchHypercall({
    ...exit,
    kind: ExitKind.Hypercall,
    nr: 0x99,
    fid: 0,
    args: new BigUint64Array(6),
  }, 0);
  bus.countExit(ExitKind.Halt);
  const metrics = new MetricsRegistry();
  metrics.forPlugin("uart16550").counter("tx").add(1);
  metrics.forPlugin("wired").counter("unexpected-traps");
  const stats = buildMachineStats({
    bus: bus.counters(),
    metrics,
    paging: { name: "wired", stats: { traps: 0, updates: 0 } },
    hostport: { instructions: 1234 },
    wallMs: 12.5,
  });
  eq(stats, {
    exits: { io: 2, hlt: 1, hypercall: 1 },
    plugins: { uart16550: 1, unclaimed: 2 },
    metrics: {
      uart16550: { tx: 1 },
      wired: { "unexpected-traps": 0, traps: 0, updates: 0 },
      "exit-bus": { "unclaimed io": 1, "unclaimed hypercall 0x99": 1 },
    },
    hostport: { instructions: 1234 },
    wallMs: 12.5,
  });
  eq(JSON.parse(JSON.stringify(stats)), stats);
});
