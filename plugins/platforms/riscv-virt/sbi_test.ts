import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import type { HypercallResult } from "../../../core/api/mod.ts";
import { createTestDeviceHost } from "../../../testing/mod.ts";
import { RecordingHart } from "./_test_support.ts";
import {
  FAILURE_STATUS,
  HartState,
  Sbi,
  SBI_IMPL_ID,
  SBI_SPEC_VERSION,
  SbiError,
  SbiExtension,
  translate,
} from "./sbi.ts";

const RAM = 0x80000000;
const U64_MAX = 0xffffffffffffffffn;

function setup(harts = 4) {
  const test = createTestDeviceHost({
    memoryBase: RAM,
    memorySize: 1 << 20,
    hasPio: false,
    arch: "riscv64",
  });
  const hs = [...Array(harts).keys()].map((i) => new RecordingHart(i));
  hs.forEach((h, i) => h.setStarted(i === 0));
  hs.forEach((h) => h.calls.length = 0);
  const wakes: number[] = [];
  const sbi = new Sbi({
    harts: () => hs,
    memory: test.memory,
    console: test.console,
    requestExit: (s, r) => test.requestExit(s, r),
    wake: (id) => wakes.push(id),
    log: test.log,
    metrics: test.metrics,
  });
  const call = (
    nr: number,
    fid: number,
    args: readonly bigint[] = [],
    vcpu = 0,
  ): HypercallResult => {
    const full = [...args];
    while (full.length < 6) full.push(0n);
    return sbi.handle({ nr, fid, args: full, vcpu });
  };
  return { test, hs, wakes, sbi, call };
}

const r = (error: number, value: number | bigint = 0) => ({ error, value });
const norm = (x: HypercallResult) => ({ error: x.error, value: x.value });

Deno.test("sbi: every extension is registered on the bus", () => {
  const { test, sbi } = setup(1);
  const regs = sbi.register(test.bus);
  strictEqual(regs.length, 7 + 9);
  deepStrictEqual(test.hypercall(SbiExtension.Base, 0), { error: 0, value: BigInt(2 << 24) });
  strictEqual(test.hypercall(0x12345678, 0).error, SbiError.NotSupported);
  for (const reg of regs) reg.unregister();
  strictEqual(test.hypercall(SbiExtension.Base, 0).error, SbiError.NotSupported);
});

Deno.test("sbi: BASE", () => {
  const { call, test } = setup(1);
  deepStrictEqual(norm(call(0x10, 0)), r(0, SBI_SPEC_VERSION));
  deepStrictEqual(norm(call(0x10, 1)), r(0, SBI_IMPL_ID));
  strictEqual(call(0x10, 2).error, 0);
  for (const eid of Object.values(SbiExtension)) {
    deepStrictEqual(norm(call(0x10, 3, [BigInt(eid)])), r(0, 1), `probe ${eid}`);
  }
  deepStrictEqual(norm(call(0x10, 3, [0x01n])), r(0, 1)); // legacy putchar
  deepStrictEqual(norm(call(0x10, 3, [0x09n])), r(0, 0));
  deepStrictEqual(norm(call(0x10, 3, [0x4e41434cn])), r(0, 0)); // NACL: not here
  deepStrictEqual(norm(call(0x10, 3, [U64_MAX])), r(0, 0));
  for (const fid of [4, 5, 6]) deepStrictEqual(norm(call(0x10, fid)), r(0, 0));
  strictEqual(call(0x10, 7).error, SbiError.NotSupported);
  strictEqual(test.counters()["sbi_base"], 18);
});

Deno.test("sbi: TIME set_timer programs the calling hart", () => {
  const { call, hs } = setup(2);
  deepStrictEqual(norm(call(SbiExtension.Time, 0, [123456789n], 1)), r(0));
  deepStrictEqual(hs[1]!.callsOf("setTimer"), [{ op: "setTimer", deadline: 123456789n }]);
  deepStrictEqual(hs[0]!.callsOf("setTimer"), []);
  deepStrictEqual(norm(call(SbiExtension.Time, 0, [U64_MAX])), r(0));
  strictEqual(hs[0]!.timer, U64_MAX);
  strictEqual(call(SbiExtension.Time, 1).error, SbiError.NotSupported);
  strictEqual(call(0x00, 0, [77n], 1).error, 0); // legacy set_timer
  strictEqual(hs[1]!.timer, 77n);
});

Deno.test("sbi: IPI with masks, base -1, and hostile masks", () => {
  const { call, hs, wakes } = setup(4);
  deepStrictEqual(norm(call(SbiExtension.Ipi, 0, [0b101n, 0n])), r(0));
  deepStrictEqual([...hs.map((h) => h.pending.has("ssip"))], [true, false, true, false]);
  deepStrictEqual(wakes, [0, 2]);
  deepStrictEqual(norm(call(SbiExtension.Ipi, 0, [0b1n, 3n])), r(0));
  strictEqual(hs[3]!.pending.has("ssip"), true);
  hs.forEach((h) => h.pending.clear());
  deepStrictEqual(norm(call(SbiExtension.Ipi, 0, [0n, U64_MAX])), r(0)); // all harts
  ok(hs.every((h) => h.pending.has("ssip")));
  hs.forEach((h) => h.pending.clear());
  wakes.length = 0;
  // Any invalid hart in the mask: nothing is sent.
  for (
    const [mask, base] of [[0b11n, 3n], [1n << 63n, 0n], [1n, 4n], [1n, 1n << 40n], [
      1n,
      U64_MAX - 1n,
    ]]
  ) {
    strictEqual(call(SbiExtension.Ipi, 0, [mask!, base!]).error, SbiError.InvalidParam);
  }
  ok(hs.every((h) => !h.pending.has("ssip")));
  deepStrictEqual(wakes, []);
  deepStrictEqual(norm(call(SbiExtension.Ipi, 0, [0n, 0n])), r(0)); // empty mask
  strictEqual(call(SbiExtension.Ipi, 1).error, SbiError.NotSupported);
});

Deno.test("sbi: RFENCE flushes the target harts", () => {
  const { call, hs } = setup(3);
  const flushes = () => hs.map((h) => h.callsOf("flushTlb").map(({ op: _, ...rest }) => rest));
  const clear = () => hs.forEach((h) => h.calls.length = 0);
  deepStrictEqual(norm(call(SbiExtension.Rfence, 0, [0b110n, 0n])), r(0)); // fence.i
  deepStrictEqual(flushes(), [[], [{}], [{}]]);
  clear();
  // sfence.vma of two pages on hart 0
  call(SbiExtension.Rfence, 1, [1n, 0n, 0x10000800n, 0x1000n]);
  deepStrictEqual(flushes(), [[{ va: 0x10000000n }, { va: 0x10001000n }], [], []]);
  clear();
  // the whole address space: start = size = 0, or size = -1, or a huge range
  call(SbiExtension.Rfence, 1, [1n, 0n, 0n, 0n]);
  call(SbiExtension.Rfence, 1, [1n, 0n, 0x1000n, U64_MAX]);
  call(SbiExtension.Rfence, 1, [1n, 0n, U64_MAX - 0x1000n, 0x100000n]);
  deepStrictEqual(flushes(), [[{}, {}, {}], [], []]);
  clear();
  // asid variant
  call(SbiExtension.Rfence, 2, [0n, U64_MAX, 0x4000n, 0x1000n, 7n]);
  deepStrictEqual(flushes(), [[{ asid: 7, va: 0x4000n }], [{ asid: 7, va: 0x4000n }], [{
    asid: 7,
    va: 0x4000n,
  }]]);
  clear();
  call(SbiExtension.Rfence, 2, [1n, 0n, 0n, 0n, 9n]);
  deepStrictEqual(flushes(), [[{ asid: 9 }], [], []]);
  clear();
  strictEqual(call(SbiExtension.Rfence, 2, [1n, 0n, 0n, 0n, 1n << 16n]).error, -3);
  strictEqual(call(SbiExtension.Rfence, 1, [1n << 5n, 0n]).error, SbiError.InvalidParam);
  strictEqual(call(SbiExtension.Rfence, 0, [1n, 3n]).error, SbiError.InvalidParam);
  for (const fid of [3, 4, 5, 6, 7]) {
    strictEqual(call(SbiExtension.Rfence, fid, [1n, 0n]).error, SbiError.NotSupported);
  }
  deepStrictEqual(flushes(), [[], [], []]);
});

Deno.test("sbi: HSM start, status, stop, suspend", () => {
  const { call, hs, wakes } = setup(2);
  const H = SbiExtension.Hsm;
  deepStrictEqual(norm(call(H, 2, [0n])), r(0, HartState.Started));
  deepStrictEqual(norm(call(H, 2, [1n])), r(0, HartState.Stopped));
  strictEqual(call(H, 2, [2n]).error, SbiError.InvalidParam);
  strictEqual(call(H, 2, [U64_MAX]).error, SbiError.InvalidParam);
  // Bad start addresses: outside RAM, beyond 2^53, in MMIO.
  for (const addr of [0n, 0x10000000n, BigInt(RAM + (1 << 20)), U64_MAX]) {
    strictEqual(call(H, 0, [1n, addr, 0n]).error, SbiError.InvalidAddress, `addr ${addr}`);
  }
  strictEqual(call(H, 0, [5n, BigInt(RAM), 0n]).error, SbiError.InvalidParam);
  strictEqual(call(H, 0, [0n, BigInt(RAM), 0n]).error, SbiError.AlreadyAvailable);
  strictEqual(hs[1]!.started, false);
  hs[1]!.csrs.set(0x100, 0x22n); // sstatus with SIE set
  hs[1]!.csrs.set(0x180, 0x8000000000012345n);
  deepStrictEqual(norm(call(H, 0, [1n, BigInt(RAM + 0x2000), 0xabcdn])), r(0));
  const h1 = hs[1]!;
  strictEqual(h1.started, true);
  strictEqual(h1.pc, BigInt(RAM + 0x2000));
  strictEqual(h1.privilege, "supervisor");
  strictEqual(h1.getCsr(0x180), 0n);
  strictEqual(h1.getCsr(0x100), 0x20n);
  strictEqual(h1.regs.x10, 1n);
  strictEqual(h1.regs.x11, 0xabcdn);
  ok(h1.callsOf("flushTlb").length > 0);
  deepStrictEqual(wakes, [1]);
  deepStrictEqual(norm(call(H, 2, [1n])), r(0, HartState.Started));
  strictEqual(call(H, 0, [1n, BigInt(RAM), 0n]).error, SbiError.AlreadyAvailable);
  // hart 1 stops itself
  deepStrictEqual(norm(call(H, 1, [], 1)), r(0));
  strictEqual(h1.started, false);
  deepStrictEqual(norm(call(H, 2, [1n])), r(0, HartState.Stopped));
  // suspend: default retentive returns at once; non-retentive is not offered; others invalid
  deepStrictEqual(norm(call(H, 3, [0n, 0n, 0n])), r(0));
  strictEqual(call(H, 3, [0x80000000n, BigInt(RAM), 0n]).error, SbiError.NotSupported);
  strictEqual(call(H, 3, [1n]).error, SbiError.InvalidParam);
  strictEqual(call(H, 3, [0x10000000n]).error, SbiError.InvalidParam);
  strictEqual(call(H, 3, [U64_MAX]).error, SbiError.InvalidParam);
  strictEqual(call(H, 9).error, SbiError.NotSupported);
});

Deno.test("sbi: SRST shutdown, reboot, failure and bad types", () => {
  const { call, test } = setup(1);
  const S = SbiExtension.Srst;
  strictEqual(call(S, 0, [3n, 0n]).error, SbiError.InvalidParam);
  strictEqual(call(S, 0, [0xf0000000n, 0n]).error, SbiError.InvalidParam);
  strictEqual(call(S, 0, [0n, 2n]).error, SbiError.InvalidParam);
  strictEqual(call(S, 0, [0n, 0xe0000000n]).error, SbiError.InvalidParam);
  strictEqual(call(S, 1, [0n, 0n]).error, SbiError.NotSupported);
  deepStrictEqual(test.exits, []);
  deepStrictEqual(norm(call(S, 0, [0n, 0n])), r(0));
  deepStrictEqual(norm(call(S, 0, [1n, 0n])), r(0));
  deepStrictEqual(norm(call(S, 0, [2n, 0n])), r(0));
  deepStrictEqual(norm(call(S, 0, [0n, 1n])), r(0));
  deepStrictEqual(norm(call(S, 0, [2n, 1n])), r(0));
  deepStrictEqual(norm(call(0x08, 0)), r(0)); // legacy shutdown
  deepStrictEqual(test.exits, [
    { status: 0, reason: "poweroff" },
    { status: 0, reason: "reset" },
    { status: 0, reason: "reset" },
    { status: FAILURE_STATUS, reason: "poweroff: system failure" },
    { status: FAILURE_STATUS, reason: "reset: system failure" },
    { status: 0, reason: "poweroff" },
  ]);
});

Deno.test("sbi: DBCN write, read, write_byte with bounds checks", () => {
  const { call, test } = setup(1);
  const D = SbiExtension.Dbcn;
  test.memory.write(RAM + 0x100, new TextEncoder().encode("hello, console"));
  deepStrictEqual(norm(call(D, 0, [5n, BigInt(RAM + 0x100), 0n])), r(0, 5));
  deepStrictEqual(norm(call(D, 2, [0x121n])), r(0)); // low byte "!"
  strictEqual(test.outputText(), "hello!");
  // Out-of-range buffers: below RAM, crossing the end, high half set, absurd lengths.
  const end = BigInt(RAM + (1 << 20));
  for (
    const args of [
      [4n, 0x1000n, 0n],
      [16n, end - 8n, 0n],
      [1n, end, 0n],
      [1n, BigInt(RAM), 1n],
      [U64_MAX, BigInt(RAM), 0n],
      [1n << 40n, BigInt(RAM), 0n],
      [1n, U64_MAX, 0n],
    ]
  ) {
    strictEqual(call(D, 0, args).error, SbiError.InvalidParam, `write ${args}`);
    strictEqual(call(D, 1, args).error, SbiError.InvalidParam, `read ${args}`);
  }
  strictEqual(test.outputText(), "hello!");
  // A large write in RAM is accepted in part (the guest is told how many bytes).
  const big = call(D, 0, [1n << 20n, BigInt(RAM), 0n]);
  deepStrictEqual(norm(big), r(0, 65536));
  strictEqual(test.output.length, 6 + 65536);
  // Read: input arrives after the first read subscribes.
  deepStrictEqual(norm(call(D, 1, [8n, BigInt(RAM + 0x200), 0n])), r(0, 0));
  test.input("abc");
  deepStrictEqual(norm(call(D, 1, [2n, BigInt(RAM + 0x200), 0n])), r(0, 2));
  deepStrictEqual(norm(call(D, 1, [8n, BigInt(RAM + 0x202), 0n])), r(0, 1));
  strictEqual(new TextDecoder().decode(test.memory.read(RAM + 0x200, 3)), "abc");
  strictEqual(call(D, 3).error, SbiError.NotSupported);
});

Deno.test("sbi: DBCN read is denied when another device owns the console input", () => {
  const { call, test } = setup(1);
  ok(test.console.onInput(() => {}));
  strictEqual(call(SbiExtension.Dbcn, 1, [1n, BigInt(RAM), 0n]).error, SbiError.Denied);
  strictEqual(call(0x02, 0).error, -1); // legacy getchar: no input
});

Deno.test("sbi: legacy console, IPI and fences through a guest hart mask pointer", () => {
  const { call, hs, test } = setup(3);
  strictEqual(call(0x01, 0, [0x41n]).error, 0);
  strictEqual(call(0x02, 0).error, -1);
  test.input("z");
  strictEqual(call(0x02, 0).error, 0x7a);
  strictEqual(call(0x02, 0).error, -1);
  strictEqual(test.outputText(), "A");
  // satp = 0 (bare): the pointer is physical
  test.memory.writeU64(RAM + 0x800, 0b110n);
  strictEqual(call(0x04, 0, [BigInt(RAM + 0x800)]).error, 0);
  deepStrictEqual(hs.map((h) => h.pending.has("ssip")), [false, true, true]);
  strictEqual(call(0x03, 0, [], 1).error, 0); // clear_ipi on hart 1
  strictEqual(hs[1]!.pending.has("ssip"), false);
  // NULL means every hart
  strictEqual(call(0x05, 0, [0n]).error, 0);
  ok(hs.every((h) => h.callsOf("flushTlb").length === 1));
  // invalid harts and unreadable pointers
  test.memory.writeU64(RAM + 0x808, 0b1000n);
  strictEqual(call(0x04, 0, [BigInt(RAM + 0x808)]).error, SbiError.InvalidParam);
  strictEqual(call(0x04, 0, [0x1000n]).error, SbiError.InvalidAddress);
  strictEqual(call(0x06, 0, [U64_MAX, 0n, 0n]).error, SbiError.InvalidAddress);
  strictEqual(call(0x07, 0, [BigInt(RAM + (1 << 20) - 4)]).error, SbiError.InvalidAddress);
  strictEqual(call(0x07, 0, [BigInt(RAM + 0x800), 0x5000n, 0x10n, 3n]).error, 0);
  deepStrictEqual(hs[1]!.callsOf("flushTlb").at(-1), { op: "flushTlb", asid: 3, va: 0x5000n });
});

Deno.test("sbi: translate walks Sv39 and Sv48 tables, refusing bad entries", () => {
  const test = createTestDeviceHost({ memoryBase: RAM, memorySize: 1 << 20, hasPio: false });
  const m = test.memory;
  const root = RAM + 0x10000, mid = RAM + 0x11000, leaf = RAM + 0x12000;
  const pte = (pa: number, flags: bigint) => ((BigInt(pa) >> 12n) << 10n) | flags;
  const V = 1n, R = 2n, W = 4n;
  // Sv39: VA 0xffffffc000201234 -> vpn2 = 0x100, vpn1 = 1, vpn0 = 1
  const va = 0xffffffc000201234n;
  m.writeU64(root + 0x100 * 8, pte(mid, V));
  m.writeU64(mid + 1 * 8, pte(leaf, V));
  m.writeU64(leaf + 1 * 8, pte(RAM + 0x40000, V | R | W));
  const satp39 = (8n << 60n) | (BigInt(root) >> 12n);
  strictEqual(translate(m, satp39, va), RAM + 0x40234);
  strictEqual(translate(m, 0n, BigInt(RAM + 5)), RAM + 5); // bare
  strictEqual(translate(m, 0n, 0x1000n), undefined); // bare, outside RAM
  strictEqual(translate(m, satp39, 0x0000004000201234n), undefined); // not sign-extended
  strictEqual(translate(m, satp39, va + 0x1000n), undefined); // vpn0 = 2: invalid
  // A 2 MiB megapage at vpn1 = 2, misaligned ppn -> refused; aligned -> offset kept.
  m.writeU64(mid + 2 * 8, pte(RAM + 0x1000, V | R));
  strictEqual(translate(m, satp39, 0xffffffc000400000n), undefined);
  m.writeU64(mid + 2 * 8, pte(RAM, V | R));
  strictEqual(translate(m, satp39, 0xffffffc000412345n), RAM + 0x12345);
  // W without R is reserved
  m.writeU64(leaf + 3 * 8, pte(RAM, V | W));
  strictEqual(translate(m, satp39, 0xffffffc000203000n), undefined);
  // A table pointer outside RAM
  m.writeU64(root + 0x101 * 8, pte(0x1000, V));
  strictEqual(translate(m, satp39, 0xffffffc040000000n), undefined);
  // Sv48: one more level on top
  const top = RAM + 0x13000;
  m.writeU64(top + 0x1ff * 8, pte(root, V)); // vpn3 = 0x1ff for 0xffffff...
  const satp48 = (9n << 60n) | (BigInt(top) >> 12n);
  strictEqual(translate(m, satp48, 0xffffffc000201234n), RAM + 0x40234);
  strictEqual(translate(m, (5n << 60n) | 1n, va), undefined); // unknown mode
});
