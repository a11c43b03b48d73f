/**
 * The `wired` paging strategy: all guest RAM is resident and pinned, and the vCPU's MMU walks
 * the guest's own page tables (hardware-assisted paging, EPT-like). The monitor is not involved
 * in translation, so the strategy has nothing to trap and needs no paging mechanism: it works on
 * every host port (kvm, rv64) and reports zero traps. It is the baseline the `shadow` and `queued` strategies are measured
 * against.
 *
 * @module
 */

import {
  definePlugin,
  type ExitRecord,
  PAGING_COUNTER_NAMES,
  type PagingInstance,
  type PagingPluginDefinition,
  PLUGIN_API_VERSION,
  type Vcpu,
  VmonError,
} from "../../../mod.ts";

/** The strategy's name, as reported in stats. */
export const STRATEGY = "wired";

/** The `wired` paging strategy plugin. */
const wired: PagingPluginDefinition<Record<never, never>> = definePlugin({
  name: "wired",
  kind: "paging",
  apiVersion: PLUGIN_API_VERSION,
  description: "Guest RAM pinned; the MMU walks the guest's page tables directly (no traps)",
  options: {},
  setup(host): PagingInstance {
    // No paging mechanism is needed: the host port's MMU (or the hardware) walks the guest's
    // tables, which is every port's default.
    // A paging trap never arrives under this strategy; if a host port sends one anyway it is
    // counted (so the stats show it) and reported once, and the guest continues.
    const unexpected = host.metrics.counter("unexpected-traps", "Paging traps (should be 0)");
    let warned = false;
    return {
      strategy: STRATEGY,
      onTrap(vcpu: Vcpu, exit: ExitRecord): void {
        unexpected.add();
        if (!warned) {
          warned = true;
          host.log.warn(
            `Unexpected paging trap on vcpu${vcpu.id} (code ${exit.code}): the wired strategy installs no traps`,
          );
        }
      },
      stats(): Record<string, number> {
        const out: Record<string, number> = {};
        for (const name of PAGING_COUNTER_NAMES) out[name] = 0;
        // nothing is trapped on purpose: a trap a host port sent anyway is counted, not hidden
        out.traps = unexpected.value;
        return out;
      },
      // Nothing to save: the counter is core's metrics, which snapshots save.
      save: () => ({ version: 1, state: null }),
      restore(saved) {
        if (saved.version !== 1) {
          throw new VmonError(
            `Cannot restore the wired strategy: state version ${saved.version} is not supported (this build reads 1)`,
          );
        }
      },
      dispose() {},
    };
  },
});

export default wired;
