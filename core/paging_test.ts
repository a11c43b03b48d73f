import { ok, strictEqual, throws } from "node:assert/strict";
import { VmonError } from "./errors.ts";
import {
  checkPte,
  isWritableLeaf,
  leafRanges,
  mergeBytes,
  ptePage,
  requirePagingMechanisms,
} from "./paging.ts";
import { createTestPagingHost } from "../testing/mod.ts";

const BASE = 0x8000_0000;
const pte = (pa: number, flags: number) => (BigInt(pa / 4096) << 10n) | BigInt(flags);

Deno.test("paging validation: RAM, device window, table pointers", () => {
  const { memory } = createTestPagingHost(["shadow"]);
  const rules = { memory, ranges: leafRanges(memory, true) };
  strictEqual(checkPte(0n, rules), undefined);
  strictEqual(checkPte(pte(BASE + 0x1000, 0xc7), rules), undefined);
  strictEqual(checkPte(pte(0x1000_0000, 0xc7), rules), undefined, "device window");
  ok(checkPte(pte(0x1000_0000, 0xc7), { memory, ranges: leafRanges(memory, false) }));
  ok(checkPte(pte(BASE + 0x10000, 0xc7), rules), "beyond RAM");
  strictEqual(checkPte(pte(BASE, 0x1), rules), undefined);
  ok(checkPte(pte(0x1000_0000, 0x1), rules), "table outside RAM");
  ok(isWritableLeaf(pte(BASE, 0xc7)));
  ok(!isWritableLeaf(pte(BASE, 0xc3)));
  ok(!isWritableLeaf(pte(BASE, 0x6)), "not valid");
  strictEqual(ptePage(pte(BASE + 0x5000, 0xc7)), BASE + 0x5000);
  strictEqual(
    mergeBytes(0x1122334455667788n, { offset: 2, size: 2, value: 0xaabbn }),
    0x11223344aabb7788n,
  );
  strictEqual(mergeBytes(0n, { offset: 0, size: 8, value: 0xffffn }), 0xffffn);
});

Deno.test("paging: a host port that does not list the strategy is refused clearly", () => {
  const { host } = createTestPagingHost(["wired"], { hostport: "kvm", mechanisms: false });
  throws(() => requirePagingMechanisms(host, "shadow"), (e) => {
    ok(e instanceof VmonError);
    strictEqual(
      e.message,
      'Paging strategy "shadow" is not supported by host port "kvm": it supports wired',
    );
    return true;
  });
  const listed = createTestPagingHost(["wired", "shadow"]);
  ok(requirePagingMechanisms(listed.host, "shadow") === listed.host.hostport.paging);
});
