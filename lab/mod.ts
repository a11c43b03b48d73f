/**
 * The paging comparison harness (what `vmon compare` runs): the same riscv64 Linux workloads
 * under several paging strategies on the rv64 host port with the deterministic icount clock,
 * checking that every run prints the same result and that counters are identical across
 * repeats, reported as tables, `results.json`, `chart.svg` and `table.txt`. Paravirtual batch
 * variants (`queued/b<N>`) run the `pv-guest` image under the queued strategy's update call once
 * per batch size (workload `pv-update`, pv.ts). Options are typed values; the command line and
 * its flags live in cli/compare.ts.
 *
 * {@linkcode runComparison} does it all from {@linkcode CompareOptions}. The pieces are usable on
 * their own: {@linkcode workloadRun}, {@linkcode pvWorkload}, {@linkcode strategyVariant} and
 * {@linkcode batchVariant} make the matrix, {@linkcode planRuns} and {@linkcode runOne} run it;
 * {@linkcode summarize}, {@linkcode checkDeterminism} and {@linkcode findMismatches} aggregate
 * it; {@linkcode projectCells} projects it onto a CPU profile ({@linkcode COST_PROFILES},
 * {@linkcode loadCostProfile}); {@linkcode formatTables}, {@linkcode buildResults} and
 * {@linkcode renderChart} report it.
 *
 * @example Aggregate recorded runs and render the table
 * ```ts
 * import { COMPARE_WORKLOADS, formatTables, summarize, workloadRun } from "./mod.ts";
 *
 * const forkwait = COMPARE_WORKLOADS.find((w) => w.name === "forkwait")!;
 * const workloads = [workloadRun(forkwait, { n: 10, baseline: false })];
 * const variants = [{ id: "wired", strategy: "wired", options: {} }];
 * const run = {
 *   workload: "forkwait", variant: "wired", strategy: "wired", phase: "measure" as const, n: 10,
 *   repeat: 0, command: "/bench/run.sh forkwait 10", status: 0, reason: "guest exit",
 *   failed: false, output: ["result: x"], result: ["result: x"], windowMs: 5, machineMs: 900,
 *   counters: { "paging.traps": 0, "hostport.instructions": 5000 }, exits: {}, log: [],
 * };
 * const cells = summarize([run], { workloads, variants });
 * const text = formatTables(cells, { workloads, variants });
 * if (cells[0]?.perOp["hostport.instructions"] !== 500 || !text.includes("500")) {
 *   throw new Error(text);
 * }
 * ```
 *
 * @module
 */

export * from "./types.ts";
export * from "./counters.ts";
export {
  checkDeterminism,
  findMismatches,
  flattenCounters,
  flattenHostTimes,
  hostUsPerTrap,
  median,
  summarize,
} from "./aggregate.ts";
export {
  COST_EVENT_TEXT,
  COST_EVENTS,
  COST_PROFILES,
  costFootnote,
  costProfileNames,
  DEFAULT_COST_PROFILE,
  loadCostProfile,
  parseCostProfile,
  projectCells,
  projectCost,
} from "./cost_model.ts";
export type { CostEvent, CostProfile, CostStatus, EventCost } from "./cost_model.ts";
export { chartRows, chartSpec, renderChart } from "./chart.ts";
export {
  BENCH_IMAGE,
  type CompareOptions,
  type Comparison,
  DEFAULT_REPEAT,
  DEFAULT_TIMEOUT_S,
  runComparison,
} from "./compare.ts";
export { buildResults, hostInfo, RESULTS_SCHEMA, vmonVersion, writeOutputs } from "./results.ts";
export type { CompareResults, HostInfo, OutputFiles, ResultsConfig } from "./results.ts";
export {
  bootManifest,
  HOSTPORT,
  HOSTPORT_SPEC,
  planRuns,
  runMachine,
  runManifest,
  runOne,
} from "./runner.ts";
export type { PlannedRun, RunMachineOptions, RunOptions } from "./runner.ts";
export {
  availableStrategies,
  batchVariant,
  MAX_BATCH_OPTION,
  maxBatch,
  PARAVIRTUAL_OPTION,
  QUEUED,
  sortStrategies,
  strategyVariant,
} from "./strategies.ts";
export type { StrategyInfo } from "./strategies.ts";
export {
  formatTables,
  formatValue,
  MIN_TRAPS_FOR_OVERHEAD,
  overheadPerTrap,
  TRAPS_TIMES_BATCH,
} from "./table.ts";
export {
  BASELINE_DIVISOR,
  baselineN,
  benchCommand,
  COMPARE_WORKLOADS,
  type CompareWorkload,
  workloadRun,
} from "./workloads.ts";
export {
  parsePvOutput,
  PV_DEFAULT_UPDATES,
  PV_GUEST_MAX_BATCH,
  PV_IMAGE,
  PV_RANDOM,
  PV_SEED,
  PV_WORKLOAD,
  pvCmdline,
  pvWorkload,
  variantsFor,
} from "./pv.ts";
export type { PvOutput } from "./pv.ts";
