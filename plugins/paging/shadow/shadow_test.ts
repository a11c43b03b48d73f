import { ok, strictEqual, throws } from "node:assert/strict";
import { PAGING_COUNTER_NAMES } from "../../../core/api.ts";
import type { PagingInstance } from "../../../core/api.ts";
import { VmonError } from "../../../core/errors.ts";
import shadow from "./mod.ts";
import { checkPte, leafRanges, mergeBytes } from "./validate.ts";
import { fakeHost } from "./_fake_host.ts";

const BASE = 0x8000_0000;
const pte = (pa: number, flags: number) => (BigInt(pa / 4096) << 10n) | BigInt(flags);
const OPTS = { "allow-mmio": true, "on-invalid": "unshadow" };

Deno.test("shadow refuses a host port that does not list it", () => {
  const { host } = fakeHost(["wired"], { hostport: "kvm", mechanisms: false });
  throws(() => shadow.setup(host, OPTS), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "shadow" is not supported by host port "kvm": it supports wired',
    );
    return true;
  });
});

Deno.test("shadow reports every paging counter, zero before any trap", () => {
  const { host } = fakeHost(["wired", "shadow"]);
  const inst = shadow.setup(host, OPTS) as PagingInstance;
  const s = inst.stats();
  for (const name of PAGING_COUNTER_NAMES) strictEqual(s[name], 0, name);
  inst.dispose();
});

Deno.test("shadow validation: RAM, device window, table pointers", () => {
  const { host } = fakeHost(["shadow"]);
  const ranges = leafRanges(host.memory, true);
  strictEqual(checkPte(0n, host.memory, ranges), undefined);
  strictEqual(checkPte(pte(BASE + 0x1000, 0xc7), host.memory, ranges), undefined);
  strictEqual(checkPte(pte(0x1000_0000, 0xc7), host.memory, ranges), undefined);
  ok(checkPte(pte(0x1000_0000, 0xc7), host.memory, leafRanges(host.memory, false)));
  ok(checkPte(pte(BASE + 0x10000, 0xc7), host.memory, ranges), "beyond RAM");
  strictEqual(checkPte(pte(BASE, 0x1), host.memory, ranges), undefined);
  ok(checkPte(pte(0x1000_0000, 0x1), host.memory, ranges), "table outside RAM");
  strictEqual(mergeBytes(0x1122334455667788n, 2, 2, 0xaabbn), 0x11223344aabb7788n);
  strictEqual(mergeBytes(0n, 0, 8, 0xffffn), 0xffffn);
});
