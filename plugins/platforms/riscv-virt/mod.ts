/**
 * The `riscv-virt` platform: a machine shaped like QEMU's RISC-V `virt` board, with the monitor
 * as firmware. It puts RAM at 0x80000000, runs a PLIC at 0x0c000000 (S-mode contexts wired to
 * each hart's SEIP), answers SBI calls (BASE, TIME, IPI, RFENCE, HSM, SRST, DBCN, legacy
 * 0x00-0x08) itself instead of OpenSBI, generates the device tree from the devices that
 * described themselves, and boots a RISC-V Linux `Image` (or an ELF64 executable) in S-mode
 * with a0 = 0 (hart id) and a1 = the DTB address. Secondary harts wait for SBI HSM `hart_start`.
 *
 * See README.md for the address map and options.
 *
 * @module
 */

import {
  type BootSpec,
  definePlugin,
  type DeviceDescription,
  hex,
  type HostFile,
  type IrqLine,
  type PlatformHost,
  type PlatformInstance,
  type PlatformServices,
  PLUGIN_API_VERSION,
  type Registration,
  type Rv64Hart,
  type Rv64HostPort,
  type Vcpu,
  VmonError,
} from "../../../mod.ts";
import { buildDeviceTree, deviceNodeName } from "./device_tree.ts";
import { encodeFdt } from "./fdt.ts";
import { MmioAllocator, PLIC_BASE, RAM_BASE } from "./layout.ts";
import {
  isImageHeader,
  type KernelImage,
  parseImageHeader,
  parseKernel,
  planLayout,
  type RamInfo,
} from "./loader.ts";
import { Plic, PLIC_SIZE } from "./plic.ts";
import { enterSupervisor, Sbi } from "./sbi.ts";

export { decodeFdt, encodeFdt, FdtNode } from "./fdt.ts";
export { buildDeviceTree } from "./device_tree.ts";
export type { DeviceTreeConfig } from "./device_tree.ts";
export { parseKernel, planLayout } from "./loader.ts";
export type { BootLayout, KernelImage, LoadSegment } from "./loader.ts";
export { Plic } from "./plic.ts";
export { enterSupervisor, Sbi, SbiError, SbiExtension, translate } from "./sbi.ts";
export type { SbiEnvironment } from "./sbi.ts";
export { MmioAllocator, PLIC_BASE, RAM_BASE, TEST_BASE, UART_BASE, VIRTIO_BASE } from "./layout.ts";

/** Version of the state the platform saves in snapshots. */
const STATE_VERSION = 1;

/** Default `riscv,isa` string. */
export const DEFAULT_ISA = "rv64imafdc_zicsr_zifencei";
/** Linux's COMMAND_LINE_SIZE on RISC-V (including the NUL). */
export const MAX_CMDLINE = 1024;
/** The smallest RAM the platform accepts. */
export const MIN_MEMORY = 2 * 2 ** 20;
/** Timebase used when the host port does not say (QEMU virt's 10 MHz). */
export const DEFAULT_TIMEBASE_HZ = 10_000_000;

const OPTIONS = {
  mmu: {
    type: "string",
    description: "MMU type in the device tree (mmu-type riscv,svNN)",
    enum: ["sv39", "sv48"],
    default: "sv39",
  },
  isa: {
    type: "string",
    description: "The riscv,isa string of every hart",
    default: DEFAULT_ISA,
  },
  "rng-seed": {
    type: "boolean",
    description: "Pass 64 random bytes in /chosen/rng-seed (turn off for reproducible runs)",
    default: true,
  },
  "plic-sources": {
    type: "integer",
    description: "Interrupt sources of the PLIC (riscv,ndev)",
    default: 95,
    min: 1,
    max: 1023,
  },
  "bootargs-extra": {
    type: "string",
    description: "Text appended to the kernel command line",
  },
  console: {
    type: "boolean",
    description:
      "Add a uart16550 serial console unless the machine has one (false: SBI console only)",
    default: true,
  },
} as const;

function isRv64Hart(v: Vcpu): v is Rv64Hart {
  const h = v as Partial<Rv64Hart>;
  return typeof h.setPc === "function" && typeof h.setInterrupt === "function" &&
    typeof h.setTimer === "function" && typeof h.setStarted === "function" &&
    typeof h.setPrivilege === "function";
}

/**
 * The default kernel command line: the serial console when a device said it is the console,
 * else the SBI console (`hvc0`); early output through SBI in both cases.
 *
 * @example
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { defaultCmdline } from "./mod.ts";
 *
 * strictEqual(defaultCmdline(true), "console=ttyS0 earlycon=sbi");
 * ```
 */
export function defaultCmdline(hasConsoleDevice: boolean): string {
  return hasConsoleDevice ? "console=ttyS0 earlycon=sbi" : "console=hvc0 earlycon=sbi";
}

/** The riscv-virt platform plugin. */
const plugin = definePlugin({
  name: "riscv-virt",
  kind: "platform",
  arch: "riscv64",
  apiVersion: PLUGIN_API_VERSION,
  description:
    "QEMU-virt-like RISC-V machine: PLIC, generated device tree, SBI firmware in the monitor, " +
    "Linux Image/ELF boot",
  options: OPTIONS,
  defaultDevices: (options) => options.console ? [{ use: "uart16550" }] : [],
  setup(host: PlatformHost, options): PlatformInstance {
    const { cpus, memorySize } = host.machine;
    if (host.machine.arch !== "riscv64" || host.hostport.arch !== "riscv64") {
      throw new VmonError(
        `Cannot use platform riscv-virt with host port "${host.machine.hostport}": it runs ${host.hostport.arch} guests, not riscv64`,
      );
    }
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) {
      throw new VmonError(`Cannot create ${cpus} harts on riscv-virt: 1..64 are supported`);
    }
    if (!Number.isSafeInteger(memorySize) || memorySize < MIN_MEMORY) {
      throw new VmonError(
        `Cannot set up riscv-virt with ${memorySize} bytes of RAM: at least ${MIN_MEMORY} needed`,
      );
    }
    if (memorySize % 4096 !== 0) {
      throw new VmonError(
        `Cannot set up riscv-virt with ${memorySize} bytes of RAM: not a multiple of 4 KiB`,
      );
    }
    const mmuOption = options.mmu;
    if (mmuOption !== "sv39" && mmuOption !== "sv48") {
      throw new VmonError(`Invalid option mmu=${mmuOption} for riscv-virt: expected sv39 or sv48`);
    }
    const mmu: "sv39" | "sv48" = mmuOption;
    host.addRam(RAM_BASE, memorySize, { name: "ram" });

    const registrations: Registration[] = [];
    const harts = (): Rv64Hart[] => {
      const out: Rv64Hart[] = [];
      for (const v of host.vcpus) {
        if (!isRv64Hart(v)) {
          throw new VmonError(
            `Cannot run riscv-virt on host port "${host.machine.hostport}": its vCPUs are not RISC-V harts`,
          );
        }
        out.push(v);
      }
      return out;
    };

    // --- PLIC ----------------------------------------------------------------------------------
    const sources = options["plic-sources"];
    let booted = false;
    const plic = new Plic(cpus, {
      sources,
      onOutput(context, level) {
        if ((context & 1) === 0) return; // M-mode contexts are not wired: no M-mode software
        const id = context >> 1;
        const hart = booted ? host.vcpus[id] : undefined;
        if (hart && isRv64Hart(hart)) {
          hart.setInterrupt("seip", level);
          if (level) host.wake(id);
        }
      },
      onBadAccess: (message) => host.log.warn(message),
    });
    // Windows avoid RAM, each other and every range registered on the bus (devices given base=).
    const mmio = new MmioAllocator({
      ramBase: RAM_BASE,
      ramSize: memorySize,
      occupant: (base, size) => host.occupant("MMIO", base, size),
    });
    mmio.allocate(PLIC_SIZE, { owner: "plic", preferred: PLIC_BASE });
    registrations.push(host.bus.registerMmio(PLIC_BASE, PLIC_SIZE, plic));

    const usedIrqs = new Set<number>();
    const line = (n: number): IrqLine => {
      usedIrqs.add(n);
      return { number: n, set: (level) => plic.setLevel(n, level), pulse: () => plic.pulse(n) };
    };

    // --- SBI -----------------------------------------------------------------------------------
    const sbi = new Sbi({
      harts,
      memory: host.memory,
      console: host.console,
      requestExit: (status, reason, options) => host.requestExit(status, reason, options),
      wake: (id) => host.wake(id),
      log: host.log,
      metrics: host.metrics,
    });
    registrations.push(...sbi.register(host.bus));

    // --- services ------------------------------------------------------------------------------
    const descriptions: DeviceDescription[] = [];
    let mmioCount = 0;
    const services: PlatformServices = {
      hasPio: false,
      mmioRegShift: 0,
      allocateMmio(size, preferredBase, options): number {
        return mmio.allocate(size, {
          owner: options?.owner ?? `mmio window ${++mmioCount}`,
          ...(preferredBase !== undefined ? { preferred: preferredBase } : {}),
        });
      },
      allocateIrq(preferred?: number): IrqLine {
        if (preferred !== undefined) {
          if (!Number.isInteger(preferred) || preferred < 1 || preferred > sources) {
            throw new VmonError(
              `Cannot allocate interrupt line ${preferred}: PLIC sources are 1-${sources}`,
            );
          }
          if (usedIrqs.has(preferred)) {
            throw new VmonError(`Cannot allocate interrupt line ${preferred}: already in use`);
          }
          return line(preferred);
        }
        for (let n = 1; n <= sources; n++) if (!usedIrqs.has(n)) return line(n);
        throw new VmonError(`Cannot allocate an interrupt line: all ${sources} are in use`);
      },
      describe(description: DeviceDescription): void {
        if (description.pio && !description.mmio) {
          throw new VmonError(
            `Cannot describe device "${description.node}": riscv-virt has no port I/O`,
          );
        }
        const name = deviceNodeName(description);
        if (descriptions.some((d) => deviceNodeName(d) === name)) {
          throw new VmonError(`Cannot describe device "${name}": described twice`);
        }
        descriptions.push(description);
      },
    };

    // --- boot ----------------------------------------------------------------------------------
    /** Opens `path` to read it, or undefined when it cannot be (readFile then says why). */
    const openForRead = (path: string): HostFile | undefined => {
      try {
        return host.files.open(path, { write: false, lock: false });
      } catch {
        return undefined;
      }
    };
    /** Fills `dst` from the start of `file`: false on a short read or an error. */
    const fill = (file: HostFile, dst: Uint8Array): boolean => {
      try {
        return file.readAt(dst, 0) === dst.length;
      } catch {
        return false;
      }
    };
    /** The size of `path` (through readFile when it cannot be opened: that says why). */
    const sizeOf = (path: string): number => {
      const file = openForRead(path);
      if (file === undefined) return host.files.readFile(path).length;
      try {
        return file.size;
      } finally {
        file.close();
      }
    };
    /**
     * Reads the whole of `path` into `dst`, which has its size; when the file cannot be read that
     * way, through readFile (which gives the one-line errors), refusing a file whose size changed.
     */
    const loadInto = (path: string, dst: Uint8Array): void => {
      const file = openForRead(path);
      if (file !== undefined) {
        try {
          if (fill(file, dst)) return;
        } finally {
          file.close();
        }
      }
      const bytes = host.files.readFile(path);
      if (bytes.length !== dst.length) {
        throw new VmonError(`Cannot boot riscv-virt: "${path}" changed while loading`);
      }
      dst.set(bytes);
    };
    /**
     * Loads a Linux Image straight into RAM at its load address (its tail up to `image_size`
     * zeroed): the parsed kernel without segments to copy. Undefined when the file is not an
     * Image or cannot be read this way; an Image that cannot load throws its one line.
     */
    const loadImageDirect = (name: string, ram: RamInfo): KernelImage | undefined => {
      const file = openForRead(name);
      if (file === undefined) return undefined;
      try {
        const head = new Uint8Array(Math.min(file.size, 64));
        if (!fill(file, head) || !isImageHeader(head)) return undefined;
        const place = parseImageHeader(head, { ...ram, fileSize: file.size });
        if (!fill(file, host.memory.view(place.start, file.size))) return undefined;
        host.memory.view(place.start + file.size, place.memSize - file.size).fill(0);
        return {
          format: "image",
          entry: place.start,
          segments: [],
          start: place.start,
          end: place.start + place.memSize,
        };
      } finally {
        file.close();
      }
    };

    const boot = (spec: BootSpec): void => {
      const hs = harts();
      if (hs.length !== cpus) {
        throw new VmonError(`Cannot boot riscv-virt: ${hs.length} harts exist, ${cpus} expected`);
      }
      if (spec.kernel === undefined) {
        throw new VmonError(
          "Cannot boot riscv-virt: no kernel given (a RISC-V Linux Image or ELF64 executable)",
        );
      }
      const name = spec.kernel;
      const ram = { name, ramBase: RAM_BASE, ramSize: memorySize };
      // A Linux Image is read straight into RAM at its load address, and the initrd (below) at
      // its place, without a copy of either in between; an ELF file, or a file this fast path
      // cannot read, is read whole and parsed (which also gives the one-line errors).
      const kernel = loadImageDirect(name, ram) ??
        parseKernel(host.files.readFile(name), ram);
      const initrdSize = spec.initrd !== undefined ? sizeOf(spec.initrd) : 0;

      const hasConsole = descriptions.some((d) => d.console);
      let cmdline = spec.cmdline ?? defaultCmdline(hasConsole);
      if (options["bootargs-extra"]) cmdline = `${cmdline} ${options["bootargs-extra"]}`.trim();
      if (new TextEncoder().encode(cmdline).length >= MAX_CMDLINE) {
        throw new VmonError(
          `Cannot boot riscv-virt: the kernel command line is longer than ${MAX_CMDLINE - 1} bytes`,
        );
      }
      const hp = host.hostport as Partial<Rv64HostPort>;
      let timebaseHz = DEFAULT_TIMEBASE_HZ;
      if (typeof hp.timebaseHz === "number" && hp.timebaseHz > 0) timebaseHz = hp.timebaseHz;
      else host.log.warn(`host port gives no timebase; assuming ${timebaseHz} Hz`);
      const rngSeed = options["rng-seed"] ? crypto.getRandomValues(new Uint8Array(64)) : undefined;
      const tree = (initrdRange?: { start: number; end: number }) =>
        encodeFdt(buildDeviceTree({
          harts: cpus,
          timebaseHz,
          ram: { base: RAM_BASE, size: memorySize },
          isa: options.isa,
          mmu,
          plic: { base: PLIC_BASE, size: PLIC_SIZE, sources },
          devices: descriptions,
          bootargs: cmdline,
          ...(initrdRange ? { initrd: initrdRange } : {}),
          ...(rngSeed ? { rngSeed } : {}),
        }));
      // The blob's size does not depend on the initrd addresses, only on their presence.
      const draft = tree(spec.initrd !== undefined ? { start: 0, end: 0 } : undefined);
      const layout = planLayout(kernel, {
        ...ram,
        dtbSize: draft.length,
        initrdSize,
        ...(spec.initrd !== undefined ? { initrdName: spec.initrd } : {}),
      });
      const dtb = tree(layout.initrd);
      if (dtb.length !== draft.length) throw new Error("device tree size changed");

      for (const s of kernel.segments) {
        host.memory.write(s.gpa, s.data);
        if (s.memSize > s.data.length) {
          host.memory.write(s.gpa + s.data.length, new Uint8Array(s.memSize - s.data.length));
        }
      }
      if (spec.initrd !== undefined && layout.initrd) {
        loadInto(spec.initrd, host.memory.view(layout.initrd.start, initrdSize));
      }
      host.memory.write(layout.dtb, dtb);
      host.log.debug(
        `kernel ${kernel.format} at ${hex(kernel.start)}-${hex(kernel.end)}, entry ${
          hex(kernel.entry)
        }, dtb at ${hex(layout.dtb)} (${dtb.length} bytes)${
          layout.initrd ? `, initrd at ${hex(layout.initrd.start)}` : ""
        }`,
      );

      for (const hart of hs) {
        if (hart.id === 0) {
          enterSupervisor(hart, { pc: BigInt(kernel.entry), a1: BigInt(layout.dtb) });
          hart.setStarted(true);
        } else {
          hart.setStarted(false);
        }
      }
      booted = true;
      // Interrupts raised before the harts existed.
      hs.forEach((hart, id) => {
        if (plic.output(2 * id + 1)) hart.setInterrupt("seip", true);
      });
      host.wake(0);
    };

    let disposed = false;
    return {
      services,
      boot,
      // A hart's S-mode context can be raised only by a line a device owns, routed to it.
      canInterrupt: (vcpu) => plic.canInterrupt(2 * vcpu + 1, (id) => usedIrqs.has(id)),
      // The PLIC and the firmware; timers, HSM states and pending bits live in the harts.
      save: () => ({
        version: STATE_VERSION,
        state: { booted, plic: plic.saveState(), sbi: sbi.saveState() },
      }),
      restore(saved) {
        const st = saved.state as Record<string, unknown> | null;
        if (saved.version !== STATE_VERSION || st === null || typeof st !== "object") {
          throw new VmonError(
            `Cannot restore riscv-virt: state version ${saved.version} is not supported (this build reads ${STATE_VERSION})`,
          );
        }
        const { plic: p, sbi: f } = st as { plic?: unknown; sbi?: unknown };
        if (typeof p !== "object" || p === null || typeof f !== "object" || f === null) {
          throw new VmonError("Cannot restore riscv-virt: the saved state is malformed");
        }
        harts(); // the vCPUs must be RISC-V harts, as boot requires
        plic.restoreState(p as Record<string, unknown>);
        sbi.restoreState(f as Record<string, unknown>);
        booted = st.booted === true;
      },
      dispose() {
        if (disposed) return;
        disposed = true;
        for (const r of registrations.reverse()) r.unregister();
      },
    };
  },
});

export default plugin;
