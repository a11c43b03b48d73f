/**
 * Test hosts built on core's own pieces: {@linkcode createTestDeviceHost} for devices (core's
 * exit bus and metrics, so a device sees exactly the machine's bus policies),
 * {@linkcode createTestPagingHost} for paging strategies. Used by the built-in plugins' tests.
 *
 * @module
 */

import type {
  AccessSize,
  ConsolePort,
  Counter,
  DeviceBus,
  DeviceDescription,
  DeviceHost,
  DevicePluginDefinition,
  GuestArch,
  GuestMemoryAccess,
  HostFiles,
  HostPortInstance,
  HypercallHandler,
  IrqLine,
  Logger,
  MachineInfo,
  Metrics,
  NetService,
  OptionsSchema,
  OptionValues,
  PagingHost,
  PagingMechanismName,
  PagingMechanisms,
  PlatformServices,
  PluginInstance,
  Timers,
} from "../core/api/mod.ts";
import { ExitKind, type ExitRecord } from "../core/api/mod.ts";
import {
  PAGING_MECHANISM_NAMES,
  PAGING_MECHANISMS,
  PAGING_MECHANISMS_VERSION,
} from "../core/api/mod.ts";
import { type BusCounters, ExitBus, type Space } from "../core/bus.ts";
import { hex, VmonError } from "../core/errors.ts";
import { createHostFiles } from "../core/files.ts";
import { GuestMemory } from "../core/memory.ts";
import { MetricsRegistry } from "../core/stats.ts";

export { createHostFiles };
export type { BusCounters };
import { validateOptions } from "../core/schema.ts";

// ---------------------------------------------------------------------------------------------
// Interrupt lines, timers, metrics, logs
// ---------------------------------------------------------------------------------------------

/** An interrupt line whose level and history a test can observe. */
export interface TestIrqLine extends IrqLine {
  /** The current level. */
  readonly level: boolean;
  /** Every level set, in order (a pulse records `true` then `false`). */
  readonly history: readonly boolean[];
  /** Number of low-to-high transitions. */
  readonly raises: number;
}

class IrqLineImpl implements TestIrqLine {
  readonly number: number;
  level = false;
  history: boolean[] = [];
  raises = 0;

  constructor(n: number) {
    this.number = n;
  }

  set(level: boolean): void {
    if (level && !this.level) this.raises++;
    this.level = level;
    this.history.push(level);
  }

  pulse(): void {
    this.set(true);
    this.set(false);
  }
}

/** Timers that only advance when the test says so. */
export class FakeTimers implements Timers {
  #now = 0;
  #next = 1;
  #pending = new Map<number, { at: number; fn: () => void }>();

  /** Schedules `fn` at now + `ms`. */
  setTimeout(fn: () => void, ms: number): number {
    const id = this.#next++;
    this.#pending.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  /** Cancels a timer. */
  clear(id: number): void {
    this.#pending.delete(id);
  }

  /** The fake time in milliseconds. */
  now(): number {
    return this.#now;
  }

  /** Number of timers not yet fired. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Moves time forward by `ms`, firing due timers in deadline order (timers scheduled by a
   * callback fire too if they fall inside the window).
   */
  advance(ms: number): void {
    const end = this.#now + Math.max(0, ms);
    for (;;) {
      let best: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#pending) {
        if (entry[1].at <= end && (!best || entry[1].at < best[1].at)) best = entry;
      }
      if (!best) break;
      this.#pending.delete(best[0]);
      this.#now = Math.max(this.#now, best[1].at);
      best[1].fn();
    }
    this.#now = end;
  }
}

/** One captured log line. */
export interface LogEntry {
  /** The level. */
  readonly level: "debug" | "info" | "warn";
  /** The message. */
  readonly message: string;
}

/** One captured `requestExit` call. */
export interface ExitRequest {
  /** The exit status. */
  readonly status: number;
  /** The reason given, if any. */
  readonly reason?: string;
  /** True when the plugin reported a failure. */
  readonly failed?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The host
// ---------------------------------------------------------------------------------------------

/** Options of {@linkcode createTestDeviceHost}. */
export interface TestDeviceHostOptions {
  /** The plugin name the host reports (default `test-device`). */
  name?: string;
  /** Bytes of RAM (default 1 MiB). Ignored when `memory` is given. */
  memorySize?: number;
  /** Guest physical address of RAM (default 0). Ignored when `memory` is given. */
  memoryBase?: number;
  /** A memory implementation to use instead of a fresh {@linkcode GuestMemory}. */
  memory?: GuestMemoryAccess;
  /** Whether the platform has port I/O (default true). */
  hasPio?: boolean;
  /** Register shift for byte-wide devices on MMIO (default 0). */
  mmioRegShift?: number;
  /** Where `allocateMmio` starts handing out windows (default 0x1000_0000). */
  mmioBase?: number;
  /** The first line `allocateIrq()` hands out without a preference (default 1). */
  firstIrq?: number;
  /** The guest architecture reported in `machine` (default from `hasPio`). */
  arch?: GuestArch;
  /** Host files (default: the real file system through {@linkcode createHostFiles}). */
  files?: HostFiles;
  /** Print log lines to stderr as well as capturing them (default false). */
  echoLogs?: boolean;
  /**
   * Packet endpoints for network devices (`DeviceHost.net`; default: none). Endpoints opened
   * here are not polled by a scheduler: the test calls the event function it set.
   */
  net?: NetService;
}

/**
 * The host `createTestDeviceHost` returns: a `DeviceHost` plus controls for the test.
 *
 * The bus is core's exit bus (`ExitBus` in `core/bus.ts`); the access helpers dispatch one
 * access through it as a vCPU exit would, so its policies hold here too: handlers get offsets;
 * an access is claimed only when it lies inside one range; unclaimed reads give all ones over
 * the width (`0xffff_ffff_ffff_ffff` for 8 bytes) and unclaimed writes are ignored; 8-byte
 * accesses go to `read64`/`write64` or are split low word first; a handler that throws does
 * not throw out of the helper: the access is treated as unclaimed, counted in
 * {@linkcode TestDeviceHost.busCounters} `errors` and logged once (a `warn` in `logs`).
 */
export interface TestDeviceHost extends DeviceHost {
  /** Fake timers; see {@linkcode FakeTimers.advance}. */
  readonly timers: FakeTimers;
  /** Reads port `port` through the bus (unclaimed: all ones). */
  pioRead(port: number, size: AccessSize): number;
  /** Writes port `port` through the bus (unclaimed: ignored). */
  pioWrite(port: number, size: AccessSize, value: number | bigint): void;
  /**
   * Reads MMIO address `gpa` through the bus (unclaimed: all ones). An 8-byte read is returned
   * as a number, exact up to 2^53 (all ones reads as 2 ** 64); use
   * {@linkcode TestDeviceHost.mmioRead64} for the exact value.
   */
  mmioRead(gpa: number, size: AccessSize): number;
  /** Reads 8 bytes at MMIO address `gpa` through the bus, exactly (unclaimed: all ones). */
  mmioRead64(gpa: number): bigint;
  /** Writes MMIO address `gpa` through the bus (unclaimed: ignored). */
  mmioWrite(gpa: number, size: AccessSize, value: number | bigint): void;
  /**
   * Calls hypercall `nr` through the bus, as the platform would (unclaimed, or a handler that
   * throws: `SBI_ERR_NOT_SUPPORTED`, -2). Arguments are 64-bit unsigned, padded to 6 with 0.
   */
  hypercall(nr: number, fid: number, args?: readonly bigint[]): { error: number; value: bigint };
  /** The interrupt line `n` (created on first use, whether allocated or not). */
  irq(n: number): TestIrqLine;
  /** Lines handed out by `allocateIrq`, by number. */
  readonly allocatedIrqs: ReadonlyMap<number, TestIrqLine>;
  /** Everything the device wrote to the console, concatenated. */
  readonly output: Uint8Array;
  /** The console output decoded as UTF-8. */
  outputText(): string;
  /** Number of `console.write` calls (to check batching). */
  readonly consoleWrites: number;
  /** Delivers user input to the device that subscribed; returns false if none did. */
  input(data: string | Uint8Array): boolean;
  /** Moves the fake clock forward, firing due timers. */
  advance(ms: number): void;
  /** Captured `requestExit` calls. */
  readonly exits: readonly ExitRequest[];
  /** Captured `describe` calls. */
  readonly descriptions: readonly DeviceDescription[];
  /** Windows handed out by `allocateMmio`. */
  readonly mmioAllocations: readonly { base: number; size: number }[];
  /** Registered PIO ranges, by base (the bus's `ranges()`). */
  readonly pioRanges: readonly { base: number; size: number }[];
  /** Registered MMIO ranges, by base (the bus's `ranges()`). */
  readonly mmioRanges: readonly { base: number; size: number }[];
  /** Unclaimed port I/O and MMIO accesses so far (the bus's `unclaimed` `io` + `mmio`). */
  readonly unclaimed: number;
  /** The bus's own counters: exits, accesses by plugin, handler errors, unclaimed by kind. */
  busCounters(): BusCounters;
  /** Captured log lines (the bus's handler-failure warnings included). */
  readonly logs: readonly LogEntry[];
  /** Current metric values by counter name (core's metrics registry, for this plugin). */
  counters(): Record<string, number>;
}

/** An exit record for a hypercall made by the test (the range helpers use `ExitBus.access`). */
function hypercallExit(nr: number, fid: number, args: readonly bigint[]): ExitRecord {
  const regs = new BigUint64Array(6);
  for (let i = 0; i < 6 && i < args.length; i++) regs[i] = args[i]!;
  return {
    kind: ExitKind.Hypercall,
    address: 0,
    size: 0,
    isWrite: false,
    count: 0,
    data: new DataView(new ArrayBuffer(0)),
    nr,
    fid,
    args: regs,
    code: 0,
    pc: 0n,
    detail: "",
  };
}

/**
 * Builds a {@linkcode TestDeviceHost}: a `DeviceHost` whose RAM, bus, interrupt lines, console,
 * timers and platform services are all in memory and observable.
 *
 * @param options See {@linkcode TestDeviceHostOptions}.
 * @returns The host, passed to a device plugin's `setup`.
 *
 * @example Capture console output and an exit request
 * ```ts
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * import { createTestDeviceHost } from "./mod.ts";
 *
 * const host = createTestDeviceHost({ hasPio: false });
 * host.console.write(new TextEncoder().encode("hi"));
 * host.requestExit(3, "guest exit");
 * assertEquals(host.outputText(), "hi");
 * assertEquals(host.exits, [{ status: 3, reason: "guest exit" }]);
 * ```
 */
export function createTestDeviceHost(options: TestDeviceHostOptions = {}): TestDeviceHost {
  const name = options.name ?? "test-device";
  const hasPio = options.hasPio ?? true;
  let memory = options.memory;
  if (!memory) {
    const ram = new GuestMemory();
    ram.addRegion(options.memoryBase ?? 0, new ArrayBuffer(options.memorySize ?? 1 << 20));
    memory = ram;
  }
  const timers = new FakeTimers();
  const lines = new Map<number, IrqLineImpl>();
  const allocated = new Map<number, IrqLineImpl>();
  const outChunks: Uint8Array[] = [];
  let consoleWrites = 0;
  let inputFn: ((bytes: Uint8Array) => void) | undefined;
  const exits: ExitRequest[] = [];
  const descriptions: DeviceDescription[] = [];
  const mmioAllocations: { base: number; size: number }[] = [];
  let nextMmio = options.mmioBase ?? 0x1000_0000;
  let nextIrq = options.firstIrq ?? 1;
  const logs: LogEntry[] = [];

  const line = (n: number): IrqLineImpl => {
    let l = lines.get(n);
    if (!l) {
      l = new IrqLineImpl(n);
      lines.set(n, l);
    }
    return l;
  };

  const log = (level: LogEntry["level"]) => (message: string) => {
    logs.push({ level, message });
    if (options.echoLogs) console.error(`[${name}] ${level}: ${message}`);
  };
  const logger: Logger = { debug: log("debug"), info: log("info"), warn: log("warn") };

  // Core's own metrics and exit bus: the machine's counters and bus policies, not copies.
  const registry = new MetricsRegistry();
  const metrics: Metrics = registry.forPlugin(name);
  const exitBus = new ExitBus({ log: log("warn") });
  const own = exitBus.forPlugin(name);
  const bus: DeviceBus = {
    registerPio: (base, size, handler) => {
      if (!hasPio) throw new VmonError(`Cannot register PIO range ${hex(base)}: no port I/O`);
      return own.registerPio(base, size, handler);
    },
    registerMmio: (base, size, handler) => own.registerMmio(base, size, handler),
    registerHypercall: (nr, handler) => own.registerHypercall(nr, handler),
  };

  const platform: PlatformServices = {
    hasPio,
    mmioRegShift: options.mmioRegShift ?? 0,
    allocateMmio(size: number): number {
      if (!Number.isSafeInteger(size) || size <= 0) {
        throw new VmonError(`Cannot allocate an MMIO window of ${size} bytes: invalid size`);
      }
      const align = Math.max(0x1000, 2 ** Math.ceil(Math.log2(size)));
      const base = Math.ceil(nextMmio / align) * align;
      nextMmio = base + Math.max(size, 0x1000);
      mmioAllocations.push({ base, size });
      return base;
    },
    allocateIrq(preferred?: number): IrqLine {
      let n = preferred;
      if (n === undefined) {
        while (allocated.has(nextIrq)) nextIrq++;
        n = nextIrq++;
      } else if (allocated.has(n)) {
        throw new VmonError(`Cannot allocate interrupt line ${n}: already in use`);
      }
      const l = line(n);
      allocated.set(n, l);
      return l;
    },
    describe(description: DeviceDescription): void {
      descriptions.push(description);
    },
  };

  const consolePort: ConsolePort = {
    write(bytes: Uint8Array): void {
      consoleWrites++;
      outChunks.push(bytes.slice());
    },
    onInput(fn: (bytes: Uint8Array) => void): boolean {
      if (inputFn) return false;
      inputFn = fn;
      return true;
    },
  };

  const machine: MachineInfo = {
    cpus: 1,
    memorySize: memory.size,
    arch: options.arch ?? (hasPio ? "x86_64" : "riscv64"),
    hostport: "test",
  };

  // Thin wrappers: one access each, dispatched through the real bus on vCPU 0.
  const read = (space: Space, address: number, size: AccessSize): bigint =>
    exitBus.access({ space, address, size }).value;
  const write = (space: Space, address: number, size: AccessSize, value: number | bigint) =>
    void exitBus.access({ space, address, size, write: value });
  const ranges = (space: Space) =>
    exitBus.ranges().filter((r) => r.space === space).map((r) => ({
      base: r.base,
      size: r.size,
    }));

  return {
    name,
    machine,
    log: logger,
    metrics,
    timers,
    files: options.files ?? createHostFiles(),
    memory,
    bus,
    platform,
    console: consolePort,
    ...(options.net === undefined ? {} : { net: options.net }),
    requestExit(status: number, reason?: string, options?: { failed?: boolean }): void {
      exits.push({
        status,
        ...(reason === undefined ? {} : { reason }),
        ...(options?.failed ? { failed: true } : {}),
      });
    },
    pioRead: (port, size) => Number(read("PIO", port, size)),
    pioWrite: (port, size, value) => write("PIO", port, size, value),
    mmioRead: (gpa, size) => Number(read("MMIO", gpa, size)),
    mmioRead64: (gpa) => read("MMIO", gpa, 8),
    mmioWrite: (gpa, size, value) => write("MMIO", gpa, size, value),
    hypercall(nr, fid, args = []) {
      const r = exitBus.dispatchHypercall(hypercallExit(nr, fid, args), 0);
      return { error: r.error, value: BigInt(r.value) };
    },
    irq: line,
    allocatedIrqs: allocated,
    get output(): Uint8Array {
      const total = outChunks.reduce((n, c) => n + c.length, 0);
      const out = new Uint8Array(total);
      let at = 0;
      for (const c of outChunks) {
        out.set(c, at);
        at += c.length;
      }
      return out;
    },
    outputText(): string {
      return new TextDecoder().decode(this.output);
    },
    get consoleWrites() {
      return consoleWrites;
    },
    input(data: string | Uint8Array): boolean {
      if (!inputFn) return false;
      inputFn(typeof data === "string" ? new TextEncoder().encode(data) : data);
      return true;
    },
    advance: (ms) => timers.advance(ms),
    exits,
    descriptions,
    mmioAllocations,
    get pioRanges() {
      return ranges("PIO");
    },
    get mmioRanges() {
      return ranges("MMIO");
    },
    get unclaimed() {
      const u = exitBus.counters().unclaimed;
      return (u.io ?? 0) + (u.mmio ?? 0);
    },
    busCounters: () => exitBus.counters(),
    logs,
    counters: () => ({ ...registry.snapshot()[name] }),
  };
}

/**
 * Sets up a device plugin on a test host the way the machine would: the raw options are
 * validated against the plugin's schema (defaults filled in, unknown options refused) before
 * `setup` is called.
 *
 * @param plugin The device plugin definition (a plugin module's default export).
 * @param host The host, from {@linkcode createTestDeviceHost}.
 * @param options Raw option values, as a manifest would give them.
 * @returns The plugin instance.
 *
 * @example
 * ```ts
 * import { definePlugin } from "../core/define_plugin.ts";
 * import { createTestDeviceHost, setupTestDevice } from "./mod.ts";
 *
 * const plugin = definePlugin({
 *   name: "hello",
 *   kind: "device",
 *   apiVersion: 1,
 *   description: "Says hello",
 *   options: { text: { type: "string", description: "What to say", default: "hello" } } as const,
 *   setup(host, options) {
 *     host.console.write(new TextEncoder().encode(options.text));
 *     return { dispose() {} };
 *   },
 * });
 * const host = createTestDeviceHost();
 * const dev = await setupTestDevice(plugin, host);
 * if (host.outputText() !== "hello") throw new Error("no hello");
 * dev.dispose();
 * ```
 */
export async function setupTestDevice<S extends OptionsSchema>(
  plugin: DevicePluginDefinition<S>,
  host: DeviceHost,
  options: Readonly<Record<string, unknown>> = {},
): Promise<PluginInstance> {
  const values = validateOptions(plugin.options, options, { plugin: plugin.name });
  return await plugin.setup(host, values as OptionValues<S>);
}

// ---------------------------------------------------------------------------------------------
// Paging strategies
// ---------------------------------------------------------------------------------------------

/** Options of {@linkcode createTestPagingHost}. */
export interface TestPagingHostOptions {
  /** Guest physical address of RAM (default 0x8000_0000). */
  memoryBase?: number;
  /** RAM size in bytes (default 64 KiB). */
  memorySize?: number;
  /** The host port's name, for messages (default `rv64`). */
  hostport?: string;
  /** The paging contract version the host port states (default `PAGING_MECHANISMS_VERSION`). */
  version?: number;
  /** vCPUs (default 1). */
  cpus?: number;
}

/** A paging plugin host for unit tests, with what it recorded. */
export interface TestPagingHost {
  /** The host to pass to a paging plugin's `setup`. */
  readonly host: PagingHost;
  /** Guest RAM (real {@linkcode GuestMemory}). */
  readonly memory: GuestMemory;
  /** Hypercall handlers registered by the plugin, by extension number. */
  readonly hypercalls: Map<number, HypercallHandler>;
  /** Guest physical addresses passed to `invalidate`, in call order. */
  readonly invalidated: number[];
  /** `approve` answers, in call order. */
  readonly approvals: { vcpu: number; approve: boolean }[];
  /** Pages the fake port treats as shadowed page-table pages (page addresses); tests add some. */
  readonly ptPages: Set<number>;
  /** Mode, leaf ranges, exits, write-protected pages and skipped instructions (by vCPU). */
  readonly state: {
    mode?: string;
    ranges: (readonly [number, number])[];
    exits: Map<number, { sfence?: boolean; satp?: boolean; whileQueued?: boolean }>;
    writeProtected: Set<number>;
    skipped: number[];
  };
  /** Log messages, by level. */
  readonly logs: LogEntry[];
}

/**
 * A paging plugin host over real guest RAM and a host port that offers the paging `mechanisms`
 * (`capabilities.paging`, and the methods of those mechanisms on `hostport.paging`); they behave
 * like the rv64 port's as far as TypeScript can see them: `queuePage` snapshots a page of
 * {@linkcode TestPagingHost.ptPages} into a slot (up to 4, then -2), `releaseQueue` empties the
 * queue, `diffQueue` diffs it as the port does; `invalidate` (and the entries `diffQueue` drops),
 * `approve`, `writeProtect` and `skipInstruction` are recorded.
 *
 * @param mechanisms The mechanisms the host port offers (default all; `[]` as on kvm).
 * @param options RAM, host port name, contract version, vCPUs.
 *
 * @example
 * ```ts
 * import { createTestPagingHost } from "./mod.ts";
 *
 * const t = createTestPagingHost(["shadow-tables", "counters"]);
 * t.ptPages.add(0x8000_1000);
 * if (!t.host.hostport.paging?.isPageTable?.(0x8000_1008)) throw new Error("not a table");
 * ```
 */
export function createTestPagingHost(
  mechanisms: readonly PagingMechanismName[] = PAGING_MECHANISM_NAMES,
  options: TestPagingHostOptions = {},
): TestPagingHost {
  const base = options.memoryBase ?? 0x8000_0000;
  const size = options.memorySize ?? 0x10000;
  const memory = new GuestMemory();
  memory.addRegion(base, new ArrayBuffer(size));
  const hypercalls = new Map<number, HypercallHandler>();
  const invalidated: number[] = [];
  const approvals: { vcpu: number; approve: boolean }[] = [];
  const ptPages = new Set<number>();
  const logs: LogEntry[] = [];
  const state: TestPagingHost["state"] = {
    ranges: [],
    exits: new Map(),
    writeProtected: new Set(),
    skipped: [],
  };
  const queue: { gpa: number; snap: Uint8Array }[] = [];
  const pageOf = (gpa: number) => gpa - (gpa % 4096);
  const all: PagingMechanisms = {
    writeProtect(gpa, len, on) {
      let n = 0;
      for (let page = pageOf(gpa); page < gpa + len; page += 4096) {
        if (state.writeProtected.has(page) !== on) n++;
        if (on) state.writeProtected.add(page);
        else state.writeProtected.delete(page);
      }
      return n;
    },
    skipInstruction: (vcpu) => void state.skipped.push(vcpu),
    setMode: (mode) => void (state.mode = mode),
    setLeafRanges: (ranges) => void (state.ranges = ranges.map(([a, b]) => [a, b] as const)),
    setExits: (vcpu, exits) => void state.exits.set(vcpu, { ...exits }),
    approve: (vcpu, approve) => void approvals.push({ vcpu, approve }),
    invalidate(gpa, len) {
      invalidated.push(gpa);
      // a whole-page invalidation leaves the page unshadowed, as on the port
      if (len >= 4096 && gpa % 4096 === 0) ptPages.delete(gpa);
      return 1;
    },
    flushShadow: () => ptPages.clear(),
    isPageTable: (gpa) => ptPages.has(pageOf(gpa)),
    queuePage(gpa) {
      const page = pageOf(gpa);
      if (!ptPages.has(page) || queue.some((q) => q.gpa === page)) return -1;
      if (queue.length >= 4) return -2;
      queue.push({ gpa: page, snap: memory.read(page, 4096) });
      return queue.length - 1;
    },
    queuedPages: () => queue.map((q) => q.gpa),
    snapshot(slot) {
      const q = queue[slot];
      if (q === undefined) throw new VmonError(`Cannot read queue slot ${slot}: not in use`);
      return q.snap;
    },
    releaseQueue: () => queue.splice(0).length,
    diffQueue() {
      // as the port's: entries changed other than by A/D updates; their shadow entries dropped
      const changes = [];
      for (const q of queue) {
        const live = memory.read(q.gpa, 4096);
        const o64 = new BigUint64Array(q.snap.buffer, q.snap.byteOffset, 512);
        const n64 = new BigUint64Array(live.buffer, live.byteOffset, 512);
        for (let k = 0; k < 512; k++) {
          const d = o64[k]! ^ n64[k]!;
          if (d === 0n || ((d & ~0xc0n) === 0n && (o64[k]! & d) === 0n)) continue;
          changes.push({ address: q.gpa + 8 * k, old: o64[k]!, value: n64[k]! });
          invalidated.push(q.gpa + 8 * k);
        }
      }
      return { pages: queue.map((q) => q.gpa), changes };
    },
    requeue(gpas) {
      queue.splice(0);
      for (const gpa of gpas) {
        const page = pageOf(gpa);
        if (!ptPages.has(page) || queue.some((q) => q.gpa === page) || queue.length >= 4) continue;
        queue.push({ gpa: page, snap: memory.read(page, 4096) });
      }
      return queue.length;
    },
    counters: () => ({ shadowFills: 0, shadowDrops: 0, ptPages: ptPages.size }),
  };
  // only the methods of the mechanisms offered, as a port with fewer mechanisms would have
  const offered: Partial<PagingMechanisms> = {};
  for (const name of mechanisms) {
    for (const method of PAGING_MECHANISMS[name]) Object.assign(offered, { [method]: all[method] });
  }
  const hostport = {
    arch: "riscv64",
    capabilities: {
      exitCounts: true,
      instructionCounts: true,
      tlbStats: true,
      paging: {
        version: options.version ?? PAGING_MECHANISMS_VERSION,
        mechanisms: [...mechanisms],
      },
    },
    ...(mechanisms.length === 0 ? {} : { paging: offered }),
  } as unknown as HostPortInstance;
  const counters = new Map<string, { value: number }>();
  const log = (level: LogEntry["level"]) => (message: string) => void logs.push({ level, message });
  const host: PagingHost = {
    name: "test-paging",
    machine: {
      cpus: options.cpus ?? 1,
      memorySize: size,
      arch: "riscv64",
      hostport: options.hostport ?? "rv64",
    } as MachineInfo,
    log: { debug: log("debug"), info: log("info"), warn: log("warn") },
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
    timers: new FakeTimers(),
    files: createHostFiles(),
    hostport,
    memory,
    bus: {
      registerPio: () => {
        throw new VmonError("Cannot register PIO ranges on the test paging host: not offered");
      },
      registerMmio: () => {
        throw new VmonError("Cannot register MMIO ranges on the test paging host: not offered");
      },
      registerHypercall(nr, handler) {
        if (hypercalls.has(nr)) {
          throw new VmonError(`Cannot register hypercall ${hex(nr)}: already registered`);
        }
        hypercalls.set(nr, handler);
        return { unregister: () => void hypercalls.delete(nr) };
      },
    },
  };
  return { host, memory, hypercalls, invalidated, approvals, ptPages, state, logs };
}
