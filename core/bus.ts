/**
 * The exit bus: the registries for port I/O ranges, MMIO ranges and hypercall numbers, and the
 * dispatch that routes each exit to the one plugin that claimed it.
 *
 * Policies (documented in DESIGN.md "The exit bus"):
 * - A handler gets the offset inside its range, never the absolute address.
 * - An access is claimed only when it lies entirely inside one range; an access that starts in
 *   a range and runs past its end is unclaimed.
 * - Unclaimed reads return all-ones over the access width (an 8-byte read gives
 *   `0xffff_ffff_ffff_ffff`), unclaimed writes are ignored; both are counted (plugin name
 *   `unclaimed`) and traced. Unclaimed hypercalls return `SBI_ERR_NOT_SUPPORTED` (-2) and are
 *   counted by number.
 * - A handler that throws (any error, `VmonError` included) does not stop the machine: the error
 *   is caught, counted per plugin and logged once per plugin, and the access is treated as
 *   unclaimed. A device that wants the machine to end calls `requestExit` instead of throwing.
 * - 8-byte accesses go to `read64`/`write64` when the handler has them, otherwise they are split
 *   into two 4-byte accesses, low word first (at `offset` and `offset + 4`).
 * - An access that does not come from a vCPU exit record (test hosts, tools) goes through
 *   {@linkcode ExitBus.access}, which applies every policy above and counts it as one `io` or
 *   `mmio` exit.
 *
 * @module
 */

import type {
  AccessSize,
  DeviceBus,
  ExitKindCode,
  ExitRecord,
  HypercallHandler,
  HypercallRequest,
  HypercallResult,
  PagingInstance,
  PlatformInstance,
  RangeHandler,
  RangeOccupant,
  Registration,
  Vcpu,
} from "./api/mod.ts";
import { ExitKind, SystemEventType } from "./api/mod.ts";
import { hex, VmonError } from "./errors.ts";
import { EXIT_KIND_NAMES, NO_TRACE, type Tracer } from "./trace.ts";
import { WATCH, WATCH_WRITE } from "./machine_protocol.ts";

/** SBI error code for "not supported": the answer to an unclaimed hypercall. */
export const SBI_ERR_NOT_SUPPORTED: number = -2;

/** The owner name used in counters for accesses no plugin claimed. */
export const UNCLAIMED = "unclaimed";

const NOT_SUPPORTED: HypercallResult = Object.freeze({ error: SBI_ERR_NOT_SUPPORTED, value: 0 });

/** Highest port number plus one. */
const PIO_LIMIT = 0x10000;

/** An address space of the bus: port I/O or MMIO. */
export type Space = "PIO" | "MMIO";

interface OwnerStats {
  readonly name: string;
  exits: number;
  errors: number;
  logged: boolean;
}

interface RangeEntry {
  readonly space: Space;
  readonly base: number;
  /** One past the last address. */
  readonly end: number;
  readonly owner: OwnerStats;
  readonly handler: RangeHandler;
}

interface HypercallEntry {
  readonly nr: number;
  readonly owner: OwnerStats;
  readonly handler: HypercallHandler;
}

/** One registered range, as listed by {@linkcode ExitBus.ranges}. */
export interface RangeInfo {
  /** `PIO` or `MMIO`. */
  readonly space: Space;
  /** First address (port or guest physical). */
  readonly base: number;
  /** Length in bytes. */
  readonly size: number;
  /** The plugin that registered it. */
  readonly owner: string;
}

/** One access for {@linkcode ExitBus.access}: a port I/O or MMIO read or write. */
export interface BusAccess {
  /** `PIO` (a port) or `MMIO` (a guest physical address). */
  readonly space: Space;
  /** The port or guest physical address. */
  readonly address: number;
  /** Width in bytes. */
  readonly size: AccessSize;
  /**
   * The value to write; omit for a read. Only the low `size` bytes are written; a number is
   * truncated to a whole number first.
   */
  readonly write?: number | bigint;
}

/** The outcome of {@linkcode ExitBus.access}. */
export interface BusAccessResult {
  /** True if a plugin handled the access (false when unclaimed or when its handler threw). */
  readonly claimed: boolean;
  /**
   * The value read (all ones over `size` bytes when unclaimed); for a write, the `size` bytes
   * written.
   */
  readonly value: bigint;
}

/** The bus counters, as plain objects (for `MachineStats`). */
export interface BusCounters {
  /** Exits by kind name: the ones dispatched here plus those counted with `countExit`. */
  readonly exits: Record<string, number>;
  /** Dispatched exits by the plugin that handled them; `unclaimed` for none. */
  readonly plugins: Record<string, number>;
  /** Handler errors by plugin. */
  readonly errors: Record<string, number>;
  /** Unclaimed accesses: `io`, `mmio`, and hypercalls by number (`hypercall 0x10`). */
  readonly unclaimed: Record<string, number>;
}

function fmtRange(base: number, end: number): string {
  return `${hex(base)}-${hex(end - 1)}`;
}

/** How a run ended, as decided by core's exit policy, the scheduler or a plugin. */
export interface RunOutcome {
  /** Exit status. */
  status: number;
  /** Why. */
  reason: string;
  /** True for failures (guest crash, host error). */
  failed: boolean;
}

/** The plugins and callback {@linkcode ExitBus.dispatchExit} needs for exits that are no access. */
export interface ExitRoutes {
  /** The platform, asked first about halt, shutdown and system events. */
  readonly platform?: PlatformInstance;
  /** The paging strategy, which receives paging exits. */
  readonly paging?: PagingInstance;
  /** Ends the machine (poweroff, reset, a dead guest). */
  readonly end: (outcome: RunOutcome) => void;
}

/** `"uart16550" at 0x10000000-0x100000ff`, or `RAM at ...` for a reservation. */
function describeHolder(h: RangeOccupant): string {
  return `${h.reserved ? h.owner : `"${h.owner}"`} at ${fmtRange(h.base, h.base + h.size)}`;
}

/** Sorted, non-overlapping ranges with binary search and a one-entry cache. */
class RangeMap {
  readonly space: Space;
  readonly limit: number;
  #entries: RangeEntry[] = [];
  #last: RangeEntry | undefined;
  /** Ranges held without a handler (RAM): never dispatched, but nothing may overlap them. */
  #reserved: { base: number; end: number; label: string }[] = [];

  constructor(space: Space, limit: number) {
    this.space = space;
    this.limit = limit;
  }

  get entries(): readonly RangeEntry[] {
    return this.#entries;
  }

  find(addr: number): RangeEntry | undefined {
    const last = this.#last;
    if (last !== undefined && addr >= last.base && addr < last.end) return last;
    const es = this.#entries;
    let lo = 0, hi = es.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = es[mid] as RangeEntry;
      if (addr < e.base) hi = mid - 1;
      else if (addr >= e.end) lo = mid + 1;
      else {
        this.#last = e;
        return e;
      }
    }
    return undefined;
  }

  add(base: number, size: number, owner: OwnerStats, handler: RangeHandler): RangeEntry {
    const what = `Cannot register ${this.space} range`;
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new VmonError(
        `${what} for "${owner.name}": base and size must be whole numbers with size > 0, got base ${base}, size ${size}`,
      );
    }
    const end = base + size;
    if (end > this.limit) {
      throw new VmonError(
        `${what} ${
          fmtRange(base, end)
        } for "${owner.name}": beyond the last ${this.space} address ${hex(this.limit - 1)}`,
      );
    }
    if (
      typeof handler !== "object" || handler === null || typeof handler.read !== "function" ||
      typeof handler.write !== "function"
    ) {
      throw new VmonError(
        `${what} ${
          fmtRange(base, end)
        } for "${owner.name}": the handler needs read and write functions`,
      );
    }
    const clash = this.occupant(base, end);
    if (clash !== undefined) {
      throw new VmonError(
        `Cannot place device "${owner.name}" at ${this.where(base, end)}: overlaps ${
          describeHolder(clash)
        }`,
      );
    }
    const entry: RangeEntry = { space: this.space, base, end, owner, handler };
    this.#entries.push(entry);
    this.#entries.sort((a, b) => a.base - b.base);
    return entry;
  }

  /** `0x10000000-0x100000ff`, or `ports 0x3f8-0x3ff`. */
  where(base: number, end: number): string {
    return `${this.space === "PIO" ? "ports " : ""}${fmtRange(base, end)}`;
  }

  /** The registration or reservation overlapping `[base, end)` with the lowest base, if any. */
  occupant(base: number, end: number): RangeOccupant | undefined {
    let best: RangeOccupant | undefined;
    for (const e of this.#entries) {
      if (base < e.end && e.base < end) {
        best = { owner: e.owner.name, reserved: false, base: e.base, size: e.end - e.base };
        break; // sorted: the first overlap is the lowest
      }
    }
    for (const r of this.#reserved) {
      if (base < r.end && r.base < end && (best === undefined || r.base < best.base)) {
        best = { owner: r.label, reserved: true, base: r.base, size: r.end - r.base };
      }
    }
    return best;
  }

  reserve(base: number, size: number, label: string): { base: number; end: number; label: string } {
    const end = base + size;
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new VmonError(
        `Cannot reserve ${this.space} range for ${label}: base and size must be whole numbers with size > 0, got base ${base}, size ${size}`,
      );
    }
    const clash = this.occupant(base, end);
    if (clash !== undefined) {
      throw new VmonError(
        `Cannot place ${label} at ${this.where(base, end)}: overlaps ${describeHolder(clash)}`,
      );
    }
    const r = { base, end, label };
    this.#reserved.push(r);
    return r;
  }

  unreserve(r: { base: number; end: number; label: string }): void {
    const i = this.#reserved.indexOf(r);
    if (i >= 0) this.#reserved.splice(i, 1);
  }

  remove(entry: RangeEntry): void {
    const i = this.#entries.indexOf(entry);
    if (i >= 0) this.#entries.splice(i, 1);
    this.#last = undefined;
  }
}

function validSize(size: number): size is AccessSize {
  return size === 1 || size === 2 || size === 4 || size === 8;
}

/**
 * The exit bus of one machine. Devices reach it through {@linkcode ExitBus.forPlugin}, which
 * binds registrations to the plugin's name; core calls the `dispatch*` methods on the exit path.
 * Dispatch allocates nothing for port I/O and MMIO when tracing is off.
 *
 * @example
 * ```ts
 * import { ExitBus } from "./bus.ts";
 * import { ExitKind, type ExitRecord } from "./api/mod.ts";
 * const bus = new ExitBus();
 * const out: number[] = [];
 * bus.forPlugin("uart16550").registerPio(0x3f8, 8, {
 *   read: (offset) => offset === 5 ? 0x60 : 0,
 *   write: (_offset, _size, value) => void out.push(value),
 * });
 * const exit = {
 *   kind: ExitKind.Io, address: 0x3f8, size: 1, isWrite: true, count: 1,
 *   data: new DataView(new Uint8Array([0x48, 0, 0, 0, 0, 0, 0, 0]).buffer),
 * } as ExitRecord;
 * bus.dispatchIo(exit, 0);
 * if (out[0] !== 0x48) throw new Error("not delivered");
 * ```
 */
export class ExitBus {
  #pio = new RangeMap("PIO", PIO_LIMIT);
  #mmio = new RangeMap("MMIO", Number.MAX_SAFE_INTEGER);
  #hypercalls = new Map<number, HypercallEntry>();
  #owners = new Map<string, OwnerStats>();
  #unclaimed: OwnerStats = { name: UNCLAIMED, exits: 0, errors: 0, logged: false };
  #unclaimedIo = 0;
  #unclaimedMmio = 0;
  #unclaimedHypercalls = new Map<number, number>();
  #exitCounts: number[] = new Array(16).fill(0);
  #tracer: Tracer;
  #routes: ExitRoutes = { end: () => {} };
  #log: (message: string) => void;
  /** The shared watch record `dispatchExit` notes each exit in (`WATCH`), if any. */
  #watch: Int32Array | undefined;
  /** Bumped on every registration change, so that a copy of the owner table can be refreshed. */
  #generation = 0;
  /** Reused for every hypercall; handlers must not keep it. */
  #request: { nr: number; fid: number; args: bigint[]; vcpu: number } = {
    nr: 0,
    fid: 0,
    args: [0n, 0n, 0n, 0n, 0n, 0n],
    vcpu: 0,
  };

  /**
   * Creates an empty bus.
   *
   * @param options `tracer` for `--trace io,mmio,sbi`; `log` receives the one warning per plugin
   * whose handler threw (default: `console.error`).
   */
  constructor(options: { tracer?: Tracer; log?: (message: string) => void } = {}) {
    this.#tracer = options.tracer ?? NO_TRACE;
    this.#log = options.log ?? ((m) => console.error(m));
  }

  #owner(name: string): OwnerStats {
    let o = this.#owners.get(name);
    if (o === undefined) {
      o = { name, exits: 0, errors: 0, logged: false };
      this.#owners.set(name, o);
    }
    return o;
  }

  /**
   * The registries as one plugin sees them: every registration made through the returned object
   * is owned by `name` (in overlap errors, counters and traces).
   *
   * @param name The plugin's name.
   * @param options `pio: false` refuses port I/O ranges (machines without port I/O).
   */
  forPlugin(name: string, options: { readonly pio?: boolean } = {}): DeviceBus {
    const owner = this.#owner(name);
    const rangeReg = (map: RangeMap, base: number, size: number, handler: RangeHandler) => {
      if (map === this.#pio && options.pio === false) {
        throw new VmonError(
          `Cannot place device "${name}" at ${
            map.where(base, base + size)
          }: this machine has no port I/O (its devices are placed by MMIO address)`,
        );
      }
      const entry = map.add(base, size, owner, handler);
      this.#generation++;
      return {
        unregister: () => {
          map.remove(entry);
          this.#generation++;
        },
      };
    };
    return {
      registerPio: (base, size, handler): Registration => rangeReg(this.#pio, base, size, handler),
      registerMmio: (base, size, handler): Registration =>
        rangeReg(this.#mmio, base, size, handler),
      registerHypercall: (nr, handler): Registration => {
        if (!Number.isSafeInteger(nr) || nr < 0 || nr > 0xffff_ffff) {
          throw new VmonError(
            `Cannot register hypercall ${nr} for "${name}": the number must be a whole number 0-0xffffffff`,
          );
        }
        if (typeof handler !== "function") {
          throw new VmonError(
            `Cannot register hypercall ${hex(nr)} for "${name}": the handler is not a function`,
          );
        }
        const old = this.#hypercalls.get(nr);
        if (old !== undefined) {
          throw new VmonError(
            `Cannot register hypercall ${
              hex(nr)
            } for "${name}": already registered by "${old.owner.name}"`,
          );
        }
        const entry: HypercallEntry = { nr, owner, handler };
        this.#hypercalls.set(nr, entry);
        this.#generation++;
        return {
          unregister: () => {
            if (this.#hypercalls.get(nr) === entry) this.#hypercalls.delete(nr);
            this.#generation++;
          },
        };
      },
    };
  }

  /**
   * Holds `[base, base+size)` of `space` for something the guest reaches without exits (RAM):
   * registrations that overlap it are refused (`Cannot place device "x" at ...: overlaps RAM at
   * ...`), and it fails itself if a registration or reservation holds part of it already.
   *
   * @param space `PIO` or `MMIO`.
   * @param range `base`, `size` and the `label` messages use (`RAM`).
   */
  reserve(
    space: Space,
    range: { readonly base: number; readonly size: number; readonly label: string },
  ): Registration {
    const map = space === "PIO" ? this.#pio : this.#mmio;
    const r = map.reserve(range.base, range.size, range.label);
    return { unregister: () => map.unreserve(r) };
  }

  /**
   * What holds any part of `[base, base+size)` in `space` (a registered range or a reservation,
   * the one with the lowest base), or undefined when all of it is free. Platforms' allocators
   * skip what this reports, so that a device placed at a given address is never handed out
   * again.
   */
  occupant(space: Space, base: number, size: number): RangeOccupant | undefined {
    return (space === "PIO" ? this.#pio : this.#mmio).occupant(base, base + size);
  }

  /** Removes every range and hypercall registered by plugin `name` (after its `dispose`). */
  removeOwner(name: string): void {
    for (const map of [this.#pio, this.#mmio]) {
      for (const e of [...map.entries]) if (e.owner.name === name) map.remove(e);
    }
    for (const [nr, e] of [...this.#hypercalls]) {
      if (e.owner.name === name) this.#hypercalls.delete(nr);
    }
    this.#generation++;
  }

  /** Changes with every registration and removal (ranges and hypercalls). */
  get generation(): number {
    return this.#generation;
  }

  /** The registered hypercall numbers and their owners, by number. */
  hypercalls(): [number, string][] {
    return [...this.#hypercalls].sort((a, b) => a[0] - b[0]).map(([nr, e]) => [nr, e.owner.name]);
  }

  /**
   * Makes `dispatchExit` note each exit in `record` (an `Int32Array` over shared memory laid out
   * as `WATCH` of core/machine_protocol.ts) while it is being handled, so that another thread
   * can tell which handler never returns. A few integer stores per exit, nothing more.
   */
  setWatch(record: Int32Array | undefined): void {
    this.#watch = record;
  }

  /** The registered PIO and MMIO ranges, sorted by space and base. */
  ranges(): RangeInfo[] {
    return [this.#pio, this.#mmio].flatMap((m) =>
      m.entries.map((e) => ({
        space: e.space,
        base: e.base,
        size: e.end - e.base,
        owner: e.owner.name,
      }))
    );
  }

  /** The plugin that owns MMIO address `gpa` (or PIO port with `space: "PIO"`), if any. */
  ownerOf(addr: number, options: { space?: Space } = {}): string | undefined {
    return (options.space === "PIO" ? this.#pio : this.#mmio).find(addr)?.owner.name;
  }

  /**
   * Where exits that are no access go: the platform, the paging strategy, and the callback that
   * ends the machine. Core's machine sets this once after setup.
   */
  setRoutes(routes: ExitRoutes): void {
    this.#routes = routes;
  }

  /**
   * Routes the exit `vcpu.run()` just returned, whatever its kind: port I/O, MMIO and hypercalls
   * to the plugin that registered the range or number; paging traps to the strategy; halts,
   * shutdowns and system events to the platform first, then core's policy (a poweroff or reset
   * ends the machine with status 0, a dead guest with status 1 and one line naming the vCPU).
   * Every exit is counted and, with `--trace exits`, traced.
   *
   * @param vcpu The vCPU whose `exit` record holds the exit.
   * @returns True when the vCPU may run on in its slice; false when the slice ends (the slice or
   *   budget ran out, the vCPU halted, or the machine is ending).
   */
  dispatchExit(vcpu: Vcpu): boolean {
    const w = this.#watch;
    const exit = vcpu.exit;
    const kind = exit.kind;
    if (w === undefined || kind === ExitKind.Interrupted) return this.#route(vcpu, exit, kind);
    // The watch record: which plugin code this thread is in (read by the main thread's watchdog).
    // No try/finally: a handler that throws is caught inside; anything else ends the machine.
    w[WATCH.seq] = (w[WATCH.seq]! + 1) | 0;
    if (kind === ExitKind.Io || kind === ExitKind.Mmio) {
      const a = exit.address;
      w[WATCH.lo] = a | 0;
      w[WATCH.hi] = a > 0xffff_ffff ? (a / 0x1_0000_0000) | 0 : 0;
      w[WATCH.what] = exit.isWrite ? kind | WATCH_WRITE : kind;
    } else {
      w[WATCH.lo] = kind === ExitKind.Hypercall ? exit.nr | 0 : 0;
      w[WATCH.hi] = 0;
      w[WATCH.what] = kind;
    }
    w[WATCH.vcpu] = vcpu.id;
    const more = this.#route(vcpu, exit, kind);
    w[WATCH.what] = 0;
    return more;
  }

  #route(vcpu: Vcpu, exit: ExitRecord, kind: ExitKindCode): boolean {
    if (this.#tracer.exits) this.#tracer.exit(vcpu.id, exit);
    switch (kind) {
      case ExitKind.Io:
        this.dispatchIo(exit, vcpu.id);
        return true;
      case ExitKind.Mmio:
        this.dispatchMmio(exit, vcpu.id);
        return true;
      case ExitKind.Hypercall:
        vcpu.completeHypercall(this.dispatchHypercall(exit, vcpu.id));
        return true;
      case ExitKind.Interrupted:
        this.countExit(kind);
        return false;
      case ExitKind.Halt:
        this.countExit(kind);
        return this.#routes.platform?.onExit?.(vcpu, exit) === true;
      case ExitKind.Paging: {
        this.countExit(kind);
        const paging = this.#routes.paging;
        if (paging?.onTrap === undefined) {
          this.#fatal(vcpu, "a paging trap arrived but the paging strategy handles none");
          return false;
        }
        paging.onTrap(vcpu, exit);
        return true;
      }
      default:
        this.countExit(kind);
        if (this.#routes.platform?.onExit?.(vcpu, exit)) return true;
        this.#defaultExit(vcpu);
        return false;
    }
  }

  /** Core's policy for exits no plugin took. */
  #defaultExit(v: Vcpu): void {
    const exit = v.exit;
    switch (exit.kind) {
      case ExitKind.Shutdown:
        return this.#fatal(v, "triple fault (the guest shut down)");
      case ExitKind.FailEntry:
        return this.#fatal(v, `the host refused to enter the guest (hardware reason ${exit.code})`);
      case ExitKind.InternalError:
        return this.#fatal(v, `internal error (suberror ${exit.code})`);
      case ExitKind.SystemEvent:
        if (exit.code === SystemEventType.Shutdown) {
          return this.#routes.end({ status: 0, reason: "poweroff", failed: false });
        }
        if (exit.code === SystemEventType.Reset) {
          return this.#routes.end({
            status: 0,
            reason: "reset requested by the guest",
            failed: false,
          });
        }
        return this.#fatal(v, `the guest reported a crash (system event ${exit.code})`);
      case ExitKind.Debug:
        return this.#fatal(v, "debug exit with no debugger attached");
      default:
        return this.#fatal(v, `unknown exit (code ${exit.code})`);
    }
  }

  #fatal(v: Vcpu, what: string): void {
    const exit = v.exit;
    const detail = exit.detail !== "" ? `: ${exit.detail}` : ` at pc ${hex(exit.pc)}`;
    this.#routes.end({
      status: 1,
      reason: `Guest vCPU ${v.id} failed, ${what}${detail}`,
      failed: true,
    });
  }

  /**
   * Counts an exit that is not dispatched through the bus (HLT, shutdown, interrupted, ...).
   * `dispatchIo`, `dispatchMmio` and `dispatchHypercall` count their own exits.
   */
  countExit(kind: ExitKindCode): void {
    this.#exitCounts[kind] = (this.#exitCounts[kind] ?? 0) + 1;
  }

  /**
   * Routes a port I/O exit (x86 `in`/`out`, including string I/O with `count > 1`, each element
   * going to the same port). For reads the value(s) are stored into `exit.data`.
   *
   * @returns True if a plugin handled the access.
   */
  dispatchIo(exit: ExitRecord, vcpu: number): boolean {
    this.#exitCounts[ExitKind.Io]!++;
    return this.#dispatchRange(this.#pio, exit, vcpu, exit.count);
  }

  /**
   * Routes an MMIO exit. For reads the value is stored into `exit.data`.
   *
   * @returns True if a plugin handled the access.
   */
  dispatchMmio(exit: ExitRecord, vcpu: number): boolean {
    this.#exitCounts[ExitKind.Mmio]!++;
    return this.#dispatchRange(this.#mmio, exit, vcpu, 1);
  }

  /**
   * Dispatches one access that has no vCPU exit record (test hosts, tools): it is routed exactly
   * like an exit of one access through `dispatchIo` or `dispatchMmio` (same lookup, 8-byte
   * splitting, unclaimed and handler-error policy, tracing) and counted as one `io` or `mmio`
   * exit.
   *
   * @param access The space, address, width and, for a write, the value.
   * @param vcpu The vCPU the handler is told about (default 0).
   * @returns Whether a plugin handled it, and the value read or written.
   *
   * @example
   * ```ts
   * import { ExitBus } from "./bus.ts";
   * const bus = new ExitBus();
   * bus.forPlugin("latch").registerMmio(0x1000, 4, { read: () => 0x2a, write: () => {} });
   * if (bus.access({ space: "MMIO", address: 0x1000, size: 4 }).value !== 0x2an) {
   *   throw new Error("not routed");
   * }
   * const miss = bus.access({ space: "MMIO", address: 0x2000, size: 8 });
   * if (miss.claimed || miss.value !== 0xffff_ffff_ffff_ffffn) throw new Error("not all ones");
   * ```
   */
  access(access: BusAccess, vcpu = 0): BusAccessResult {
    const data = new DataView(new ArrayBuffer(8));
    const w = access.write;
    const isWrite = w !== undefined;
    if (isWrite) {
      const v = typeof w === "bigint" ? w : BigInt(Number.isFinite(w) ? Math.trunc(w) : 0);
      data.setBigUint64(0, BigInt.asUintN(64, v), true);
    }
    const isPio = access.space === "PIO";
    const exit: ExitRecord = {
      kind: isPio ? ExitKind.Io : ExitKind.Mmio,
      address: access.address,
      size: access.size,
      isWrite,
      count: 1,
      data,
      nr: 0,
      fid: 0,
      args: new BigUint64Array(6),
      code: 0,
      pc: 0n,
      detail: "",
    };
    const claimed = isPio ? this.dispatchIo(exit, vcpu) : this.dispatchMmio(exit, vcpu);
    const bits = validSize(access.size) ? access.size * 8 : 64;
    return { claimed, value: BigInt.asUintN(bits, data.getBigUint64(0, true)) };
  }

  #dispatchRange(map: RangeMap, exit: ExitRecord, vcpu: number, count: number): boolean {
    const addr = exit.address;
    const size = exit.size;
    const data = exit.data;
    if (!(count >= 1)) count = 1;
    // Never write beyond the data area, whatever the host port claims.
    if (count * size > data.byteLength) count = Math.floor(data.byteLength / size);
    const e = map.find(addr);
    if (e === undefined || !validSize(size) || addr + size > e.end || count < 1) {
      this.#unclaimedAccess(map, exit, vcpu, count);
      return false;
    }
    const off = addr - e.base;
    const h = e.handler;
    let i = 0;
    try {
      if (exit.isWrite) {
        for (; i < count; i++) {
          const pos = i * size;
          switch (size) {
            case 1:
              h.write(off, 1, data.getUint8(pos), vcpu);
              break;
            case 2:
              h.write(off, 2, data.getUint16(pos, true), vcpu);
              break;
            case 4:
              h.write(off, 4, data.getUint32(pos, true), vcpu);
              break;
            case 8:
              if (h.write64 !== undefined) h.write64(off, data.getBigUint64(pos, true), vcpu);
              else {
                h.write(off, 4, data.getUint32(pos, true), vcpu);
                h.write(off + 4, 4, data.getUint32(pos + 4, true), vcpu);
              }
          }
        }
      } else {
        for (; i < count; i++) {
          const pos = i * size;
          switch (size) {
            case 1:
              data.setUint8(pos, h.read(off, 1, vcpu));
              break;
            case 2:
              data.setUint16(pos, h.read(off, 2, vcpu), true);
              break;
            case 4:
              data.setUint32(pos, h.read(off, 4, vcpu), true);
              break;
            case 8:
              if (h.read64 !== undefined) {
                data.setBigUint64(pos, h.read64(off, vcpu), true);
              } else {
                data.setUint32(pos, h.read(off, 4, vcpu), true);
                data.setUint32(pos + 4, h.read(off + 4, 4, vcpu), true);
              }
          }
        }
      }
    } catch (err) {
      this.#handlerFailed(
        e.owner,
        err,
        `${map.space} ${exit.isWrite ? "write" : "read"} ${hex(addr)}`,
      );
      // The rest of the access (all of it for a single access) is unclaimed.
      if (!exit.isWrite) {
        for (let p = i * size; p < count * size; p++) data.setUint8(p, 0xff);
      }
      this.#unclaimed.exits++;
      if (map === this.#pio) this.#unclaimedIo++;
      else this.#unclaimedMmio++;
      this.#traceAccess(map, exit, vcpu, count, `${UNCLAIMED} (${e.owner.name} failed)`);
      return false;
    }
    e.owner.exits++;
    this.#traceAccess(map, exit, vcpu, count, e.owner.name);
    return true;
  }

  #unclaimedAccess(map: RangeMap, exit: ExitRecord, vcpu: number, count: number): void {
    if (!exit.isWrite) {
      const n = Math.min(Math.max(count, 1) * exit.size, exit.data.byteLength);
      for (let p = 0; p < n; p++) exit.data.setUint8(p, 0xff);
    }
    this.#unclaimed.exits++;
    if (map === this.#pio) this.#unclaimedIo++;
    else this.#unclaimedMmio++;
    this.#traceAccess(map, exit, vcpu, count, UNCLAIMED);
  }

  #traceAccess(map: RangeMap, exit: ExitRecord, vcpu: number, count: number, who: string): void {
    const t = this.#tracer;
    const isPio = map === this.#pio;
    if (!(isPio ? t.io : t.mmio)) return;
    const dir = isPio ? (exit.isWrite ? "out" : "in") : (exit.isWrite ? "write" : "read");
    let value = "?";
    const d = exit.data;
    if (exit.size <= d.byteLength) {
      switch (exit.size) {
        case 1:
          value = hex(d.getUint8(0));
          break;
        case 2:
          value = hex(d.getUint16(0, true));
          break;
        case 4:
          value = hex(d.getUint32(0, true));
          break;
        case 8:
          value = hex(d.getBigUint64(0, true));
      }
    }
    const rep = count > 1 ? ` count ${count}` : "";
    t.line(
      vcpu,
      `${isPio ? "io" : "mmio"} ${dir} ${
        hex(exit.address)
      } size ${exit.size}${rep} = ${value} -> ${who}`,
    );
  }

  #handlerFailed(owner: OwnerStats, err: unknown, what: string): void {
    owner.errors++;
    if (owner.logged) return;
    owner.logged = true;
    const msg = err instanceof Error ? err.message : String(err);
    this.#log(
      `Plugin "${owner.name}" failed handling ${what}: ${msg} (treated as unclaimed; later failures are only counted)`,
    );
  }

  /**
   * Routes a hypercall / SBI call to the plugin that registered `exit.nr`. The request object
   * passed to the handler is reused for the next call: handlers must not keep it.
   *
   * @returns The handler's result, or `SBI_ERR_NOT_SUPPORTED` when unclaimed or when it threw.
   */
  dispatchHypercall(exit: ExitRecord, vcpu: number): HypercallResult {
    this.#exitCounts[ExitKind.Hypercall]!++;
    const nr = exit.nr;
    const req = this.#request;
    req.nr = nr;
    req.fid = exit.fid;
    req.vcpu = vcpu;
    const n = Math.min(6, exit.args.length);
    for (let i = 0; i < 6; i++) req.args[i] = i < n ? exit.args[i] as bigint : 0n;
    const e = this.#hypercalls.get(nr);
    let result: HypercallResult = NOT_SUPPORTED;
    let who: string = UNCLAIMED;
    let claimed = false;
    if (e !== undefined) {
      try {
        const r = e.handler(req as HypercallRequest);
        if (
          typeof r !== "object" || r === null || typeof r.error !== "number" ||
          (typeof r.value !== "number" && typeof r.value !== "bigint")
        ) {
          throw new VmonError("the handler did not return { error, value }");
        }
        result = r;
        who = e.owner.name;
        claimed = true;
        e.owner.exits++;
      } catch (err) {
        this.#handlerFailed(e.owner, err, `hypercall ${hex(nr)} fid ${exit.fid}`);
        who = `${UNCLAIMED} (${e.owner.name} failed)`;
      }
    }
    if (!claimed) {
      this.#unclaimed.exits++;
      this.#unclaimedHypercalls.set(nr, (this.#unclaimedHypercalls.get(nr) ?? 0) + 1);
    }
    if (this.#tracer.sbi) {
      this.#tracer.line(
        vcpu,
        `sbi ${hex(nr)} fid ${exit.fid} (${
          req.args.map(hex).join(", ")
        }) -> ${who} = ${result.error} ${
          typeof result.value === "number" && result.value < 0 ? result.value : hex(result.value)
        }`,
      );
    }
    return result;
  }

  /** The counters as plain objects (a snapshot). */
  /** Loads counters saved with a snapshot (what `counters()` returned then). */
  restoreCounters(saved: BusCounters): void {
    for (const [code, name] of Object.entries(EXIT_KIND_NAMES)) {
      this.#exitCounts[Number(code)] = saved.exits[name] ?? 0;
    }
    for (const o of this.#owners.values()) {
      o.exits = saved.plugins[o.name] ?? 0;
      o.errors = saved.errors[o.name] ?? 0;
    }
    this.#unclaimed.exits = saved.plugins[UNCLAIMED] ?? 0;
    this.#unclaimedIo = saved.unclaimed.io ?? 0;
    this.#unclaimedMmio = saved.unclaimed.mmio ?? 0;
    this.#unclaimedHypercalls.clear();
    for (const [k, n] of Object.entries(saved.unclaimed)) {
      const m = /^hypercall 0x([0-9a-f]+)$/.exec(k);
      if (m) this.#unclaimedHypercalls.set(parseInt(m[1]!, 16), n);
    }
  }

  counters(): BusCounters {
    const exits: Record<string, number> = {};
    for (const [code, name] of Object.entries(EXIT_KIND_NAMES)) {
      const n = this.#exitCounts[Number(code)] ?? 0;
      if (n > 0) exits[name] = n;
    }
    const plugins: Record<string, number> = {};
    const errors: Record<string, number> = {};
    for (const o of this.#owners.values()) {
      if (o.exits > 0) plugins[o.name] = o.exits;
      if (o.errors > 0) errors[o.name] = o.errors;
    }
    if (this.#unclaimed.exits > 0) plugins[UNCLAIMED] = this.#unclaimed.exits;
    const unclaimed: Record<string, number> = {};
    if (this.#unclaimedIo > 0) unclaimed.io = this.#unclaimedIo;
    if (this.#unclaimedMmio > 0) unclaimed.mmio = this.#unclaimedMmio;
    for (const [nr, n] of [...this.#unclaimedHypercalls].sort((a, b) => a[0] - b[0])) {
      unclaimed[`hypercall ${hex(nr)}`] = n;
    }
    return { exits, plugins, errors, unclaimed };
  }
}
