/**
 * `flush-counter`: an example paging strategy that lives outside vmon's source tree and imports
 * only the public API (`@vmon/vmon`). It asks the host port for exits after `sfence.vma` and
 * `satp` writes (the `paging-exits` mechanism) and counts them by cause. It changes nothing, so
 * the guest runs as under `wired`; on a host port without the mechanism (kvm) setup fails with
 * one line naming it. Run it with
 * `vmon run --image linux-rv64 --paging ./flush_counter/mod.ts --exec true --stats`.
 *
 * @module
 */

import {
  definePlugin,
  ExitKind,
  type ExitRecord,
  PAGING_COUNTER_NAMES,
  type PagingInstance,
  type PagingPluginDefinition,
  PagingTrapCode,
  PLUGIN_API_VERSION,
  requirePagingMechanisms,
  type Vcpu,
} from "@vmon/vmon";

/** Counter suffix (`traps.<cause>`) of each paging exit code. */
const CAUSES: Readonly<Record<number, string>> = {
  [PagingTrapCode.WriteProtected]: "write",
  [PagingTrapCode.Sfence]: "flush",
  [PagingTrapCode.Satp]: "satp",
  [PagingTrapCode.PtWrite]: "pt-write",
};

const options = {
  sfence: { type: "boolean", description: "Exit (and count) after sfence.vma", default: true },
  satp: { type: "boolean", description: "Exit (and count) after satp writes", default: true },
} as const;

/** The `flush-counter` paging strategy plugin. */
const flushCounter: PagingPluginDefinition<typeof options> = definePlugin({
  name: "flush-counter",
  kind: "paging",
  apiVersion: PLUGIN_API_VERSION,
  description: "Counts sfence.vma and satp exits by cause (an example strategy)",
  options,
  setup(host, opts): PagingInstance {
    // Written against version 1 of the paging mechanism contract; a host port with another
    // version, or without paging exits, refuses the strategy here with one clear line.
    const mech = requirePagingMechanisms(host, {
      strategy: "flush-counter",
      version: 1,
      mechanisms: ["paging-exits"],
    });
    for (let id = 0; id < host.machine.cpus; id++) {
      mech.setExits(id, { sfence: opts.sfence, satp: opts.satp });
    }
    const byCause = new Map<string, number>();
    let traps = 0;
    return {
      strategy: "flush-counter",
      onTrap(_vcpu: Vcpu, exit: ExitRecord): void {
        // The instruction has completed; counting is all this strategy does.
        if (exit.kind !== ExitKind.Paging) return;
        traps++;
        const cause = CAUSES[exit.code] ?? "other";
        byCause.set(cause, (byCause.get(cause) ?? 0) + 1);
      },
      stats(): Record<string, number> {
        const out: Record<string, number> = {};
        for (const name of PAGING_COUNTER_NAMES) out[name] = 0;
        out.traps = traps;
        for (const [cause, n] of byCause) out[`traps.${cause}`] = n;
        return out;
      },
      dispose(): void {
        // Nothing to release: the exits end with the machine.
      },
    };
  },
});

export default flushCounter;
