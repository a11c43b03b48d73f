import { deepStrictEqual, match, ok, strictEqual, throws } from "node:assert/strict";
import type { DeviceDescription } from "../../../core/api/mod.ts";
import { VmonError } from "../../../core/errors.ts";
import { buildDeviceTree } from "./device_tree.ts";
import { decodeFdt, encodeFdt, FdtNode } from "./fdt.ts";

function hasDtc(): boolean {
  try {
    return new Deno.Command("dtc", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}
const DTC = hasDtc();
if (!DTC) console.warn("riscv-virt fdt tests: dtc not found, skipping decompilation checks");

/** Decompiles a blob with dtc; returns the DTS text and dtc's warnings. */
function dtc(blob: Uint8Array): { dts: string; warnings: string } {
  const file = Deno.makeTempFileSync({ prefix: "vmon-fdt-", suffix: ".dtb" });
  try {
    Deno.writeFileSync(file, blob);
    const out = new Deno.Command("dtc", { args: ["-I", "dtb", "-O", "dts", file] }).outputSync();
    const warnings = new TextDecoder().decode(out.stderr);
    if (!out.success) throw new Error(`dtc failed: ${warnings}`);
    return { dts: new TextDecoder().decode(out.stdout), warnings };
  } finally {
    Deno.removeSync(file);
  }
}

const UART: DeviceDescription = {
  node: "serial",
  compatible: ["ns16550a"],
  mmio: { base: 0x10000000, size: 0x100 },
  irqs: [10],
  props: { "clock-frequency": 3686400, "reg-shift": 0, "reg-io-width": 1 },
  console: true,
};
const TEST: DeviceDescription = {
  node: "test",
  compatible: ["sifive,test1", "sifive,test0"],
  mmio: { base: 0x100000, size: 0x1000 },
};
const virtio = (n: number): DeviceDescription => ({
  node: "virtio_mmio",
  compatible: ["virtio,mmio"],
  mmio: { base: 0x10001000 + n * 0x1000, size: 0x1000 },
  irqs: [1 + n],
});

function machine(harts: number, extra: { initrd?: boolean; mmu?: "sv39" | "sv48" } = {}) {
  return buildDeviceTree({
    harts,
    timebaseHz: 10_000_000,
    ram: { base: 0x80000000, size: 128 << 20 },
    isa: "rv64imafdc_zicsr_zifencei",
    mmu: extra.mmu ?? "sv39",
    plic: { base: 0x0c000000, size: 0x600000, sources: 95 },
    devices: [UART, TEST, virtio(0), virtio(1)],
    bootargs: "console=ttyS0 earlycon=sbi",
    ...(extra.initrd ? { initrd: { start: 0x87000000, end: 0x87100000 } } : {}),
    rngSeed: new Uint8Array(64).fill(7),
  });
}

Deno.test("fdt: header, blocks and alignment", () => {
  const root = new FdtNode("");
  root.u32("a", 1).string("b", "x");
  root.child("c@1").u64("reg", [0x80000000, 0x1000]).empty("d");
  const blob = encodeFdt(root, { reservations: [{ address: 0x1000n, size: 0x2000n }] });
  const v = new DataView(blob.buffer);
  strictEqual(v.getUint32(0), 0xd00dfeed);
  strictEqual(v.getUint32(4), blob.length);
  strictEqual(blob.length % 8, 0);
  strictEqual(v.getUint32(20), 17);
  strictEqual(v.getUint32(24), 16);
  const rsv = v.getUint32(16);
  strictEqual(rsv % 8, 0);
  strictEqual(v.getBigUint64(rsv), 0x1000n);
  strictEqual(v.getBigUint64(rsv + 8), 0x2000n);
  strictEqual(v.getBigUint64(rsv + 16), 0n); // terminator
  strictEqual(v.getUint32(8) % 4, 0);
  const back = decodeFdt(blob);
  deepStrictEqual(back.getU32("a"), [1]);
  strictEqual(back.getString("b"), "x");
  deepStrictEqual(back.find("/c@1")?.getU32("reg"), [0, 0x80000000, 0, 0x1000]);
  strictEqual(back.find("c@1")?.get("d")?.length, 0);
});

Deno.test("fdt: property names are deduplicated in the strings block", () => {
  const root = new FdtNode("");
  for (let i = 0; i < 5; i++) root.child(`n${i}`).string("compatible", `c${i}`);
  const blob = encodeFdt(root);
  const v = new DataView(blob.buffer);
  strictEqual(v.getUint32(32), "compatible\0".length);
});

Deno.test("fdt: bad names, values and blobs are refused with VmonError", () => {
  throws(() => new FdtNode("bad name"), VmonError);
  throws(() => new FdtNode("a".repeat(40)), VmonError);
  const n = new FdtNode("");
  throws(() => n.u32("x", 2 ** 32), VmonError);
  throws(() => n.u32("x", -1), VmonError);
  throws(() => n.u64("x", -1n), VmonError);
  throws(() => n.string("x", "a\0b"), VmonError);
  throws(() => n.empty("bad prop"), VmonError);
  n.child("dup");
  throws(() => n.child("dup"), VmonError);
  throws(() => decodeFdt(new Uint8Array(10)), VmonError);
  // Every truncation and many corruptions of a valid blob: VmonError or a tree, never a crash.
  const good = encodeFdt(machine(2));
  for (let len = 0; len < good.length; len += 7) {
    try {
      decodeFdt(good.subarray(0, len));
    } catch (e) {
      ok(e instanceof VmonError, `truncated at ${len}: ${e}`);
    }
  }
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 300; i++) {
    const bad = good.slice();
    for (let j = 0; j < 4; j++) bad[Math.floor(rand() * bad.length)] = Math.floor(rand() * 256);
    try {
      decodeFdt(bad);
    } catch (e) {
      ok(e instanceof VmonError, `corruption ${i}: ${e}`);
    }
  }
});

Deno.test("fdt: the machine tree round-trips through the decoder", () => {
  const root = machine(4, { initrd: true });
  const back = decodeFdt(encodeFdt(root));
  strictEqual(back.find("/chosen")?.getString("stdout-path"), "/soc/serial@10000000");
  deepStrictEqual(back.find("/chosen")?.getU32("linux,initrd-start"), [0, 0x87000000]);
  deepStrictEqual(back.find("/soc/plic@c000000")?.getStrings("compatible"), [
    "sifive,plic-1.0.0",
    "riscv,plic0",
  ]);
  deepStrictEqual(back.find("/soc/test@100000")?.getStrings("compatible"), [
    "sifive,test1",
    "sifive,test0",
    "syscon",
  ]);
  const plicPh = back.find("/soc/plic@c000000")?.getU32("phandle")?.[0];
  deepStrictEqual(back.find("/soc/virtio_mmio@10002000")?.getU32("interrupt-parent"), [plicPh]);
  deepStrictEqual(back.find("/soc/virtio_mmio@10002000")?.getU32("interrupts"), [2]);
  deepStrictEqual(back.find("/soc/serial@10000000")?.getU32("clock-frequency"), [3686400]);
});

for (const harts of [1, 4]) {
  Deno.test({
    name: `fdt: dtc decompiles the ${harts}-hart machine with the expected nodes`,
    ignore: !DTC,
    fn() {
      const { dts, warnings } = dtc(encodeFdt(machine(harts, { initrd: true, mmu: "sv48" })));
      strictEqual(warnings.trim(), "", `dtc warnings:\n${warnings}`);
      match(dts, /#address-cells = <0x02>;\s*#size-cells = <0x02>;\s*compatible = "riscv-virtio";/);
      match(dts, /bootargs = "console=ttyS0 earlycon=sbi";/);
      match(dts, /stdout-path = "\/soc\/serial@10000000";/);
      match(dts, /linux,initrd-start = <0x00 0x87000000>;/);
      match(dts, /linux,initrd-end = <0x00 0x87100000>;/);
      match(dts, /rng-seed = <(0x7070707 ?){16}>;/);
      match(
        dts,
        /memory@80000000 \{\s*device_type = "memory";\s*reg = <0x00 0x80000000 0x00 0x8000000>;/,
      );
      match(dts, /timebase-frequency = <0x989680>;/);
      const cpuNodes = dts.match(/cpu@[0-9a-f]+ \{/g) ?? [];
      strictEqual(cpuNodes.length, harts);
      strictEqual((dts.match(/riscv,isa = "rv64imafdc_zicsr_zifencei";/g) ?? []).length, harts);
      strictEqual((dts.match(/mmu-type = "riscv,sv48";/g) ?? []).length, harts);
      strictEqual((dts.match(/compatible = "riscv,cpu-intc";/g) ?? []).length, harts);
      strictEqual((dts.match(/status = "okay";/g) ?? []).length, harts);
      // interrupts-extended: for each hart <&intc 11 &intc 9>, intc phandles 1..harts.
      const cells = [...Array(harts).keys()].flatMap((h) => [h + 1, 11, h + 1, 9])
        .map((c) => `0x${c.toString(16).padStart(2, "0")}`).join(" ");
      ok(dts.includes(`interrupts-extended = <${cells}>;`), `interrupts-extended in\n${dts}`);
      match(dts, /riscv,ndev = <0x5f>;/);
      match(dts, /compatible = "sifive,plic-1.0.0\\0riscv,plic0";/);
      match(dts, /reg = <0x00 0xc000000 0x00 0x600000>;/);
      match(dts, /serial@10000000 \{[^}]*interrupts = <0x0a>;/);
      // dtc prints 0x00384000 as the string "\08@" (its guess); the value is checked by decoding.
      match(dts, /serial@10000000 \{[^}]*clock-frequency = /);
      match(
        dts,
        /virtio_mmio@10001000 \{[^}]*compatible = "virtio,mmio";[^}]*reg = <0x00 0x10001000 0x00 0x1000>;[^}]*interrupts = <0x01>;/,
      );
      match(dts, /virtio_mmio@10002000 \{[^}]*interrupts = <0x02>;/);
      const testPh = harts + 2;
      const ph = `0x${testPh.toString(16).padStart(2, "0")}`;
      match(dts, new RegExp(`test@100000 \\{[^}]*phandle = <${ph}>;`));
      match(
        dts,
        new RegExp(
          `poweroff \\{\\s*compatible = "syscon-poweroff";\\s*regmap = <${ph}>;\\s*offset = <0x00>;\\s*value = <0x5555>;`,
        ),
      );
      match(
        dts,
        new RegExp(
          `reboot \\{\\s*compatible = "syscon-reboot";\\s*regmap = <${ph}>;\\s*offset = <0x00>;\\s*value = <0x7777>;`,
        ),
      );
      match(dts, /aliases \{\s*serial0 = "\/soc\/serial@10000000";/);
      match(
        dts,
        /soc \{\s*#address-cells = <0x02>;\s*#size-cells = <0x02>;\s*compatible = "simple-bus";\s*ranges;/,
      );
    },
  });
}

Deno.test("fdt: device descriptions that cannot be expressed are refused", () => {
  const base = {
    harts: 1,
    timebaseHz: 1,
    ram: { base: 0x80000000, size: 1 << 24 },
    isa: "rv64ima",
    mmu: "sv39" as const,
    plic: { base: 0x0c000000, size: 0x600000, sources: 31 },
    bootargs: "",
  };
  throws(
    () => buildDeviceTree({ ...base, devices: [{ ...virtio(0), irqs: [32] }] }),
    /interrupt 32 is not a PLIC source \(1\.\.31\)/,
  );
  throws(
    () =>
      buildDeviceTree({
        ...base,
        devices: [{ node: "x", compatible: ["y"], pio: { base: 0x3f8, size: 8 } }],
      }),
    /riscv-virt has no port I\/O/,
  );
  throws(
    () => buildDeviceTree({ ...base, devices: [{ ...virtio(0), props: { "bad prop": 1 } }] }),
    VmonError,
  );
  throws(() => buildDeviceTree({ ...base, devices: [virtio(0), virtio(0)] }), /exists already/);
});
