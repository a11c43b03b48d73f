// A paging host of plain objects for the unit tests (plugins import only the public API, so the
// host is built here): guest RAM over a Uint8Array, a recording bus, fake port mechanisms.

import type {
  Counter,
  DeviceBus,
  GuestMemoryAccess,
  HostPortInstance,
  HypercallHandler,
  PagingHost,
  PagingMechanisms,
} from "../../../core/api.ts";

/** What the fake host records. */
export interface FakeHost {
  host: PagingHost;
  ram: Uint8Array;
  hypercalls: Map<number, HypercallHandler>;
  invalidated: number[];
  ptPages: Set<number>;
}

/** A fake host: RAM at `base` of `size` bytes, a port listing `strategies`. */
export function fakeHost(
  strategies: string[],
  options: { base?: number; size?: number; hostport?: string; mechanisms?: boolean } = {},
): FakeHost {
  const base = options.base ?? 0x8000_0000;
  const size = options.size ?? 0x10000;
  const ram = new Uint8Array(size);
  const dv = new DataView(ram.buffer);
  const at = (gpa: number, len: number) => {
    if (gpa < base || gpa + len > base + size) throw new Error(`not RAM: ${gpa.toString(16)}`);
    return gpa - base;
  };
  const memory = {
    size,
    regions: [{ gpa: base, size, readonly: false, name: "ram" }],
    contains: (gpa: number, len: number) => gpa >= base && gpa + len <= base + size,
    read: (gpa: number, len: number) => ram.slice(at(gpa, len), at(gpa, len) + len),
    write: (gpa: number, data: Uint8Array) => ram.set(data, at(gpa, data.length)),
    readU64: (gpa: number) => dv.getBigUint64(at(gpa, 8), true),
    writeU64: (gpa: number, v: bigint) => dv.setBigUint64(at(gpa, 8), v, true),
    view: (gpa: number, len: number) => ram.subarray(at(gpa, len), at(gpa, len) + len),
  } as unknown as GuestMemoryAccess;
  const hypercalls = new Map<number, HypercallHandler>();
  const bus = {
    registerHypercall(nr: number, fn: HypercallHandler) {
      hypercalls.set(nr, fn);
      return { unregister: () => hypercalls.delete(nr) };
    },
  } as unknown as DeviceBus;
  const invalidated: number[] = [];
  const ptPages = new Set<number>();
  const mechanisms: PagingMechanisms = {
    setMode() {},
    setLeafRanges() {},
    setExits() {},
    approve() {},
    invalidate: (gpa: number) => (invalidated.push(gpa), 1),
    flushShadow() {},
    isPageTable: (gpa: number) => ptPages.has(gpa - (gpa % 4096)),
    queuePage: () => -1,
    queuedPages: () => [],
    snapshot: () => new Uint8Array(4096),
    releaseQueue: () => 0,
    counters: () => ({}),
  };
  const hostport = {
    arch: "riscv64",
    capabilities: {
      exitCounts: true,
      instructionCounts: true,
      tlbStats: true,
      pagingStrategies: strategies,
    },
    ...(options.mechanisms === false ? {} : { paging: mechanisms }),
  } as unknown as HostPortInstance;
  const counters = new Map<string, { value: number }>();
  const host: PagingHost = {
    name: "test",
    machine: { cpus: 1, memorySize: size, arch: "riscv64", hostport: options.hostport ?? "rv64" },
    log: { debug() {}, info() {}, warn() {} },
    metrics: {
      counter(name: string): Counter {
        let c = counters.get(name);
        if (c === undefined) counters.set(name, c = { value: 0 });
        const cell = c;
        return {
          add: (n = 1) => void (cell.value += n),
          get value() {
            return cell.value;
          },
        };
      },
    },
    timers: { setTimeout: () => 0, clear() {}, now: () => 0 },
    files: { readFile: () => new Uint8Array(), open: () => ({}) as never },
    hostport,
    memory,
    bus,
  };
  return { host, ram, hypercalls, invalidated, ptPages };
}
