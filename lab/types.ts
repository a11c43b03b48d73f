/**
 * The data `vmon compare` records and aggregates: one {@linkcode RunRecord} per machine run,
 * one {@linkcode CellSummary} per workload and strategy variant.
 *
 * @module
 */

/** A workload as the matrix runs it. */
export interface WorkloadRun {
  /** Its name (`forkwait`). */
  readonly name: string;
  /** N: the count the workload takes (forks, MiB, rounds, ...). */
  readonly n: number;
  /** N of the baseline run whose counters are subtracted, or undefined for no baseline. */
  readonly baseN?: number;
  /** Operations per unit of N (faultstorm: 256 pages per MiB); 1 for most. */
  readonly opsPerN: number;
  /** What one operation is, for the table (`fork`, `page`). */
  readonly op: string;
  /** The arguments after the workload name for N (`["1", "200"]` for `churn`). */
  args(n: number): string[];
  /**
   * `bench` (default): a program of the Linux bench image run with `/bench/run.sh`; `pv`: the
   * `pv-guest` image driving the queued strategy's paravirtual update call (lab/pv.ts),
   * whose `args(n)` are kernel command-line options.
   */
  readonly kind?: "bench" | "pv";
}

/** One column of the comparison: a paging strategy with its options. */
export interface Variant {
  /** The label in tables, JSON and the chart: `wired`, `queued` or `queued/b64`. */
  readonly id: string;
  /** The paging plugin (a built-in name or a path). */
  readonly strategy: string;
  /** The paravirtual batch size, for `queued/b<N>` variants (`batchVariant`, `--batch`). */
  readonly batch?: number;
  /** The plugin options. */
  readonly options: Readonly<Record<string, string | number | boolean>>;
}

/** Whether a run measures the workload or is the baseline subtracted from it. */
export type RunPhase = "measure" | "baseline";

/** What one machine run produced. */
export interface RunRecord {
  /** The workload's name. */
  readonly workload: string;
  /** The variant's id. */
  readonly variant: string;
  /** The paging plugin. */
  readonly strategy: string;
  /** The paravirtual batch size, if any. */
  readonly batch?: number;
  /** Measure or baseline. */
  readonly phase: RunPhase;
  /** N of this run. */
  readonly n: number;
  /** The repeat index, from 0. */
  readonly repeat: number;
  /** The command the guest ran. */
  readonly command: string;
  /** The machine's exit status. */
  readonly status: number;
  /** The machine's exit reason. */
  readonly reason: string;
  /** The machine failed (crash, host error, timeout). */
  readonly failed: boolean;
  /** Console lines between the markers that are not `time:` lines or kernel messages. */
  readonly output: readonly string[];
  /** The `result:` lines among them (all of `output` if the workload prints none). */
  readonly result: readonly string[];
  /** The guest's own `time:` line, as printed. */
  readonly timeLine?: string;
  /** Milliseconds in the guest's `time:` line (guest clock: instruction-derived with icount). */
  readonly guestMs?: number;
  /** Status in the end marker. */
  readonly endStatus?: number;
  /** Host milliseconds between the begin and end markers reaching the monitor's console. */
  readonly windowMs?: number;
  /** Host milliseconds the whole machine ran (boot, workload, power-off). */
  readonly machineMs: number;
  /**
   * Operations the guest reported doing, when the workload counts them itself (`pv-update`: the
   * updates it submitted); per-op values of such workloads divide by this.
   */
  readonly ops?: number;
  /** Counters of the whole run, keyed `paging.<name>` and `hostport.<name>`. */
  readonly counters: Readonly<Record<string, number>>;
  /**
   * Host microseconds the strategy's trap handlers took in the whole run, by trap cause (its
   * `host-us.<cause>` entries): host times, kept apart from the counters.
   */
  readonly hostUs?: Readonly<Record<string, number>>;
  /** Exits by kind. */
  readonly exits: Readonly<Record<string, number>>;
  /** Lines the monitor logged during the run (the first 50). */
  readonly log: readonly string[];
  /** Why the run cannot be used, if it cannot. */
  readonly error?: string;
}

/** A counter that differs between repeats of the same run. */
export interface CounterDifference {
  /** The workload. */
  readonly workload: string;
  /** The variant id. */
  readonly variant: string;
  /** Measure or baseline. */
  readonly phase: RunPhase;
  /** The counter key. */
  readonly counter: string;
  /** The value in each repeat, in repeat order. */
  readonly values: readonly number[];
}

/** Output that differs between runs of the same workload and N: a correctness bug. */
export interface ResultMismatch {
  /** The workload. */
  readonly workload: string;
  /** Measure or baseline. */
  readonly phase: RunPhase;
  /** N. */
  readonly n: number;
  /** The reference run (the first successful one). */
  readonly expected: {
    readonly variant: string;
    readonly repeat: number;
    readonly output: readonly string[];
  };
  /** The run that differs. */
  readonly got: {
    readonly variant: string;
    readonly repeat: number;
    readonly output: readonly string[];
  };
}

/** The aggregate of one workload under one variant. */
export interface CellSummary {
  /** The workload. */
  readonly workload: string;
  /** The variant id. */
  readonly variant: string;
  /** The paging plugin. */
  readonly strategy: string;
  /** The paravirtual batch size, if any. */
  readonly batch?: number;
  /** N of the measured runs. */
  readonly n: number;
  /** N of the baseline, if one was subtracted. */
  readonly baseN?: number;
  /**
   * Operations the per-op values divide by: `(n - baseN) * opsPerN`, or `n * opsPerN`, or for a
   * workload that counts its own operations (`pv-update`) the median of the runs' `ops`.
   */
  readonly ops: number;
  /** What one operation is. */
  readonly op: string;
  /** Successful measured runs aggregated. */
  readonly repeats: number;
  /** Median host milliseconds the measured machines ran (boot to power-off). */
  readonly machineMsMedian: number;
  /** Median host milliseconds between the markers' arrival at the monitor's console. */
  readonly windowMsMedian?: number;
  /**
   * Host microseconds per operation: with a baseline, the median of (measured marker window -
   * baseline marker window of the same repeat) divided by `ops` (machine times when a window is
   * missing); without one, the median marker window divided by `n * opsPerN`; for `pv-update`
   * (no markers, a boot of microseconds) the median machine time divided by `ops`.
   */
  readonly wallUsPerOp?: number;
  /** How `wallUsPerOp` was measured. */
  readonly wallMethod?: "window-baseline" | "baseline" | "window" | "machine";
  /** Median guest-clock microseconds per operation, from the guest's `time:` line. */
  readonly guestUsPerOp?: number;
  /** Counters per operation (median over repeats, baseline subtracted), by counter key. */
  readonly perOp: Readonly<Record<string, number>>;
  /** Counters of the measured runs (median over repeats), by counter key. */
  readonly totals: Readonly<Record<string, number>>;
  /** True when every counter was identical across repeats (measure and baseline). */
  readonly deterministic: boolean;
  /**
   * Host microseconds per trap in the strategy's handlers, by cause (and `all`): the median over
   * the measured runs of each run's handler time over its traps of that cause.
   */
  readonly hostUsPerTrap?: Readonly<Record<string, number>>;
  /** The cost projected on a CPU profile (`--cost-model`), when one was asked for. */
  readonly projected?: Projection;
}

/** A cell's cost projected on hardware (lab/cost_model.ts, `projectCost`). */
export interface Projection {
  /** The profile's name. */
  readonly profile: string;
  /** Which walk a TLB fill stands for: nested (EPT/NPT) or native (shadow tables). */
  readonly walk: "nested" | "native";
  /** Projected cycles per operation. */
  readonly cycles: number;
  /** Projected microseconds per operation (`cycles / (ghz * 1000)`). */
  readonly us: number;
  /** Cycles per operation by term: `instructions`, `traps.<cause>`, `validations`, ... */
  readonly terms: Readonly<Record<string, number>>;
  /** `us` over the `wired` variant's of the same workload, when there is one. */
  readonly vsWired?: number;
}
