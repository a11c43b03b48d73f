import { PAGING_COUNTER_NAMES } from "../../../core/api/mod.ts";
import wired from "./mod.ts";
import type { ExitRecord, PagingHost, PagingInstance, Vcpu } from "../../../core/api/mod.ts";
import { VmonError } from "../../../core/errors.ts";
import { createTestPagingHost } from "../../../testing/mod.ts";

/** A paging host around a host port that lists `strategies`; copies warnings into `warnings`. */
function pagingHost(strategies: string[], warnings: string[]): PagingHost {
  const { host } = createTestPagingHost(strategies);
  return { ...host, log: { ...host.log, warn: (m: string) => void warnings.push(m) } };
}

Deno.test("wired is a valid paging plugin without options", () => {
  if (wired.kind !== "paging" || wired.name !== "wired") throw new Error("wrong identity");
  if (Object.keys(wired.options ?? {}).length !== 0) throw new Error("unexpected options");
});

Deno.test("wired sets up when the host port supports it and reports zero traps", async () => {
  const warnings: string[] = [];
  const inst = await wired.setup(pagingHost(["wired", "shadow"], warnings), {}) as PagingInstance;
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

Deno.test("wired refuses a host port that does not support it", async () => {
  for (
    const [list, detail] of [
      [["shadow", "queued"], "supports shadow, queued"],
      [[], "supports no paging strategies"],
    ] as const
  ) {
    try {
      await wired.setup(pagingHost([...list], []), {});
      throw new Error("no error");
    } catch (e) {
      if (!(e instanceof VmonError)) throw e;
      const want = `Cannot use paging strategy "wired": host port "rv64" ${detail}`;
      if (e.message !== want) throw new Error(e.message);
    }
  }
});
