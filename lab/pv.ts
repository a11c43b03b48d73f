/**
 * The paravirtual row group of `vmon compare`: with `--batch 1,8,64`, the `pv-guest` image (a
 * bare-metal riscv64 guest, images/pv-guest) runs under the queued strategy once per batch size
 * with `pv.batch=<size>` on its command line, and drives the strategy's page-table update call
 * (SBI extension 0x0A564D4E, plugins/paging/queued/README.md). Unmodified Linux never makes that
 * call, so the batch sizes are measured on this guest only, as the workload `pv-update`.
 *
 * What one run submits (images/pv-guest/src/main.c): `pv.updates` valid updates in batches of the
 * given size, one fixed call of 10 updates (5 valid, 5 invalid), `pv.random` random updates in
 * batches, then 512 updates clearing its playground table, in batches. It prints
 *
 * ```text
 * pv-guest: batch=64 mode=hypercall
 * pv-guest: invalid sent=5 rejected=5
 * pv-guest: random sent=256 applied=95 rejected=161
 * pv-guest: calls=29 applied=1636 rejected=166
 * pv-guest: ok
 * ```
 *
 * and the number of updates per run is `applied + rejected` of the `calls=` line (1802 with the
 * defaults), whatever the batch size: per-update values divide by it.
 *
 * @module
 */

import type { Variant, WorkloadRun } from "./types.ts";

/** The workload name of the paravirtual row group. */
export const PV_WORKLOAD = "pv-update";

/** The image it boots. */
export const PV_IMAGE = "pv-guest";

/** Default N: valid updates in the guest's first phase (`pv.updates`). */
export const PV_DEFAULT_UPDATES = 1024;

/** Random updates in the guest's last phase (`pv.random`). */
export const PV_RANDOM = 256;

/** The seed of the random phase (`pv.seed`): fixed, so every run submits the same updates. */
export const PV_SEED = 1;

/** The largest batch the guest submits (its `MAX_BATCH`; larger requests are clamped). */
export const PV_GUEST_MAX_BATCH = 4096;

/**
 * The `pv-update` workload for N valid updates.
 *
 * @param n Valid updates in the first phase (`pv.updates`).
 */
export function pvWorkload(n: number = PV_DEFAULT_UPDATES): WorkloadRun {
  return {
    name: PV_WORKLOAD,
    kind: "pv",
    n,
    opsPerN: 1,
    op: "update",
    args: (x: number) => [`pv.updates=${x}`, `pv.random=${PV_RANDOM}`, `pv.seed=${PV_SEED}`],
  };
}

/**
 * The guest command line of one `pv-update` run.
 *
 * @param workload The workload (its N is `pv.updates`).
 * @param options `n`: N of this run; `batch`: the batch size.
 *
 * @example
 * ```ts
 * import { pvCmdline, pvWorkload } from "./pv.ts";
 *
 * const got = pvCmdline(pvWorkload(), { n: 1024, batch: 8 });
 * if (got !== "pv.batch=8 pv.updates=1024 pv.random=256 pv.seed=1") throw new Error(got);
 * ```
 */
export function pvCmdline(workload: WorkloadRun, options: { n: number; batch: number }): string {
  return [`pv.batch=${options.batch}`, ...workload.args(options.n)].join(" ");
}

/**
 * The variants a workload runs under: `pv-update` under the `--batch` variants (`queued/b<N>`)
 * only, every other workload under the others (Linux never makes the paravirtual call, so a
 * batch size means nothing to it).
 *
 * @param workload The workload.
 * @param variants Every variant of the comparison.
 */
export function variantsFor(workload: WorkloadRun, variants: readonly Variant[]): Variant[] {
  const pv = workload.kind === "pv";
  return variants.filter((v) => (v.batch !== undefined) === pv);
}

/** What {@linkcode parsePvOutput} found in the guest's console. */
export interface PvOutput {
  /** The guest's `pv-guest:` lines, as printed. */
  readonly output: string[];
  /**
   * The lines that must be the same under every batch size and repeat: the `invalid`, `random`
   * and final lines, and the `calls=` line without the call count (which depends on the batch).
   */
  readonly result: string[];
  /** Update calls the guest made (`calls=`). */
  readonly calls?: number;
  /** Updates the monitor applied, as the guest counted them. */
  readonly applied?: number;
  /** Updates the monitor rejected, as the guest counted them. */
  readonly rejected?: number;
  /** Updates submitted: `applied + rejected`. */
  readonly updates?: number;
  /** Why the run cannot be used, if it cannot. */
  readonly error?: string;
}

function field(line: string | undefined, key: string): number | undefined {
  const m = line === undefined ? null : new RegExp(`\\b${key}=(\\d+)`).exec(line);
  return m ? Number(m[1]) : undefined;
}

/**
 * Reads the pv-guest's result lines and checks them: the batch it used is the one asked for, it
 * used the update call (`mode=hypercall`), its own checks passed (`pv-guest: ok`), and the
 * monitor's counters agree with what the guest was told (`updates-applied` and `rejections`
 * equal the guest's `applied` and `rejected`).
 *
 * @param lines The console lines (any other lines are ignored).
 * @param options `batch`: the batch size asked for; `counters`: the run's flattened counters.
 *
 * @example
 * ```ts
 * import { parsePvOutput } from "./pv.ts";
 *
 * const out = parsePvOutput([
 *   "pv-guest: batch=8 mode=hypercall",
 *   "pv-guest: calls=5 applied=30 rejected=2",
 *   "pv-guest: ok",
 * ], { batch: 8, counters: { "paging.updates-applied": 30, "paging.rejections": 2 } });
 * if (out.updates !== 32 || out.error !== undefined) throw new Error(JSON.stringify(out));
 * if (out.result.join("|") !== "pv-guest: applied=30 rejected=2|pv-guest: ok") throw new Error();
 * ```
 */
export function parsePvOutput(
  lines: readonly string[],
  options: { batch: number; counters: Readonly<Record<string, number>> },
): PvOutput {
  const output = lines.map((l) => l.replace(/\r/g, "").trimEnd()).filter((l) =>
    l.startsWith("pv-guest:")
  );
  const head = output.find((l) => /^pv-guest: batch=/.test(l));
  const total = output.find((l) => /^pv-guest: calls=/.test(l));
  const result = output.filter((l) => l !== head).map((l) =>
    l === total ? l.replace(/calls=\d+\s*/, "") : l
  );
  const calls = field(total, "calls");
  const applied = field(total, "applied");
  const rejected = field(total, "rejected");
  const updates = applied !== undefined && rejected !== undefined ? applied + rejected : undefined;
  const found = {
    output,
    result,
    ...(calls !== undefined ? { calls } : {}),
    ...(applied !== undefined ? { applied } : {}),
    ...(rejected !== undefined ? { rejected } : {}),
    ...(updates !== undefined ? { updates } : {}),
  };
  const fail = (error: string): PvOutput => ({ ...found, error });
  const last = output.slice(-3).join(" | ") || "(no pv-guest lines)";
  if (head === undefined) {
    return fail(`the pv-guest printed no "batch=" line (last lines: ${last})`);
  }
  const batch = field(head, "batch");
  if (!/\bmode=hypercall\b/.test(head)) {
    return fail(`the pv-guest did not use the update call: "${head}"`);
  }
  if (batch !== options.batch) {
    return fail(`the pv-guest used batch ${batch} instead of ${options.batch}: "${head}"`);
  }
  if (output.some((l) => l.includes("FAILED"))) {
    return fail(`the pv-guest's checks failed: ${output.filter((l) => l.includes("FAILED"))[0]}`);
  }
  if (!output.includes("pv-guest: ok")) return fail(`no "pv-guest: ok" line (last lines: ${last})`);
  if (updates === undefined || calls === undefined) {
    return fail(`no "calls=... applied=... rejected=..." line (last lines: ${last})`);
  }
  const monApplied = options.counters["paging.updates-applied"];
  const monRejected = options.counters["paging.rejections"];
  if (monApplied !== applied || monRejected !== rejected) {
    return fail(
      `the monitor counted ${monApplied ?? "no"} updates applied and ${
        monRejected ?? "no"
      } rejections, the guest ${applied} and ${rejected}`,
    );
  }
  return found;
}
