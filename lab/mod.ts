/**
 * `vmon compare`: runs the same riscv64 Linux workloads under several paging strategies on the
 * rv64 host port with the deterministic icount clock, checks that every run prints the same
 * result and that counters are identical across repeats, and reports a table (stdout),
 * `results.json`, `chart.svg` and `table.txt` (in the output folder). With `--batch 1,8,64` it
 * also runs the `pv-guest` image under the queued strategy's paravirtual update call once per
 * batch size (workload `pv-update`, variants `queued/b<N>`; core/compare/pv.ts).
 *
 * The pieces are usable on their own: {@linkcode resolveWorkloads}, {@linkcode resolveVariants},
 * {@linkcode planRuns} and {@linkcode runOne} build and run the matrix; {@linkcode summarize},
 * {@linkcode checkDeterminism} and {@linkcode findMismatches} aggregate it;
 * {@linkcode formatTables}, {@linkcode buildResults} and {@linkcode renderChart} report it.
 *
 * @example Aggregate recorded runs and render the table
 * ```ts
 * import { formatTables, resolveWorkloads, summarize } from "./mod.ts";
 *
 * const workloads = resolveWorkloads("forkwait", { n: "forkwait=10", baseline: false });
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

import cliProgress from "cli-progress";
import process from "node:process";
import { join } from "node:path";
import { cacheDir } from "../core/cache.ts";
import { VmonError } from "../core/errors.ts";
import { listBuiltinPlugins } from "../core/loader.ts";
import { buildImage, type BuiltImage } from "../images/mod.ts";
import { checkFlags } from "../cli/run_manifest.ts";
import { tableStyle } from "../cli/listing_format.ts";
import { checkDeterminism, findMismatches, summarize } from "./aggregate.ts";
import { renderChart } from "./chart.ts";
import { buildResults, type OutputFiles, writeOutputs } from "./results.ts";
import { HOSTPORT_SPEC, planRuns, runOne } from "./runner.ts";
import { resolveVariants, type StrategyInfo } from "./strategies.ts";
import { formatTables } from "./table.ts";
import type { CounterDifference, ResultMismatch, RunRecord } from "./types.ts";
import { resolveWorkloads } from "./workloads.ts";
import { PV_IMAGE } from "./pv.ts";

export * from "./types.ts";
export * from "./counters.ts";
export {
  checkDeterminism,
  findMismatches,
  flattenCounters,
  median,
  summarize,
} from "./aggregate.ts";
export { BenchCapture, type BenchOutput } from "./capture.ts";
export { chartRows, chartSpec, renderChart } from "./chart.ts";
export { buildResults, hostInfo, RESULTS_SCHEMA, vmonVersion, writeOutputs } from "./results.ts";
export type { CompareResults, HostInfo, OutputFiles, ResultsConfig } from "./results.ts";
export { HOSTPORT_SPEC, planRuns, runManifest, runOne } from "./runner.ts";
export type { PlannedRun, RunOptions } from "./runner.ts";
export { QUEUED, resolveVariants } from "./strategies.ts";
export type { StrategyInfo } from "./strategies.ts";
export { formatTables, formatValue, TRAPS_TIMES_BATCH } from "./table.ts";
export { baselineN, benchCommand, resolveWorkloads, WORKLOADS } from "./workloads.ts";
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
export type { WorkloadInfo } from "./workloads.ts";

/** The image `vmon compare` boots unless `--image` names another. */
export const BENCH_IMAGE = "linux-rv64-bench";

/** Repeats per cell unless `--repeat` says otherwise. */
export const DEFAULT_REPEAT = 3;

/** Seconds after which one run is stopped, unless `--timeout` says otherwise. */
export const DEFAULT_TIMEOUT_S = 900;

/** The flags of `vmon compare`, as commander delivers them. */
export interface CompareFlags {
  /** `--workloads a,b`. */
  workloads?: string;
  /** `--strategies a,b`. */
  strategies?: string;
  /** `--batch 1,8,64`. */
  batch?: string;
  /** `--repeat N`. */
  repeat?: string;
  /** `--n name=N,...`. */
  n?: string;
  /** `--out dir`. */
  out?: string;
  /** `--cpus N`. */
  cpus?: string;
  /** `--mem size`. */
  mem?: string;
  /** `--image name`. */
  image?: string;
  /** `--timeout seconds`. */
  timeout?: string;
  /** `--no-baseline` sets this false. */
  baseline?: boolean;
  /** `--console`: echo the guest console on stderr. */
  console?: boolean;
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new VmonError(`Invalid ${flag} "${text}": expected a whole number from ${min} to ${max}`);
  }
  return n;
}

/** The paging plugins that load, with their options schemas. */
async function availableStrategies(): Promise<StrategyInfo[]> {
  const plugins = await listBuiltinPlugins({ kind: "paging" });
  return plugins.filter((p) => p.error === undefined).map((p) => ({
    name: p.name,
    ...(p.options !== undefined ? { options: p.options } : {}),
  }));
}

/**
 * The command line the flags stand for (recorded in results.json).
 *
 * @param flags The flags as commander delivered them.
 * @returns `["vmon", "compare", ...]`.
 */
export function commandLineOf(flags: CompareFlags): string[] {
  const out = ["vmon", "compare"];
  const value = (name: string, v: string | undefined) => {
    if (v !== undefined) out.push(`--${name}`, v);
  };
  value("workloads", flags.workloads);
  value("strategies", flags.strategies);
  value("batch", flags.batch);
  value("repeat", flags.repeat);
  value("n", flags.n);
  value("out", flags.out);
  value("cpus", flags.cpus);
  value("mem", flags.mem);
  value("image", flags.image);
  value("timeout", flags.timeout);
  if (flags.baseline === false) out.push("--no-baseline");
  if (flags.console) out.push("--console");
  return out;
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
}

function describeMismatch(m: ResultMismatch): string {
  const show = (lines: readonly string[]) => lines.length > 0 ? lines.join(" / ") : "(nothing)";
  return `${m.workload} (${m.phase}, N=${m.n}): ${m.got.variant} repeat ${
    m.got.repeat + 1
  } printed "${show(m.got.output)}" but ${m.expected.variant} repeat ${
    m.expected.repeat + 1
  } printed "${show(m.expected.output)}"`;
}

/** Most lines printed per kind of problem; results.json has them all. */
const MAX_PROBLEM_LINES = 20;

function printLimited(lines: readonly string[], where: string): void {
  for (const line of lines.slice(0, MAX_PROBLEM_LINES)) console.error(`  ${line}`);
  if (lines.length > MAX_PROBLEM_LINES) {
    console.error(`  ... and ${lines.length - MAX_PROBLEM_LINES} more in ${where}`);
  }
}

function describeDifference(d: CounterDifference): string {
  return `${d.workload} under ${d.variant} (${d.phase}): ${d.counter} was ${
    d.values.join(", ")
  } in repeats 1..${d.values.length}`;
}

/** A progress display on stderr: a bar on a terminal, one line per run otherwise. */
class Progress {
  #bar?: cliProgress.SingleBar;
  #total: number;

  constructor(total: number) {
    this.#total = total;
    if (process.stderr.isTTY === true) {
      this.#bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format: "compare [{bar}] {value}/{total} {run} {eta_formatted} left",
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 4,
      }, cliProgress.Presets.shades_classic);
      this.#bar.start(total, 0, { run: "" });
    }
  }

  start(index: number, label: string): void {
    if (this.#bar) this.#bar.update(index, { run: label });
    else console.error(`vmon: compare: [${index + 1}/${this.#total}] ${label}`);
  }

  done(index: number, label: string, record: RunRecord): void {
    if (record.error !== undefined) this.note(`vmon: compare: ${label} failed: ${record.error}`);
    this.#bar?.update(index + 1, { run: label });
  }

  note(line: string): void {
    if (this.#bar) {
      this.#bar.stop();
      console.error(line);
      this.#bar.start(this.#total, this.#bar.getProgress() * this.#total, { run: "" });
    } else {
      console.error(line);
    }
  }

  stop(): void {
    this.#bar?.stop();
  }
}

/**
 * Runs `vmon compare` with the command's flags: builds the bench image, runs the matrix with a
 * progress bar on stderr, prints the tables on stdout and writes results.json, chart.svg and
 * table.txt to the output folder.
 *
 * @param flags The command-line flags.
 * @param options `commandLine`: what to record in results.json (default: rebuilt from `flags`);
 *   `image`: an already built image to boot instead of building `--image` (recorded under its
 *   name).
 * @returns 0 when every run succeeded, printed the same result and had deterministic counters.
 * @throws {VmonError} For bad flags (before anything runs), a machine that cannot be built, and
 *   at the end (after writing the outputs) for failed runs, result mismatches and counters that
 *   differ between repeats.
 */
export async function compareCommand(
  flags: CompareFlags,
  options: { commandLine?: readonly string[]; image?: BuiltImage } = {},
): Promise<number> {
  const date = new Date();
  const checked = checkFlags({ cpus: flags.cpus, mem: flags.mem });
  const repeat = flags.repeat !== undefined
    ? wholeNumber("--repeat", flags.repeat, 1, 1000)
    : DEFAULT_REPEAT;
  const timeoutS = flags.timeout !== undefined
    ? wholeNumber("--timeout", flags.timeout, 1, 7 * 24 * 3600)
    : DEFAULT_TIMEOUT_S;
  const workloads = resolveWorkloads(flags.workloads, {
    ...(flags.n !== undefined ? { n: flags.n } : {}),
    baseline: flags.baseline !== false,
    pv: flags.batch !== undefined,
  });
  const variants = resolveVariants(flags.strategies, {
    available: await availableStrategies(),
    ...(flags.batch !== undefined ? { batch: flags.batch } : {}),
  });
  const needsBench = workloads.some((w) => w.kind !== "pv");
  const needsPv = workloads.some((w) => w.kind === "pv");
  const imageName = options.image?.name ?? flags.image ?? BENCH_IMAGE;
  if (flags.out !== undefined && flags.out.trim() === "") {
    throw new VmonError(`Invalid --out "": the folder name is empty`);
  }
  const outDir = flags.out ?? join(cacheDir("compare"), timestamp(date));

  const build = (name: string) =>
    buildImage(name, { onProgress: (line) => console.error(`vmon: image ${name}: ${line}`) });
  const pvImage = needsPv ? await build(PV_IMAGE) : undefined;
  // Only pv-update: the Linux image is not needed (nor built).
  const image = options.image ?? (needsBench ? await build(imageName) : pvImage!);
  const runs = planRuns({ workloads, variants, repeat });
  const progress = new Progress(runs.length);
  const records: RunRecord[] = [];
  const stderr = (bytes: Uint8Array) => {
    let o = 0;
    while (o < bytes.length) o += Deno.stderr.writeSync(bytes.subarray(o));
  };
  try {
    for (const [i, run] of runs.entries()) {
      const label = `${run.workload.name} ${run.variant.id} ${
        run.phase === "baseline" ? `baseline N=${run.n}` : `#${run.repeat + 1}`
      }`;
      progress.start(i, label);
      const record = await runOne(run, {
        image,
        ...(pvImage !== undefined ? { pvImage } : {}),
        ...(checked.cpus !== undefined ? { cpus: checked.cpus } : {}),
        ...(checked.memory !== undefined ? { memory: checked.memory } : {}),
        timeoutMs: timeoutS * 1000,
        ...(flags.console ? { echo: stderr } : {}),
      });
      records.push(record);
      progress.done(i, label, record);
    }
  } finally {
    progress.stop();
  }

  const matrix = { workloads, variants };
  const cells = summarize(records, matrix);
  const mismatches = findMismatches(records);
  const differences = checkDeterminism(records);
  const results = buildResults({
    date,
    commandLine: options.commandLine ?? commandLineOf(flags),
    machine: {
      image: needsBench ? imageName : PV_IMAGE,
      hostport: HOSTPORT_SPEC,
      platform: image.defaults.platform,
      ...(checked.cpus !== undefined ? { cpus: checked.cpus } : {}),
      ...(checked.memory !== undefined ? { memory: checked.memory } : {}),
    },
    repeat,
    workloads,
    variants,
    runs: records,
    cells,
    mismatches,
    differences,
  });
  const plain = formatTables(cells, matrix, { style: { head: [], border: [] } });
  const svg = await renderChart(cells);
  const files: OutputFiles = writeOutputs(outDir, { results, svg, table: plain });
  console.log(formatTables(cells, matrix, { style: tableStyle(Deno.stdout) }));
  console.error(`vmon: compare: wrote ${files.json}, ${files.svg} and ${files.table}`);

  const problems: string[] = [];
  if (results.failures.length > 0) {
    console.error(`vmon: compare: ${results.failures.length} run(s) failed:`);
    printLimited(
      results.failures.map((f) =>
        `${f.workload} ${f.variant} ${f.phase} #${f.repeat + 1}: ${f.error}`
      ),
      files.json,
    );
    problems.push(`${results.failures.length} run(s) failed`);
  }
  if (mismatches.length > 0) {
    console.error(
      `vmon: compare: results differ between runs (a correctness bug in a strategy or the port):`,
    );
    printLimited(mismatches.map(describeMismatch), files.json);
    problems.push(`${mismatches.length} result mismatch(es)`);
  }
  if (differences.length > 0) {
    console.error(
      `vmon: compare: counters differ between repeats (the icount clock should make them identical):`,
    );
    printLimited(differences.map(describeDifference), files.json);
    problems.push(`${differences.length} counter(s) differ between repeats`);
  }
  if (problems.length > 0) {
    throw new VmonError(
      `The comparison found problems: ${problems.join(", ")} (details above and in ${files.json})`,
    );
  }
  return 0;
}
