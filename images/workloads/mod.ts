/**
 * The `linux-rv64-bench` image: the `linux-rv64` kernel and initramfs plus the paging-comparison
 * workloads under `/bench` (appended to the initramfs as a second gzip-compressed cpio member,
 * which the kernel unpacks on top of the first):
 *
 * - `/bench/run.sh WORKLOAD [ARGS...]` runs one workload between marker lines;
 * - `/bench/bin/`: the workload programs written here (`src/*.c`), the helpers `timeit` and
 *   `gendata`, and `lua`, `sqlite3` and `xz` cross-built from Debian source packages;
 * - `/bench/lua/bench.lua` and `/bench/sqlite3/bench.sql`: their committed scripts.
 *
 * Every step is cached under `cacheDir("images", "workloads")`; see README.md for the
 * workloads and how to run them. The facts about the workloads (arguments, units, default N) are
 * in one table, {@linkcode BENCH_WORKLOADS} (table.ts); their output is parsed by
 * {@linkcode BenchCapture} and {@linkcode parseBenchOutput} (results.ts).
 *
 * @example Run a workload: the command for `--exec` (or the linux-rv64 `vmon.exec=` word)
 * ```ts
 * import { benchCommand } from "./mod.ts";
 *
 * if (benchCommand("forkwait", [200]) !== "/bench/run.sh forkwait 200") throw new Error();
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { CpioWriter } from "../linux-rv64/cpio.ts";
import { buildLinuxRv64, DEFAULT_CMDLINE } from "../linux-rv64/mod.ts";
import type { BuildImageOptions, BuiltImage, ImageRecipe } from "../types.ts";
import { buildLua, buildSqlite3, buildXz } from "./debian_programs.ts";
import { buildPrograms, PROGRAMS } from "./programs.ts";
import { BENCH_WORKLOADS } from "./table.ts";
import { exists, formatDuration, type ProgressFn, writeAtomic } from "../_build.ts";

export {
  BEGIN_MARKER,
  BenchCapture,
  type BenchOutput,
  type BenchRun,
  END_MARKER,
  parseBenchOutput,
} from "./results.ts";
export { BENCH_WORKLOADS, CHURN_SEED, type WorkloadInfo } from "./table.ts";
export { PROGRAMS } from "./programs.ts";
export type { BuildImageOptions, BuiltImage, ImageDefaults, ImageRecipe } from "../types.ts";
export type { GuestArch } from "../../core/api/mod.ts";
export type { ProgressFn } from "../_build.ts";

/** Programs of {@linkcode PROGRAMS} that are helpers, not workloads. */
export const HELPERS: readonly string[] = ["timeit", "gendata"];

/** Programs built from Debian source packages. */
export const DEBIAN_PROGRAMS: readonly string[] = ["lua", "sqlite3", "xz"];

/** Every workload name `/bench/run.sh` accepts, in its order (from {@linkcode BENCH_WORKLOADS}). */
export const WORKLOADS: readonly string[] = BENCH_WORKLOADS.map((w) => w.name);

const THIS_FILE = fromFileUrl(import.meta.url);

const asset = (name: string): string => fromFileUrl(new URL(`./bench/${name}`, import.meta.url));

/** The committed files installed under `/bench` besides the binaries. */
export const BENCH_ASSETS: Readonly<Record<string, string>> = {
  "bench/run.sh": asset("run.sh"),
  "bench/lua/bench.lua": asset("bench.lua"),
  "bench/sqlite3/bench.sql": asset("bench.sql"),
};

/**
 * Returns the guest shell command that runs one workload: `/bench/run.sh NAME ARGS...`.
 *
 * @param workload One of {@linkcode WORKLOADS}.
 * @param args Its arguments (non-negative integers).
 * @throws {VmonError} If the workload is unknown or an argument is not a non-negative integer.
 */
export function benchCommand(workload: string, args: readonly (number | string)[] = []): string {
  if (!WORKLOADS.includes(workload)) {
    throw new VmonError(
      `Cannot run workload "${workload}": unknown workload (known: ${WORKLOADS.join(", ")})`,
    );
  }
  for (const a of args) {
    if (!/^\d+$/.test(String(a))) {
      throw new VmonError(
        `Cannot run workload "${workload}": argument ${JSON.stringify(a)} is not a number`,
      );
    }
  }
  return ["/bench/run.sh", workload, ...args.map(String)].join(" ");
}

/**
 * Builds the `/bench` cpio archive (uncompressed newc) from the built binaries.
 *
 * @param binaries Program name -> path, for every program of {@linkcode PROGRAMS} plus `lua`,
 *   `sqlite3` and `xz`.
 * @param options `assets`: archive path -> host file (default {@linkcode BENCH_ASSETS}).
 * @throws {VmonError} If a binary is missing from `binaries`.
 */
export function benchCpio(
  binaries: Readonly<Record<string, string>>,
  options: { assets?: Readonly<Record<string, string>> } = {},
): Uint8Array {
  const w = new CpioWriter();
  w.dir("bench");
  w.dir("bench/bin");
  for (const name of [...PROGRAMS, ...DEBIAN_PROGRAMS]) {
    const path = binaries[name];
    if (path === undefined) {
      throw new VmonError(`Cannot pack the /bench archive: no binary for "${name}"`);
    }
    w.file(`bench/bin/${name}`, Deno.readFileSync(path), { mode: 0o755 });
  }
  for (const [name, path] of Object.entries(options.assets ?? BENCH_ASSETS)) {
    w.file(name, Deno.readFileSync(path), { mode: name.endsWith(".sh") ? 0o755 : 0o644 });
  }
  return w.finish();
}

/**
 * Returns `base` (a compressed initramfs) followed by zero padding to a multiple of 4 bytes and
 * `extra` gzip-compressed: the kernel unpacks concatenated archives in order.
 *
 * @param base The first initramfs, as it is on disk.
 * @param extra An uncompressed newc cpio archive to append.
 */
export async function appendCpio(base: Uint8Array, extra: Uint8Array): Promise<Uint8Array> {
  // Loaded only to pack: a run that finds the archive cached does not pay for the import.
  const { gzipSync } = await import("fflate");
  const gz = gzipSync(extra, { level: 9, mtime: 0 });
  const pad = (4 - (base.length % 4)) % 4;
  const out = new Uint8Array(base.length + pad + gz.length);
  out.set(base, 0);
  out.set(gz, base.length + pad);
  return out;
}

/** Options of {@linkcode buildLinuxRv64Bench}. */
export interface LinuxRv64BenchOptions extends BuildImageOptions {
  /** Parallel make jobs (default 2). */
  readonly jobs?: number;
  /** Ask apt for newer source packages even if some are cached. */
  readonly refreshSources?: boolean;
}

/**
 * Builds the image (or finds every step in the cache): the linux-rv64 image, the workload
 * programs, lua, sqlite3 and xz, and the combined initramfs. Quiet when everything is cached.
 *
 * @param options Progress callback and build options.
 */
export async function buildLinuxRv64Bench(
  options: LinuxRv64BenchOptions = {},
): Promise<BuiltImage> {
  const start = performance.now();
  let spoke = false;
  const progress: ProgressFn = (line) => {
    spoke = true;
    options.onProgress?.(line);
  };
  // No network: the paging comparison's kernel and machine stay those its counters were taken
  // with (no network stack, no virtio-net, no DHCP in the runs).
  const base = await buildLinuxRv64({
    onProgress: (line) => progress(`linux-rv64 ${line}`),
    jobs: options.jobs,
    refreshSources: options.refreshSources,
    network: false,
  });
  if (base.initrd === undefined) {
    throw new VmonError("Cannot build linux-rv64-bench: the linux-rv64 image has no initramfs");
  }
  const programs = await buildPrograms(progress);
  const debianOptions = { onProgress: progress, jobs: options.jobs };
  const lua = await buildLua({ ...debianOptions, refreshSources: options.refreshSources });
  const sqlite3 = await buildSqlite3({ ...debianOptions, refreshSources: options.refreshSources });
  const xz = await buildXz({ ...debianOptions, refreshSources: options.refreshSources });
  const binaries = {
    ...programs.binaries,
    lua: lua.binary,
    sqlite3: sqlite3.binary,
    xz: xz.binary,
  };
  const key = hashFiles(
    [base.initrd, ...Object.values(binaries), ...Object.values(BENCH_ASSETS), THIS_FILE],
    Object.keys(binaries),
  );
  const initrd = join(cacheDir("images", "workloads", "initramfs", key), "initramfs.cpio.gz");
  if (!exists(initrd)) {
    const extra = benchCpio(binaries);
    const combined = await appendCpio(Deno.readFileSync(base.initrd), extra);
    writeAtomic(initrd, combined);
    progress(
      `initramfs: packed ${initrd} (/bench ${(extra.length / 1024).toFixed(0)} KiB, total ${
        (combined.length / 1024).toFixed(0)
      } KiB compressed)`,
    );
  }
  if (spoke) progress(`ready in ${formatDuration(performance.now() - start)}`);
  return { ...base, name: "linux-rv64-bench", initrd, cmdline: base.cmdline ?? DEFAULT_CMDLINE };
}

/** The registry entry for `images/mod.ts`. */
export const LINUX_RV64_BENCH: ImageRecipe = {
  name: "linux-rv64-bench",
  description: "linux-rv64 + paging-comparison workloads under /bench (/bench/run.sh NAME N)",
  arch: "riscv64",
  exec: true,
  build: (options) => buildLinuxRv64Bench(options),
};
