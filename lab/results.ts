/**
 * `results.json` of `vmon compare`: every raw run, the aggregated cells, the problems found, the
 * command line, the vmon version, host facts and the date; and the writing of the output folder
 * (results.json, chart.svg, table.txt), each file renamed into place atomically.
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../core/cache.ts";
import { VmonError } from "../core/errors.ts";
import type { CostProfile } from "./cost_model.ts";
import type {
  CellSummary,
  CounterDifference,
  ResultMismatch,
  RunRecord,
  Variant,
  WorkloadRun,
} from "./types.ts";
import { PV_IMAGE } from "./pv.ts";
import { benchCommand } from "./workloads.ts";

/** The `schema` value of the JSON this version writes. */
export const RESULTS_SCHEMA = "vmon-compare/1";

/** Facts about the host the comparison ran on. */
export interface HostInfo {
  /** `Deno.build.os`. */
  readonly os: string;
  /** `Deno.build.arch`. */
  readonly arch: string;
  /** The kernel release. */
  readonly kernel: string;
  /** The CPU model, from /proc/cpuinfo where available. */
  readonly cpuModel?: string;
  /** Logical CPUs. */
  readonly cpus: number;
  /** Deno's version. */
  readonly deno: string;
}

/** The matrix as recorded in the JSON. */
export interface ResultsConfig {
  /** The image booted. */
  readonly image: string;
  /** The host port and its options. */
  readonly hostport: string;
  /** The platform. */
  readonly platform: string;
  /** vCPUs, if set. */
  readonly cpus?: number;
  /** RAM bytes, if set. */
  readonly memory?: number;
  /** Repeats per cell. */
  readonly repeat: number;
  /** The workloads. */
  readonly workloads: readonly {
    readonly name: string;
    readonly n: number;
    readonly baseN?: number;
    readonly opsPerN: number;
    readonly op: string;
    readonly command: string;
    /** `pv` for `pv-update` (absent for the bench workloads). */
    readonly kind?: "pv";
    /** The image the workload boots, when it is not `image` (`pv-guest`). */
    readonly image?: string;
  }[];
  /** The strategy variants. */
  readonly variants: readonly Variant[];
}

/** The whole `results.json`. */
export interface CompareResults {
  /** {@linkcode RESULTS_SCHEMA}. */
  readonly schema: string;
  /** vmon's version (deno.json). */
  readonly vmonVersion: string;
  /** ISO date and time the comparison started. */
  readonly date: string;
  /** The command line (`vmon compare ...`). */
  readonly commandLine: readonly string[];
  /** The host. */
  readonly host: HostInfo;
  /** The matrix. */
  readonly config: ResultsConfig;
  /**
   * The CPU profile the cells' `projected` costs use (`--cost-model`): every per-event cost with
   * its source and status; absent without a cost model.
   */
  readonly costModel?: CostProfile;
  /** Aggregated cells (medians, per-op values). */
  readonly cells: readonly CellSummary[];
  /** Every run, in the order they ran. */
  readonly runs: readonly RunRecord[];
  /** Result lines that differ between runs: correctness bugs. */
  readonly mismatches: readonly ResultMismatch[];
  /** Counters that differ between repeats: determinism bugs. */
  readonly differences: readonly CounterDifference[];
  /** Runs that failed, with why. */
  readonly failures: readonly {
    readonly workload: string;
    readonly variant: string;
    readonly phase: string;
    readonly repeat: number;
    readonly error: string;
  }[];
}

/** Reads vmon's version from the repository's deno.json. */
export function vmonVersion(): string {
  try {
    const json = JSON.parse(Deno.readTextFileSync(join(REPO_ROOT, "deno.json")));
    return typeof json.version === "string" ? json.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Collects facts about this host. */
export function hostInfo(): HostInfo {
  let cpuModel: string | undefined;
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim();
  } catch {
    cpuModel = undefined;
  }
  return {
    os: Deno.build.os,
    arch: Deno.build.arch,
    kernel: Deno.osRelease(),
    ...(cpuModel !== undefined ? { cpuModel } : {}),
    cpus: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
  };
}

/** The parts {@linkcode buildResults} assembles. */
export interface ResultsParts {
  /** When the comparison started. */
  readonly date: Date;
  /** The command line. */
  readonly commandLine: readonly string[];
  /** The image, host port, platform and machine size. */
  readonly machine: Pick<ResultsConfig, "image" | "hostport" | "platform" | "cpus" | "memory">;
  /** Repeats per cell. */
  readonly repeat: number;
  /** The workloads. */
  readonly workloads: readonly WorkloadRun[];
  /** The variants. */
  readonly variants: readonly Variant[];
  /** Every run. */
  readonly runs: readonly RunRecord[];
  /** The aggregated cells. */
  readonly cells: readonly CellSummary[];
  /** Result mismatches. */
  readonly mismatches: readonly ResultMismatch[];
  /** Counter differences. */
  readonly differences: readonly CounterDifference[];
  /** The CPU profile of the projected costs, if any. */
  readonly costModel?: CostProfile;
  /** Host facts (default: {@linkcode hostInfo}). */
  readonly host?: HostInfo;
  /** vmon's version (default: {@linkcode vmonVersion}). */
  readonly version?: string;
}

/**
 * Assembles `results.json`.
 *
 * @param parts The runs, cells, problems and context.
 * @returns A plain JSON-serializable object.
 */
export function buildResults(parts: ResultsParts): CompareResults {
  return {
    schema: RESULTS_SCHEMA,
    vmonVersion: parts.version ?? vmonVersion(),
    date: parts.date.toISOString(),
    commandLine: [...parts.commandLine],
    host: parts.host ?? hostInfo(),
    config: {
      ...parts.machine,
      repeat: parts.repeat,
      workloads: parts.workloads.map((w) => ({
        name: w.name,
        n: w.n,
        ...(w.baseN !== undefined ? { baseN: w.baseN } : {}),
        opsPerN: w.opsPerN,
        op: w.op,
        command: benchCommand(w, w.n),
        ...(w.kind === "pv" ? { kind: "pv" as const, image: PV_IMAGE } : {}),
      })),
      variants: parts.variants,
    },
    ...(parts.costModel !== undefined ? { costModel: parts.costModel } : {}),
    cells: parts.cells,
    runs: parts.runs,
    mismatches: parts.mismatches,
    differences: parts.differences,
    failures: parts.runs.flatMap((r) =>
      r.error === undefined ? [] : [{
        workload: r.workload,
        variant: r.variant,
        phase: r.phase,
        repeat: r.repeat,
        error: r.error,
      }]
    ),
  };
}

/** Writes `text` to `path` through a unique temporary file and an atomic rename. */
function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, text);
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing to clean up
    }
    const why = err instanceof Error ? err.message : String(err);
    throw new VmonError(`Cannot write "${path}": ${why}`, { cause: err });
  }
}

/** The files {@linkcode writeOutputs} wrote. */
export interface OutputFiles {
  /** results.json. */
  readonly json: string;
  /** chart.svg. */
  readonly svg: string;
  /** table.txt (the tables without colours). */
  readonly table: string;
}

/**
 * Writes results.json, chart.svg and table.txt into `dir` (created if missing).
 *
 * @param dir The output folder.
 * @param files The contents.
 * @returns The paths written.
 * @throws {VmonError} If the folder or a file cannot be written.
 */
export function writeOutputs(
  dir: string,
  files: { readonly results: CompareResults; readonly svg: string; readonly table: string },
): OutputFiles {
  try {
    Deno.mkdirSync(dir, { recursive: true });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new VmonError(`Cannot create the output folder "${dir}": ${why}`, { cause: err });
  }
  const out = {
    json: join(dir, "results.json"),
    svg: join(dir, "chart.svg"),
    table: join(dir, "table.txt"),
  };
  writeAtomic(out.json, JSON.stringify(files.results, null, 2) + "\n");
  writeAtomic(out.svg, files.svg);
  writeAtomic(out.table, files.table + "\n");
  return out;
}
