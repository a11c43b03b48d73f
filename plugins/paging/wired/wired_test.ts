import { PAGING_COUNTER_NAMES } from "../../../core/api/mod.ts";
import wired from "./mod.ts";
import type {
  ExitRecord,
  PagingHost,
  PagingInstance,
  PagingMechanismName,
  Vcpu,
} from "../../../core/api/mod.ts";
import { createTestPagingHost } from "../../../testing/mod.ts";

/** A paging host around a host port with `mechanisms`; copies warnings into `warnings`. */
function pagingHost(mechanisms: PagingMechanismName[], warnings: string[]): PagingHost {
  const { host } = createTestPagingHost(mechanisms);
  return { ...host, log: { ...host.log, warn: (m: string) => void warnings.push(m) } };
}

Deno.test("wired is a valid paging plugin without options", () => {
  if (wired.kind !== "paging" || wired.name !== "wired") throw new Error("wrong identity");
  if (Object.keys(wired.options ?? {}).length !== 0) throw new Error("unexpected options");
});

Deno.test("wired sets up on a host port with mechanisms and reports zero traps", async () => {
  const warnings: string[] = [];
  const inst = await wired.setup(pagingHost(["shadow-tables"], warnings), {}) as PagingInstance;
  if (inst.strategy !== "wired") throw new Error(inst.strategy);
  const stats = inst.stats();
  if (JSON.stringify(Object.keys(stats)) !== JSON.stringify(PAGING_COUNTER_NAMES)) {
    throw new Error(JSON.stringify(stats));
  }
  if (Object.values(stats).some((v) => v !== 0)) throw new Error(JSON.stringify(stats));
  // An unexpected trap is counted and warned about once.
  const vcpu = { id: 1 } as Vcpu;
  const exit = { code: 7 } as ExitRecord;
  inst.onTrap?.(vcpu, exit);
  inst.onTrap?.(vcpu, exit);
  if (inst.stats().traps !== 2) throw new Error("traps not counted");
  if (warnings.length !== 1 || !warnings[0]?.includes("Unexpected paging trap on vcpu1 (code 7)")) {
    throw new Error(JSON.stringify(warnings));
  }
  inst.dispose();
  inst.dispose();
});

Deno.test("wired needs no paging mechanism: it sets up on a host port without any", async () => {
  const { host } = createTestPagingHost([], { hostport: "kvm" });
  const inst = await wired.setup(host, {}) as PagingInstance;
  if (inst.stats().traps !== 0) throw new Error(JSON.stringify(inst.stats()));
  inst.dispose();
});
