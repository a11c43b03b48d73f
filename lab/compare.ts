/**
 * The whole comparison from typed options: builds the images, runs the matrix (every workload
 * under every variant, baselines included, `repeat` times), aggregates it, and writes
 * `results.json`, `chart.svg` and `table.txt` to the output folder. Nothing here parses flags or
 * prints: `vmon compare` (cli/compare.ts) turns its flags into {@linkcode CompareOptions}, shows
 * progress through the callbacks and prints the tables and the problems found.
 *
 * @module
 */

import { join } from "node:path";
import { cacheDir } from "../core/cache.ts";
import { buildImage, type BuiltImage } from "../images/mod.ts";
import { checkDeterminism, findMismatches, summarize } from "./aggregate.ts";
import { type CostProfile, projectCells } from "./cost_model.ts";
import { renderChart } from "./chart.ts";
import { buildResults, type CompareResults, type OutputFiles, writeOutputs } from "./results.ts";
import { bootManifest, HOSTPORT_SPEC, type PlannedRun, planRuns, runOne } from "./runner.ts";
import { formatTables } from "./table.ts";
import { BootSnapshots } from "./boot_snapshots.ts";
import type { CellSummary, RunRecord, Variant, WorkloadRun } from "./types.ts";
import { PV_IMAGE } from "./pv.ts";

/** The image the Linux workloads boot unless {@linkcode CompareOptions.image} names another. */
export const BENCH_IMAGE = "linux-rv64-bench";

/** Repeats per cell unless {@linkcode CompareOptions.repeat} says otherwise. */
export const DEFAULT_REPEAT = 3;

/** Seconds after which one run is stopped, unless {@linkcode CompareOptions.timeoutS} says so. */
export const DEFAULT_TIMEOUT_S = 900;

/** What to compare and where the results go. */
export interface CompareOptions {
  /** The workloads, in table order (`workloadRun`, `pvWorkload`). */
  readonly workloads: readonly WorkloadRun[];
  /** The strategy variants, in column order (`strategyVariant`, `batchVariant`). */
  readonly variants: readonly Variant[];
  /** Runs per workload and variant (default {@linkcode DEFAULT_REPEAT}). */
  readonly repeat?: number;
  /** Seconds after which one run is stopped and counted as failed (default 900). */
  readonly timeoutS?: number;
  /** vCPUs of the Linux machines (default: the image's; `pv-update` always runs on one). */
  readonly cpus?: number;
  /** RAM bytes of the Linux machines (default: the image's; not for `pv-update`). */
  readonly memory?: number;
  /**
   * The image the Linux workloads boot: a name to build (default {@linkcode BENCH_IMAGE}) or an
   * image already built.
   */
  readonly image?: string | BuiltImage;
  /** The output folder (default `<cache>/compare/<date>`), created if missing. */
  readonly outDir?: string;
  /**
   * A CPU profile (`COST_PROFILES`, `loadCostProfile`): each cell gets the cost its counters
   * project on it (`projected`), the tables a projected row and the profile's sources as a
   * footnote, the chart a panel row relative to wired, results.json the profile.
   */
  readonly costModel?: CostProfile;
  /** The command line recorded in results.json (default none). */
  readonly commandLine?: readonly string[];
  /** When the comparison started (default now). */
  readonly date?: Date;
  /** Receives the guest console bytes of every run as they arrive. */
  readonly echo?: (bytes: Uint8Array) => void;
  /**
   * Boot each strategy variant once to `vmon: init ready`, snapshot it, and start every Linux
   * run from that snapshot with its workload typed into the console (lab/boot_snapshots.ts)
   * instead of booting each run (`--from-snapshot`).
   */
  readonly fromSnapshot?: boolean;
  /** Told when a variant's boot snapshot is being taken (`fromSnapshot`). */
  readonly onSnapshot?: (variant: Variant, event: "boot" | "written") => void;
  /** Receives progress lines of image builds (nothing when the images are cached). */
  readonly onBuild?: (image: string, line: string) => void;
  /** Called before each run, with its place in the matrix. */
  readonly onRunStart?: (run: PlannedRun, index: number, total: number) => void;
  /** Called after each run with what it recorded (`record.error` says why a run failed). */
  readonly onRunDone?: (run: PlannedRun, record: RunRecord, index: number, total: number) => void;
}

/** What {@linkcode runComparison} produced. */
export interface Comparison {
  /** The contents of results.json: runs, cells, failures, mismatches, counter differences. */
  readonly results: CompareResults;
  /** The aggregated cells. */
  readonly cells: readonly CellSummary[];
  /** The workloads and variants, for `formatTables`. */
  readonly matrix: {
    readonly workloads: readonly WorkloadRun[];
    readonly variants: readonly Variant[];
  };
  /** The files written. */
  readonly files: OutputFiles;
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}

/**
 * Runs the comparison and writes its output folder. Failed runs, results that differ between
 * runs and counters that differ between repeats do not throw: they are in `results`
 * (`failures`, `mismatches`, `differences`) for the caller to report.
 *
 * @param options The matrix, the machine and where the output goes.
 * @returns The results, the cells and the files written.
 * @throws {VmonError} If an image cannot be built, a machine cannot be created (a plugin refuses
 *   its options, the host port lacks the strategy) or the output cannot be written.
 *
 * @example Compare forkwait under wired and shadow, twice each
 * ```ts ignore
 * import { COMPARE_WORKLOADS, runComparison, strategyVariant, workloadRun } from "./mod.ts";
 *
 * const forkwait = COMPARE_WORKLOADS.find((w) => w.name === "forkwait")!;
 * const { results, files } = await runComparison({
 *   workloads: [workloadRun(forkwait, { n: 40 })],
 *   variants: [strategyVariant("wired"), strategyVariant("shadow")],
 *   repeat: 2,
 *   outDir: "/tmp/forkwait",
 * });
 * console.log(results.cells.length, files.json);
 * ```
 */
export async function runComparison(options: CompareOptions): Promise<Comparison> {
  const date = options.date ?? new Date();
  const { workloads, variants } = options;
  const repeat = options.repeat ?? DEFAULT_REPEAT;
  const timeoutS = options.timeoutS ?? DEFAULT_TIMEOUT_S;
  const needsBench = workloads.some((w) => w.kind !== "pv");
  const needsPv = workloads.some((w) => w.kind === "pv");
  const given = typeof options.image === "object" ? options.image : undefined;
  const imageName = given?.name ??
    (typeof options.image === "string" ? options.image : BENCH_IMAGE);
  const outDir = options.outDir ?? join(cacheDir("compare"), timestamp(date));

  const build = (name: string) =>
    buildImage(name, { onProgress: (line) => options.onBuild?.(name, line) });
  const pvImage = needsPv ? await build(PV_IMAGE) : undefined;
  // Only pv-update: the Linux image is not needed (nor built).
  const image = given ?? (needsBench ? await build(imageName) : pvImage!);
  const runs = planRuns({ workloads, variants, repeat });
  const records: RunRecord[] = [];
  const size = {
    ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
    ...(options.memory !== undefined ? { memory: options.memory } : {}),
  };
  const snapshots = options.fromSnapshot === true
    ? new BootSnapshots({
      manifest: (variant) => bootManifest(variant, { image, ...size }),
      timeoutMs: timeoutS * 1000,
      ...(options.echo !== undefined ? { echo: options.echo } : {}),
      onSnapshot: (variant, event) => options.onSnapshot?.(variant, event),
    })
    : undefined;
  try {
    for (const [i, run] of runs.entries()) {
      options.onRunStart?.(run, i, runs.length);
      const record = await runOne(run, {
        image,
        ...(pvImage !== undefined ? { pvImage } : {}),
        ...size,
        timeoutMs: timeoutS * 1000,
        ...(options.echo !== undefined ? { echo: options.echo } : {}),
        ...(snapshots !== undefined ? { snapshots } : {}),
      });
      records.push(record);
      options.onRunDone?.(run, record, i, runs.length);
    }
  } finally {
    await snapshots?.dispose();
  }

  const matrix = { workloads, variants };
  const summary = summarize(records, matrix);
  const cells = options.costModel !== undefined
    ? projectCells(summary, options.costModel)
    : summary;
  const results = buildResults({
    date,
    commandLine: options.commandLine ?? [],
    machine: {
      image: needsBench ? imageName : PV_IMAGE,
      hostport: HOSTPORT_SPEC,
      platform: image.defaults.platform,
      ...(options.cpus !== undefined ? { cpus: options.cpus } : {}),
      ...(options.memory !== undefined ? { memory: options.memory } : {}),
    },
    repeat,
    workloads,
    variants,
    runs: records,
    cells,
    mismatches: findMismatches(records),
    differences: checkDeterminism(records),
    ...(options.costModel !== undefined ? { costModel: options.costModel } : {}),
  });
  const table = formatTables(cells, matrix, {
    style: { head: [], border: [] },
    ...(options.costModel !== undefined ? { costModel: options.costModel } : {}),
  });
  const svg = await renderChart(cells);
  const files = writeOutputs(outDir, { results, svg, table });
  return { results, cells, matrix, files };
}
