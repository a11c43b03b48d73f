/**
 * The virtio-mmio transport, version 2 register layout (virtio 1.2 section 4.2.2). Legacy
 * (version 1) drivers are refused: VIRTIO_F_VERSION_1 must be negotiated.
 *
 * @module
 */

import type {
  AccessSize,
  Counter,
  DeviceHost,
  GuestMemoryAccess,
  IrqLine,
  Logger,
  PluginInstance,
  PluginState,
  RangeHandler,
  SnapshotValue,
} from "../api/mod.ts";
import { hex, VmonError } from "../errors.ts";
import {
  type VirtioActivation,
  type VirtioDevice,
  VirtioFeature,
  VirtioInterrupt,
  VirtioStatus,
} from "./device.ts";
import { checkQueueLayout, MAX_QUEUE_SIZE, Virtqueue } from "./queue.ts";

/** Register offsets of the virtio-mmio version 2 layout. */
export const MmioReg = {
  MAGIC: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" in little-endian. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** The vendor id vmon reports ("VMON"). */
export const VMON_VENDOR_ID = 0x4e4f4d56;
/** The MMIO window every virtio-mmio device takes. */
export const VIRTIO_MMIO_SIZE = 0x200;

/** Features the transport itself implements and offers on top of the device's. */
export const TRANSPORT_FEATURES: bigint = VirtioFeature.VERSION_1 |
  VirtioFeature.INDIRECT_DESC | VirtioFeature.EVENT_IDX;

interface QueueRegs {
  num: number;
  ready: boolean;
  desc: number;
  driver: number;
  device: number;
}

function freshQueue(max: number): QueueRegs {
  return { num: max, ready: false, desc: 0, driver: 0, device: 0 };
}

/** Where a transport reports to. */
export interface VirtioMmioEnv {
  /** Guest memory. */
  readonly memory: GuestMemoryAccess;
  /** The device's interrupt line. */
  readonly irq: IrqLine;
  /** For warnings about malformed requests. */
  readonly log?: Logger;
  /** Counters for `--stats`. */
  readonly counters?: {
    readonly notifications?: Counter;
    readonly interrupts?: Counter;
    readonly errors?: Counter;
    readonly malformed?: Counter;
  };
}

const MAX_WARNINGS = 16;

/**
 * One virtio-mmio device window: the register file, feature negotiation, queue setup, and the
 * interrupt line (level = InterruptStatus != 0). It is a {@linkcode RangeHandler}: register it
 * on the bus at the window's base.
 */
export class VirtioMmioTransport implements RangeHandler {
  #device: VirtioDevice;
  #env: VirtioMmioEnv;
  #status = 0;
  #deviceFeaturesSel = 0;
  #driverFeaturesSel = 0;
  #driverFeatures = 0n;
  #queueSel = 0;
  #queues: QueueRegs[];
  #interruptStatus = 0;
  #configGeneration = 0;
  #active: Virtqueue[] | undefined;
  #activation: VirtioActivation | undefined;
  #epoch = 0;
  #warnings = 0;
  #irqLevel = false;

  /**
   * Creates the transport for `device`.
   *
   * @param device The device model.
   * @param env Memory, interrupt line, logger and counters.
   */
  constructor(device: VirtioDevice, env: VirtioMmioEnv) {
    if (device.queueMaxSizes.some((n) => n < 1 || n > MAX_QUEUE_SIZE || (n & (n - 1)) !== 0)) {
      throw new VmonError(
        `Cannot create virtio device ${device.deviceId}: queue sizes must be powers of 2 up to ${MAX_QUEUE_SIZE}`,
      );
    }
    this.#device = device;
    this.#env = env;
    this.#queues = device.queueMaxSizes.map(freshQueue);
  }

  /** The device status register. */
  get status(): number {
    return this.#status;
  }

  /** The features offered to the driver. */
  get offeredFeatures(): bigint {
    return this.#device.features | TRANSPORT_FEATURES;
  }

  /** The features the driver accepted (valid once FEATURES_OK is set). */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }

  /** The interrupt status register. */
  get interruptStatus(): number {
    return this.#interruptStatus;
  }

  /** Reads a register. Registers are 32-bit; config space allows 1, 2 and 4 bytes. */
  read(offset: number, size: AccessSize): number {
    if (offset >= MmioReg.CONFIG) {
      const off = offset - MmioReg.CONFIG;
      if (off + size > this.#device.configSize || size === 8) return 0;
      return this.#device.readConfig(off, size);
    }
    if (size !== 4) return 0;
    const q = this.#queues[this.#queueSel];
    switch (offset) {
      case MmioReg.MAGIC:
        return VIRTIO_MMIO_MAGIC;
      case MmioReg.VERSION:
        return 2;
      case MmioReg.DEVICE_ID:
        return this.#device.deviceId;
      case MmioReg.VENDOR_ID:
        return VMON_VENDOR_ID;
      case MmioReg.DEVICE_FEATURES: {
        if (this.#deviceFeaturesSel > 1) return 0;
        const shift = BigInt(32 * this.#deviceFeaturesSel);
        return Number(this.offeredFeatures >> shift & 0xffffffffn);
      }
      case MmioReg.QUEUE_NUM_MAX:
        return q ? this.#device.queueMaxSizes[this.#queueSel] ?? 0 : 0;
      case MmioReg.QUEUE_READY:
        return q?.ready ? 1 : 0;
      case MmioReg.INTERRUPT_STATUS:
        return this.#interruptStatus;
      case MmioReg.STATUS:
        return this.#status;
      case MmioReg.SHM_LEN_LOW:
      case MmioReg.SHM_LEN_HIGH:
        return 0xffffffff; // no shared memory regions
      case MmioReg.CONFIG_GENERATION:
        return this.#configGeneration;
      case MmioReg.QUEUE_NUM:
        return q?.num ?? 0;
      case MmioReg.QUEUE_DESC_LOW:
        return (q?.desc ?? 0) % 2 ** 32;
      case MmioReg.QUEUE_DESC_HIGH:
        return Math.floor((q?.desc ?? 0) / 2 ** 32);
      case MmioReg.QUEUE_DRIVER_LOW:
        return (q?.driver ?? 0) % 2 ** 32;
      case MmioReg.QUEUE_DRIVER_HIGH:
        return Math.floor((q?.driver ?? 0) / 2 ** 32);
      case MmioReg.QUEUE_DEVICE_LOW:
        return (q?.device ?? 0) % 2 ** 32;
      case MmioReg.QUEUE_DEVICE_HIGH:
        return Math.floor((q?.device ?? 0) / 2 ** 32);
      default:
        return 0;
    }
  }

  /** Writes a register. */
  write(offset: number, size: AccessSize, value: number): void {
    if (offset >= MmioReg.CONFIG) {
      const off = offset - MmioReg.CONFIG;
      if (off + size > this.#device.configSize || size === 8) return;
      this.#device.writeConfig(off, size, value);
      return;
    }
    if (size !== 4) return;
    value >>>= 0;
    const q = this.#queues[this.#queueSel];
    // Queue registers can only change while the queue is not ready and the driver not done.
    const queueWritable = q !== undefined && !q.ready &&
      !(this.#status & VirtioStatus.DRIVER_OK);
    switch (offset) {
      case MmioReg.DEVICE_FEATURES_SEL:
        this.#deviceFeaturesSel = value;
        return;
      case MmioReg.DRIVER_FEATURES:
        if (this.#status & VirtioStatus.FEATURES_OK || this.#driverFeaturesSel > 1) return;
        {
          const shift = BigInt(32 * this.#driverFeaturesSel);
          this.#driverFeatures = (this.#driverFeatures & ~(0xffffffffn << shift)) |
            BigInt(value) << shift;
        }
        return;
      case MmioReg.DRIVER_FEATURES_SEL:
        this.#driverFeaturesSel = value;
        return;
      case MmioReg.QUEUE_SEL:
        this.#queueSel = value;
        return;
      case MmioReg.QUEUE_NUM:
        if (queueWritable) q.num = value;
        return;
      case MmioReg.QUEUE_READY:
        if (q) this.#setQueueReady(q, value === 1);
        return;
      case MmioReg.QUEUE_NOTIFY:
        this.#notify(value & 0xffff);
        return;
      case MmioReg.INTERRUPT_ACK:
        this.#interruptStatus &= ~value;
        this.#updateIrq();
        return;
      case MmioReg.STATUS:
        this.#writeStatus(value & 0xff);
        return;
      case MmioReg.QUEUE_DESC_LOW:
        if (queueWritable) q.desc = Math.floor(q.desc / 2 ** 32) * 2 ** 32 + value;
        return;
      case MmioReg.QUEUE_DESC_HIGH:
        if (queueWritable) q.desc = value * 2 ** 32 + q.desc % 2 ** 32;
        return;
      case MmioReg.QUEUE_DRIVER_LOW:
        if (queueWritable) q.driver = Math.floor(q.driver / 2 ** 32) * 2 ** 32 + value;
        return;
      case MmioReg.QUEUE_DRIVER_HIGH:
        if (queueWritable) q.driver = value * 2 ** 32 + q.driver % 2 ** 32;
        return;
      case MmioReg.QUEUE_DEVICE_LOW:
        if (queueWritable) q.device = Math.floor(q.device / 2 ** 32) * 2 ** 32 + value;
        return;
      case MmioReg.QUEUE_DEVICE_HIGH:
        if (queueWritable) q.device = value * 2 ** 32 + q.device % 2 ** 32;
        return;
      default:
        return;
    }
  }

  /** Resets the transport and the device (as a guest write of 0 to Status does). */
  reset(): void {
    if (this.#activation) this.#device.reset();
    this.#epoch++;
    this.#activation = undefined;
    this.#active = undefined;
    this.#status = 0;
    this.#deviceFeaturesSel = 0;
    this.#driverFeaturesSel = 0;
    this.#driverFeatures = 0n;
    this.#queueSel = 0;
    this.#queues = this.#device.queueMaxSizes.map(freshQueue);
    this.#interruptStatus = 0;
    this.#updateIrq();
  }

  #warn(message: string): void {
    if (this.#warnings++ < MAX_WARNINGS) this.#env.log?.warn(message);
    else this.#env.log?.debug(message);
  }

  /** Marks the device broken (DEVICE_NEEDS_RESET) after a guest-caused error. */
  #fail(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.#env.counters?.errors?.add();
    this.#warn(`Virtio device ${this.#device.deviceId} needs a reset: ${message}`);
    this.#status |= VirtioStatus.DEVICE_NEEDS_RESET;
    if (this.#status & VirtioStatus.DRIVER_OK) {
      this.#configGeneration = (this.#configGeneration + 1) >>> 0;
      this.#interruptStatus |= VirtioInterrupt.CONFIG_CHANGE;
      this.#updateIrq();
    }
  }

  #broken(): boolean {
    return (this.#status & (VirtioStatus.DEVICE_NEEDS_RESET | VirtioStatus.FAILED)) !== 0;
  }

  #setQueueReady(q: QueueRegs, ready: boolean): void {
    if (!ready) {
      // Disabling a live queue needs VIRTIO_F_RING_RESET, which is not offered.
      if (!(this.#status & VirtioStatus.DRIVER_OK)) q.ready = false;
      return;
    }
    if (q.ready || this.#status & VirtioStatus.DRIVER_OK) return;
    const problem = checkQueueLayout(
      this.#env.memory,
      { size: q.num, desc: q.desc, driver: q.driver, device: q.device },
      { maxSize: this.#device.queueMaxSizes[this.#queueSel] ?? 0 },
    );
    if (problem) {
      this.#fail(`queue ${this.#queueSel} cannot be enabled: ${problem}`);
      return;
    }
    q.ready = true;
  }

  #writeStatus(value: number): void {
    if (value === 0) {
      this.reset();
      return;
    }
    const old = this.#status;
    let next = value | (old & VirtioStatus.DEVICE_NEEDS_RESET);
    if (next & VirtioStatus.FEATURES_OK && !(old & VirtioStatus.FEATURES_OK)) {
      const extra = this.#driverFeatures & ~this.offeredFeatures;
      if (!(this.#driverFeatures & VirtioFeature.VERSION_1)) {
        this.#warn(`Virtio device ${this.#device.deviceId}: legacy driver refused (no VERSION_1)`);
        next &= ~VirtioStatus.FEATURES_OK;
      } else if (extra) {
        this.#warn(
          `Virtio device ${this.#device.deviceId}: driver accepted unoffered features ${
            hex(extra)
          }`,
        );
        next &= ~VirtioStatus.FEATURES_OK;
      }
    }
    this.#status = next;
    if (next & VirtioStatus.DRIVER_OK && !(old & VirtioStatus.DRIVER_OK)) this.#activate();
  }

  /** The transport's registers and ring positions for a snapshot. */
  saveState(): SnapshotValue {
    return {
      status: this.#status,
      deviceFeaturesSel: this.#deviceFeaturesSel,
      driverFeaturesSel: this.#driverFeaturesSel,
      driverFeatures: this.#driverFeatures,
      queueSel: this.#queueSel,
      queues: this.#queues.map((q) => ({ ...q })),
      interruptStatus: this.#interruptStatus,
      configGeneration: this.#configGeneration,
      irqLevel: this.#irqLevel,
      active: this.#activation === undefined ? null : (this.#active ?? []).map((q) => [
        q.index,
        ...q.saveIndices(),
      ]),
    };
  }

  /**
   * Loads what {@linkcode VirtioMmioTransport.saveState} returned into a fresh transport: the
   * registers, then (when the driver had set DRIVER_OK) the queues at their saved positions,
   * `restoreDevice` (the device model's own state), and the device's `activate`. The interrupt
   * line's level is restored with the interrupt controller. Throws when the state is malformed.
   */
  restoreState(state: SnapshotValue, restoreDevice: () => void = () => {}): void {
    const bad = (what: string): never => {
      throw new VmonError(
        `Cannot restore virtio device ${this.#device.deviceId}: ${what} is malformed`,
      );
    };
    const st = state as Record<string, SnapshotValue>;
    if (st === null || typeof st !== "object" || Array.isArray(st)) bad("the transport state");
    const u32 = (k: string): number => {
      const v = st[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) bad(`"${k}"`);
      return v as number;
    };
    const status = u32("status");
    const next = {
      deviceFeaturesSel: u32("deviceFeaturesSel"),
      driverFeaturesSel: u32("driverFeaturesSel"),
      queueSel: u32("queueSel"),
      interruptStatus: u32("interruptStatus"),
      configGeneration: u32("configGeneration"),
    };
    const features = st.driverFeatures;
    if (typeof features !== "bigint" || features < 0n) bad(`"driverFeatures"`);
    if (typeof st.irqLevel !== "boolean") bad(`"irqLevel"`);
    const queues = st.queues;
    if (!Array.isArray(queues) || queues.length !== this.#queues.length) bad("the queue list");
    const regs = (queues as SnapshotValue[]).map((q, i): QueueRegs => {
      const r = q as Record<string, SnapshotValue>;
      const num = r?.num, desc = r?.desc, driver = r?.driver, device = r?.device;
      if (
        typeof r !== "object" || r === null || typeof r.ready !== "boolean" ||
        ![num, desc, driver, device].every((n) =>
          typeof n === "number" && Number.isSafeInteger(n) && n >= 0
        ) || (num as number) > (this.#device.queueMaxSizes[i] ?? 0)
      ) {
        return bad(`queue ${i}`);
      }
      return {
        num: num as number,
        ready: r.ready as boolean,
        desc: desc as number,
        driver: driver as number,
        device: device as number,
      };
    });
    const active = st.active;
    if (active !== null && !Array.isArray(active)) bad("the active queue list");
    this.#status = status & 0xff;
    this.#deviceFeaturesSel = next.deviceFeaturesSel;
    this.#driverFeaturesSel = next.driverFeaturesSel;
    this.#driverFeatures = features as bigint;
    this.#queueSel = next.queueSel;
    this.#queues = regs;
    this.#interruptStatus = next.interruptStatus;
    this.#configGeneration = next.configGeneration;
    this.#irqLevel = st.irqLevel as boolean;
    restoreDevice();
    if (active === null) return;
    const indices = new Map<number, readonly unknown[]>();
    for (const a of active as SnapshotValue[]) {
      if (!Array.isArray(a) || typeof a[0] !== "number") bad("the active queue list");
      indices.set((a as number[])[0]!, (a as unknown[]).slice(1));
    }
    this.#activate(indices);
  }

  #activate(indices?: ReadonlyMap<number, readonly unknown[]>): void {
    if (!(this.#status & VirtioStatus.FEATURES_OK)) {
      this.#fail("DRIVER_OK without FEATURES_OK");
      return;
    }
    if (this.#broken()) return;
    const memory = this.#env.memory;
    const features = this.#driverFeatures;
    const onMalformed = (message: string) => {
      this.#env.counters?.malformed?.add();
      this.#warn(message);
    };
    const queues = this.#queues.map((q, index) =>
      q.ready
        ? new Virtqueue(memory, {
          index,
          size: q.num,
          desc: q.desc,
          driver: q.driver,
          device: q.device,
        }, {
          eventIdx: (features & VirtioFeature.EVENT_IDX) !== 0n,
          indirect: (features & VirtioFeature.INDIRECT_DESC) !== 0n,
          onMalformed,
        })
        : undefined
    );
    this.#active = queues.filter((q): q is Virtqueue => q !== undefined);
    if (indices !== undefined) {
      for (const q of this.#active) {
        const saved = indices.get(q.index);
        if (saved === undefined) {
          throw new VmonError(
            `Cannot restore virtio device ${this.#device.deviceId}: queue ${q.index} has no saved positions`,
          );
        }
        q.restoreIndices(saved);
      }
    }
    const epoch = this.#epoch;
    const live = () => this.#epoch === epoch && !this.#broken();
    const activation: VirtioActivation = {
      memory,
      queues,
      features,
      signalUsed: (queue) => {
        if (!live()) return;
        if (queue.needsInterrupt()) {
          this.#interruptStatus |= VirtioInterrupt.USED_BUFFER;
          this.#updateIrq();
        }
      },
      configChanged: () => {
        if (!live()) return;
        this.#configGeneration = (this.#configGeneration + 1) >>> 0;
        this.#interruptStatus |= VirtioInterrupt.CONFIG_CHANGE;
        this.#updateIrq();
      },
      guard: (fn) => {
        if (!live()) return;
        try {
          fn();
        } catch (err) {
          if (this.#epoch === epoch) this.#fail(err);
        }
      },
    };
    this.#activation = activation;
    activation.guard(() => this.#device.activate(activation));
  }

  #notify(index: number): void {
    this.#env.counters?.notifications?.add();
    if (!this.#activation || this.#broken()) return;
    if (!this.#active?.some((q) => q.index === index)) return;
    this.#activation.guard(() => this.#device.notify(index));
  }

  #updateIrq(): void {
    const level = this.#interruptStatus !== 0;
    if (level === this.#irqLevel) return;
    this.#irqLevel = level;
    if (level) this.#env.counters?.interrupts?.add();
    this.#env.irq.set(level);
  }
}

/**
 * Places a virtio device on an MMIO window: allocates a 0x200-byte window (or uses `base`) and an
 * interrupt line, registers the transport on the bus and describes a `virtio,mmio` node.
 *
 * @param host The device plugin's host.
 * @param device The device model.
 * @param options `base`: a fixed MMIO address; `irq`: a preferred interrupt line.
 * @returns The plugin instance (dispose unregisters and disposes the device) and the transport.
 */
export function attachVirtioMmio(
  host: DeviceHost,
  device: VirtioDevice,
  options: { base?: number; irq?: number } = {},
): PluginInstance & { readonly transport: VirtioMmioTransport; readonly base: number } {
  const base = options.base ?? host.platform.allocateMmio(VIRTIO_MMIO_SIZE);
  const irq = host.platform.allocateIrq(options.irq);
  const m = host.metrics;
  const transport = new VirtioMmioTransport(device, {
    memory: host.memory,
    irq,
    log: host.log,
    counters: {
      notifications: m.counter("notifications", "Queue notifications from the driver"),
      interrupts: m.counter("interrupts", "Interrupts raised"),
      errors: m.counter("device_errors", "Guest errors that set DEVICE_NEEDS_RESET"),
      malformed: m.counter("malformed_chains", "Malformed descriptor chains returned unused"),
    },
  });
  const registration = host.bus.registerMmio(base, VIRTIO_MMIO_SIZE, transport);
  host.platform.describe({
    node: "virtio_mmio",
    compatible: ["virtio,mmio"],
    mmio: { base, size: VIRTIO_MMIO_SIZE },
    irqs: [irq.number],
  });
  host.log.debug(`virtio device ${device.deviceId} at ${hex(base)}, irq ${irq.number}`);
  let disposed = false;
  const version = device.stateVersion ?? 1;
  const saving = device.saveState === undefined ? {} : {
    save: (): PluginState => ({
      version,
      state: { transport: transport.saveState(), device: device.saveState!() },
    }),
    restore(saved: PluginState): void {
      const st = saved.state as Record<string, SnapshotValue> | null;
      if (saved.version !== version || st === null || typeof st !== "object") {
        throw new VmonError(
          `Cannot restore ${host.name}: state version ${saved.version} is not supported (this build reads ${version})`,
        );
      }
      transport.restoreState(st.transport ?? null, () => device.restoreState?.(st.device ?? null));
    },
  };
  return {
    transport,
    base,
    ...saving,
    dispose() {
      if (disposed) return;
      disposed = true;
      registration.unregister();
      device.dispose?.();
      irq.set(false);
    },
  };
}
