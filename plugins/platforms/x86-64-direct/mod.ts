/**
 * The `x86-64-direct` platform: boots a freestanding ELF64 x86-64 executable straight into
 * 64-bit long mode, with no firmware. It puts RAM at guest physical address 0, loads the ELF's
 * segments, builds identity page tables, a GDT with ring-0 and ring-3 segments, one TSS per vCPU
 * and an IDT whose handlers report any exception to the monitor through the fault ports
 * (0x5e0-0x5ff), so a guest fault ends the machine with a clear message instead of a triple
 * fault. Each vCPU starts at the ELF entry, by default in ring 3 with IOPL 3 (natively fast on
 * nested KVM; port I/O allowed through the TSS I/O bitmap), with
 * `rdi` = vCPU id, `rsi` = `arg`, `rdx` = vCPU count, `rcx` = first free byte above the image,
 * `r8` = end of free RAM, `r9` = address of the NUL-terminated command line (0 if none),
 * `rsp` = the top of its own 64 KiB stack (16-byte aligned).
 *
 * See README.md for the memory layout and options.
 *
 * @module
 */

import {
  type BootSpec,
  definePlugin,
  type DeviceDescription,
  ExitKind,
  type ExitRecord,
  hex,
  type IrqLine,
  type PlatformHost,
  type PlatformInstance,
  type PlatformServices,
  PLUGIN_API_VERSION,
  type Registration,
  type Vcpu,
  VmonError,
  type X86HostPort,
  type X86Vcpu,
} from "../../../mod.ts";
import { parseElf64 } from "./elf.ts";
import {
  buildGdt,
  buildHandler,
  buildIdt,
  buildIoBitmap,
  buildPageTables,
  buildStubs,
  buildTss,
  codeSegment,
  CR0,
  CR4,
  dataSegment,
  EFER,
  EXCEPTION_NAMES,
  FAULT_PORT,
  FAULT_PORT_SIZE,
  LAYOUT,
  MAX_MAPPED,
  MAX_VCPUS,
  nullLdt,
  RFLAGS,
  SELECTORS,
  taskSegment,
  tssAddress,
} from "./layout.ts";

export { parseElf64 } from "./elf.ts";
export type { ElfImage, ElfSegment } from "./elf.ts";

/** The smallest RAM the platform accepts. */
const MIN_MEMORY = 4 * 2 ** 20;
/** The MMIO window when RAM ends below it. */
const MMIO_LOW = { base: 0xd000_0000, end: 0xfec0_0000 };
/** What the in-kernel interrupt controller (KVM_CREATE_IRQCHIP) answers itself. */
const IRQCHIP_RANGES: readonly (readonly ["PIO" | "MMIO", number, number, string])[] = [
  ["PIO", 0x20, 2, "the in-kernel PIC"],
  ["PIO", 0xa0, 2, "the in-kernel PIC"],
  ["PIO", 0x4d0, 2, "the in-kernel PIC's ELCR"],
  ["MMIO", 0xfec0_0000, 0x1000, "the in-kernel IOAPIC"],
  ["MMIO", 0xfee0_0000, 0x1000, "the in-kernel local APIC"],
];
/** Interrupt lines (IOAPIC GSIs) the platform hands out. */
const IRQ_LINES = 24;
/** Where allocateIrq starts when no line is preferred (0-4 are legacy: timer, keyboard, COM). */
const FIRST_FREE_IRQ = 5;

const OPTIONS = {
  ring: {
    type: "integer",
    description: "Privilege ring the guest starts in: 3 (fast on nested KVM) or 0",
    default: 3,
    min: 0,
    max: 3,
  },
  arg: {
    type: "integer",
    description: "Number passed to the guest in rsi (exit code, count); default: arg=N from the " +
      "command line, else 0",
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  },
  irqchip: {
    type: "boolean",
    description: "Create the host port's in-kernel interrupt controller for device lines",
    default: true,
  },
  console: {
    type: "boolean",
    description: "Add a uart16550 serial console (COM1) unless the machine has one",
    default: true,
  },
} as const;

interface FaultReport {
  error: number;
  ripLow: number;
  ripHigh: number;
  cr2Low: number;
  cr2High: number;
  cs: number;
}

function isX86Vcpu(vcpu: Vcpu): vcpu is X86Vcpu {
  const v = vcpu as Partial<X86Vcpu>;
  return typeof v.getSpecialRegisters === "function" &&
    typeof v.setSpecialRegisters === "function";
}

function hasIrqchip(hostport: unknown): hostport is X86HostPort {
  const h = hostport as Partial<X86HostPort>;
  return typeof h.createIrqchip === "function" && typeof h.setIrqLine === "function";
}

/**
 * Reads `arg=N` (decimal or 0x hex) from a kernel command line.
 *
 * @returns The value, or undefined when the command line has no `arg=`.
 * @throws {VmonError} When the value is not a non-negative integer.
 */
export function parseArg(cmdline: string | undefined): number | undefined {
  if (cmdline === undefined) return undefined;
  let found: number | undefined;
  for (const token of cmdline.split(/\s+/)) {
    if (!token.startsWith("arg=")) continue;
    const text = token.slice(4);
    const value = /^(0x[0-9a-f]+|[0-9]+)$/i.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new VmonError(
        `Cannot boot: invalid "${token}" on the command line: expected a non-negative integer`,
      );
    }
    found = value;
  }
  return found;
}

/**
 * Describes a reported guest exception in one line.
 *
 * @example
 * ```ts
 * import { describeFault } from "./mod.ts";
 *
 * const text = describeFault(0, 14, { error: 6, rip: 0x200010n, cr2: 0x10n, cs: 0x23 });
 * if (!text.includes("#PF page fault")) throw new Error(text);
 * ```
 */
export function describeFault(
  vcpu: number,
  vector: number,
  info: { error: number; rip: bigint; cr2: bigint; cs: number },
): string {
  const name = EXCEPTION_NAMES[vector] ?? `vector ${vector}`;
  let text = `Guest exception on vCPU ${vcpu}: ${name} at rip ${hex(info.rip)} in ring ${
    info.cs & 3
  }`;
  if (vector === 14) {
    const e = info.error;
    text += ` (${e & 16 ? "instruction fetch" : e & 2 ? "write" : "read"} of ${hex(info.cr2)}, ${
      e & 1 ? "protection violation" : "page not present"
    }${e & 4 ? ", user mode" : ""})`;
  } else if (vector === 8 || vector === 10 || vector === 11 || vector === 12 || vector === 13) {
    text += `, error code ${hex(info.error)}`;
  }
  return text;
}

/** The x86-64-direct platform plugin. */
const plugin = definePlugin({
  name: "x86-64-direct",
  kind: "platform",
  arch: "x86_64",
  apiVersion: PLUGIN_API_VERSION,
  description:
    "Boots an ELF64 x86-64 executable straight into long mode (ring 3 or 0), no firmware",
  options: OPTIONS,
  defaultDevices: (options) => options.console ? [{ use: "uart16550" }] : [],
  setup(host: PlatformHost, options): PlatformInstance {
    const ring = options.ring;
    if (ring !== 0 && ring !== 3) {
      throw new VmonError(`Invalid option ring=${ring} for x86-64-direct: expected 0 or 3`);
    }
    const { cpus, memorySize } = host.machine;
    if (host.machine.arch !== "x86_64" || host.hostport.arch !== "x86_64") {
      throw new VmonError(
        `Cannot use platform x86-64-direct with host port "${host.machine.hostport}": it runs ${host.hostport.arch} guests, not x86_64`,
      );
    }
    if (cpus < 1 || cpus > MAX_VCPUS) {
      throw new VmonError(`Cannot create ${cpus} vCPUs on x86-64-direct: at most ${MAX_VCPUS}`);
    }
    const stacksBottom = memorySize - cpus * LAYOUT.guestStackSize;
    if (memorySize < MIN_MEMORY || stacksBottom < LAYOUT.imageStart + 2 ** 20) {
      throw new VmonError(
        `Cannot set up x86-64-direct with ${memorySize} bytes of RAM: it needs at least ${
          Math.max(MIN_MEMORY, LAYOUT.imageStart + 2 ** 20 + cpus * LAYOUT.guestStackSize)
        } bytes for ${cpus} vCPU(s)`,
      );
    }
    if (memorySize > MAX_MAPPED - 2 ** 30) {
      throw new VmonError(
        `Cannot set up x86-64-direct with ${memorySize} bytes of RAM: at most ${
          MAX_MAPPED - 2 ** 30
        }`,
      );
    }
    host.addRam(0, memorySize, { name: "ram" });

    // --- interrupt lines ---------------------------------------------------------------------
    let irqchip = false;
    if (options.irqchip && hasIrqchip(host.hostport)) {
      irqchip = host.hostport.createIrqchip();
      if (!irqchip) host.log.debug("the host port has no in-kernel interrupt controller");
    }
    const reservations: Registration[] = [];
    if (irqchip) {
      // The host port's in-kernel PIC, IOAPIC and local APICs answer these without exits: no
      // device may be placed there (it would never see an access).
      for (const [space, base, size, label] of IRQCHIP_RANGES) {
        reservations.push(host.reserve(space, { base, size, label }));
      }
    }
    const usedIrqs = new Set<number>();
    const hostport = host.hostport;
    const makeLine = (gsi: number): IrqLine => {
      let warned = false;
      const set = (level: boolean) => {
        if (irqchip && hasIrqchip(hostport)) {
          hostport.setIrqLine(gsi, level);
        } else if (!warned) {
          warned = true;
          host.log.debug(`interrupt line ${gsi} is not connected (no interrupt controller)`);
        }
      };
      return { number: gsi, set, pulse: () => (set(true), set(false)) };
    };

    // --- MMIO windows ------------------------------------------------------------------------
    const mmioWindow = memorySize <= MMIO_LOW.base ? MMIO_LOW : (() => {
      const base = Math.ceil(memorySize / 2 ** 30) * 2 ** 30;
      return { base, end: base + 2 ** 30 };
    })();
    const mmio: { base: number; size: number; owner: string }[] = [];
    const range = (base: number, size: number) => `${hex(base)}-${hex(base + size - 1)}`;
    /** What holds part of `[base, base+size)`: RAM, a window, or a range on the bus. */
    const mmioClash = (base: number, size: number): string | undefined => {
      if (base < memorySize) return `RAM at ${range(0, memorySize)}`;
      const w = mmio.find((m) => base < m.base + m.size && m.base < base + size);
      if (w !== undefined) return `"${w.owner}" at ${range(w.base, w.size)}`;
      const o = host.occupant("MMIO", base, size);
      if (o !== undefined) {
        return `${o.reserved ? o.owner : `"${o.owner}"`} at ${range(o.base, o.size)}`;
      }
      return undefined;
    };
    const descriptions: DeviceDescription[] = [];

    const services: PlatformServices = {
      hasPio: true,
      mmioRegShift: 0,
      allocateMmio(size, preferredBase, options): number {
        const owner = options?.owner ?? `mmio window ${mmio.length + 1}`;
        if (!Number.isSafeInteger(size) || size <= 0) {
          throw new VmonError(
            `Cannot place device "${owner}": an MMIO window of ${size} bytes is not a positive size`,
          );
        }
        const rounded = Math.ceil(size / 4096) * 4096;
        if (preferredBase !== undefined) {
          const at = `Cannot place device "${owner}" at ${range(preferredBase, rounded)}`;
          if (!Number.isSafeInteger(preferredBase) || preferredBase < 0) {
            throw new VmonError(`${at}: not a valid address`);
          }
          if (preferredBase + rounded > MAX_MAPPED) {
            throw new VmonError(`${at}: beyond the identity-mapped ${range(0, MAX_MAPPED)}`);
          }
          const clash = mmioClash(preferredBase, rounded);
          if (clash !== undefined) throw new VmonError(`${at}: overlaps ${clash}`);
          mmio.push({ base: preferredBase, size: rounded, owner });
          return preferredBase;
        }
        let align = 4096;
        while (align < rounded) align *= 2;
        let base = Math.ceil(mmioWindow.base / align) * align;
        while (base + rounded <= mmioWindow.end && mmioClash(base, rounded) !== undefined) {
          base += align;
        }
        if (base + rounded > mmioWindow.end) {
          throw new VmonError(
            `Cannot place device "${owner}": no MMIO window of ${rounded} bytes is left in ${
              range(mmioWindow.base, mmioWindow.end - mmioWindow.base)
            }`,
          );
        }
        mmio.push({ base, size: rounded, owner });
        return base;
      },
      allocateIrq(preferred?: number): IrqLine {
        if (preferred !== undefined) {
          if (!Number.isInteger(preferred) || preferred < 0 || preferred >= IRQ_LINES) {
            throw new VmonError(
              `Cannot allocate interrupt line ${preferred}: lines are 0-${IRQ_LINES - 1}`,
            );
          }
          if (usedIrqs.has(preferred)) {
            throw new VmonError(`Cannot allocate interrupt line ${preferred}: already in use`);
          }
          usedIrqs.add(preferred);
          return makeLine(preferred);
        }
        for (let gsi = FIRST_FREE_IRQ; gsi < IRQ_LINES; gsi++) {
          if (!usedIrqs.has(gsi)) {
            usedIrqs.add(gsi);
            return makeLine(gsi);
          }
        }
        throw new VmonError(`Cannot allocate an interrupt line: all ${IRQ_LINES} are in use`);
      },
      describe(description: DeviceDescription): void {
        descriptions.push(description);
      },
    };

    // --- fault reports -----------------------------------------------------------------------
    const reports = new Map<number, FaultReport>();
    const faults = host.metrics.counter("guest-exceptions", "Exceptions guests reported");
    const faultPorts = host.bus.registerPio(FAULT_PORT, FAULT_PORT_SIZE, {
      read: () => 0,
      write(offset, size, value, vcpu) {
        let r = reports.get(vcpu);
        if (r === undefined) {
          r = { error: 0, ripLow: 0, ripHigh: 0, cr2Low: 0, cr2High: 0, cs: 0 };
          reports.set(vcpu, r);
        }
        const v = size === 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff);
        switch (offset) {
          case 4:
            r.error = v;
            break;
          case 8:
            r.ripLow = v;
            break;
          case 12:
            r.ripHigh = v;
            break;
          case 16:
            r.cr2Low = v;
            break;
          case 20:
            r.cr2High = v;
            break;
          case 24:
            r.cs = v;
            break;
          case 0: {
            faults.add();
            const text = describeFault(vcpu, v, {
              error: r.error,
              rip: (BigInt(r.ripHigh) << 32n) | BigInt(r.ripLow),
              cr2: (BigInt(r.cr2High) << 32n) | BigInt(r.cr2Low),
              cs: r.cs,
            });
            reports.delete(vcpu);
            host.requestExit(128 + (v & 0x7f), text, { failed: true });
            break;
          }
          default:
            host.log.warn(`ignored write of ${hex(v)} to fault port ${hex(FAULT_PORT + offset)}`);
        }
      },
    });

    // --- boot --------------------------------------------------------------------------------
    const boot = (spec: BootSpec): void => {
      if (spec.kernel === undefined) {
        throw new VmonError(
          "Cannot boot x86-64-direct: no kernel given (an ELF64 x86-64 executable)",
        );
      }
      const name = spec.kernel;
      const file = host.files.readFile(name);
      const image = parseElf64(file, { name });
      let imageEnd: number = LAYOUT.imageStart;
      for (const s of image.segments) {
        if (s.paddr < LAYOUT.imageStart || s.paddr + s.memSize > stacksBottom) {
          throw new VmonError(
            `Cannot load kernel image "${name}": segment at ${hex(s.paddr)} (${
              hex(s.memSize)
            } bytes) is outside the RAM the image may use, ${hex(LAYOUT.imageStart)}-${
              hex(stacksBottom - 1)
            }`,
          );
        }
        imageEnd = Math.max(imageEnd, s.paddr + s.memSize);
      }
      for (const s of image.segments) {
        host.memory.write(s.paddr, file.subarray(s.offset, s.offset + s.fileSize));
        if (s.memSize > s.fileSize) {
          host.memory.write(s.paddr + s.fileSize, new Uint8Array(s.memSize - s.fileSize));
        }
      }
      let freeStart = Math.ceil(imageEnd / 4096) * 4096;
      let cmdlineAddress = 0;
      if (spec.cmdline !== undefined && spec.cmdline !== "") {
        const bytes = new TextEncoder().encode(spec.cmdline + "\0");
        if (freeStart + bytes.length > stacksBottom) {
          throw new VmonError("Cannot boot x86-64-direct: the command line does not fit in RAM");
        }
        cmdlineAddress = freeStart;
        host.memory.write(freeStart, bytes);
        freeStart = Math.ceil((freeStart + bytes.length) / 4096) * 4096;
      }
      const arg = options.arg ?? parseArg(spec.cmdline) ?? 0;

      // Platform structures.
      const vcpus = host.vcpus;
      host.memory.write(LAYOUT.gdt, buildGdt(vcpus.length));
      host.memory.write(LAYOUT.idt, buildIdt());
      host.memory.write(LAYOUT.stubs, buildStubs());
      host.memory.write(LAYOUT.handler, buildHandler());
      for (let i = 0; i < vcpus.length; i++) {
        host.memory.write(tssAddress(i), buildTss(i));
      }
      host.memory.write(LAYOUT.ioBitmap, buildIoBitmap());
      const mapEnd = Math.max(
        2 ** 32,
        memorySize,
        ...mmio.map((m) => m.base + m.size),
      );
      for (const p of buildPageTables(mapEnd)) host.memory.write(p.gpa, p.bytes);
      if (descriptions.length > 0) {
        host.log.debug(`devices: ${descriptions.map((d) => d.node).join(", ")}`);
      }

      for (const vcpu of vcpus) {
        if (!isX86Vcpu(vcpu)) {
          throw new VmonError(
            `Cannot boot x86-64-direct on host port "${host.machine.hostport}": its vCPUs have no x86 special registers`,
          );
        }
        const sregs = vcpu.getSpecialRegisters();
        const r = ring as 0 | 3;
        sregs.cs = codeSegment(r);
        sregs.ss = dataSegment(r);
        sregs.ds = dataSegment(r);
        sregs.es = dataSegment(r);
        sregs.fs = dataSegment(r);
        sregs.gs = dataSegment(r);
        sregs.tr = taskSegment(vcpu.id);
        sregs.ldt = nullLdt();
        sregs.gdt = { base: BigInt(LAYOUT.gdt), limit: SELECTORS.tss + 16 * vcpus.length - 1 };
        sregs.idt = { base: BigInt(LAYOUT.idt), limit: 256 * 16 - 1 };
        sregs.cr0 = CR0;
        sregs.cr3 = BigInt(LAYOUT.pml4);
        sregs.cr4 = CR4;
        sregs.efer = EFER;
        vcpu.setSpecialRegisters(sregs);
        const stackTop = Math.floor((memorySize - vcpu.id * LAYOUT.guestStackSize) / 16) * 16;
        vcpu.setRegisters({
          rip: BigInt(image.entry),
          rsp: BigInt(stackTop),
          rflags: RFLAGS,
          rdi: BigInt(vcpu.id),
          rsi: BigInt(arg),
          rdx: BigInt(vcpus.length),
          rcx: BigInt(freeStart),
          r8: BigInt(stacksBottom),
          r9: BigInt(cmdlineAddress),
        });
      }
      host.log.debug(
        `loaded "${name}": entry ${hex(image.entry)}, image ${hex(LAYOUT.imageStart)}-${
          hex(imageEnd - 1)
        }, ring ${ring}, arg ${arg}, ${vcpus.length} vCPU(s)`,
      );
    };

    const onExit = (vcpu: Vcpu, exit: ExitRecord): boolean => {
      if (exit.kind === ExitKind.Shutdown) {
        host.requestExit(
          1,
          `Guest triple fault on vCPU ${vcpu.id} at rip ${hex(exit.pc)}${
            exit.detail ? `: ${exit.detail}` : ""
          }`,
          { failed: true },
        );
        return true;
      }
      return false;
    };

    let disposed = false;
    return {
      services,
      boot,
      onExit,
      dispose() {
        if (disposed) return;
        disposed = true;
        faultPorts.unregister();
        for (const r of reservations) r.unregister();
      },
    };
  },
});

export default plugin;
