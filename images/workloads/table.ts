/**
 * The workload table: every workload `/bench/run.sh` runs, with what its arguments mean, what one
 * operation is and, for the workloads the paging comparison measures, the N it runs by default
 * (sized for the rv64 software port, about 100 guest MIPS). The single source of these facts:
 * the image's workload list, `benchCommand` and `vmon compare` (`lab/`) all read it.
 *
 * @example
 * ```ts
 * import { BENCH_WORKLOADS } from "./table.ts";
 *
 * const churn = BENCH_WORKLOADS.find((w) => w.name === "churn");
 * if (churn?.args(200).join(" ") !== "1 200" || churn.n !== 200) throw new Error();
 * ```
 *
 * @module
 */

/** A workload of `/bench/run.sh`. */
export interface WorkloadInfo {
  /** The name `/bench/run.sh` takes. */
  readonly name: string;
  /**
   * The default N of a measurement (`vmon compare`); absent for a workload the comparison does
   * not run.
   */
  readonly n?: number;
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

/** Every workload of `/bench/run.sh`, in its order (`run.sh list`). */
export const BENCH_WORKLOADS: readonly WorkloadInfo[] = [
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
  {
    name: "xz",
    unit: "KiB",
    op: "KiB",
    opsPerN: 1,
    args: single,
    description: "xz (built from Debian's source) compressing and decompressing N KiB of text",
  },
];
