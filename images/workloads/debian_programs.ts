/**
 * Cross-builds real programs from Debian source packages as static riscv64 executables, with
 * their plain upstream builds: Lua 5.4 (`lua5.4`, upstream `src/Makefile`, target `posix`) and
 * the sqlite3 shell (`sqlite3`: the amalgamation `sqlite3.c` + `shell.c`, generated natively by
 * the upstream `configure && make sqlite3.c shell.c`, then compiled directly) and xz
 * (`xz-utils`, upstream `configure --host=riscv64-linux-gnu --disable-shared`). Sources come
 * from {@linkcode workloadSource}; builds land in `cacheDir("images", "workloads", <name>, <hash>)`
 * keyed by the package version, the compiler and this file.
 *
 * @module
 */

import { join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { compilerVersion, CROSS_CC } from "./programs.ts";
import * as build from "../_build.ts";
import {
  checkStaticRiscv,
  type DebianSource,
  debianSource,
  type DebianSourceOptions,
} from "../_debian.ts";

export type { ProgressFn } from "../_build.ts";
export type { DebianSource, DebianSourceOptions } from "../_debian.ts";

const THIS_FILE = fromFileUrl(import.meta.url);

/** A program built from a Debian source package. */
export interface DebianProgram {
  /** The source package (`lua5.4`). */
  source: string;
  /** The source package version it was built from. */
  version: string;
  /** Absolute path of the static riscv64 executable. */
  binary: string;
  /** Whether it came from the cache. */
  cached: boolean;
}

/** Options of {@linkcode buildLua}, {@linkcode buildSqlite3} and {@linkcode buildXz}. */
export interface DebianProgramOptions {
  /** Receives progress lines. */
  onProgress?: build.ProgressFn;
  /** Parallel make jobs (default 2). */
  jobs?: number;
  /** Ask apt for a newer source package even if one is cached. */
  refreshSources?: boolean;
}

/**
 * Fetches (or finds in `cacheDir("images", "workloads", "src", name)`) the unpacked Debian
 * source package `name`.
 *
 * @param name A Debian source package name (`lua5.4`).
 * @param options Progress callback and refresh flag.
 * @throws {VmonError} If apt knows no such source package or the download fails.
 */
export function workloadSource(
  name: string,
  options: DebianSourceOptions = {},
): Promise<DebianSource> {
  return debianSource(name, cacheDir("images", "workloads", "src", name), options);
}

/** Copies a source tree into a fresh build folder (the cached tree is never modified). */
async function copyTree(src: DebianSource, dest: string, log: string): Promise<void> {
  if (build.exists(dest)) Deno.removeSync(dest, { recursive: true });
  await build.runLogged("cp", ["-a", src.tree, dest], { log, what: `copy the ${src.name} source` });
}

/**
 * Runs one cached build: finds `binary` under `cacheDir("images", "workloads", cacheName, key)`
 * or calls `make(dir, log)` (holding a lock) to produce `<dir>/<binaryName>.new`.
 */
async function cachedBuild(
  src: DebianSource,
  names: { cacheName: string; binaryName: string },
  onProgress: build.ProgressFn,
  make: (dir: string, log: string) => Promise<string>,
): Promise<DebianProgram> {
  const cc = await compilerVersion();
  const key = hashFiles([THIS_FILE], [`${src.name}=${src.version}`, cc]);
  const dir = cacheDir("images", "workloads", names.cacheName, key);
  const binary = join(dir, names.binaryName);
  const result = (cached: boolean): DebianProgram => ({
    source: src.name,
    version: src.version,
    binary,
    cached,
  });
  const run = async (): Promise<DebianProgram> => {
    const start = performance.now();
    const log = join(dir, "build.log");
    onProgress(`${names.cacheName}: building ${src.name} ${src.version} (log ${log})`);
    const built = await make(dir, log);
    checkStaticRiscv(built);
    build.writeAtomic(join(dir, "inputs.txt"), `${src.name} ${src.version}\n${cc}\n`);
    build.copyAtomic(built, binary);
    Deno.removeSync(join(dir, "work"), { recursive: true });
    const size = Deno.statSync(binary).size;
    onProgress(
      `${names.cacheName}: built ${binary} (${(size / 1048576).toFixed(1)} MiB) in ${
        build.formatDuration(performance.now() - start)
      }`,
    );
    return result(false);
  };
  return await build.once(join(dir, ".lock"), {
    cached: () => build.exists(binary) ? result(true) : undefined,
    build: run,
    onWait: () => onProgress(`${names.cacheName}: waiting for another process building it`),
  });
}

/**
 * Builds (or finds in the cache) a static riscv64 `lua` from Debian's `lua5.4` source. Debian's
 * first patch replaces upstream's Makefiles with a libtool build; it is reversed in the build
 * copy so that the plain upstream `make posix` runs (the other Debian patches, including the
 * CVE fixes, stay applied). `lua5.4-deb-multiarch.h`, which Debian's rules generate, is written
 * with the riscv64 multiarch triplet.
 *
 * @param options Progress callback, make jobs and source refresh.
 */
export async function buildLua(options: DebianProgramOptions = {}): Promise<DebianProgram> {
  const onProgress = options.onProgress ?? (() => {});
  const src = await workloadSource("lua5.4", { onProgress, refresh: options.refreshSources });
  return await cachedBuild(
    src,
    { cacheName: "lua", binaryName: "lua" },
    onProgress,
    async (dir, log) => {
      const work = join(dir, "work");
      await copyTree(src, work, log);
      const buildPatch = join(work, "debian/patches/0001-build-system.patch");
      if (!build.exists(buildPatch)) {
        throw new VmonError(
          `Cannot build lua: the ${src.name} ${src.version} source has no 0001-build-system.patch`,
        );
      }
      await build.runLogged("patch", ["-R", "-p1", "-i", buildPatch], {
        log,
        cwd: work,
        what: "restore lua's upstream Makefiles",
      });
      Deno.writeTextFileSync(
        join(work, "src/lua5.4-deb-multiarch.h"),
        '#define DEB_HOST_MULTIARCH "riscv64-linux-gnu"\n',
      );
      await build.runLogged("make", [
        "-C",
        join(work, "src"),
        `-j${options.jobs ?? 2}`,
        "posix",
        `CC=${CROSS_CC} -std=gnu99`,
        "AR=riscv64-linux-gnu-ar rcu",
        "RANLIB=riscv64-linux-gnu-ranlib",
        "MYLDFLAGS=-static",
      ], { log, what: "build lua" });
      return join(work, "src/lua");
    },
  );
}

/**
 * Builds (or finds in the cache) a static riscv64 `sqlite3` shell from Debian's `sqlite3`
 * source: the upstream `configure` and `make sqlite3.c shell.c` run natively (they need the
 * host compiler and tclsh) to generate the amalgamation, which is then compiled with the cross
 * compiler (single-threaded, no extension loading, no readline).
 *
 * @param options Progress callback, make jobs and source refresh.
 */
export async function buildSqlite3(options: DebianProgramOptions = {}): Promise<DebianProgram> {
  const onProgress = options.onProgress ?? (() => {});
  const src = await workloadSource("sqlite3", { onProgress, refresh: options.refreshSources });
  return await cachedBuild(
    src,
    { cacheName: "sqlite3", binaryName: "sqlite3" },
    onProgress,
    async (dir, log) => {
      const work = join(dir, "work");
      if (build.exists(work)) Deno.removeSync(work, { recursive: true });
      Deno.mkdirSync(work, { recursive: true });
      onProgress("sqlite3: generating the amalgamation (configure, make sqlite3.c shell.c)");
      await build.runLogged(join(src.tree, "configure"), ["--disable-tcl", "--disable-readline"], {
        log,
        cwd: work,
        what: "configure sqlite3",
      });
      await build.runLogged("make", [`-j${options.jobs ?? 2}`, "sqlite3.c", "shell.c"], {
        log,
        cwd: work,
        what: "generate the sqlite3 amalgamation",
      });
      onProgress("sqlite3: compiling sqlite3.c + shell.c for riscv64 (about a minute)");
      const out = build.tempSibling(join(work, "sqlite3"));
      await build.runLogged(CROSS_CC, [
        "-static",
        "-O2",
        "-DSQLITE_THREADSAFE=0",
        "-DSQLITE_OMIT_LOAD_EXTENSION",
        // Its asserts name their source file: without the map the binary holds the cache's
        // absolute path, so every checkout built another binary (and another initramfs, which
        // moves the guest's layout and the counters `vmon compare` reports exactly).
        `-ffile-prefix-map=${work}=.`,
        `-I${work}`,
        "-o",
        out,
        join(work, "shell.c"),
        join(work, "sqlite3.c"),
        "-lm",
      ], { log, what: "compile sqlite3" });
      return out;
    },
  );
}

/**
 * Builds (or finds in the cache) a static riscv64 `xz` from Debian's `xz-utils` source with the
 * plain upstream build: `configure --host=riscv64-linux-gnu --disable-shared` (no NLS, docs,
 * scripts or extra tools) and `make LDFLAGS=-all-static` (libtool's flag for a fully static
 * executable).
 *
 * @param options Progress callback, make jobs and source refresh.
 */
export async function buildXz(options: DebianProgramOptions = {}): Promise<DebianProgram> {
  const onProgress = options.onProgress ?? (() => {});
  const src = await workloadSource("xz-utils", { onProgress, refresh: options.refreshSources });
  return await cachedBuild(
    src,
    { cacheName: "xz", binaryName: "xz" },
    onProgress,
    async (dir, log) => {
      const work = join(dir, "work");
      if (build.exists(work)) Deno.removeSync(work, { recursive: true });
      Deno.mkdirSync(work, { recursive: true });
      await build.runLogged(join(src.tree, "configure"), [
        "--host=riscv64-linux-gnu",
        "--disable-shared",
        "--disable-nls",
        "--disable-doc",
        "--disable-scripts",
        "--disable-lzmadec",
        "--disable-lzmainfo",
        "--disable-xzdec",
        "--disable-lzma-links",
        "CFLAGS=-O2",
      ], { log, cwd: work, what: "configure xz" });
      await build.runLogged("make", [`-j${options.jobs ?? 2}`, "LDFLAGS=-all-static"], {
        log,
        cwd: work,
        what: "build xz",
      });
      return join(work, "src/xz/xz");
    },
  );
}
