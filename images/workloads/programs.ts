/**
 * Cross-compiles the workload programs written here (`src/*.c`) into static riscv64 Linux
 * executables, cached under `cacheDir("images", "workloads", "bin", <hash>)` keyed by the
 * sources, the compiler version and the flags.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir, hashFiles, listFiles } from "../../core/cache.ts";
import {
  capture,
  checkStaticRiscv,
  copyAtomic,
  exists,
  formatDuration,
  type ProgressFn,
  run,
  withLock,
  writeAtomic,
} from "./_util.ts";

export type { ProgressFn } from "./_util.ts";

/** The folder of the C sources. */
export const SOURCE_DIR: string = fileURLToPath(new URL("./src", import.meta.url));

/** The riscv64 cross compiler. */
export const CROSS_CC = "riscv64-linux-gnu-gcc";

/** Flags every workload program is compiled with. */
export const CFLAGS: readonly string[] = ["-static", "-O2", "-Wall", "-Wextra", "-std=gnu11"];

/**
 * The workload programs, in the order `/bench/run.sh` lists them, plus two helpers: `timeit`,
 * which times the programs built from Debian sources, and `gendata`, the xz workload's input.
 */
export const PROGRAMS: readonly string[] = [
  "forkwait",
  "execloop",
  "faultstorm",
  "mmapchurn",
  "mprotect",
  "pipepong",
  "cpuloop",
  "churn",
  "timeit",
  "gendata",
];

/** Returns the first line of `<compiler> --version`, used in cache keys. */
export async function compilerVersion(cc: string = CROSS_CC): Promise<string> {
  const out = await capture(cc, ["--version"]);
  return out?.split("\n")[0]?.trim() || "unknown";
}

/** Built workload programs. */
export interface ProgramsBuild {
  /** The cache folder holding them. */
  dir: string;
  /** Program name -> absolute path of its static riscv64 executable. */
  binaries: Record<string, string>;
  /** Whether they came from the cache. */
  cached: boolean;
}

/**
 * Compiles (or finds in the cache) every program of {@linkcode PROGRAMS} with
 * `riscv64-linux-gnu-gcc -static -O2`.
 *
 * @param onProgress Receives progress lines.
 * @throws {VmonError} If the cross compiler is missing or a program does not compile.
 */
export async function buildPrograms(onProgress: ProgressFn): Promise<ProgramsBuild> {
  const sources = listFiles(SOURCE_DIR, [".c", ".h"]);
  const cc = await compilerVersion();
  const key = hashFiles(sources, [cc, ...CFLAGS]);
  const dir = cacheDir("images", "workloads", "bin", key);
  const binaries = Object.fromEntries(PROGRAMS.map((p) => [p, join(dir, p)]));
  const done = join(dir, "inputs.txt");
  if (exists(done)) return { dir, binaries, cached: true };
  return await withLock(join(dir, ".lock"), async () => {
    if (exists(done)) return { dir, binaries, cached: true };
    const start = performance.now();
    const log = join(dir, "build.log");
    onProgress(`workloads: compiling ${PROGRAMS.length} programs with ${cc} (log ${log})`);
    for (const p of PROGRAMS) {
      const out = join(dir, `${p}.new`);
      await run(CROSS_CC, [...CFLAGS, "-o", out, join(SOURCE_DIR, `${p}.c`)], {
        log,
        what: `compile the workload "${p}"`,
      });
      checkStaticRiscv(out);
      copyAtomic(out, binaries[p]!);
      Deno.removeSync(out);
    }
    writeAtomic(done, `${cc}\n${CFLAGS.join(" ")}\n`);
    onProgress(`workloads: compiled in ${formatDuration(performance.now() - start)}`);
    return { dir, binaries, cached: false };
  }, { onWait: () => onProgress("workloads: waiting for another process compiling them") });
}
