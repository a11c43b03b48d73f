import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import type { DeviceHost, PlatformInstance } from "../../../core/api/mod.ts";
import { VmonError } from "../../../core/errors.ts";
import { validateOptions } from "../../../core/schema.ts";
import { setupTestDevice } from "../../../testing/mod.ts";
import uart16550 from "../../devices/uart16550/mod.ts";
import debugExit from "../../devices/debug-exit/mod.ts";
import { createTestPlatformHost, makeElf, makeImage } from "./_test_support.ts";
import { decodeFdt } from "./fdt.ts";
import plugin, { defaultCmdline, PLIC_BASE, RAM_BASE } from "./mod.ts";

async function makePlatform(
  opts: { cpus?: number; memorySize?: number; options?: Record<string, unknown> } = {},
) {
  const host = createTestPlatformHost(opts);
  const values = validateOptions(plugin.options, opts.options ?? { "rng-seed": false }, {
    plugin: "riscv-virt",
  });
  // deno-lint-ignore no-explicit-any
  const platform: PlatformInstance = await plugin.setup(host, values as any);
  return { host, platform };
}

function tempFile(bytes: Uint8Array): string {
  const path = Deno.makeTempFileSync({ prefix: "vmon-riscv-virt-" });
  Deno.writeFileSync(path, bytes);
  return path;
}

Deno.test("riscv-virt: setup adds RAM, the PLIC and the SBI extensions", async () => {
  const { host, platform } = await makePlatform({ memorySize: 32 << 20 });
  deepStrictEqual(host.ramAdded, [{ gpa: RAM_BASE, size: 32 << 20 }]);
  deepStrictEqual(host.test.mmioRanges, [{ base: PLIC_BASE, size: 0x600000 }]);
  deepStrictEqual(host.test.hypercall(0x10, 0), { error: 0, value: 2n << 24n });
  strictEqual(platform.services.hasPio, false);
  strictEqual(platform.services.mmioRegShift, 0);
  platform.dispose();
  platform.dispose();
  deepStrictEqual(host.test.mmioRanges, []);
  strictEqual(host.test.hypercall(0x10, 0).error, -2);
});

Deno.test("riscv-virt: setup refuses other architectures and bad sizes", async () => {
  await makePlatform({ cpus: 64 });
  for (
    const [opts, re] of [
      [{ memorySize: 1 << 20 }, /at least 2097152 needed/],
      [{ memorySize: (4 << 20) + 100 }, /not a multiple of 4 KiB/],
      [{ cpus: 65 }, /1\.\.64 are supported/],
    ] as const
  ) {
    let err: unknown;
    try {
      await makePlatform(opts);
    } catch (e) {
      err = e;
    }
    ok(err instanceof VmonError && re.test(err.message), String(err));
  }
  const host = createTestPlatformHost();
  const x86 = { ...host, machine: { ...host.machine, arch: "x86_64" as const } };
  const values = validateOptions(plugin.options, {}, { plugin: "riscv-virt" });
  // deno-lint-ignore no-explicit-any
  throws(() => plugin.setup(x86, values as any), /not riscv64/);
});

Deno.test("riscv-virt: MMIO windows land where QEMU's virt has them", async () => {
  const { platform } = await makePlatform();
  const s = platform.services;
  strictEqual(s.allocateMmio(0x100), 0x10000000); // the UART
  strictEqual(s.allocateMmio(0x1000), 0x10001000); // virtio slots
  strictEqual(s.allocateMmio(0x200), 0x10002000);
  strictEqual(s.allocateMmio(0x1000, 0x100000), 0x100000); // the test finisher, by request
  strictEqual(s.allocateMmio(0x10000), 0x10010000); // aligned to its size
  strictEqual(s.allocateMmio(0x40), 0x10003000);
  throws(() => s.allocateMmio(0x1000, 0x10001000), /overlaps "mmio window 2" at 0x10001000-/);
  throws(() => s.allocateMmio(0x1000, 0x0c100000), /overlaps "plic" at 0xc000000-0xc5fffff/);
  throws(
    () => s.allocateMmio(0x1000, RAM_BASE + 0x1000, { owner: "virtio-rng" }),
    /: Cannot place device "virtio-rng" at 0x80001000-0x80001fff: overlaps RAM at 0x80000000-0x83ffffff$/,
  );
  throws(() => s.allocateMmio(0), VmonError);
  throws(() => s.allocateMmio(16, -4), VmonError);
  throws(() => s.allocateMmio(16, 0x20000002), /not 4-byte aligned/);
});

Deno.test("riscv-virt: windows skip ranges devices registered at given addresses", async () => {
  const { host, platform } = await makePlatform();
  const s = platform.services;
  // A UART placed by hand at its usual address (base=0x10000000) without asking the platform.
  host.test.bus.registerMmio(0x1000_0000, 0x100, { read: () => 0, write: () => {} });
  strictEqual(s.allocateMmio(2, undefined, { owner: "pvpanic" }), 0x10001000);
  throws(
    () => s.allocateMmio(0x100, 0x1000_0000, { owner: "uart16550" }),
    /: Cannot place device "uart16550" at 0x10000000-0x100000ff: overlaps "riscv-virt" at 0x10000000-0x100000ff$/,
  );
  throws(() => s.allocateMmio(0x1000, 2 ** 48, { owner: "x" }), /device "x" .*not a valid address/);
  throws(() => s.allocateMmio(2 ** 31, undefined, { owner: "big" }), /device "big"/);
});

Deno.test("riscv-virt: interrupt lines are PLIC sources", async () => {
  const { platform } = await makePlatform({ options: { "plic-sources": 31 } });
  const s = platform.services;
  strictEqual(s.allocateIrq().number, 1);
  strictEqual(s.allocateIrq(10).number, 10);
  strictEqual(s.allocateIrq().number, 2);
  throws(() => s.allocateIrq(10), /already in use/);
  throws(() => s.allocateIrq(0), /PLIC sources are 1-31/);
  throws(() => s.allocateIrq(32), /PLIC sources are 1-31/);
  for (let i = 0; i < 28; i++) s.allocateIrq();
  throws(() => s.allocateIrq(), /all 31 are in use/);
});

Deno.test("riscv-virt: a device line reaches the hart's SEIP through the PLIC", async () => {
  const { host, platform } = await makePlatform({ cpus: 2 });
  const line = platform.services.allocateIrq(5);
  line.set(true); // before boot: remembered
  host.createHarts();
  const kernel = tempFile(makeImage(256));
  try {
    platform.boot({ kernel });
  } finally {
    Deno.removeSync(kernel);
  }
  const [h0, h1] = host.harts;
  const t = host.test;
  t.mmioWrite(PLIC_BASE + 4 * 5, 4, 1); // priority
  strictEqual(h0!.pending.has("seip"), false);
  t.mmioWrite(PLIC_BASE + 0x2000 + 0x80 * 0, 4, 1 << 5); // M context of hart 0: not wired
  strictEqual(h0!.pending.has("seip"), false);
  host.wakes.length = 0;
  t.mmioWrite(PLIC_BASE + 0x2000 + 0x80 * 1, 4, 1 << 5); // S context of hart 0
  strictEqual(h0!.pending.has("seip"), true);
  deepStrictEqual(host.wakes, [0]);
  strictEqual(t.mmioRead(PLIC_BASE + 0x200004 + 0x1000 * 1, 4), 5); // claim
  strictEqual(h0!.pending.has("seip"), false);
  line.set(false);
  t.mmioWrite(PLIC_BASE + 0x200004 + 0x1000 * 1, 4, 5); // complete
  strictEqual(h0!.pending.has("seip"), false);
  // Hart 1's S context (3) with a threshold.
  t.mmioWrite(PLIC_BASE + 0x2000 + 0x80 * 3, 4, 1 << 5);
  t.mmioWrite(PLIC_BASE + 0x200000 + 0x1000 * 3, 4, 1);
  line.pulse();
  strictEqual(h1!.pending.has("seip"), false); // priority 1 is not above threshold 1
  strictEqual(h0!.pending.has("seip"), true);
  t.mmioWrite(PLIC_BASE + 0x200000 + 0x1000 * 3, 4, 0);
  strictEqual(h1!.pending.has("seip"), true);
});

Deno.test("riscv-virt: boot loads Image, initrd and DTB and starts hart 0 in S-mode", async () => {
  const { host, platform } = await makePlatform({ cpus: 4, memorySize: 64 << 20 });
  const s = platform.services;
  const uartBase = s.allocateMmio(0x100);
  const irq = s.allocateIrq();
  s.describe({
    node: "serial",
    compatible: ["ns16550a"],
    mmio: { base: uartBase, size: 0x100 },
    irqs: [irq.number],
    console: true,
  });
  host.createHarts();
  const image = makeImage(8192, { imageSize: 0x100000n });
  image.fill(0xab, 64);
  const initrdBytes = new Uint8Array(12345).map((_, i) => i & 0xff);
  const kernel = tempFile(image);
  const initrd = tempFile(initrdBytes);
  // RAM that is not fresh: the Image's tail up to image_size must still come out zeroed.
  host.memory.write(0x80200000 + image.length, new Uint8Array(4096).fill(0xee));
  try {
    platform.boot({ kernel, initrd, cmdline: "console=ttyS0 root=/dev/ram" });
  } finally {
    Deno.removeSync(kernel);
    Deno.removeSync(initrd);
  }
  const m = host.memory;
  deepStrictEqual(m.read(0x80200000, image.length), image);
  deepStrictEqual(m.read(0x80200000 + image.length, 4096), new Uint8Array(4096));
  const [h0, ...others] = host.harts;
  strictEqual(h0!.pc, 0x80200000n);
  strictEqual(h0!.privilege, "supervisor");
  strictEqual(h0!.regs.x10, 0n);
  strictEqual(h0!.getCsr(0x180), 0n);
  strictEqual(h0!.started, true);
  for (const h of others) {
    strictEqual(h.started, false);
    deepStrictEqual(h.callsOf("setPc"), []);
  }
  const dtbAddr = Number(h0!.regs.x11);
  strictEqual(dtbAddr % 8, 0);
  const size = new DataView(m.read(dtbAddr, 8).buffer).getUint32(4);
  ok(dtbAddr + size <= RAM_BASE + (64 << 20));
  const tree = decodeFdt(m.read(dtbAddr, size));
  const chosen = tree.find("/chosen")!;
  strictEqual(chosen.getString("bootargs"), "console=ttyS0 root=/dev/ram");
  strictEqual(chosen.getString("stdout-path"), "/soc/serial@10000000");
  strictEqual(chosen.get("rng-seed"), undefined);
  const [s0, s1, e0, e1] = [
    ...chosen.getU32("linux,initrd-start")!,
    ...chosen.getU32("linux,initrd-end")!,
  ];
  const start = s0! * 2 ** 32 + s1!;
  const end = e0! * 2 ** 32 + e1!;
  strictEqual(end - start, initrdBytes.length);
  ok(start >= 0x80300000 && end <= dtbAddr);
  deepStrictEqual(m.read(start, initrdBytes.length), initrdBytes);
  deepStrictEqual(tree.find("/memory@80000000")!.getU32("reg"), [0, RAM_BASE, 0, 64 << 20]);
  deepStrictEqual(tree.find("/cpus")!.getU32("timebase-frequency"), [10_000_000]);
  strictEqual(tree.find("/cpus")!.children.length, 4);
  deepStrictEqual(tree.find("/soc/serial@10000000")!.getU32("interrupts"), [irq.number]);
  ok(host.wakes.includes(0));
});

Deno.test("riscv-virt: default command line, bootargs-extra and rng-seed", async () => {
  for (const consoleDev of [true, false]) {
    const { host, platform } = await makePlatform({
      options: { "bootargs-extra": "quiet" },
    });
    if (consoleDev) {
      platform.services.describe({
        node: "serial",
        compatible: ["ns16550a"],
        mmio: { base: platform.services.allocateMmio(0x100), size: 0x100 },
        console: true,
      });
    }
    host.createHarts();
    const kernel = tempFile(makeImage(64));
    try {
      platform.boot({ kernel });
    } finally {
      Deno.removeSync(kernel);
    }
    const dtb = Number(host.harts[0]!.regs.x11);
    const tree = decodeFdt(host.memory.read(dtb, RAM_BASE + (64 << 20) - dtb));
    strictEqual(tree.find("/chosen")!.getString("bootargs"), `${defaultCmdline(consoleDev)} quiet`);
    strictEqual(tree.find("/chosen")!.get("linux,initrd-start"), undefined);
  }
  const { host, platform } = await makePlatform({ options: {} });
  host.createHarts();
  const kernel = tempFile(makeImage(64));
  try {
    platform.boot({ kernel, cmdline: "" });
  } finally {
    Deno.removeSync(kernel);
  }
  const dtb = Number(host.harts[0]!.regs.x11);
  const tree = decodeFdt(host.memory.read(dtb, RAM_BASE + (64 << 20) - dtb));
  strictEqual(tree.find("/chosen")!.get("rng-seed")!.length, 64);
  strictEqual(tree.find("/chosen")!.getString("bootargs"), "");
});

Deno.test("riscv-virt: an ELF payload boots at its entry", async () => {
  const { host, platform } = await makePlatform();
  host.createHarts();
  const code = Uint8Array.of(0x73, 0, 0x50, 0x10); // wfi
  const kernel = tempFile(makeElf([{ paddr: 0x80000000, data: code, memsz: 0x1000 }]));
  try {
    platform.boot({ kernel });
  } finally {
    Deno.removeSync(kernel);
  }
  strictEqual(host.harts[0]!.pc, 0x80000000n);
  deepStrictEqual(host.memory.read(0x80000000, 4), code);
});

Deno.test("riscv-virt: boot errors are clear", async () => {
  const cases: [(k: string) => Parameters<PlatformInstance["boot"]>[0], Uint8Array, RegExp][] = [
    [() => ({}), makeImage(64), /no kernel given/],
    [() => ({ kernel: "/nonexistent/vmon-Image" }), makeImage(64), /vmon-Image/],
    [() => ({ kernel: "/tmp" }), makeImage(64), /Cannot read .*"\/tmp": is a directory/],
    [(k) => ({ kernel: k, initrd: "/tmp" }), makeImage(64), /"\/tmp": is a directory/],
    [(k) => ({ kernel: k }), new TextEncoder().encode("garbage"), /not a RISC-V Linux Image/],
    [(k) => ({ kernel: k }), makeImage(64, { imageSize: 64n << 20n }), /larger than RAM/],
    [
      (k) => ({ kernel: k, initrd: k + ".missing" }),
      makeImage(64),
      /\.missing/,
    ],
    [(k) => ({ kernel: k, cmdline: "x".repeat(1024) }), makeImage(64), /longer than 1023/],
  ];
  for (const [spec, bytes, re] of cases) {
    const { host, platform } = await makePlatform();
    host.createHarts();
    const kernel = tempFile(bytes);
    try {
      throws(() => platform.boot(spec(kernel)), (e: unknown) => {
        ok(e instanceof VmonError, String(e));
        ok(re.test(e.message), `${e.message} !~ ${re}`);
        return true;
      });
    } finally {
      Deno.removeSync(kernel);
    }
  }
  // An initrd that does not fit between the kernel and the DTB.
  const { host, platform } = await makePlatform({ memorySize: 8 << 20 });
  host.createHarts();
  const kernel = tempFile(makeImage(64, { imageSize: 0x400000n }));
  const initrd = tempFile(new Uint8Array(2 << 20));
  try {
    throws(() => platform.boot({ kernel, initrd }), /Cannot load initrd .* do not fit/);
  } finally {
    Deno.removeSync(kernel);
    Deno.removeSync(initrd);
  }
});

Deno.test("riscv-virt: the real uart16550 and debug-exit describe themselves into the DTB", async () => {
  const { host, platform } = await makePlatform({ cpus: 2 });
  const deviceHost = (name: string): DeviceHost => ({
    ...host.test,
    name,
    platform: platform.services,
    bus: host.bus,
    memory: host.memory,
    console: host.console,
    requestExit: (s: number, r?: string) => host.requestExit(s, r),
  });
  const uart = await setupTestDevice(uart16550, deviceHost("uart16550"), { console: true });
  const finisher = await setupTestDevice(debugExit, deviceHost("debug-exit"));
  host.createHarts();
  const kernel = tempFile(makeImage(64));
  try {
    platform.boot({ kernel });
  } finally {
    Deno.removeSync(kernel);
  }
  const dtb = Number(host.harts[0]!.regs.x11);
  const tree = decodeFdt(host.memory.read(dtb, RAM_BASE + (64 << 20) - dtb));
  const serial = tree.find("/soc/serial@10000000");
  ok(serial, "serial node");
  deepStrictEqual(serial.getStrings("compatible"), ["ns16550a"]);
  deepStrictEqual(serial.getU32("interrupts"), [1]);
  strictEqual(tree.find("/chosen")!.getString("stdout-path"), "/soc/serial@10000000");
  const test = tree.find("/soc/test@10001000");
  ok(test, "test node");
  const ph = test.getU32("phandle")![0];
  deepStrictEqual(tree.find("/poweroff")!.getU32("regmap"), [ph]);
  deepStrictEqual(tree.find("/poweroff")!.getU32("value"), [0x5555]);
  deepStrictEqual(tree.find("/reboot")!.getU32("value"), [0x7777]);
  // The guest's poweroff write reaches the device through the bus.
  host.test.mmioWrite(0x10001000, 4, 0x5555);
  deepStrictEqual(host.test.exits.at(-1), { status: 0, reason: "poweroff" });
  uart.dispose();
  finisher.dispose();
  platform.dispose();
});

Deno.test("riscv-virt adds a uart16550 serial console unless console=false", () => {
  const on = validateOptions(plugin.options, {}, { plugin: "riscv-virt" });
  const off = validateOptions(plugin.options, { console: "false" }, { plugin: "riscv-virt" });
  deepStrictEqual(plugin.defaultDevices?.(on as never), [{ use: "uart16550" }]);
  deepStrictEqual(plugin.defaultDevices?.(off as never), []);
});
