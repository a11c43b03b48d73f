/**
 * Cross-builds a static riscv64 busybox from Debian's busybox source package, fetched with
 * `apt-get source` through a private sources list derived from the machine's own apt sources
 * (never touching /etc/apt), cached under `cacheDir("images", "linux-rv64", ...)`.
 *
 * @module
 */

import { join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { packageVersion } from "./deps.ts";
import { configMismatches, parseFragment } from "./kernel.ts";
import * as build from "../_build.ts";
import { checkStaticRiscv, debianSource } from "../_debian.ts";

/** The committed busybox config fragment. */
export const BUSYBOX_FRAGMENT: string = fromFileUrl(
  new URL("./busybox.config", import.meta.url),
);

/** Sets or unsets the fragment's symbols in a busybox `.config` text. */
function applyFragment(config: string, fragment: string): string {
  const want = parseFragment(fragment);
  const lines = config.split("\n").filter((l) => {
    const m = /^(?:# )?(CONFIG_[A-Za-z0-9_]+)[= ]/.exec(l);
    return !(m && want.has(m[1]!));
  });
  for (const [sym, value] of want) {
    lines.push(value === "n" ? `# ${sym} is not set` : `${sym}=${value}`);
  }
  return lines.join("\n") + "\n";
}

/** A built busybox. */
export interface BusyboxBuild {
  /** The static riscv64 busybox binary. */
  binary: string;
  /** Absolute paths of its applet links, one per entry (`/bin/sh`, ...). */
  links: string[];
  /** The Debian source package version it was built from. */
  version: string;
  /**
   * The build's cache key (a hash of everything the binary is built from; the build is
   * reproducible): what the initramfs is keyed by, so that finding it cached does not read the
   * binary.
   */
  key: string;
  /** Whether it came from the cache. */
  cached: boolean;
}

/** Options of {@linkcode buildBusybox}. */
export interface BusyboxOptions {
  /** Parallel make jobs (default 2). */
  jobs?: number;
  /** Query apt for a newer source package even if one is cached. */
  refresh?: boolean;
}

/**
 * The environment of every busybox build step: a fixed build date. Busybox prints its build date
 * in its banner (`BusyBox v1.35.0 (<date>)`), so without it every build was another binary, and
 * another initramfs: the guest's page allocations, address-space layout and instruction counts,
 * which `vmon compare` reports exactly, moved from one build to the next. With it, one source
 * and compiler give the same binary on every machine.
 */
export const REPRODUCIBLE_BUSYBOX: Readonly<Record<string, string>> = { SOURCE_DATE_EPOCH: "0" };

/**
 * Builds (or returns the cached) static riscv64 busybox: `make defconfig`, the committed
 * fragment applied, `make oldconfig`, a check that every fragment line took effect, then
 * `make busybox busybox.links`.
 *
 * @param onProgress Receives progress lines.
 * @param options Build options.
 */
export async function buildBusybox(
  onProgress: build.ProgressFn,
  options: BusyboxOptions = {},
): Promise<BusyboxBuild> {
  const { tree, version } = await debianSource(
    "busybox",
    cacheDir("images", "linux-rv64", "busybox-src"),
    { onProgress, refresh: options.refresh },
  );
  const gccVersion = (await packageVersion("gcc-riscv64-linux-gnu")) ?? "unknown";
  const key = hashFiles([BUSYBOX_FRAGMENT], [
    `busybox=${version}`,
    `gcc=${gccVersion}`,
    `build=${JSON.stringify(REPRODUCIBLE_BUSYBOX)}`,
  ]);
  const dir = cacheDir("images", "linux-rv64", "busybox", key);
  const binary = join(dir, "busybox");
  const linksFile = join(dir, "busybox.links");
  const result = (cached: boolean): BusyboxBuild => ({
    binary,
    links: Deno.readTextFileSync(linksFile).split("\n").map((l) => l.trim())
      .filter((l) => l.startsWith("/") && l !== "/linuxrc"),
    version,
    key,
    cached,
  });
  const compile = async (): Promise<BusyboxBuild> => {
    const obj = join(dir, "obj");
    const log = join(dir, "build.log");
    const make = ["-C", tree, `O=${obj}`, `CROSS_COMPILE=${build.CROSS_PREFIX}`];
    const start = performance.now();
    onProgress(`busybox: configuring ${version} (defconfig + ${BUSYBOX_FRAGMENT}), log ${log}`);
    Deno.mkdirSync(obj, { recursive: true });
    await build.runLogged("make", [...make, "defconfig"], {
      log,
      what: "configure busybox",
      env: REPRODUCIBLE_BUSYBOX,
    });
    const fragment = Deno.readTextFileSync(BUSYBOX_FRAGMENT);
    const configPath = join(obj, ".config");
    Deno.writeTextFileSync(configPath, applyFragment(Deno.readTextFileSync(configPath), fragment));
    // stdin is /dev/null: any new question takes its default.
    await build.runLogged("make", [...make, "oldconfig"], {
      log,
      what: "configure busybox",
      env: REPRODUCIBLE_BUSYBOX,
    });
    const bad = configMismatches(fragment, Deno.readTextFileSync(configPath));
    if (bad.length > 0) {
      throw new VmonError(
        `Cannot configure busybox: fragment options did not take effect: ${bad.join(", ")}`,
      );
    }
    const jobs = options.jobs ?? 2;
    onProgress(`busybox: compiling with -j${jobs} (takes minutes; log ${log})`);
    await build.runLogged("make", [...make, `-j${jobs}`, "busybox", "busybox.links"], {
      log,
      env: REPRODUCIBLE_BUSYBOX,
      what: "build busybox",
      heartbeat: (ms) => onProgress(`busybox: compiling, ${build.formatDuration(ms)}`),
    });
    checkStaticRiscv(join(obj, "busybox"));
    build.copyAtomic(join(obj, "busybox.links"), linksFile + ".new");
    build.copyAtomic(join(obj, "busybox"), binary);
    Deno.renameSync(linksFile + ".new", linksFile);
    build.writeAtomic(join(dir, "inputs.txt"), `busybox ${version}\ngcc ${gccVersion}\n`);
    onProgress(
      `busybox: built ${binary} in ${build.formatDuration(performance.now() - start)}`,
    );
    return result(false);
  };
  return await build.once(join(dir, ".lock"), {
    cached: () => build.exists(binary) && build.exists(linksFile) ? result(true) : undefined,
    build: compile,
    onWait: () => onProgress("busybox: waiting for another process building it"),
  });
}
