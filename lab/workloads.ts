/**
 * The workloads of the `linux-rv64-bench` image that `vmon compare` knows, with the N each runs
 * by default (sized for the rv64 software port, about 100 guest MIPS), and the parsing of
 * `--workloads` and `--n`. Inside the guest a workload runs as `/bench/run.sh <name> <args>`.
 *
 * @module
 */

import { VmonError } from "../core/errors.ts";
import { PV_DEFAULT_UPDATES, PV_WORKLOAD, pvCmdline, pvWorkload } from "./pv.ts";
import type { WorkloadRun } from "./types.ts";

/** A workload the comparison knows. */
export interface WorkloadInfo {
  /** The name `/bench/run.sh` takes. */
  readonly name: string;
  /** Default N. */
  readonly n: number;
  /** What N counts (`--n` help and docs). */
  readonly unit: string;
  /** What one operation is, for per-op values. */
  readonly op: string;
  /** Operations per unit of N (1 unless N is not the operation count). */
  readonly opsPerN: number;
  /** The arguments after the name for N. */
  readonly args: (n: number) => string[];
  /** One line on what it measures. */
  readonly description: string;
}

const single = (n: number) => [String(n)];

/** The seed `churn` runs with (its result depends only on the seed and N). */
export const CHURN_SEED = 1;

/** Every known workload, in the order `vmon compare` runs them. */
export const WORKLOADS: readonly WorkloadInfo[] = [
  {
    name: "forkwait",
    n: 200,
    unit: "forks",
    op: "fork",
    opsPerN: 1,
    args: single,
    description: "fork + child _exit + wait: address-space copy and teardown",
  },
  {
    name: "execloop",
    n: 50,
    unit: "execs",
    op: "exec",
    opsPerN: 1,
    args: single,
    description: "fork + exec /bin/true + wait: new address spaces from an ELF",
  },
  {
    name: "faultstorm",
    n: 16,
    unit: "MiB",
    op: "page",
    opsPerN: 256,
    args: single,
    description: "touch every 4 KiB page of a fresh anonymous mapping: first-touch faults",
  },
  {
    name: "mmapchurn",
    n: 200,
    unit: "rounds",
    op: "round",
    opsPerN: 1,
    args: single,
    description: "mmap/munmap of varied sizes with touches",
  },
  {
    name: "mprotect",
    n: 200,
    unit: "rounds",
    op: "round",
    opsPerN: 1,
    args: single,
    description: "toggle PROT_READ and PROT_READ|PROT_WRITE on a region and touch it",
  },
  {
    name: "pipepong",
    n: 500,
    unit: "round trips",
    op: "round trip",
    opsPerN: 1,
    args: single,
    description: "two processes ping-pong a byte over two pipes: context switches",
  },
  {
    name: "cpuloop",
    n: 2_000_000,
    unit: "rounds",
    op: "round",
    opsPerN: 1,
    args: single,
    description: "integer loop without memory traffic or system calls: the control",
  },
  {
    name: "churn",
    n: 200,
    unit: "operations",
    op: "operation",
    opsPerN: 1,
    args: (n) => [String(CHURN_SEED), String(n)],
    description: "fixed-seed mix of fork, mmap, munmap, mprotect, madvise, touch and checksum",
  },
  {
    name: "lua",
    n: 1000,
    unit: "rounds",
    op: "round",
    opsPerN: 1,
    args: single,
    description: "Lua 5.4 (built from Debian's source) churning tables, strings and coroutines",
  },
  {
    name: "sqlite3",
    n: 1000,
    unit: "rows",
    op: "row",
    opsPerN: 1,
    args: single,
    description: "SQLite (built from Debian's source) inserting, indexing and querying N rows",
  },
];

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

function knownList(): string {
  return [...WORKLOADS.map((w) => w.name), `${PV_WORKLOAD} (with --batch)`].join(", ");
}

function splitList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
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
    if (name !== PV_WORKLOAD && !WORKLOADS.some((w) => w.name === name)) {
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
 * (`pv: true`) the paravirtual workload `pv-update` (core/compare/pv.ts) is added at the end
 * unless `--workloads` names it; `--workloads pv-update` alone runs only it. Its N (`--n
 * pv-update=1024`) is the pv-guest's count of valid updates; it has no baseline.
 *
 * @param names The comma-separated names, or undefined for every known workload.
 * @param options `n`: the `--n` text; `baseline: false` runs no baseline; `pv`: `--batch` was
 *   given.
 * @throws {VmonError} One line naming an unknown workload and listing the known ones, or saying
 *   that `pv-update` needs `--batch`.
 *
 * @example
 * ```ts
 * import { resolveWorkloads } from "./workloads.ts";
 *
 * const [w] = resolveWorkloads("forkwait", { n: "forkwait=40" });
 * if (w?.n !== 40 || w.baseN !== 5 || w.args(40).join(" ") !== "40") throw new Error("bad");
 * ```
 */
export function resolveWorkloads(
  names: string | undefined,
  options: { n?: string; baseline?: boolean; pv?: boolean } = {},
): WorkloadRun[] {
  const overrides = options.n !== undefined ? parseNOverrides(options.n) : new Map();
  const wanted = names === undefined ? WORKLOADS.map((w) => w.name) : splitList(names);
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
    const info = WORKLOADS.find((w) => w.name === name);
    if (info === undefined) {
      throw new VmonError(`Unknown workload "${name}": known workloads are ${knownList()}`);
    }
    if (out.some((w) => w.name === name)) {
      throw new VmonError(`Invalid --workloads "${names}": "${name}" is given twice`);
    }
    const n: number = overrides.get(name) ?? info.n;
    const baseN = options.baseline === false ? undefined : baselineN(n);
    out.push({
      name,
      n,
      ...(baseN !== undefined ? { baseN } : {}),
      opsPerN: info.opsPerN,
      op: info.op,
      args: info.args,
    });
  }
  for (const name of overrides.keys()) {
    if (!wanted.includes(name)) {
      throw new VmonError(`Invalid --n: workload "${name}" is not in --workloads`);
    }
  }
  return out;
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
  return ["/bench/run.sh", workload.name, ...workload.args(n)].join(" ");
}
