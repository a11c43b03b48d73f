import { ok, strictEqual, throws } from "node:assert/strict";
import { PAGING_COUNTER_NAMES, PagingTrapCode } from "../../../core/api/mod.ts";
import type { ExitRecord, PagingInstance, Vcpu } from "../../../core/api/mod.ts";
import { VmonError } from "../../../core/errors.ts";
import { createTestPagingHost as fakeHost } from "../../../testing/mod.ts";
import shadow from "./mod.ts";

const BASE = 0x8000_0000;
const pte = (pa: number, flags: number) => (BigInt(pa / 4096) << 10n) | BigInt(flags);
const OPTS = { "allow-mmio": true, "on-invalid": "unshadow" };

Deno.test("shadow refuses a host port without its mechanisms, naming the missing one", () => {
  const { host } = fakeHost([], { hostport: "kvm" });
  throws(() => shadow.setup(host, OPTS), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "shadow" needs the "shadow-tables" mechanism, which host port "kvm" does not have',
    );
    return true;
  });
  const old = fakeHost(undefined, { version: 2 });
  throws(() => shadow.setup(old.host, OPTS), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "shadow" needs version 1 of the paging mechanisms, host port "rv64" has version 2',
    );
    return true;
  });
});

Deno.test("shadow reports every paging counter, zero before any trap", () => {
  const { host } = fakeHost();
  const inst = shadow.setup(host, OPTS) as PagingInstance;
  const s = inst.stats();
  for (const name of PAGING_COUNTER_NAMES) strictEqual(s[name], 0, name);
  inst.dispose();
});

/** A pt-write exit of `size` bytes of `value` at `gpa`. */
function ptWrite(gpa: number, size: number, value: bigint): ExitRecord {
  const data = new DataView(new ArrayBuffer(8));
  data.setBigUint64(0, value, true);
  return {
    kind: 11,
    code: PagingTrapCode.PtWrite,
    address: gpa,
    size,
    data,
  } as unknown as ExitRecord;
}

const VCPU = { id: 0 } as Vcpu;

Deno.test("shadow: a valid PTE store is approved, an invalid one unshadows the page", () => {
  const f = fakeHost();
  const inst = shadow.setup(f.host, OPTS) as PagingInstance;
  const table = BASE + 0x3000;
  f.ptPages.add(table);
  inst.onTrap!(VCPU, ptWrite(table + 8, 8, pte(BASE + 0x4000, 0xc7)));
  // a 4-byte store into the high half: the merged entry maps beyond RAM
  f.memory.writeU64(table + 16, pte(BASE + 0x5000, 0xc7));
  inst.onTrap!(VCPU, ptWrite(table + 20, 4, 0x100n));
  strictEqual(f.approvals.length, 1);
  strictEqual(f.approvals[0]!.approve, true);
  strictEqual(f.invalidated.at(-1), table, "the whole page left the shadow");
  ok(!f.ptPages.has(table));
  const s = inst.stats();
  strictEqual(s.traps, 2);
  strictEqual(s["traps.pt-write"], 2);
  strictEqual(s.validations, 2);
  strictEqual(s["updates-applied"], 1);
  strictEqual(s.rejections, 1);
});

Deno.test("shadow: on-invalid=drop skips the invalid store", () => {
  const f = fakeHost();
  const inst = shadow.setup(f.host, { ...OPTS, "on-invalid": "drop" }) as PagingInstance;
  f.ptPages.add(BASE);
  inst.onTrap!(VCPU, ptWrite(BASE, 8, pte(0x4000_0000_0000, 0xc7)));
  strictEqual(f.approvals.length, 1);
  strictEqual(f.approvals[0]!.approve, false);
  ok(f.ptPages.has(BASE));
  strictEqual(inst.stats().rejections, 1);
});
