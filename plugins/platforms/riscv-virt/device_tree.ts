/**
 * The `riscv-virt` device tree: the nodes a RISC-V Linux kernel needs on a QEMU-`virt`-like
 * machine (root, `chosen`, memory, `cpus` with per-hart interrupt controllers, `soc` with the
 * PLIC and one node per described device, syscon poweroff/reboot for a `sifive,test0` device).
 *
 * @module
 */

import { type DeviceDescription, VmonError } from "../../../mod.ts";
import { FdtNode } from "./fdt.ts";

/** Inputs of {@linkcode buildDeviceTree}. */
export interface DeviceTreeConfig {
  /** Number of harts. */
  readonly harts: number;
  /** `timebase-frequency` in Hz. */
  readonly timebaseHz: number;
  /** RAM base and size. */
  readonly ram: { readonly base: number; readonly size: number };
  /** `riscv,isa` of every hart. */
  readonly isa: string;
  /** `mmu-type` of every hart: `sv39` or `sv48`. */
  readonly mmu: "sv39" | "sv48";
  /** PLIC window and number of sources (`riscv,ndev`). */
  readonly plic: { readonly base: number; readonly size: number; readonly sources: number };
  /** Devices that described themselves. */
  readonly devices: readonly DeviceDescription[];
  /** Kernel command line (`bootargs`). */
  readonly bootargs: string;
  /** Initrd range (end exclusive), if any. */
  readonly initrd?: { readonly start: number; readonly end: number };
  /** Bytes for `rng-seed`, if any. */
  readonly rngSeed?: Uint8Array;
  /** `model` of the root node. */
  readonly model?: string;
}

/** Value for `syscon-poweroff` on a `sifive,test0` device (FINISHER_PASS). */
export const TEST_POWEROFF_VALUE = 0x5555;
/** Value for `syscon-reboot` on a `sifive,test0` device (FINISHER_RESET). */
export const TEST_REBOOT_VALUE = 0x7777;

function reg(node: FdtNode, base: number, size: number): void {
  node.u64("reg", [base, size]);
}

/** The node name of a described device: `stem@hexbase` (or just `stem` without a window). */
export function deviceNodeName(d: DeviceDescription): string {
  return d.mmio ? `${d.node}@${d.mmio.base.toString(16)}` : d.node;
}

/**
 * Builds the device tree. Phandles: 1.. for the hart interrupt controllers, then the PLIC, then
 * any `sifive,test0` device.
 *
 * @param config The machine.
 * @returns The root node, ready for `encodeFdt`.
 * @throws {VmonError} When a device description is unusable (port I/O on RISC-V, an interrupt
 * outside the PLIC's sources, a bad property).
 */
export function buildDeviceTree(config: DeviceTreeConfig): FdtNode {
  let nextPhandle = 1;
  const root = new FdtNode("");
  root.u32("#address-cells", 2).u32("#size-cells", 2);
  root.string("compatible", "riscv-virtio");
  root.string("model", config.model ?? "vmon riscv-virt");

  const chosen = root.child("chosen");
  chosen.string("bootargs", config.bootargs);
  if (config.initrd) {
    chosen.u64("linux,initrd-start", config.initrd.start);
    chosen.u64("linux,initrd-end", config.initrd.end);
  }
  if (config.rngSeed) chosen.bytes("rng-seed", config.rngSeed);

  const memory = root.child(`memory@${config.ram.base.toString(16)}`);
  memory.string("device_type", "memory");
  reg(memory, config.ram.base, config.ram.size);

  const cpus = root.child("cpus");
  cpus.u32("#address-cells", 1).u32("#size-cells", 0);
  cpus.u32("timebase-frequency", config.timebaseHz);
  const intcPhandles: number[] = [];
  for (let h = 0; h < config.harts; h++) {
    const cpu = cpus.child(`cpu@${h.toString(16)}`);
    cpu.string("device_type", "cpu").u32("reg", h).string("status", "okay");
    cpu.string("compatible", "riscv");
    cpu.string("riscv,isa", config.isa);
    cpu.string("mmu-type", `riscv,${config.mmu}`);
    const intc = cpu.child("interrupt-controller");
    const ph = nextPhandle++;
    intc.u32("#address-cells", 0).u32("#interrupt-cells", 1).empty("interrupt-controller");
    intc.string("compatible", "riscv,cpu-intc").u32("phandle", ph);
    intcPhandles.push(ph);
  }

  const soc = root.child("soc");
  soc.u32("#address-cells", 2).u32("#size-cells", 2);
  soc.string("compatible", "simple-bus").empty("ranges");

  const plic = soc.child(`plic@${config.plic.base.toString(16)}`);
  const plicPhandle = nextPhandle++;
  plic.u32("#address-cells", 0).u32("#interrupt-cells", 1).empty("interrupt-controller");
  plic.strings("compatible", ["sifive,plic-1.0.0", "riscv,plic0"]);
  reg(plic, config.plic.base, config.plic.size);
  // Two contexts per hart: M external (11) then S external (9), as on QEMU's virt.
  plic.u32("interrupts-extended", intcPhandles.flatMap((ph) => [ph, 11, ph, 9]));
  plic.u32("riscv,ndev", config.plic.sources);
  plic.u32("phandle", plicPhandle);

  let stdoutPath: string | undefined;
  let testPhandle: number | undefined;
  const testValues = { poweroff: TEST_POWEROFF_VALUE, reboot: TEST_REBOOT_VALUE };
  for (const d of config.devices) {
    const name = deviceNodeName(d);
    const where = `Cannot add device "${name}" to the device tree`;
    if (d.pio && !d.mmio) throw new VmonError(`${where}: riscv-virt has no port I/O`);
    if (d.compatible.length === 0) throw new VmonError(`${where}: it has no compatible string`);
    let node: FdtNode;
    try {
      node = soc.child(name);
    } catch (e) {
      throw new VmonError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const compatible = [...d.compatible];
    const isTest = compatible.includes("sifive,test0");
    // Linux's syscon regmap lookup requires "syscon" on the node the poweroff/reboot nodes name.
    if (isTest && !compatible.includes("syscon")) compatible.push("syscon");
    node.strings("compatible", compatible);
    if (d.mmio) reg(node, d.mmio.base, d.mmio.size);
    if (d.irqs && d.irqs.length > 0) {
      for (const irq of d.irqs) {
        if (!Number.isInteger(irq) || irq < 1 || irq > config.plic.sources) {
          throw new VmonError(
            `${where}: interrupt ${irq} is not a PLIC source (1..${config.plic.sources})`,
          );
        }
      }
      node.u32("interrupts", [...d.irqs]);
      node.u32("interrupt-parent", plicPhandle);
    }
    for (const [key, value] of Object.entries(d.props ?? {})) {
      try {
        if (typeof value === "number") node.u32(key, value);
        else if (typeof value === "bigint") node.u64(key, value);
        else if (typeof value === "string") node.string(key, value);
        else node.u32(key, value);
      } catch (e) {
        throw new VmonError(`${where}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (isTest && testPhandle === undefined) {
      testPhandle = nextPhandle++;
      node.u32("phandle", testPhandle);
      // The device may name its own finisher values (debug-exit does).
      const p = d.props?.["vmon,poweroff-value"];
      const r = d.props?.["vmon,reboot-value"];
      if (typeof p === "number") testValues.poweroff = p;
      if (typeof r === "number") testValues.reboot = r;
    }
    if (d.console && stdoutPath === undefined) stdoutPath = `/soc/${name}`;
  }
  if (stdoutPath) {
    chosen.string("stdout-path", stdoutPath);
    root.child("aliases").string("serial0", stdoutPath);
  }
  if (testPhandle !== undefined) {
    const poweroff = root.child("poweroff");
    poweroff.string("compatible", "syscon-poweroff");
    poweroff.u32("regmap", testPhandle).u32("offset", 0).u32("value", testValues.poweroff);
    const reboot = root.child("reboot");
    reboot.string("compatible", "syscon-reboot");
    reboot.u32("regmap", testPhandle).u32("offset", 0).u32("value", testValues.reboot);
  }
  return root;
}
