/**
 * Builds a machine from a manifest inside the machine worker: loads the plugins, sets them up in
 * order (host port, platform, vCPUs, paging, devices), boots the platform and hands the vCPUs to
 * the scheduler. Plugins get narrow host objects; only this file wires them to core.
 *
 * @module
 */

import type {
  ConsolePort,
  DeviceHost,
  DevicePluginDefinition,
  HostPortInstance,
  HostPortPluginDefinition,
  Logger,
  MachineInfo,
  MachineManifest,
  MachineStats,
  PagingInstance,
  PagingPluginDefinition,
  PlatformHost,
  PlatformPluginDefinition,
  PlatformServices,
  PluginDefinition,
  PluginHost,
  PluginInstance,
  PluginKind,
  PluginRef,
  Timers,
  Vcpu,
} from "./api/mod.ts";
import { DEFAULT_PAGING } from "./api/machine.ts";
import { ExitBus } from "./bus.ts";
import { VmonError } from "./errors.ts";
import { createHostFiles } from "./files.ts";
import { loadPlugin, runPluginPhase } from "./loader.ts";
import { checkHostMemory } from "./manifest.ts";
import { GuestMemory } from "./memory.ts";
import { PacketEndpoints } from "./net.ts";
import { parseSize, validateOptions } from "./schema.ts";
import { type RunOutcome, Scheduler } from "./scheduler.ts";
import {
  restoreSnapshot,
  type SaveOptions,
  saveSnapshot,
  settleSnapshot,
  type SnapshotImage,
  type SnapshotParts,
} from "./snapshot_vm.ts";
import { buildMachineStats, MetricsRegistry } from "./stats.ts";
import { WATCH, WATCH_INPUT, WATCH_TIMER, type WatchOwners } from "./machine_protocol.ts";
import { Tracer } from "./trace.ts";

/** What the machine worker gives the VM for talking to the main thread. */
export interface VmIo {
  /** Guest console output (buffered by the caller). */
  write(bytes: Uint8Array): void;
  /** A log line for stderr. */
  log(line: string): void;
  /** Sends buffered console output on (called between slices and when the machine sleeps). */
  flush?(): void;
}

/** What the machine worker shares with the main thread's watchdog. */
export interface VmWatch {
  /** The watch record (`WATCH` of core/machine_protocol.ts) over shared memory. */
  readonly record: Int32Array;
  /** Called with the owner table after setup and whenever registrations change. */
  readonly owners: (owners: WatchOwners) => void;
}

/** Default RAM size when the manifest gives none. */
const DEFAULT_MEMORY = 64 * 1024 * 1024;

/**
 * Microseconds (kvm) or instructions (rv64) per scheduler slice. Several vCPUs share the
 * worker's thread in short slices; a lone vCPU only needs to give the event loop a turn now and
 * then (console input, timers), so its slice is longer: every slice end costs a signal (kvm).
 */
const SLICES: Record<string, { shared: number; alone: number }> = {
  x86_64: { shared: 5000, alone: 20_000 },
  riscv64: { shared: 200_000, alone: 1_000_000 },
};

/** The platform's services as device `owner` sees them: its MMIO windows carry its name. */
function servicesFor(services: PlatformServices, owner: string): PlatformServices {
  return {
    get hasPio() {
      return services.hasPio;
    },
    get mmioRegShift() {
      return services.mmioRegShift;
    },
    allocateMmio: (size, preferredBase) => services.allocateMmio(size, preferredBase, { owner }),
    allocateIrq: (preferred) => services.allocateIrq(preferred),
    describe: (description) => services.describe(description),
  };
}

/**
 * One machine, assembled and ready to run. Create with {@linkcode Vm.build}.
 */
export class Vm {
  #instances: { name: string; instance: PluginInstance }[] = [];
  #restore: SnapshotImage | undefined;
  #snapshotParts: Omit<SnapshotParts, "instances" | "metrics"> | undefined;
  #scheduler: Scheduler | undefined;
  #bus: ExitBus;
  #metrics = new MetricsRegistry();
  #hostport: HostPortInstance | undefined;
  #paging: PagingInstance | undefined;
  #started = 0;
  #inputOwner: ((bytes: Uint8Array) => void) | undefined;
  #pendingOutcome: RunOutcome | undefined;
  #io: VmIo;
  #tracer: Tracer;
  #timers = new Set<number>();
  #vcpus: Vcpu[] = [];
  #disposed = false;
  #endpoints: PacketEndpoints;
  #watch: VmWatch | undefined;
  #watchGeneration = -1;
  /** Plugin names by index, for the watch record. */
  #pluginNames: string[] = [];
  #platformName = "";
  #pagingName = "";

  private constructor(io: VmIo, tracer: Tracer) {
    this.#io = io;
    this.#tracer = tracer;
    this.#bus = new ExitBus({ tracer, log: (m) => io.log(m) });
    this.#endpoints = new PacketEndpoints({
      wake: () => this.#wake(),
      warn: (m) => io.log(m),
      fail: (m) => this.#requestExit(1, m, true),
    });
  }

  /**
   * Loads and sets up every plugin of `manifest` and boots the platform.
   *
   * @param manifest A validated manifest.
   * @param options Console/log sink and trace categories.
   */
  static async build(
    manifest: MachineManifest,
    options: { io: VmIo; trace?: readonly string[]; watch?: VmWatch; restore?: SnapshotImage },
  ): Promise<Vm> {
    const io = options.io;
    const vm = new Vm(io, new Tracer(options.trace ?? [], { write: (line) => io.log(line) }));
    vm.#restore = options.restore;
    vm.#watch = options.watch;
    vm.#bus.setWatch(options.watch?.record);
    try {
      await vm.#build(manifest);
    } catch (err) {
      vm.dispose();
      throw err;
    }
    return vm;
  }

  async #build(manifest: MachineManifest): Promise<void> {
    const hpDef = await this.#load(manifest.hostport, "hostport") as HostPortPluginDefinition;
    const plDef = await this.#load(manifest.platform, "platform") as PlatformPluginDefinition;
    if (plDef.arch !== hpDef.arch) {
      throw new VmonError(
        `Cannot use platform "${plDef.name}" with host port "${hpDef.name}": the platform builds ${plDef.arch} machines, the host port runs ${hpDef.arch} guests`,
      );
    }
    const pgRef = manifest.paging ?? { use: DEFAULT_PAGING };
    const pgDef = await this.#load(pgRef, "paging") as PagingPluginDefinition;
    const devDefs: { ref: PluginRef; def: DevicePluginDefinition }[] = [];
    for (const ref of manifest.devices ?? []) {
      devDefs.push({ ref, def: await this.#load(ref, "device") as DevicePluginDefinition });
    }
    // Options are checked for every plugin before anything is set up.
    const hpOpts = this.#options(hpDef, manifest.hostport);
    const plOpts = this.#options(plDef, manifest.platform);
    // The platform's default devices (its serial console) that the manifest does not name.
    for (const ref of [...plDef.defaultDevices?.(plOpts) ?? []].reverse()) {
      const def = await this.#load(ref, "device") as DevicePluginDefinition;
      if (!devDefs.some((d) => d.def.name === def.name)) devDefs.unshift({ ref, def });
    }
    const pgOpts = this.#options(pgDef, pgRef);
    const devOpts = devDefs.map(({ ref, def }) => this.#options(def, ref));

    const memory = new GuestMemory();
    const info: MachineInfo = {
      cpus: manifest.cpus ?? 1,
      memorySize: manifest.memory === undefined ? DEFAULT_MEMORY : parseSize(manifest.memory),
      arch: hpDef.arch,
      hostport: hpDef.name,
    };
    checkHostMemory(info.memorySize, { overcommit: manifest.overcommit });

    const hostport = await runPluginPhase(
      { kind: "hostport", name: hpDef.name, phase: "setup" },
      () => hpDef.setup(this.#pluginHost(hpDef.name, info), hpOpts),
    );
    this.#hostport = hostport;
    this.#instances.push({ name: hpDef.name, instance: hostport });

    const vcpus = this.#vcpus;
    const platformHost: PlatformHost = {
      ...this.#pluginHost(plDef.name, info),
      hostport,
      memory,
      bus: this.#bus.forPlugin(plDef.name),
      console: this.#console(plDef.name),
      vcpus,
      occupant: (space, base, size) => this.#bus.occupant(space, base, size),
      reserve: (space, range) => this.#bus.reserve(space, range),
      addRam: (gpa, size, o = {}) => {
        const ro = o.readonly ?? false;
        // No device may be placed over RAM: the guest reaches it without exits.
        this.#bus.reserve("MMIO", { base: gpa, size, label: ro ? "ROM" : "RAM" });
        const buf = hostport.addMemoryRegion(gpa, size, { readonly: ro });
        memory.addRegion(gpa, buf, { readonly: ro, name: o.name ?? (ro ? "rom" : "ram") });
      },
      requestExit: (status, reason, o) =>
        this.#requestExit(status, reason ?? "platform exit", o?.failed ?? false),
      wake: (id) => this.#wake(id),
    };
    const platform = await runPluginPhase(
      { kind: "platform", name: plDef.name, phase: "setup" },
      () => plDef.setup(platformHost, plOpts),
    );
    this.#instances.push({ name: plDef.name, instance: platform });

    for (let id = 0; id < info.cpus; id++) vcpus.push(hostport.createVcpu(id));

    const paging = await runPluginPhase(
      { kind: "paging", name: pgDef.name, phase: "setup" },
      () =>
        pgDef.setup({
          ...this.#pluginHost(pgDef.name, info),
          hostport,
          memory,
          bus: this.#bus.forPlugin(pgDef.name),
        }, pgOpts),
    );
    this.#paging = paging;
    this.#instances.push({ name: pgDef.name, instance: paging });

    const seen = new Map<string, number>();
    devDefs.forEach(({ def }, i) => {
      // Two devices of one kind get distinct names: virtio-blk, virtio-blk.1, ...
      const n = seen.get(def.name) ?? 0;
      seen.set(def.name, n + 1);
      devDefs[i] = {
        ...devDefs[i]!,
        def: { ...def, name: n === 0 ? def.name : `${def.name}.${n}` },
      };
    });
    for (let i = 0; i < devDefs.length; i++) {
      const def = devDefs[i]!.def;
      const host: DeviceHost = {
        ...this.#pluginHost(def.name, info),
        memory,
        bus: this.#bus.forPlugin(def.name, { pio: platform.services.hasPio }),
        platform: servicesFor(platform.services, def.name),
        console: this.#console(def.name),
        net: {
          open: (spec) =>
            this.#endpoints.open({ instance: hostport, name: hpDef.name }, spec, def.name),
        },
        requestExit: (status, reason, o) =>
          this.#requestExit(status, reason ?? "guest exit", o?.failed ?? false),
      };
      const instance = await runPluginPhase(
        { kind: "device", name: def.name, phase: "setup" },
        () => def.setup(host, devOpts[i]),
      );
      this.#instances.push({ name: def.name, instance });
    }

    // A restored machine is not booted: its RAM and state come from the snapshot (below).
    if (this.#restore === undefined) {
      await runPluginPhase(
        { kind: "platform", name: plDef.name, phase: "boot" },
        () => platform.boot(manifest.boot ?? {}),
      );
    }
    this.#scheduler = new Scheduler(vcpus, {
      bus: this.#bus,
      slice: info.cpus > 1 ? SLICES[info.arch]?.shared : SLICES[info.arch]?.alone,
      onYield: () => {
        if (this.#bus.generation !== this.#watchGeneration) this.#postOwners();
        this.#io.flush?.();
      },
      poll: () => this.#endpoints.poll(),
      canInterrupt: platform.canInterrupt?.bind(platform),
    });
    const scheduler = this.#scheduler;
    this.#bus.setRoutes({ platform, paging, end: (outcome) => scheduler.requestExit(outcome) });
    this.#platformName = plDef.name;
    this.#pagingName = pgDef.name;
    this.#postOwners();
    this.#snapshotParts = { manifest, arch: info.arch, memory, bus: this.#bus };
    // After the scheduler set the vCPUs' slices: a restored vCPU goes on in its saved slice.
    if (this.#restore !== undefined) restoreSnapshot(this.#parts(), this.#restore);
    if (this.#pendingOutcome !== undefined) this.#scheduler.requestExit(this.#pendingOutcome);
  }

  #parts(): SnapshotParts {
    const p = this.#snapshotParts;
    if (p === undefined) throw new VmonError("Cannot take a snapshot: the machine is not built");
    return { ...p, instances: this.#instances, metrics: this.#metrics };
  }

  /**
   * Saves the machine into snapshot file bytes (docs/DESIGN.md, "Snapshots"). Call between
   * exits: from a message handler or timer of the worker, never from inside a plugin handler.
   */
  snapshot(options: SaveOptions = {}): ReturnType<typeof saveSnapshot> {
    if (this.#disposed) throw new VmonError("Cannot take a snapshot: the machine has ended");
    return saveSnapshot(this.#parts(), options);
  }

  /**
   * Settles the machine as taking a snapshot would, without writing one (core/snapshot_vm.ts
   * `settleSnapshot`). Call between exits, as {@linkcode snapshot}.
   */
  settle(): void {
    if (this.#disposed) throw new VmonError("Cannot take a snapshot: the machine has ended");
    settleSnapshot(this.#parts());
  }

  async #load(ref: PluginRef, kind: PluginKind): Promise<PluginDefinition> {
    return await loadPlugin(ref.use, { kind });
  }

  // deno-lint-ignore no-explicit-any
  #options(def: PluginDefinition, ref: PluginRef): any {
    return validateOptions(def.options, ref.options ?? {}, { plugin: def.name });
  }

  /** Sends the owner table to the watch (after setup and when registrations change). */
  #postOwners(): void {
    const watch = this.#watch;
    if (watch === undefined) return;
    this.#watchGeneration = this.#bus.generation;
    watch.owners({
      ranges: this.#bus.ranges(),
      hypercalls: this.#bus.hypercalls(),
      platform: this.#platformName,
      paging: this.#pagingName,
      plugins: [...this.#pluginNames],
    });
  }

  /** Runs `fn`, plugin code called from the event loop, noted in the watch record. */
  #watched(what: number, plugin: number, fn: () => void): void {
    const w = this.#watch?.record;
    if (w === undefined) return fn();
    const outer = w[WATCH.what]!;
    w[WATCH.seq] = (w[WATCH.seq]! + 1) | 0;
    w[WATCH.lo] = plugin;
    w[WATCH.hi] = 0;
    w[WATCH.vcpu] = -1;
    w[WATCH.what] = what;
    try {
      fn();
    } finally {
      w[WATCH.what] = outer;
    }
  }

  #pluginHost(name: string, machine: MachineInfo): PluginHost {
    const tracer = this.#tracer;
    const io = this.#io;
    const index = this.#pluginNames.push(name) - 1;
    const log: Logger = {
      debug: (m) => {
        if (tracer.plugins) tracer.plugin(name, m);
      },
      info: (m) => io.log(`${name}: ${m}`),
      warn: (m) => io.log(`${name}: warning: ${m}`),
    };
    const timers: Timers = {
      setTimeout: (fn, ms) => {
        const id: number = setTimeout(() => {
          this.#timers.delete(id);
          try {
            this.#watched(WATCH_TIMER, index, fn);
          } catch (err) {
            log.warn(`timer callback failed: ${err instanceof Error ? err.message : err}`);
          }
          this.#wake();
        }, ms) as unknown as number;
        this.#timers.add(id);
        return id;
      },
      clear: (id) => {
        clearTimeout(id);
        this.#timers.delete(id);
      },
      now: () => performance.now(),
    };
    return {
      name,
      machine,
      log,
      metrics: this.#metrics.forPlugin(name),
      timers,
      files: createHostFiles(),
    };
  }

  #console(name: string): ConsolePort {
    return {
      write: (bytes) => this.#io.write(bytes),
      onInput: (fn) => {
        if (this.#inputOwner !== undefined) return false;
        const index = this.#pluginNames.lastIndexOf(name);
        this.#inputOwner = (bytes) => {
          try {
            this.#watched(WATCH_INPUT, index, () => fn(bytes));
          } catch (err) {
            this.#io.log(`${name}: warning: input handler failed: ${(err as Error).message}`);
          }
        };
        return true;
      },
    };
  }

  #requestExit(status: number, reason: string, failed: boolean): void {
    const outcome = { status, reason, failed };
    if (this.#scheduler === undefined) this.#pendingOutcome ??= outcome;
    else this.#scheduler.requestExit(outcome);
  }

  #wake(_vcpu?: number): void {
    if (_vcpu !== undefined) this.#hostport?.kick(_vcpu);
    this.#scheduler?.wake();
  }

  /** The vCPUs, in id order (for benchmarks and debugging tools; the scheduler drives them). */
  get vcpus(): readonly Vcpu[] {
    return this.#vcpus;
  }

  /** Delivers user input to the device that owns the console. */
  input(bytes: Uint8Array): void {
    this.#inputOwner?.(bytes);
    this.#wake();
  }

  /** Runs the vCPUs until the machine ends. */
  async run(): Promise<RunOutcome> {
    if (this.#scheduler === undefined) {
      throw new VmonError("Cannot run the machine: it is not built");
    }
    this.#started = performance.now();
    return await this.#scheduler.run();
  }

  /** Pauses the vCPUs after their current exit (devices and timers keep running). */
  pause(): void {
    this.#scheduler?.pause();
  }

  /** Resumes paused vCPUs. */
  resume(): void {
    this.#scheduler?.resume();
  }

  /** Ends the run (user stop). */
  stop(reason: string, status = 130): void {
    this.#scheduler?.requestExit({ status, reason, failed: false });
  }

  /** Counters so far. */
  stats(): MachineStats {
    const paging = this.#paging;
    return buildMachineStats({
      bus: this.#bus.counters(),
      metrics: this.#metrics,
      paging: paging === undefined ? undefined : { name: paging.strategy, stats: paging.stats() },
      hostport: this.#hostport?.stats(),
      wallMs: this.#started === 0 ? 0 : performance.now() - this.#started,
    });
  }

  /** Disposes every plugin in reverse setup order. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const id of this.#timers) clearTimeout(id);
    this.#timers.clear();
    // Packet backends call the host port's kick from their threads: close them first.
    this.#endpoints.closeAll();
    for (const v of this.#vcpus) {
      try {
        v.dispose();
      } catch (err) {
        this.#io.log(`vcpu ${v.id}: warning: dispose failed: ${(err as Error).message}`);
      }
    }
    for (const { name, instance } of this.#instances.reverse()) {
      try {
        instance.dispose();
      } catch (err) {
        this.#io.log(`${name}: warning: dispose failed: ${(err as Error).message}`);
      }
    }
  }
}
