/**
 * Builds the riscv64 Linux kernel `Image` from Debian's linux-source-6.1 tarball and the config
 * fragment `kernel.config` committed next to this file, cached under
 * `cacheDir("images", "linux-rv64", ...)`.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { packageVersion } from "./deps.ts";
import * as build from "../_build.ts";

/** The committed kernel config fragment. */
export const KERNEL_FRAGMENT: string = fromFileUrl(new URL("./kernel.config", import.meta.url));

/** The networking fragment, merged after {@linkcode KERNEL_FRAGMENT} for the linux-rv64 image. */
export const KERNEL_NET_FRAGMENT: string = fromFileUrl(
  new URL("./kernel-net.config", import.meta.url),
);

/**
 * The build's user, host, number and date, fixed so that the same source and config always give
 * the same Image. Linux mixes its version string into its random pool at boot, so a build date
 * there changes the guest's address-space layout and with it what `vmon compare` and the paging
 * tests count (docs/paging.md, "Same guest under every strategy").
 */
export const REPRODUCIBLE_BUILD: Readonly<Record<string, string>> = {
  KBUILD_BUILD_USER: "vmon",
  KBUILD_BUILD_HOST: "vmon",
  KBUILD_BUILD_VERSION: "1",
  KBUILD_BUILD_TIMESTAMP: "Thu Jan  1 00:00:00 UTC 1970",
};

/** The Debian kernel source tarball the kernel is built from. */
export const KERNEL_TARBALL = "/usr/src/linux-source-6.1.tar.xz";

/** Options of {@linkcode buildKernel}. */
export interface KernelOptions {
  /** Parallel make jobs (default 2). */
  jobs?: number;
  /**
   * Config fragments to merge, in order, later ones winning (default: {@linkcode KERNEL_FRAGMENT}
   * alone).
   */
  fragments?: readonly string[];
}

/** A built kernel. */
export interface KernelBuild {
  /** Path of the uncompressed RISC-V `Image`. */
  image: string;
  /** Path of the final `.config` it was built with. */
  config: string;
  /** Whether it came from the cache. */
  cached: boolean;
}

/** Parses a config fragment into symbol -> value (`n` for "is not set"). */
export function parseFragment(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) {
      out.set(unset[1]!, "n");
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!set) throw new VmonError(`Cannot parse kernel config fragment: bad line "${line}"`);
    out.set(set[1]!, set[2]!);
  }
  return out;
}

/** Returns the fragment symbols whose value differs in the final `.config` text. */
export function configMismatches(fragment: string, finalConfig: string): string[] {
  const want = parseFragment(fragment);
  const have = parseFragment(
    finalConfig.split("\n").filter((l) => /^(CONFIG_|# CONFIG_.* is not set$)/.test(l)).join("\n"),
  );
  const bad: string[] = [];
  for (const [sym, value] of want) {
    const got = have.get(sym) ?? "n";
    if (got !== value) bad.push(`${sym}=${value} (got ${got})`);
  }
  return bad;
}

/** Extracts the kernel tarball into the cache once per package version; returns the tree. */
async function kernelTree(
  onProgress: build.ProgressFn,
): Promise<{ tree: string; version: string }> {
  const version = await packageVersion("linux-source-6.1");
  if (!version || !build.exists(KERNEL_TARBALL)) {
    throw new VmonError(`Cannot build the kernel: ${KERNEL_TARBALL} is missing`);
  }
  const srcRoot = cacheDir("images", "linux-rv64", "src");
  const tree = join(srcRoot, `linux-source-6.1_${version}`);
  const extract = async () => {
    const start = performance.now();
    onProgress(`kernel: extracting ${KERNEL_TARBALL} (linux-source-6.1 ${version})`);
    const tmp = build.tempSibling(tree);
    Deno.mkdirSync(tmp, { recursive: true });
    await build.runLogged("tar", ["-xJf", KERNEL_TARBALL, "-C", tmp], {
      log: join(srcRoot, "extract.log"),
      what: "extract the kernel source",
    });
    Deno.renameSync(join(tmp, "linux-source-6.1"), tree);
    Deno.removeSync(tmp, { recursive: true });
    onProgress(`kernel: extracted in ${build.formatDuration(performance.now() - start)}`);
    return { tree, version };
  };
  return await build.once(`${tree}.lock`, {
    cached: () => build.exists(join(tree, "Makefile")) ? { tree, version } : undefined,
    build: extract,
    onWait: () => onProgress("kernel: waiting for another process extracting the source"),
  });
}

/**
 * Returns the most recently finished kernel build under `root` made from the same inputs (kernel
 * source and compiler versions), whose objects can seed a new build.
 */
function latestBuild(root: string, inputs: string): string | undefined {
  let best: { dir: string; mtime: number } | undefined;
  for (const e of Deno.readDirSync(root)) {
    const dir = join(root, e.name);
    try {
      if (!e.isDirectory || Deno.readTextFileSync(join(dir, "inputs.txt")) !== inputs) continue;
      const mtime = Deno.statSync(join(dir, "Image")).mtime?.getTime() ?? 0;
      if (build.exists(join(dir, "obj", ".config")) && (!best || mtime > best.mtime)) {
        best = { dir, mtime };
      }
    } catch { /* unfinished or removed build */ }
  }
  return best?.dir;
}

/** Counts compile lines in a kbuild log, for progress. */
function countCompiled(log: string): number {
  try {
    return Deno.readTextFileSync(log).match(/^\s+(CC|AS|LD|AR)\s/gm)?.length ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Builds (or returns the cached) kernel Image: `tinyconfig`, the fragment merged with
 * `scripts/kconfig/merge_config.sh`, `olddefconfig`, a check that every fragment line took
 * effect, then `make Image`.
 *
 * @param onProgress Receives progress lines.
 * @param options Build options.
 */
export async function buildKernel(
  onProgress: build.ProgressFn,
  options: KernelOptions = {},
): Promise<KernelBuild> {
  const fragments = options.fragments ?? [KERNEL_FRAGMENT];
  const { tree, version } = await kernelTree(onProgress);
  const gccVersion = (await packageVersion("gcc-riscv64-linux-gnu")) ?? "unknown";
  const key = hashFiles(fragments, [
    `linux-source-6.1=${version}`,
    `gcc=${gccVersion}`,
    `build=${JSON.stringify(REPRODUCIBLE_BUILD)}`,
  ]);
  const dir = cacheDir("images", "linux-rv64", "kernel", key);
  const image = join(dir, "Image");
  const config = join(dir, "config");
  const compile = async (): Promise<KernelBuild> => {
    const obj = join(dir, "obj");
    const log = join(dir, "build.log");
    const make = ["-C", tree, `O=${obj}`, "ARCH=riscv", `CROSS_COMPILE=${build.CROSS_PREFIX}`];
    const start = performance.now();
    const inputs = `linux-source-6.1 ${version}\ngcc ${gccVersion}\n`;
    if (!build.exists(obj)) {
      const seed = latestBuild(dirname(dir), inputs);
      if (seed) {
        // Kbuild rebuilds only what the changed options touch: minutes saved per fragment edit.
        onProgress(`kernel: starting from the objects of build ${basename(seed)} (incremental)`);
        await build.runLogged("cp", ["-a", join(seed, "obj"), obj], {
          log,
          what: "copy the previous kernel objects",
        });
      }
    }
    onProgress(`kernel: configuring (tinyconfig + ${fragments.join(" + ")}), log ${log}`);
    await build.runLogged("make", [...make, "tinyconfig"], { log, what: "configure the kernel" });
    await build.runLogged(
      join(tree, "scripts/kconfig/merge_config.sh"),
      ["-m", "-O", obj, join(obj, ".config"), ...fragments],
      { log, what: "merge the kernel config fragment", cwd: tree },
    );
    await build.runLogged("make", [...make, "olddefconfig"], { log, what: "configure the kernel" });
    const bad = configMismatches(
      fragments.map((f) => Deno.readTextFileSync(f)).join("\n"),
      Deno.readTextFileSync(join(obj, ".config")),
    );
    if (bad.length > 0) {
      throw new VmonError(
        `Cannot configure the kernel: fragment options did not take effect: ${bad.join(", ")}`,
      );
    }
    const jobs = options.jobs ?? 2;
    onProgress(`kernel: compiling with -j${jobs} (takes minutes; log ${log})`);
    await build.runLogged("make", [...make, `-j${jobs}`, "Image"], {
      log,
      env: REPRODUCIBLE_BUILD,
      what: "build the kernel",
      heartbeat: (ms) =>
        onProgress(`kernel: compiling, ${countCompiled(log)} steps, ${build.formatDuration(ms)}`),
    });
    build.copyAtomic(join(obj, ".config"), config);
    build.copyAtomic(join(obj, "arch/riscv/boot/Image"), image);
    build.writeAtomic(join(dir, "inputs.txt"), inputs);
    const size = Deno.statSync(image).size;
    onProgress(
      `kernel: built ${image} (${(size / 1048576).toFixed(1)} MiB) in ${
        build.formatDuration(performance.now() - start)
      }`,
    );
    return { image, config, cached: false };
  };
  return await build.once(join(dir, ".lock"), {
    cached: () =>
      build.exists(image) && build.exists(config) ? { image, config, cached: true } : undefined,
    build: compile,
    onWait: () => onProgress("kernel: waiting for another process building it"),
  });
}
