import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { PAGING_COUNTER_NAMES, PagingTrapCode } from "../../../core/api/mod.ts";
import type { ExitRecord, PagingInstance, Vcpu } from "../../../core/api/mod.ts";
import { VmonError } from "../../../core/errors.ts";
import { createTestPagingHost as fakeHost } from "../../../testing/mod.ts";
import queued, { PV_EID, PvFunction, SbiError } from "./mod.ts";

const BASE = 0x8000_0000;
const pte = (pa: number, flags: number) => (BigInt(pa / 4096) << 10n) | BigInt(flags);

Deno.test("queued refuses a host port without its mechanisms, naming the missing one", () => {
  const { host } = fakeHost([], { hostport: "kvm" });
  throws(() => queued.setup(host, queued.options === undefined ? {} as never : defaults()), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "queued" needs the "shadow-tables" mechanism, which host port "kvm" does not have',
    );
    return true;
  });
  // shadow tables without the page queue: the queue is named
  const { host: partial } = fakeHost(["shadow-tables", "counters", "paging-exits"]);
  throws(() => queued.setup(partial, defaults()), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "queued" needs the "page-queue" mechanism, which host port "rv64" does not have',
    );
    return true;
  });
});

Deno.test("queued needs the port's queue diff (a version-1 port may lack it): named when missing", () => {
  const { host } = fakeHost(["shadow-tables", "page-queue", "paging-exits", "counters"]);
  throws(() => queued.setup(host, defaults()), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "queued" needs the "queue-diff" mechanism, which host port "rv64" does not have',
    );
    return true;
  });
});

function defaults() {
  return { "allow-mmio": true, "on-invalid": "unshadow", "max-batch": 16, paravirtual: true };
}

Deno.test("queued: the paravirtual update call validates, applies and reports each update", () => {
  const f = fakeHost();
  const inst = queued.setup(f.host, defaults()) as PagingInstance;
  const call = f.hypercalls.get(PV_EID);
  ok(call !== undefined);
  const list = BASE + 0x1000, status = BASE + 0x2000, table = BASE + 0x3000;
  f.ptPages.add(table);
  const updates: [number, bigint][] = [
    [table, pte(BASE + 0x4000, 0xc7)], // valid RW leaf in RAM
    [table + 8, pte(0x1000_0000_0000, 0xc7)], // leaf beyond RAM
    [table + 16, pte(0x2000_0000_0000, 0x1)], // table pointer outside RAM
    [table + 24, pte(table, 0xc7)], // writable leaf onto a page-table page
    [table + 36, pte(BASE, 0xc3)], // misaligned ptr
    [0x10, pte(BASE, 0xc3)], // ptr not RAM
    [table + 48, pte(0x1000_0000, 0xc7)], // device window below RAM
    [table + 56, 0n], // clearing an entry
  ];
  const mem = f.host.memory;
  updates.forEach(([p, v], i) => {
    mem.writeU64(list + 16 * i, BigInt(p));
    mem.writeU64(list + 16 * i + 8, v);
  });
  const r = call({
    nr: PV_EID,
    fid: PvFunction.MmuUpdate,
    args: [BigInt(list), BigInt(updates.length), BigInt(status), 0n, 0n, 0n],
    vcpu: 0,
  });
  deepStrictEqual(r, { error: 0, value: 3 });
  const statuses = updates.map((_, i) => BigInt.asIntN(64, mem.readU64(status + 8 * i)));
  deepStrictEqual(statuses, [0n, -3n, -3n, -3n, -5n, -5n, 0n, 0n]);
  strictEqual(mem.readU64(table), updates[0]![1]);
  strictEqual(mem.readU64(table + 8), 0n, "a rejected update is not written");
  deepStrictEqual(f.invalidated, [table, table + 48, table + 56]);
  const s = inst.stats();
  strictEqual(s["traps.hypercall"], 1);
  strictEqual(s.traps, 1);
  strictEqual(s.batches, 1);
  strictEqual(s.validations, 8);
  strictEqual(s["updates-applied"], 3);
  strictEqual(s.rejections, 5);
  inst.dispose();
  ok(!f.hypercalls.has(PV_EID), "the call is unregistered on dispose");
});

Deno.test("queued: bad calls fail as a whole with SBI errors", () => {
  const f = fakeHost();
  queued.setup(f.host, defaults());
  const call = f.hypercalls.get(PV_EID)!;
  const go = (fid: number, ...a: number[]) =>
    call({ nr: PV_EID, fid, args: [...a.map(BigInt), 0n, 0n, 0n, 0n].slice(0, 6), vcpu: 0 });
  deepStrictEqual(go(PvFunction.MaxBatch), { error: 0, value: 16 });
  deepStrictEqual(go(PvFunction.MmuUpdate, BASE, 17, 0), {
    error: SbiError.InvalidParam,
    value: 0,
  });
  deepStrictEqual(go(PvFunction.MmuUpdate, 0x1000, 2, 0), {
    error: SbiError.InvalidAddress,
    value: 0,
  });
  deepStrictEqual(go(PvFunction.MmuUpdate, BASE + 0xfff8, 2, 0), {
    error: SbiError.InvalidAddress,
    value: 0,
  });
  deepStrictEqual(go(PvFunction.MmuUpdate, BASE, 1, 0x20), {
    error: SbiError.InvalidAddress,
    value: 0,
  });
  deepStrictEqual(go(PvFunction.MmuUpdate, BASE, 0, 0), { error: 0, value: 0 });
  deepStrictEqual(go(7), { error: SbiError.NotSupported, value: 0 });
});

const VCPU = { id: 0 } as Vcpu;
const exit = (code: number, address = 0) =>
  ({
    kind: 11,
    code,
    address,
    size: 8,
    data: new DataView(new ArrayBuffer(8)),
  }) as unknown as ExitRecord;

Deno.test("queued: one trap per page, the queue is validated and applied at the next flush", () => {
  const f = fakeHost();
  const inst = queued.setup(f.host, { ...defaults(), "on-invalid": "revert" }) as PagingInstance;
  deepStrictEqual(f.state.exits.get(0), { sfence: true, satp: true, whileQueued: true });
  const table = BASE + 0x3000;
  f.ptPages.add(table);
  f.memory.writeU64(table + 8, pte(BASE + 0x4000, 0xc3));
  inst.onTrap!(VCPU, exit(PagingTrapCode.PtWrite, table + 8));
  deepStrictEqual(f.host.hostport.paging!.queuedPages!(), [table]);
  // the guest now writes the unhooked page freely: one valid change, one invalid one
  f.memory.writeU64(table + 8, pte(BASE + 0x5000, 0x07));
  f.memory.writeU64(table + 16, pte(0x4000_0000_0000, 0xc7));
  inst.onTrap!(VCPU, exit(PagingTrapCode.Sfence));
  // the page that changed stays unhooked, snapshotted as it is now
  deepStrictEqual(f.host.hostport.paging!.queuedPages!(), [table], "the changed page stays queued");
  strictEqual(f.memory.readU64(table + 8), pte(BASE + 0x5000, 0x07));
  strictEqual(f.memory.readU64(table + 16), 0n, "the invalid entry was reverted");
  deepStrictEqual(f.invalidated, [table + 8, table + 16]);
  deepStrictEqual(f.host.hostport.paging!.snapshot!(0), f.memory.read(table, 4096));
  // A and D bits set since (the port's walker) are no change; a later real change is
  f.memory.writeU64(table + 8, pte(BASE + 0x5000, 0xc7));
  f.memory.writeU64(table + 24, pte(BASE + 0x6000, 0xc3));
  inst.onTrap!(VCPU, exit(PagingTrapCode.Sfence));
  deepStrictEqual(f.invalidated, [table + 8, table + 16, table + 24]);
  const s = inst.stats();
  for (const name of PAGING_COUNTER_NAMES) ok(name in s, name);
  strictEqual(s.traps, 3);
  strictEqual(s["traps.pt-write"], 1);
  strictEqual(s["traps.flush"], 2);
  strictEqual(s.batches, 2);
  strictEqual(s.validations, 3);
  strictEqual(s["updates-applied"], 2);
  strictEqual(s.rejections, 1);
  inst.dispose();
});

Deno.test("queued: by default an invalid entry keeps the guest's data and unshadows the page", () => {
  const f = fakeHost();
  const inst = queued.setup(f.host, defaults()) as PagingInstance;
  const table = BASE + 0x3000;
  f.ptPages.add(table);
  inst.onTrap!(VCPU, exit(PagingTrapCode.PtWrite, table));
  f.memory.writeU64(table, 0xdead_beefn); // data in a freed table: bit 0 set, maps beyond RAM
  inst.onTrap!(VCPU, exit(PagingTrapCode.Satp));
  strictEqual(f.memory.readU64(table), 0xdead_beefn);
  ok(!f.ptPages.has(table), "the page left the shadow");
  strictEqual(inst.stats()["traps.satp"], 1);
  strictEqual(inst.stats().rejections, 1);
  inst.dispose();
});
