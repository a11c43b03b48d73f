import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import {
  PAGING_MECHANISM_NAMES,
  PAGING_MECHANISMS,
  PAGING_MECHANISMS_VERSION,
  type PagingMechanismName,
} from "./api/mod.ts";
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
  const { memory } = createTestPagingHost();
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

/** Runs `f`, which must throw a VmonError with exactly `message`. */
function refused(f: () => unknown, message: string): void {
  throws(f, (e) => {
    ok(e instanceof VmonError);
    strictEqual(e.message, message);
    return true;
  });
}

Deno.test("paging mechanisms: a missing mechanism is refused with one line naming it", () => {
  const { host } = createTestPagingHost([], { hostport: "kvm" });
  refused(
    () =>
      requirePagingMechanisms(host, {
        strategy: "shadow",
        version: PAGING_MECHANISMS_VERSION,
        mechanisms: ["shadow-tables", "counters"],
      }),
    'Paging strategy "shadow" needs the "shadow-tables" mechanism, which host port "kvm" does not have',
  );
  // the first missing one, in the strategy's order
  const partial = createTestPagingHost(["paging-exits", "counters"]);
  refused(
    () =>
      requirePagingMechanisms(partial.host, {
        strategy: "x",
        version: PAGING_MECHANISMS_VERSION,
        mechanisms: ["counters", "write-protect", "page-queue"],
      }),
    'Paging strategy "x" needs the "write-protect" mechanism, which host port "rv64" does not have',
  );
  const full = createTestPagingHost();
  const mech = requirePagingMechanisms(full.host, {
    strategy: "shadow",
    version: PAGING_MECHANISMS_VERSION,
    mechanisms: ["shadow-tables"],
  });
  ok(mech === full.host.hostport.paging);
  // typed to the mechanisms asked for
  // @ts-expect-error: write-protect was not asked for
  ok(mech.writeProtect !== undefined);
});

Deno.test("paging mechanisms: the contract version must match", () => {
  const { host } = createTestPagingHost(undefined, { version: PAGING_MECHANISMS_VERSION + 1 });
  refused(
    () =>
      requirePagingMechanisms(host, {
        strategy: "mine",
        version: PAGING_MECHANISMS_VERSION,
        mechanisms: ["write-protect"],
      }),
    `Paging strategy "mine" needs version ${PAGING_MECHANISMS_VERSION} of the paging mechanisms, host port "rv64" has version ${
      PAGING_MECHANISMS_VERSION + 1
    }`,
  );
  // a strategy that needs nothing (wired) runs on any port, whatever its version
  requirePagingMechanisms(host, { strategy: "wired", version: 0, mechanisms: [] });
});

Deno.test("paging mechanisms: unknown names and unimplemented mechanisms are refused", () => {
  const { host } = createTestPagingHost();
  refused(
    () =>
      requirePagingMechanisms(host, {
        strategy: "js",
        version: PAGING_MECHANISMS_VERSION,
        mechanisms: ["wings" as PagingMechanismName],
      }),
    `Paging strategy "js" needs an unknown paging mechanism "wings": the mechanisms are ${
      PAGING_MECHANISM_NAMES.join(", ")
    }`,
  );
  // a port listing a mechanism whose methods it lacks
  const liar = { ...host, hostport: { ...host.hostport, paging: {} } };
  refused(
    () =>
      requirePagingMechanisms(liar, {
        strategy: "s",
        version: PAGING_MECHANISMS_VERSION,
        mechanisms: ["skip-instruction"],
      }),
    'Cannot use the "skip-instruction" paging mechanism of host port "rv64": it lists the mechanism but its paging object has no skipInstruction()',
  );
});

Deno.test("paging mechanisms: the names and their methods", () => {
  deepStrictEqual(PAGING_MECHANISM_NAMES, [
    "write-protect",
    "paging-exits",
    "skip-instruction",
    "shadow-tables",
    "page-queue",
    "queue-diff",
    "counters",
  ]);
  // queue-diff was added without a version change: a new mechanism name is not an incompatible
  // change (a port without it still implements version 1; a strategy that needs it names it)
  strictEqual(PAGING_MECHANISMS_VERSION, 1);
  const methods = Object.values(PAGING_MECHANISMS).flat();
  strictEqual(new Set(methods).size, methods.length, "each method in one mechanism");
});
