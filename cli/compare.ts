/**
 * `vmon compare`: the command-line face of the paging comparison (lab/). Turns the command's
 * flags into the lab's typed options (checking each flag once, with one clear line per mistake),
 * runs {@linkcode runComparison} with a progress display on stderr, prints the tables on stdout
 * and reports failed runs, result mismatches and counters that differ between repeats.
 *
 * @example Resolve `--workloads` and `--n` into the workloads of the matrix
 * ```ts
 * import { resolveWorkloads } from "./compare.ts";
 *
 * const [w] = resolveWorkloads("forkwait", { n: "forkwait=40" });
 * if (w?.n !== 40 || w.baseN !== 5 || w.args(40).join(" ") !== "40") throw new Error("bad");
 * ```
 *
 * @module
 */

import cliProgress from "cli-progress";
import { resolve } from "node:path";
import process from "node:process";
import { VmonError } from "../core/errors.ts";
import type { BuiltImage } from "../images/mod.ts";
import {
  availableStrategies,
  batchVariant,
  COMPARE_WORKLOADS,
  type Comparison,
  type CostProfile,
  type CounterDifference,
  DEFAULT_REPEAT,
  DEFAULT_TIMEOUT_S,
  formatTables,
  loadCostProfile,
  MAX_BATCH_OPTION,
  maxBatch,
  type PlannedRun,
  PV_DEFAULT_UPDATES,
  PV_GUEST_MAX_BATCH,
  PV_WORKLOAD,
  pvWorkload,
  QUEUED,
  type ResultMismatch,
  runComparison,
  type RunRecord,
  sortStrategies,
  type StrategyInfo,
  strategyVariant,
  type Variant,
  type WorkloadRun,
  workloadRun,
} from "../lab/mod.ts";
import { tableStyle } from "./listing_format.ts";
import { checkFlags } from "./run_manifest.ts";

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
  /** `--cost-model NAME|file.json`: project each cell's cost on a CPU profile. */
  costModel?: string;
  /** `--from-snapshot`: boot each strategy once, start every Linux run from its snapshot. */
  fromSnapshot?: boolean;
}

function splitList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function wholeNumber(flag: string, text: string, min: number, max: number): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new VmonError(`Invalid ${flag} "${text}": expected a whole number from ${min} to ${max}`);
  }
  return n;
}

function knownList(): string {
  return [...COMPARE_WORKLOADS.map((w) => w.name), `${PV_WORKLOAD} (with --batch)`].join(", ");
}

/**
 * Parses `--n forkwait=200,execloop=50` into N by workload name.
 *
 * @param text The flag's value.
 * @throws {VmonError} On a malformed pair, an unknown workload or an N that is not a whole number
 *   of at least 1.
 */
export function parseNOverrides(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const pair of splitList(text)) {
    const m = /^([a-z0-9_-]+)=(\d+)$/.exec(pair);
    if (!m) {
      throw new VmonError(
        `Invalid --n "${text}": "${pair}" is not <workload>=<whole number>`,
      );
    }
    const [, name = "", value = ""] = m;
    if (name !== PV_WORKLOAD && !COMPARE_WORKLOADS.some((w) => w.name === name)) {
      throw new VmonError(
        `Invalid --n "${text}": unknown workload "${name}" (known: ${knownList()})`,
      );
    }
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new VmonError(`Invalid --n "${text}": N of "${name}" must be at least 1`);
    }
    out.set(name, n);
  }
  return out;
}

/**
 * Resolves `--workloads` and `--n` into the workloads to run, in the order given. With `--batch`
 * (`pv: true`) the paravirtual workload `pv-update` (lab/pv.ts) is added at the end unless
 * `--workloads` names it; `--workloads pv-update` alone runs only it. Its N (`--n
 * pv-update=1024`) is the pv-guest's count of valid updates; it has no baseline.
 *
 * @param names The comma-separated names, or undefined for every known workload.
 * @param options `n`: the `--n` text; `baseline: false` runs no baseline; `pv`: `--batch` was
 *   given.
 * @throws {VmonError} One line naming an unknown workload and listing the known ones, or saying
 *   that `pv-update` needs `--batch`.
 */
export function resolveWorkloads(
  names: string | undefined,
  options: { n?: string; baseline?: boolean; pv?: boolean } = {},
): WorkloadRun[] {
  const overrides = options.n !== undefined ? parseNOverrides(options.n) : new Map();
  const wanted = names === undefined ? COMPARE_WORKLOADS.map((w) => w.name) : splitList(names);
  if (wanted.length === 0) throw new VmonError(`Invalid --workloads "${names}": the list is empty`);
  const out: WorkloadRun[] = [];
  if (options.pv === true && !wanted.includes(PV_WORKLOAD)) wanted.push(PV_WORKLOAD);
  for (const name of wanted) {
    if (name === PV_WORKLOAD) {
      if (options.pv !== true) {
        throw new VmonError(
          `Invalid --workloads "${names}": ${PV_WORKLOAD} runs the queued strategy's paravirtual update call and needs --batch (such as --batch 1,8,64,512)`,
        );
      }
      if (out.some((w) => w.name === name)) {
        throw new VmonError(`Invalid --workloads "${names}": "${name}" is given twice`);
      }
      out.push(pvWorkload(overrides.get(name) ?? PV_DEFAULT_UPDATES));
      continue;
    }
    const info = COMPARE_WORKLOADS.find((w) => w.name === name);
    if (info === undefined) {
      throw new VmonError(`Unknown workload "${name}": known workloads are ${knownList()}`);
    }
    if (out.some((w) => w.name === name)) {
      throw new VmonError(`Invalid --workloads "${names}": "${name}" is given twice`);
    }
    out.push(workloadRun(info, { n: overrides.get(name) ?? info.n, baseline: options.baseline }));
  }
  for (const name of overrides.keys()) {
    if (!wanted.includes(name)) {
      throw new VmonError(`Invalid --n: workload "${name}" is not in --workloads`);
    }
  }
  return out;
}

function parseBatches(text: string): number[] {
  const out: number[] = [];
  for (const item of splitList(text)) {
    const n = /^\d+$/.test(item) ? Number(item) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new VmonError(
        `Invalid --batch "${text}": "${item}" is not a whole number of at least 1`,
      );
    }
    if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0) throw new VmonError(`Invalid --batch "${text}": the list is empty`);
  return out;
}

/**
 * Resolves `--strategies` and `--batch` into the comparison's variants.
 *
 * @param names Comma-separated strategy names, or undefined for every available one.
 * @param options `available`: the paging plugins that exist (name and options schema);
 *   `batch`: the `--batch` text.
 * @returns The variants: each strategy with default options (in display order when `names` is
 *   undefined), then `queued/b<N>` per batch size. The batch variants run only the `pv-update`
 *   workload, whatever `--strategies` says, so `queued` need not be listed there; it must be
 *   available.
 * @throws {VmonError} One line naming an unknown strategy and listing the available ones, or
 *   explaining why `--batch` cannot apply (no queued strategy, a size above what one call takes).
 *
 * @example
 * ```ts
 * import { resolveVariants } from "./compare.ts";
 *
 * const available = [
 *   { name: "wired" },
 *   { name: "queued", options: { paravirtual: { type: "boolean" as const, description: "pv" } } },
 * ];
 * const v = resolveVariants("wired,queued", { available, batch: "8,1" });
 * if (v.map((x) => x.id).join() !== "wired,queued,queued/b8,queued/b1") throw new Error("bad");
 * if (v[2]?.batch !== 8 || v[2].options.paravirtual !== true) throw new Error("bad options");
 * ```
 */
export function resolveVariants(
  names: string | undefined,
  options: { readonly available: readonly StrategyInfo[]; readonly batch?: string },
): Variant[] {
  const available = sortStrategies(options.available);
  const known = available.map((s) => s.name).join(", ") || "none";
  const wanted = names === undefined ? available.map((s) => s.name) : splitList(names);
  if (wanted.length === 0) {
    throw new VmonError(`Invalid --strategies "${names ?? ""}": the list is empty`);
  }
  const out: Variant[] = [];
  for (const name of wanted) {
    if (!available.some((s) => s.name === name)) {
      throw new VmonError(`Unknown paging strategy "${name}": available strategies are ${known}`);
    }
    if (out.some((v) => v.id === name)) {
      throw new VmonError(`Invalid --strategies "${names}": "${name}" is given twice`);
    }
    out.push(strategyVariant(name));
  }
  if (options.batch !== undefined) {
    const batches = parseBatches(options.batch);
    const queued = available.find((s) => s.name === QUEUED);
    if (queued === undefined) {
      throw new VmonError(
        `Cannot use --batch: it runs the pv-guest under the ${QUEUED} strategy, which is not available (available strategies are ${known})`,
      );
    }
    const limit = maxBatch(queued);
    for (const b of batches) {
      if (b > limit) {
        throw new VmonError(
          `Invalid --batch "${options.batch}": ${b} is above ${limit}, the most ${
            limit === PV_GUEST_MAX_BATCH
              ? "the pv-guest submits in one call"
              : `the ${QUEUED} strategy accepts in one call ("${MAX_BATCH_OPTION}")`
          }`,
        );
      }
      out.push(batchVariant(queued, b));
    }
  }
  return out;
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
  value("cost-model", flags.costModel);
  if (flags.baseline === false) out.push("--no-baseline");
  if (flags.fromSnapshot) out.push("--from-snapshot");
  if (flags.console) out.push("--console");
  return out;
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
 * Checks `--out` before any run (a comparison takes minutes): the folder, resolved against the
 * user's directory, must be a folder or not exist yet.
 *
 * @returns The absolute folder.
 */
function checkOutDir(out: string): string {
  if (out.trim() === "") throw new VmonError(`Invalid --out "": the folder name is empty`);
  const dir = resolve(out);
  try {
    if (!Deno.statSync(dir).isDirectory) {
      throw new VmonError(`Invalid --out "${dir}": it exists and is not a folder`);
    }
  } catch (err) {
    if (err instanceof VmonError) throw err;
    if (!(err instanceof Deno.errors.NotFound)) {
      throw new VmonError(`Invalid --out "${dir}": ${(err as Error).message}`);
    }
  }
  return dir;
}

/** How a run is named in progress lines. */
function runLabel(run: PlannedRun): string {
  return `${run.workload.name} ${run.variant.id} ${
    run.phase === "baseline" ? `baseline N=${run.n}` : `#${run.repeat + 1}`
  }`;
}

/** Writes all of `bytes` to stderr. */
function writeStderr(bytes: Uint8Array): void {
  let o = 0;
  while (o < bytes.length) o += Deno.stderr.writeSync(bytes.subarray(o));
}

/**
 * Runs `vmon compare` with the command's flags: checks them, builds the images, runs the matrix
 * with a progress bar on stderr, prints the tables on stdout and writes results.json, chart.svg
 * and table.txt to the output folder.
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
  const { cpus, memory } = checkFlags({ cpus: flags.cpus, mem: flags.mem });
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
  const outDir = flags.out === undefined ? undefined : checkOutDir(flags.out);
  const costModel: CostProfile | undefined = flags.costModel === undefined
    ? undefined
    : loadCostProfile(flags.costModel);
  const image = options.image ?? flags.image;

  let progress: Progress | undefined;
  let comparison: Comparison;
  try {
    comparison = await runComparison({
      workloads,
      variants,
      repeat,
      timeoutS,
      ...(cpus !== undefined ? { cpus } : {}),
      ...(memory !== undefined ? { memory } : {}),
      ...(image !== undefined ? { image } : {}),
      ...(outDir !== undefined ? { outDir } : {}),
      ...(costModel !== undefined ? { costModel } : {}),
      commandLine: options.commandLine ?? commandLineOf(flags),
      date,
      ...(flags.console ? { echo: writeStderr } : {}),
      ...(flags.fromSnapshot ? { fromSnapshot: true } : {}),
      onSnapshot: (variant, event) => {
        const line = event === "boot"
          ? `vmon: compare: booting ${variant.id} for its snapshot`
          : `vmon: compare: snapshot of ${variant.id} taken at "vmon: init ready"`;
        if (progress) progress.note(line);
        else console.error(line);
      },
      onBuild: (name, line) => console.error(`vmon: image ${name}: ${line}`),
      onRunStart: (run, index, total) => {
        progress ??= new Progress(total);
        progress.start(index, runLabel(run));
      },
      onRunDone: (run, record, index) => progress?.done(index, runLabel(run), record),
    });
  } finally {
    progress?.stop();
  }

  const { results, cells, matrix, files } = comparison;
  console.log(formatTables(cells, matrix, {
    style: tableStyle(Deno.stdout),
    ...(costModel !== undefined ? { costModel } : {}),
  }));
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
  if (results.mismatches.length > 0) {
    console.error(
      `vmon: compare: results differ between runs (a correctness bug in a strategy or the port):`,
    );
    printLimited(results.mismatches.map(describeMismatch), files.json);
    problems.push(`${results.mismatches.length} result mismatch(es)`);
  }
  if (results.differences.length > 0) {
    console.error(
      `vmon: compare: counters differ between repeats (the icount clock should make them identical):`,
    );
    printLimited(results.differences.map(describeDifference), files.json);
    problems.push(`${results.differences.length} counter(s) differ between repeats`);
  }
  if (problems.length > 0) {
    throw new VmonError(
      `The comparison found problems: ${problems.join(", ")} (details above and in ${files.json})`,
    );
  }
  return 0;
}
