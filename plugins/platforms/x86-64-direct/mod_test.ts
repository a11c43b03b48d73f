import { deepStrictEqual as assertEquals, ok, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import type {
  ExitRecord,
  HostPortInstance,
  RegisterSet,
  X86HostPort,
  X86Segment,
  X86SpecialRegisters,
  X86Vcpu,
} from "../../../core/api/mod.ts";
import { ExitKind, PAGING_MECHANISMS_VERSION } from "../../../core/api/mod.ts";
import { VmonError } from "../../../core/errors.ts";
import plugin, { describeFault, parseArg } from "./mod.ts";
import { FAULT_PORT, LAYOUT, SELECTORS, tssAddress } from "./layout.ts";
import { createPlatformTestHost } from "./_test_machine.ts";
import { makeElf } from "./_test_elf.ts";

// A host port double that records what the platform asks of it. The real kvm port is exercised
// by boot_test.ts; these tests check the platform's own logic without /dev/kvm.
class RecordingVcpu implements X86Vcpu {
  readonly id: number;
  readonly exit = {} as ExitRecord;
  sregs: X86SpecialRegisters;
  regs: RegisterSet = {};
  constructor(id: number) {
    this.id = id;
    const seg = (): X86Segment => ({
      base: 0n,
      limit: 0xffff,
      selector: 0,
      type: 3,
      present: true,
      dpl: 0,
      db: false,
      s: true,
      l: false,
      g: false,
      avl: false,
      unusable: false,
    });
    this.sregs = {
      cs: seg(),
      ds: seg(),
      es: seg(),
      fs: seg(),
      gs: seg(),
      ss: seg(),
      tr: seg(),
      ldt: seg(),
      gdt: { base: 0n, limit: 0xffff },
      idt: { base: 0n, limit: 0xffff },
      cr0: 0x60000010n,
      cr2: 0n,
      cr3: 0n,
      cr4: 0n,
      cr8: 0n,
      efer: 0n,
      apicBase: 0xfee00900n,
    };
  }
  getSpecialRegisters(): X86SpecialRegisters {
    return structuredClone(this.sregs);
  }
  setSpecialRegisters(sregs: X86SpecialRegisters): void {
    this.sregs = structuredClone(sregs);
  }
  run(): never {
    throw new Error("not a real vCPU");
  }
  setSlice(): void {}
  completeHypercall(): void {}
  getRegisters(): RegisterSet {
    return { ...this.regs };
  }
  setRegisters(regs: RegisterSet): void {
    Object.assign(this.regs, regs);
  }
  runnable(): boolean {
    return true;
  }
  wakeDeadline(): number {
    return Infinity;
  }
  dispose(): void {}
}

function recordingPort(irqchip: boolean): X86HostPort & { lines: [number, boolean][] } {
  const lines: [number, boolean][] = [];
  return {
    arch: "x86_64",
    capabilities: {
      exitCounts: true,
      instructionCounts: false,
      tlbStats: false,
      paging: { version: PAGING_MECHANISMS_VERSION, mechanisms: [] },
    },
    addMemoryRegion: (_gpa, size) => new ArrayBuffer(size),
    createVcpu: (id) => new RecordingVcpu(id),
    kick() {},
    stats: () => ({}),
    dispose() {},
    createIrqchip: () => irqchip,
    setIrqLine: (gsi, level) => void lines.push([gsi, level]),
    lines,
  };
}

const MiB = 2 ** 20;

async function setUp(
  options: { cpus?: number; memorySize?: number; ring?: number; arg?: number; irqchip?: boolean } =
    {},
) {
  const port = recordingPort(options.irqchip ?? true);
  const t = createPlatformTestHost(port, {
    cpus: options.cpus ?? 1,
    memorySize: options.memorySize ?? 8 * MiB,
  });
  const platform = await plugin.setup(t.host, {
    ring: options.ring ?? 3,
    arg: options.arg,
    irqchip: true,
    console: true,
  });
  for (let i = 0; i < (options.cpus ?? 1); i++) t.vcpus.push(port.createVcpu(i));
  return { ...t, port, platform };
}

async function tempElf(bytes: Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "x86-direct-test-" });
  const path = join(dir, "guest.elf");
  await Deno.writeFile(path, bytes);
  return path;
}

function isVmonError(pattern: RegExp) {
  return (e: unknown) => e instanceof VmonError && pattern.test(e.message);
}

Deno.test("setup adds RAM at 0 and checks its inputs", async () => {
  const { host, platform } = await setUp({ memorySize: 8 * MiB });
  assertEquals(host.memory.regions.map((r) => [r.gpa, r.size, r.name]), [[0, 8 * MiB, "ram"]]);
  platform.dispose();
  platform.dispose();
  await rejects(async () => await setUp({ ring: 1 }), isVmonError(/ring=1.*expected 0 or 3/));
  await rejects(
    async () => await setUp({ memorySize: 2 * MiB }),
    isVmonError(/2097152 bytes of RAM: it needs at least/),
  );
  await rejects(async () => await setUp({ cpus: 65 }), isVmonError(/at most 64/));
});

Deno.test("allocateMmio hands out aligned windows at 0xd0000000 and refuses overlaps", async () => {
  const { platform } = await setUp();
  const s = platform.services;
  assertEquals(s.hasPio, true);
  assertEquals(s.allocateMmio(0x200), 0xd000_0000);
  assertEquals(s.allocateMmio(0x3000), 0xd000_4000);
  assertEquals(s.allocateMmio(0x1000), 0xd000_1000);
  assertEquals(s.allocateMmio(0x1000, 0xfed0_0000), 0xfed0_0000);
  throws(
    () => s.allocateMmio(0x1000, 0xd000_4000, { owner: "virtio-rng" }),
    isVmonError(
      /^Cannot place device "virtio-rng" at 0xd0004000-0xd0004fff: overlaps "mmio window 2" at 0xd0004000-0xd0006fff$/,
    ),
  );
  throws(
    () => s.allocateMmio(0x1000, 0x10_0000, { owner: "virtio-blk" }),
    isVmonError(/^Cannot place device "virtio-blk" at .*: overlaps RAM at 0x0-0x7fffff$/),
  );
  throws(() => s.allocateMmio(0x1000, 2 ** 40), isVmonError(/beyond the identity-mapped/));
  throws(() => s.allocateMmio(0), isVmonError(/not a positive size/));
  throws(() => s.allocateMmio(0x4000_0000), isVmonError(/no MMIO window of .* is left/));
});

Deno.test("allocateMmio skips ranges on the bus; the in-kernel irqchip's ranges are held", async () => {
  const { host, test, platform } = await setUp();
  const s = platform.services;
  // A device registered by hand where the allocator would start.
  test.bus.registerMmio(0xd000_0000, 0x100, { read: () => 0, write: () => {} });
  assertEquals(s.allocateMmio(0x200, undefined, { owner: "virtio-rng" }), 0xd000_1000);
  throws(
    () => s.allocateMmio(0x1000, 0xfee0_0000, { owner: "virtio-blk" }),
    isVmonError(/"virtio-blk" at 0xfee00000-0xfee00fff: overlaps the in-kernel local APIC/),
  );
  assertEquals(host.occupant("PIO", 0x20, 8)?.owner, "the in-kernel PIC");
  assertEquals(host.occupant("MMIO", 0xfec0_0010, 4)?.owner, "the in-kernel IOAPIC");
  platform.dispose();
  assertEquals(host.occupant("PIO", 0x20, 8), undefined);
  const noChip = await setUp({ irqchip: false });
  assertEquals(noChip.host.occupant("PIO", 0x20, 8), undefined);
  assertEquals(noChip.platform.services.allocateMmio(0x1000, 0xfee0_0000), 0xfee0_0000);
});

Deno.test("allocateIrq hands out GSIs and drives the host port's irqchip", async () => {
  const { platform, port } = await setUp();
  const s = platform.services;
  const com1 = s.allocateIrq(4);
  assertEquals(com1.number, 4);
  throws(() => s.allocateIrq(4), isVmonError(/line 4: already in use/));
  throws(() => s.allocateIrq(24), isVmonError(/lines are 0-23/));
  assertEquals(s.allocateIrq().number, 5);
  assertEquals(s.allocateIrq().number, 6);
  com1.set(true);
  com1.pulse();
  assertEquals(port.lines, [[4, true], [4, true], [4, false]]);
  const noChip = await setUp({ irqchip: false });
  noChip.platform.services.allocateIrq(4).pulse(); // disconnected, but harmless
  assertEquals(noChip.port.lines, []);
});

Deno.test("boot loads the ELF and starts every vCPU in 64-bit ring 3", async () => {
  const { host, vcpus, platform } = await setUp({ cpus: 2, memorySize: 8 * MiB });
  host.memory.write(0x201000, new Uint8Array(0x2000).fill(0xaa));
  const code = new Uint8Array([0x90, 0xeb, 0xfe]);
  const path = await tempElf(makeElf({
    entry: 0x200001,
    segments: [
      { paddr: 0x200000, data: code },
      { paddr: 0x201000, data: new Uint8Array([1, 2]), memSize: 0x1800, flags: 6 },
    ],
  }));
  await platform.boot({ kernel: path, cmdline: "console=ttyS0 arg=0x2a" });
  assertEquals(host.memory.read(0x200000, 3), code);
  assertEquals(host.memory.read(0x201000, 3), new Uint8Array([1, 2, 0]));
  ok(host.memory.read(0x201002, 0x17fe).every((b) => b === 0), "bss zeroed");
  assertEquals(host.memory.readU8(0x202800), 0xaa);
  const cmdline = 0x203000;
  assertEquals(
    new TextDecoder().decode(host.memory.read(cmdline, 23)),
    "console=ttyS0 arg=0x2a\0",
  );
  for (const v of vcpus as RecordingVcpu[]) {
    assertEquals(v.regs.rip, 0x200001n);
    assertEquals(v.regs.rdi, BigInt(v.id));
    assertEquals(v.regs.rsi, 42n);
    assertEquals(v.regs.rdx, 2n);
    assertEquals(v.regs.rcx, 0x204000n);
    assertEquals(v.regs.r8, BigInt(8 * MiB - 2 * LAYOUT.guestStackSize));
    assertEquals(v.regs.r9, BigInt(cmdline));
    assertEquals(v.regs.rsp, BigInt(8 * MiB - v.id * LAYOUT.guestStackSize));
    assertEquals(v.regs.rflags, 0x3002n);
    const s = v.sregs;
    assertEquals([s.cs.selector, s.cs.dpl, s.cs.l, s.cs.db], [SELECTORS.userCode, 3, true, false]);
    assertEquals([s.ss.selector, s.ss.dpl], [SELECTORS.userData, 3]);
    assertEquals([s.tr.selector, s.tr.base], [SELECTORS.tss + 16 * v.id, BigInt(tssAddress(v.id))]);
    assertEquals([s.cr0 & 0x80000001n, s.cr4 & 0x20n, s.efer], [0x80000001n, 0x20n, 0x500n]);
    assertEquals(s.cr3, BigInt(LAYOUT.pml4));
    assertEquals(s.idt, { base: BigInt(LAYOUT.idt), limit: 4095 });
    assertEquals(s.apicBase, 0xfee00900n, "untouched registers are kept");
  }
  // The GDT's ring-3 code descriptor and the page tables are in place.
  assertEquals(host.memory.readU64(LAYOUT.gdt + SELECTORS.userCode - 3), 0x00affb000000ffffn);
  assertEquals(host.memory.readU64(LAYOUT.pml4) & ~0xfffn, BigInt(LAYOUT.pdpt));
});

Deno.test("boot in ring 0 with arg from the option, no command line", async () => {
  const { vcpus, platform } = await setUp({ ring: 0, arg: 7 });
  const path = await tempElf(makeElf({
    entry: 0x300000,
    segments: [{ paddr: 0x300000, data: new Uint8Array([0xf4]) }],
  }));
  await platform.boot({ kernel: path, cmdline: "arg=9" });
  const v = vcpus[0] as RecordingVcpu;
  assertEquals([v.regs.rsi, v.regs.r9 !== 0n], [7n, true]);
  assertEquals([v.sregs.cs.selector, v.sregs.cs.dpl, v.sregs.ss.dpl], [SELECTORS.kernelCode, 0, 0]);
});

Deno.test("boot refuses missing, foreign and misplaced images", async () => {
  const { platform } = await setUp({ memorySize: 8 * MiB });
  await rejects(async () => await platform.boot({}), isVmonError(/no kernel given/));
  await rejects(
    async () => await platform.boot({ kernel: "/nonexistent/guest.elf" }),
    isVmonError(/nonexistent\/guest\.elf/),
  );
  await rejects(
    async () => await platform.boot({ kernel: await tempElf(new TextEncoder().encode("hello")) }),
    isVmonError(/guest\.elf": not an ELF file/),
  );
  const code = new Uint8Array([0xf4]);
  await rejects(
    async () =>
      await platform.boot({
        kernel: await tempElf(
          makeElf({ entry: 0x100000, segments: [{ paddr: 0x100000, data: code }] }),
        ),
      }),
    isVmonError(
      /segment at 0x100000 \(0x1 bytes\) is outside the RAM the image may use, 0x200000-/,
    ),
  );
  await rejects(
    async () =>
      await platform.boot({
        kernel: await tempElf(
          makeElf({ entry: 0x7f0000, segments: [{ paddr: 0x7f0000, data: code }] }),
        ),
      }),
    isVmonError(/outside the RAM the image may use/),
  );
  await rejects(
    async () =>
      await platform.boot({
        kernel: await tempElf(
          makeElf({ entry: 0x200000, segments: [{ paddr: 0x200000, data: code }] }),
        ),
        cmdline: "arg=-1",
      }),
    isVmonError(/invalid "arg=-1" on the command line/),
  );
});

Deno.test("the fault ports turn a guest exception report into a clear exit", async () => {
  const { test, platform } = await setUp();
  test.pioWrite(FAULT_PORT + 4, 4, 0x7); // error code: present, write, user
  test.pioWrite(FAULT_PORT + 8, 4, 0x200010);
  test.pioWrite(FAULT_PORT + 12, 4, 0);
  test.pioWrite(FAULT_PORT + 16, 4, 0x1000);
  test.pioWrite(FAULT_PORT + 20, 4, 0);
  test.pioWrite(FAULT_PORT + 24, 4, 0x23);
  assertEquals(test.exits.length, 0);
  test.pioWrite(FAULT_PORT, 4, 14);
  assertEquals(test.exits.length, 1);
  assertEquals(test.exits[0]!.status, 128 + 14);
  assertEquals(
    test.exits[0]!.reason,
    "Guest exception on vCPU 0: #PF page fault at rip 0x200010 in ring 3 " +
      "(write of 0x1000, protection violation, user mode)",
  );
  assertEquals(test.counters()["guest-exceptions"], 1);
  platform.dispose();
  const before = test.unclaimed;
  test.pioWrite(FAULT_PORT, 4, 6);
  assertEquals(test.unclaimed, before + 1, "dispose released the fault ports");
});

Deno.test("onExit reports a triple fault and leaves other exits to core", async () => {
  const { test, platform, vcpus } = await setUp();
  const vcpu = vcpus[0]!;
  const exit = { kind: ExitKind.Shutdown, pc: 0x200123n, detail: "" } as ExitRecord;
  assertEquals(platform.onExit?.(vcpu, exit), true);
  assertEquals(test.exits[0]?.reason, "Guest triple fault on vCPU 0 at rip 0x200123");
  assertEquals(platform.onExit?.(vcpu, { ...exit, kind: ExitKind.Halt }), false);
});

Deno.test("parseArg and describeFault", () => {
  assertEquals(parseArg(undefined), undefined);
  assertEquals(parseArg("quiet"), undefined);
  assertEquals(parseArg("arg=5 x arg=0x10"), 16);
  throws(() => parseArg("arg=five"), isVmonError(/invalid "arg=five"/));
  assertEquals(
    describeFault(2, 13, { error: 0x18, rip: 0x201000n, cr2: 0n, cs: 0x8 }),
    "Guest exception on vCPU 2: #GP general protection fault at rip 0x201000 in ring 0, " +
      "error code 0x18",
  );
  assertEquals(
    describeFault(0, 6, { error: 0, rip: 0x200000n, cr2: 0n, cs: 0x23 }),
    "Guest exception on vCPU 0: #UD invalid opcode at rip 0x200000 in ring 3",
  );
});

// Keep the type import used when the host port double's shape drifts from the contract.
const _port: HostPortInstance = recordingPort(false);

Deno.test("x86-64-direct adds a uart16550 at COM1 unless console=false", () => {
  const options = { ring: 3, arg: undefined, irqchip: true };
  assertEquals(plugin.defaultDevices?.({ ...options, console: true }), [{ use: "uart16550" }]);
  assertEquals(plugin.defaultDevices?.({ ...options, console: false }), []);
});
