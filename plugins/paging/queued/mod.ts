/**
 * The `queued` paging strategy (Xen-style batching of page-table updates), on top of the host
 * port's shadow translations:
 *
 * - Unmodified guests (Xen's writable page tables): the first store to a shadowed page-table page
 *   traps once (`pt-write`); the page is unhooked into the port's queue (snapshotted) and later stores
 *   to it are free (walks read it live; they map only the allowed ranges). At the guest's next `sfence.vma`
 *   or `satp` write every queued page is diffed against its snapshot, each changed PTE validated,
 *   the affected shadow entries dropped, and the pages protected again: one exit per batch. The
 *   port exits only when a queued page gained or widened a valid entry; a flush after removals or
 *   narrowings alone it handles itself, and they stay pending for the next batch (README.md).
 * - Paravirtual guests (Xen's mmu_update): the SBI extension {@linkcode PV_EID} submits an array of
 *   `{ptr, val}` updates in one call; see README.md for the calling convention.
 *
 * @module
 */

import {
  checkPte,
  createPagingCounters,
  definePlugin,
  type ExitRecord,
  hex,
  type HypercallRequest,
  type HypercallResult,
  isWritableLeaf,
  leafRanges,
  PAGING_MECHANISMS_VERSION,
  type PagingInstance,
  type PagingPluginDefinition,
  PagingTrapCode,
  PLUGIN_API_VERSION,
  ptePage,
  type PteRules,
  requirePagingMechanisms,
  type Vcpu,
  VmonError,
} from "../../../mod.ts";

/** The strategy's name, as reported in stats. */
export const STRATEGY = "queued";

/** The paging mechanisms the strategy uses (the host port must list them all). */
export const MECHANISMS = [
  "shadow-tables",
  "page-queue",
  "queue-diff",
  "paging-exits",
  "counters",
] as const;

/** vmon's SBI extension id for page-table updates (firmware-specific range): "\nVMN". */
export const PV_EID = 0x0A564D4E;

/** Most pages kept queued (unhooked) across a flush; the port's queue holds 64. */
const KEEP_HOT = 48;

/** Function ids of {@linkcode PV_EID}. */
export const PvFunction = {
  /** a0 = gpa of `{ptr, val}` u64 pairs, a1 = count, a2 = gpa of a u64 status array or 0. */
  MmuUpdate: 0,
  /** Returns the largest batch the monitor accepts in `value`. */
  MaxBatch: 1,
} as const;

/** SBI error codes used by the extension. */
export const SbiError = {
  Success: 0,
  NotSupported: -2,
  InvalidParam: -3,
  InvalidAddress: -5,
} as const;

const options = {
  "allow-mmio": {
    type: "boolean",
    description: "Leaves may map the device window below RAM (riscv-virt's MMIO)",
    default: true,
  },
  "on-invalid": {
    type: "string",
    description:
      "An invalid PTE found in a queued page: unshadow (keep the guest's data, drop the page from the shadow) or revert (restore the old value)",
    enum: ["unshadow", "revert"],
    default: "unshadow",
  },
  "max-batch": {
    type: "integer",
    description: "Most updates one paravirtual call may submit",
    default: 4096,
    min: 1,
    max: 65536,
  },
  paravirtual: {
    type: "boolean",
    description: "Offer the paravirtual update call (SBI extension 0x0A564D4E)",
    default: true,
  },
} as const;

/** The `queued` paging strategy plugin. */
const queued: PagingPluginDefinition<typeof options> = definePlugin({
  name: STRATEGY,
  kind: "paging",
  apiVersion: PLUGIN_API_VERSION,
  description:
    "Xen-style batching: page-table pages unhooked on first write, validated at the next flush; paravirtual update call",
  options,
  setup(host, opts): PagingInstance {
    const mech = requirePagingMechanisms(host, {
      strategy: STRATEGY,
      version: PAGING_MECHANISMS_VERSION,
      mechanisms: MECHANISMS,
    });
    const memory = host.memory;
    const rules: PteRules = { memory, ranges: leafRanges(memory, opts["allow-mmio"]) };
    mech.setMode("queued");
    mech.setLeafRanges(rules.ranges);
    for (let id = 0; id < host.machine.cpus; id++) {
      mech.setExits(id, { sfence: true, satp: true, whileQueued: true });
    }
    const counters = createPagingCounters(host, mech);
    const c = counters.count;

    /**
     * Validates and applies every queued page; returns the number of changed PTEs. The host port
     * diffs the pages against their snapshots (`diffQueue`, in C) and drops the translations
     * derived from every changed entry; this policy only validates what changed. With `keep`,
     * the pages stay queued (up to {@linkcode KEEP_HOT}, those that changed first), snapshotted
     * anew: a page the guest is busy rewriting (a process's tables during fork, exit
     * or a run of page faults) stays writable across flushes instead of trapping again. The port
     * exits at a flush only when a queued page gained or widened a valid entry since its snapshot;
     * removals and narrowings it handles itself (it drops the shadow entries derived from them),
     * leaving them in the diff, so they are validated and counted here in the next batch.
     */
    function flushQueue(keep: boolean): number {
      const { pages, changes } = mech.diffQueue();
      if (pages.length === 0) return 0;
      c.batches.add();
      const changedPages = new Set<number>();
      const unshadow = new Set<number>();
      for (const { address, old, value } of changes) {
        const page = address - (address % 4096);
        changedPages.add(page);
        c.validations.add();
        const why = checkPte(value, rules);
        if (why === undefined) {
          c["updates-applied"].add();
          continue;
        }
        c.rejections.add();
        host.log.debug(`Rejected PTE ${hex(value)} at ${hex(address)}: ${why}`);
        if (opts["on-invalid"] === "revert") memory.writeU64(address, old);
        else unshadow.add(page);
      }
      // Pages to keep queued: the changed ones first (the last changed first), then the others
      // in slot order. A page holding invalid entries is no page table any more (a freed table
      // reused for data): it leaves the shadow; the walker refuses to map an invalid entry.
      const hot: number[] = [];
      for (const gpa of pages) {
        if (unshadow.has(gpa)) mech.invalidate(gpa, 4096);
        else if (changedPages.has(gpa)) hot.unshift(gpa);
        else hot.push(gpa);
      }
      // a page no longer shadowed is not kept: it is simply protected no more
      if (keep) mech.requeue(hot.slice(0, KEEP_HOT));
      else mech.releaseQueue();
      return changes.length;
    }

    function onPtWrite(vcpu: Vcpu, exit: ExitRecord): void {
      c.traps.add();
      c["traps.pt-write"].add();
      const page = exit.address - (exit.address % 4096);
      let slot = mech.queuePage(page);
      if (slot === -2) {
        flushQueue(false);
        slot = mech.queuePage(page);
      }
      // Queued: the store re-executes on an unhooked page. -1: the page stopped being shadowed
      // (the flush above dropped its last translation), so it is not protected any more either.
      if (slot === -1 && mech.isPageTable(page)) {
        throw new VmonError(
          `Cannot queue page-table page ${hex(page)} of vcpu${vcpu.id}: the host port refused it`,
        );
      }
    }

    function mmuUpdate(call: HypercallRequest): HypercallResult {
      const list = Number(call.args[0] ?? 0n);
      const count = Number(call.args[1] ?? 0n);
      const results = Number(call.args[2] ?? 0n);
      if (count < 0 || count > opts["max-batch"]) {
        return { error: SbiError.InvalidParam, value: 0 };
      }
      if (count === 0) return { error: SbiError.Success, value: 0 };
      if (!memory.contains(list, count * 16) || list % 8 !== 0) {
        return { error: SbiError.InvalidAddress, value: 0 };
      }
      if (results !== 0 && (!memory.contains(results, count * 8) || results % 8 !== 0)) {
        return { error: SbiError.InvalidAddress, value: 0 };
      }
      c.batches.add();
      let applied = 0;
      for (let i = 0; i < count; i++) {
        const ptr = Number(memory.readU64(list + 16 * i));
        const val = memory.readU64(list + 16 * i + 8);
        c.validations.add();
        let status: number = SbiError.Success;
        if (ptr % 8 !== 0 || !Number.isSafeInteger(ptr) || !memory.contains(ptr, 8)) {
          status = SbiError.InvalidAddress;
        } else if (checkPte(val, rules) !== undefined) {
          status = SbiError.InvalidParam;
        } else if (isWritableLeaf(val)) {
          // a writable leaf: it may not map a page-table page (the one written included)
          const target = ptePage(val);
          if (mech.isPageTable(target) || target === ptr - (ptr % 4096)) {
            status = SbiError.InvalidParam;
          }
        }
        if (status === SbiError.Success) {
          memory.writeU64(ptr, val);
          mech.invalidate(ptr, 8);
          applied++;
          c["updates-applied"].add();
        } else {
          c.rejections.add();
        }
        if (results !== 0) memory.writeU64(results + 8 * i, BigInt.asUintN(64, BigInt(status)));
      }
      return { error: SbiError.Success, value: applied };
    }

    const registration = opts.paravirtual
      ? host.bus.registerHypercall(PV_EID, (call) => {
        c.traps.add();
        c["traps.hypercall"].add();
        return counters.timed("hypercall", (): HypercallResult => {
          if (call.fid === PvFunction.MmuUpdate) return mmuUpdate(call);
          if (call.fid === PvFunction.MaxBatch) {
            return { error: SbiError.Success, value: opts["max-batch"] };
          }
          return { error: SbiError.NotSupported, value: 0 };
        });
      })
      : undefined;

    return {
      strategy: STRATEGY,
      onTrap(vcpu: Vcpu, exit: ExitRecord): void {
        switch (exit.code) {
          case PagingTrapCode.PtWrite:
            counters.timed("pt-write", () => onPtWrite(vcpu, exit));
            return;
          case PagingTrapCode.Sfence:
            c.traps.add();
            c["traps.flush"].add();
            counters.timed("flush", () => flushQueue(true));
            return;
          case PagingTrapCode.Satp:
            c.traps.add();
            c["traps.satp"].add();
            counters.timed("satp", () => flushQueue(true));
            return;
          default:
            if (counters.unexpected()) {
              host.log.warn(`Unexpected paging exit on vcpu${vcpu.id} (code ${exit.code})`);
            }
        }
      },
      stats: () => counters.stats(),
      // The queue is flushed (validated and applied, as at the guest's next fence) and the host
      // port's save then drops the shadow tables: a restored machine starts with an empty queue.
      save() {
        flushQueue(false);
        return { version: 1, state: null };
      },
      restore(saved) {
        if (saved.version !== 1) {
          throw new VmonError(
            `Cannot restore the queued strategy: state version ${saved.version} is not supported (this build reads 1)`,
          );
        }
      },
      dispose(): void {
        counters.dispose();
        registration?.unregister();
      },
    };
  },
});

export default queued;
