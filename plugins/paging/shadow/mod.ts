/**
 * The `shadow` paging strategy: the host port keeps shadow translations per guest address space
 * (cached across `satp` switches) and write-protects every guest page-table page a walk read;
 * each guest store to one exits to this strategy (cause `pt-write`), which validates the new PTE
 * and lets the store run (the port then drops the shadow entries derived from that PTE) or drops
 * it. Mechanisms in C (ffi/rv64/shadow.c), policy here.
 *
 * @module
 */

import {
  checkPte,
  createPagingCounters,
  definePlugin,
  type ExitRecord,
  hex,
  leafRanges,
  mergeBytes,
  PAGING_MECHANISMS_VERSION,
  type PagingInstance,
  type PagingPluginDefinition,
  PagingTrapCode,
  PLUGIN_API_VERSION,
  type PteRules,
  requirePagingMechanisms,
  type Vcpu,
  VmonError,
} from "../../../mod.ts";

/** The strategy's name, as reported in stats. */
export const STRATEGY = "shadow";

/** The paging mechanisms the strategy uses (the host port must list them all). */
export const MECHANISMS = ["shadow-tables", "counters"] as const;

const options = {
  "allow-mmio": {
    type: "boolean",
    description: "Leaves may map the device window below RAM (riscv-virt's MMIO)",
    default: true,
  },
  "on-invalid": {
    type: "string",
    description:
      "A store of an invalid PTE: unshadow (keep the guest's data, drop the page from the shadow) or drop (skip the store)",
    enum: ["unshadow", "drop"],
    default: "unshadow",
  },
} as const;

/** The `shadow` paging strategy plugin. */
const shadow: PagingPluginDefinition<typeof options> = definePlugin({
  name: STRATEGY,
  kind: "paging",
  apiVersion: PLUGIN_API_VERSION,
  description:
    "Shadow translations per address space; every page-table write traps and is validated",
  options,
  setup(host, opts): PagingInstance {
    const mech = requirePagingMechanisms(host, {
      strategy: STRATEGY,
      version: PAGING_MECHANISMS_VERSION,
      mechanisms: MECHANISMS,
    });
    const rules: PteRules = {
      memory: host.memory,
      ranges: leafRanges(host.memory, opts["allow-mmio"]),
    };
    mech.setMode("shadow");
    mech.setLeafRanges(rules.ranges);
    const counters = createPagingCounters(host, mech);
    const c = counters.count;

    /** Validates a store to a shadowed page-table page and answers the port. */
    function onPtWrite(vcpu: Vcpu, exit: ExitRecord): void {
      const gpa = exit.address;
      const size = exit.size;
      const value = exit.data.getBigUint64(0, true);
      // Validate every PTE the store touches (a misaligned store can touch two).
      let ok = true;
      for (let base = gpa - (gpa % 8); base < gpa + size; base += 8) {
        if (!host.memory.contains(base, 8)) continue;
        const old = host.memory.readU64(base);
        const lo = Math.max(gpa, base);
        const hi = Math.min(gpa + size, base + 8);
        const part = (value >> BigInt((lo - gpa) * 8)) & ((1n << BigInt((hi - lo) * 8)) - 1n);
        const pte = mergeBytes(old, { offset: lo - base, size: hi - lo, value: part });
        c.validations.add();
        const why = checkPte(pte, rules);
        if (why !== undefined) {
          ok = false;
          host.log.debug(`Rejected PTE write at ${hex(base)} = ${hex(pte)}: ${why}`);
        }
      }
      if (ok) {
        mech.approve(vcpu.id, true);
        c["updates-applied"].add();
        return;
      }
      c.rejections.add();
      if (opts["on-invalid"] === "drop") {
        mech.approve(vcpu.id, false);
        return;
      }
      // Unshadow: the page holds something other than page tables now (a freed table reused
      // for data). Every translation derived from it is dropped, so it is no longer protected
      // and the store re-executes unhindered; the walker refuses to map an invalid entry.
      mech.invalidate(gpa - (gpa % 4096), 4096);
      if (mech.isPageTable(gpa)) mech.approve(vcpu.id, false);
    }

    return {
      strategy: STRATEGY,
      onTrap(vcpu: Vcpu, exit: ExitRecord): void {
        if (exit.code !== PagingTrapCode.PtWrite) {
          // This strategy enables no other paging exits; count and let the guest continue.
          if (counters.unexpected()) {
            host.log.warn(`Unexpected paging exit on vcpu${vcpu.id} (code ${exit.code})`);
          }
          return;
        }
        c.traps.add();
        c["traps.pt-write"].add();
        counters.timed("pt-write", () => onPtWrite(vcpu, exit));
      },
      stats: () => counters.stats(),
      // Shadow tables are derived state: the host port's save drops them in the running machine
      // and a restored one rebuilds them; counters are core's metrics and the port's.
      save: () => ({ version: 1, state: null }),
      restore(saved) {
        if (saved.version !== 1) {
          throw new VmonError(
            `Cannot restore the shadow strategy: state version ${saved.version} is not supported (this build reads 1)`,
          );
        }
      },
      dispose(): void {
        counters.dispose();
      },
    };
  },
});

export default shadow;
