/**
 * Cross-compiles the workload programs written here (`src/*.c`) into static riscv64 Linux
 * executables, cached under `cacheDir("images", "workloads", "bin", <hash>)` keyed by the
 * sources, the compiler version and the flags.
 *
 * @module
 */

import { join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles, listFiles } from "../../core/cache.ts";
import * as build from "../_build.ts";
import { checkStaticRiscv } from "../_debian.ts";

export type { ProgressFn } from "../_build.ts";

/** The folder of the C sources. */
export const SOURCE_DIR: string = fromFileUrl(new URL("./src", import.meta.url));

/** The riscv64 cross compiler. */
export const CROSS_CC = `${build.CROSS_PREFIX}gcc`;

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
  const out = await build.capture(cc, ["--version"]);
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
export async function buildPrograms(onProgress: build.ProgressFn): Promise<ProgramsBuild> {
  const sources = listFiles(SOURCE_DIR, [".c", ".h"]);
  const cc = await compilerVersion();
  const key = hashFiles(sources, [cc, ...CFLAGS]);
  const dir = cacheDir("images", "workloads", "bin", key);
  const binaries = Object.fromEntries(PROGRAMS.map((p) => [p, join(dir, p)]));
  const done = join(dir, "inputs.txt");
  const compile = async (): Promise<ProgramsBuild> => {
    const start = performance.now();
    const log = join(dir, "build.log");
    onProgress(`workloads: compiling ${PROGRAMS.length} programs with ${cc} (log ${log})`);
    for (const p of PROGRAMS) {
      const out = join(dir, `${p}.new`);
      await build.runLogged(CROSS_CC, [...CFLAGS, "-o", out, join(SOURCE_DIR, `${p}.c`)], {
        log,
        what: `compile the workload "${p}"`,
      });
      checkStaticRiscv(out);
      build.copyAtomic(out, binaries[p]!);
      Deno.removeSync(out);
    }
    build.writeAtomic(done, `${cc}\n${CFLAGS.join(" ")}\n`);
    onProgress(`workloads: compiled in ${build.formatDuration(performance.now() - start)}`);
    return { dir, binaries, cached: false };
  };
  return await build.once(join(dir, ".lock"), {
    cached: () => build.exists(done) ? { dir, binaries, cached: true } : undefined,
    build: compile,
    onWait: () => onProgress("workloads: waiting for another process compiling them"),
  });
}
