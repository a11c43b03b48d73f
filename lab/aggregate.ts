/**
 * Aggregation of recorded runs: medians over repeats, per-operation values with the baseline
 * subtracted, the determinism check (counters identical across repeats under the icount clock)
 * and the mismatch check (the workload's result identical under every strategy and repeat).
 *
 * @module
 */

import type { MachineStats } from "../core/api/mod.ts";
import { PAGING_HOST_TIME_PREFIX } from "../core/paging.ts";
import { counterKey } from "./counters.ts";
import { variantsFor } from "./pv.ts";
import type {
  CellSummary,
  CounterDifference,
  ResultMismatch,
  RunPhase,
  RunRecord,
  Variant,
  WorkloadRun,
} from "./types.ts";

/**
 * The median of `values` (the mean of the middle two for an even count); NaN for none.
 *
 * @param values Numbers in any order.
 *
 * @example
 * ```ts
 * import { median } from "./aggregate.ts";
 *
 * if (median([5, 1, 3]) !== 3 || median([4, 1, 3, 2]) !== 2.5) throw new Error("bad median");
 * ```
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Flattens a machine's counters into `paging.<name>` (the strategy's metrics) and
 * `hostport.<name>` keys. The strategy's host times (`host-us.<cause>`) are no counters and are
 * left out ({@linkcode flattenHostTimes}).
 *
 * @param stats The machine's final stats.
 * @param strategy The paging strategy's name, which keys its metrics.
 */
export function flattenCounters(stats: MachineStats, strategy: string): Record<string, number> {
  const out: Record<string, number> = {};
  const paging = stats.metrics[strategy] ?? {};
  for (const [name, value] of Object.entries(paging)) {
    if (!name.startsWith(PAGING_HOST_TIME_PREFIX)) out[counterKey("paging", name)] = value;
  }
  for (const [name, value] of Object.entries(stats.hostport)) {
    out[counterKey("hostport", name)] = value;
  }
  return out;
}

/**
 * The host microseconds a strategy's trap handlers took, by cause: its `host-us.<cause>`
 * entries (core/paging.ts `PAGING_HOST_TIME_PREFIX`), keyed by cause.
 *
 * @param stats The machine's final stats.
 * @param strategy The paging strategy's name, which keys its metrics.
 */
export function flattenHostTimes(stats: MachineStats, strategy: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(stats.metrics[strategy] ?? {})) {
    if (name.startsWith(PAGING_HOST_TIME_PREFIX)) {
      out[name.slice(PAGING_HOST_TIME_PREFIX.length)] = value;
    }
  }
  return out;
}

/**
 * Host microseconds per trap in the strategy's handlers, by cause and `all`: the median over
 * `runs` of each run's handler time over its traps of that cause (runs without such traps are
 * left out of that cause).
 *
 * @param runs Measured runs of one cell.
 * @returns Microseconds per trap by cause; empty when no run recorded handler times.
 *
 * @example
 * ```ts
 * import { hostUsPerTrap } from "./aggregate.ts";
 *
 * const run = {
 *   counters: { "paging.traps": 4, "paging.traps.flush": 3, "paging.traps.pt-write": 1 },
 *   hostUs: { flush: 30, "pt-write": 2 },
 * };
 * const got = hostUsPerTrap([run]);
 * if (got.flush !== 10 || got["pt-write"] !== 2 || got.all !== 8) throw new Error("bad");
 * ```
 */
export function hostUsPerTrap(
  runs: readonly Pick<RunRecord, "counters" | "hostUs">[],
): Record<string, number> {
  const per = new Map<string, number[]>();
  const add = (cause: string, us: number, traps: number) => {
    if (!(traps > 0)) return;
    const list = per.get(cause) ?? [];
    list.push(us / traps);
    per.set(cause, list);
  };
  for (const r of runs) {
    if (r.hostUs === undefined) continue;
    let all = 0;
    for (const [cause, us] of Object.entries(r.hostUs)) {
      all += us;
      add(cause, us, r.counters[counterKey("paging", `traps.${cause}`)] ?? 0);
    }
    add("all", all, r.counters["paging.traps"] ?? 0);
  }
  const out: Record<string, number> = {};
  for (const [cause, values] of [...per].sort(([a], [b]) => a.localeCompare(b))) {
    out[cause] = median(values);
  }
  return out;
}

function usable(runs: readonly RunRecord[]): RunRecord[] {
  return runs.filter((r) => r.error === undefined);
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/**
 * Finds counters that differ between repeats of the same workload, variant and phase. Under the
 * icount clock every counter must be identical; each difference is a determinism bug.
 *
 * @param runs Every recorded run (failed runs are ignored).
 * @returns One entry per differing counter.
 */
export function checkDeterminism(runs: readonly RunRecord[]): CounterDifference[] {
  const out: CounterDifference[] = [];
  const groups = groupBy(usable(runs), (r) => `${r.workload}\0${r.variant}\0${r.phase}\0${r.n}`);
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    const sorted = [...group].sort((a, b) => a.repeat - b.repeat);
    const keys = new Set(sorted.flatMap((r) => Object.keys(r.counters)));
    for (const key of [...keys].sort()) {
      const values = sorted.map((r) => r.counters[key] ?? 0);
      if (values.some((v) => v !== values[0])) {
        const first = sorted[0]!;
        out.push({
          workload: first.workload,
          variant: first.variant,
          phase: first.phase,
          counter: key,
          values,
        });
      }
    }
  }
  return out;
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

/**
 * Finds runs whose result differs from the first successful run of the same workload, phase
 * and N. The result depends only on the workload's arguments, so any difference is a
 * correctness bug in a strategy (or the port).
 *
 * @param runs Every recorded run, in the order they ran (failed runs are ignored).
 * @returns One entry per differing run.
 */
export function findMismatches(runs: readonly RunRecord[]): ResultMismatch[] {
  const out: ResultMismatch[] = [];
  const groups = groupBy(usable(runs), (r) => `${r.workload}\0${r.phase}\0${r.n}`);
  for (const group of groups.values()) {
    const ref = group[0]!;
    for (const run of group.slice(1)) {
      if (sameLines(run.result, ref.result)) continue;
      out.push({
        workload: ref.workload,
        phase: ref.phase,
        n: ref.n,
        expected: { variant: ref.variant, repeat: ref.repeat, output: ref.result },
        got: { variant: run.variant, repeat: run.repeat, output: run.result },
      });
    }
  }
  return out;
}

function medianCounters(runs: readonly RunRecord[]): Record<string, number> {
  const keys = new Set(runs.flatMap((r) => Object.keys(r.counters)));
  const out: Record<string, number> = {};
  for (const key of [...keys].sort()) out[key] = median(runs.map((r) => r.counters[key] ?? 0));
  return out;
}

function runsOf(
  runs: readonly RunRecord[],
  workload: string,
  variant: string,
  phase: RunPhase,
): RunRecord[] {
  return runs.filter((r) => r.workload === workload && r.variant === variant && r.phase === phase);
}

/**
 * Aggregates the runs of every workload and variant. Per-op counters are
 * `(median(measured) - median(baseline)) / ((n - baseN) * opsPerN)`, which removes boot,
 * program start and power-off; without a baseline they are `median(measured) / (n * opsPerN)`;
 * for a workload whose runs report their own operation count (`pv-update`, see
 * lab/pv.ts) `median(measured) / median(ops)`: whole runs over the updates submitted.
 * Host wall time per op is the median over repeats of (measured - baseline marker window) divided
 * the same way (or of the whole machine times when a run has no window), or without a baseline
 * the median marker window over `n * opsPerN`, or for `pv-update` (no markers; the pv-guest boots
 * in microseconds) the median machine time over the updates it submitted; guest time
 * per op is the median guest `time:` over `n * opsPerN`. A cell without a successful measured
 * run is left out.
 *
 * @param runs Every recorded run.
 * @param matrix The workloads and variants, which fix the order of the cells.
 * @returns One summary per workload and variant.
 */
export function summarize(
  runs: readonly RunRecord[],
  matrix: { readonly workloads: readonly WorkloadRun[]; readonly variants: readonly Variant[] },
): CellSummary[] {
  const ok = usable(runs);
  const differing = new Set(
    checkDeterminism(runs).map((d) => `${d.workload}\0${d.variant}`),
  );
  const out: CellSummary[] = [];
  for (const w of matrix.workloads) {
    for (const v of variantsFor(w, matrix.variants)) {
      const measured = runsOf(ok, w.name, v.id, "measure").filter((r) => r.n === w.n);
      if (measured.length === 0) continue;
      const baseline = w.baseN === undefined
        ? []
        : runsOf(ok, w.name, v.id, "baseline").filter((r) => r.n === w.baseN);
      const useBase = baseline.length > 0;
      const totals = medianCounters(measured);
      const base = useBase ? medianCounters(baseline) : {};
      // A workload that counts its own operations (pv-update: the updates the guest submitted)
      // divides by that count; the others by N times operations per N.
      const counted = measured.flatMap((r) => r.ops !== undefined ? [r.ops] : []);
      const ops = counted.length > 0
        ? median(counted)
        : (useBase ? w.n - w.baseN! : w.n) * w.opsPerN;
      const perOp: Record<string, number> = {};
      for (const [key, value] of Object.entries(totals)) {
        perOp[key] = (value - (base[key] ?? 0)) / ops;
      }
      const allOps = w.n * w.opsPerN;
      const windows = measured.flatMap((r) => r.windowMs !== undefined ? [r.windowMs] : []);
      const guest = measured.flatMap((r) => r.guestMs !== undefined ? [r.guestMs] : []);
      const windowMsMedian = windows.length > 0 ? median(windows) : undefined;
      // Wall time, best first: the workload's marker window minus the baseline's in the same
      // repeat (no boot, no program start); else the whole machine time minus the baseline's;
      // else the measured window alone.
      const windowDiffs: number[] = [];
      const machineDiffs: number[] = [];
      for (const r of measured) {
        const b = baseline.find((x) => x.repeat === r.repeat);
        if (b === undefined) continue;
        machineDiffs.push(r.machineMs - b.machineMs);
        if (r.windowMs !== undefined && b.windowMs !== undefined) {
          windowDiffs.push(r.windowMs - b.windowMs);
        }
      }
      const wall = windowDiffs.length > 0
        ? { wallUsPerOp: median(windowDiffs) * 1000 / ops, wallMethod: "window-baseline" as const }
        : machineDiffs.length > 0
        ? { wallUsPerOp: median(machineDiffs) * 1000 / ops, wallMethod: "baseline" as const }
        : windowMsMedian !== undefined
        ? { wallUsPerOp: windowMsMedian * 1000 / allOps, wallMethod: "window" as const }
        : w.kind === "pv"
        ? {
          wallUsPerOp: median(measured.map((r) => r.machineMs)) * 1000 / ops,
          wallMethod: "machine" as const,
        }
        : {};
      const perTrap = hostUsPerTrap(measured);
      out.push({
        workload: w.name,
        variant: v.id,
        strategy: v.strategy,
        ...(v.batch !== undefined ? { batch: v.batch } : {}),
        n: w.n,
        ...(useBase ? { baseN: w.baseN } : {}),
        ops,
        op: w.op,
        repeats: measured.length,
        machineMsMedian: median(measured.map((r) => r.machineMs)),
        ...(windowMsMedian !== undefined ? { windowMsMedian } : {}),
        ...wall,
        ...(guest.length > 0 ? { guestUsPerOp: median(guest) * 1000 / allOps } : {}),
        perOp,
        totals,
        deterministic: !differing.has(`${w.name}\0${v.id}`),
        ...(Object.keys(perTrap).length > 0 ? { hostUsPerTrap: perTrap } : {}),
      });
    }
  }
  return out;
}
