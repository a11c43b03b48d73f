/**
 * The workloads the comparison measures, as runs of its matrix. The facts about each workload
 * (arguments, what N counts, what one operation is, default N) live in the bench image's one
 * workload table (`BENCH_WORKLOADS`, images/workloads/table.ts); the comparison measures those
 * that have a default N, plus the paravirtual `pv-update` (pv.ts). Inside the guest a workload
 * runs as `/bench/run.sh <name> <args>` (`benchCommand` of images/workloads).
 *
 * @module
 */

import {
  BENCH_WORKLOADS,
  benchCommand as runShCommand,
  type WorkloadInfo,
} from "../images/workloads/mod.ts";
import { VmonError } from "../core/errors.ts";
import { pvCmdline } from "./pv.ts";
import type { WorkloadRun } from "./types.ts";

/** A workload of the bench image that the comparison measures: one with a default N. */
export type CompareWorkload = WorkloadInfo & { readonly n: number };

/** The workloads the comparison knows, in the order it runs them (the image's order). */
export const COMPARE_WORKLOADS: readonly CompareWorkload[] = BENCH_WORKLOADS.filter(
  (w): w is CompareWorkload => w.n !== undefined,
);

/** The fraction of N the baseline run uses (its counters are subtracted from the measured run). */
export const BASELINE_DIVISOR = 8;

/**
 * The baseline N for a measured N: `floor(n / 8)`, at least 1; undefined when that is not
 * smaller than `n` (no baseline possible).
 *
 * @param n The measured N.
 */
export function baselineN(n: number): number | undefined {
  const b = Math.max(1, Math.floor(n / BASELINE_DIVISOR));
  return b < n ? b : undefined;
}

/**
 * A workload of the bench image as the matrix runs it: N (the workload's default unless given)
 * and the baseline N of {@linkcode baselineN} unless `baseline` is false.
 *
 * @param info The workload (from {@linkcode COMPARE_WORKLOADS}).
 * @param options `n`: N of the measured runs (at least 1); `baseline: false` runs no baseline.
 * @throws {VmonError} If neither `n` nor the workload gives N.
 *
 * @example
 * ```ts
 * import { COMPARE_WORKLOADS, workloadRun } from "./workloads.ts";
 *
 * const forkwait = COMPARE_WORKLOADS.find((w) => w.name === "forkwait")!;
 * const w = workloadRun(forkwait, { n: 40 });
 * if (w.n !== 40 || w.baseN !== 5 || w.args(40).join(" ") !== "40") throw new Error("bad");
 * ```
 */
export function workloadRun(
  info: WorkloadInfo,
  options: { readonly n?: number; readonly baseline?: boolean } = {},
): WorkloadRun {
  const n = options.n ?? info.n;
  if (n === undefined) {
    throw new VmonError(`Cannot compare workload "${info.name}": it has no default N`);
  }
  const baseN = options.baseline === false ? undefined : baselineN(n);
  return {
    name: info.name,
    n,
    ...(baseN !== undefined ? { baseN } : {}),
    opsPerN: info.opsPerN,
    op: info.op,
    args: info.args,
  };
}

/**
 * The guest command for a workload run: `/bench/run.sh <name> <args>`; for `pv-update` the
 * pv-guest's command-line options (`pv.batch=<B>` comes first when `batch` is given).
 *
 * @param workload The workload.
 * @param n N of this run.
 * @param batch The paravirtual batch size of the run, if any.
 */
export function benchCommand(workload: WorkloadRun, n: number, batch?: number): string {
  if (workload.kind === "pv") {
    return batch !== undefined ? pvCmdline(workload, { n, batch }) : workload.args(n).join(" ");
  }
  return runShCommand(workload.name, workload.args(n));
}
