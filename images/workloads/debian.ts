/**
 * Fetches Debian source packages with `apt-get source` through a private apt configuration:
 * a sources list derived at run time from the machine's own `/etc/apt/sources.list(.d)`
 * (`deb` entries turned into `deb-src`, with {@linkcode debSrcLines} of the linux-rv64 recipe),
 * and private state and cache directories under `cacheDir("images", "workloads", "apt")`.
 * `/etc/apt` is only read, never written.
 *
 * @module
 */

import { join } from "node:path";
import { cacheDir } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { debSrcLines, type SourcesFile } from "../linux-rv64/busybox.ts";
import {
  capture,
  exists,
  formatDuration,
  type ProgressFn,
  run,
  tempSibling,
  withLock,
  writeAtomic,
} from "./_util.ts";

export type { ProgressFn } from "./_util.ts";
export type { SourcesFile } from "../linux-rv64/busybox.ts";

/** Reads the apt sources files the machine's apt reads (sources.list and sources.list.d). */
export function machineSources(root = "/etc/apt"): SourcesFile[] {
  const files: SourcesFile[] = [];
  const read = (path: string, name: string) => {
    try {
      files.push({ name, text: Deno.readTextFileSync(path) });
    } catch { /* missing */ }
  };
  read(join(root, "sources.list"), "sources.list");
  try {
    const names = [...Deno.readDirSync(join(root, "sources.list.d"))].map((e) => e.name).sort();
    for (const n of names) {
      if (n.endsWith(".list") || n.endsWith(".sources")) read(join(root, "sources.list.d", n), n);
    }
  } catch { /* no directory */ }
  return files;
}

/** The private apt options: own sources list, lists and cache directories. */
function aptOptions(aptDir: string): string[] {
  return [
    "-o",
    `Dir::Etc::sourcelist=${join(aptDir, "sources.list")}`,
    "-o",
    "Dir::Etc::sourceparts=-",
    "-o",
    `Dir::State::Lists=${join(aptDir, "lists")}`,
    "-o",
    `Dir::Cache=${join(aptDir, "cache")}`,
  ];
}

/**
 * Makes sure the private apt lists exist (one `apt-get update` per cache, or when `refresh` is
 * set) and returns the apt options that use them.
 */
async function privateApt(onProgress: ProgressFn, refresh: boolean): Promise<string[]> {
  const aptDir = cacheDir("images", "workloads", "apt");
  const opts = aptOptions(aptDir);
  const stamp = join(aptDir, "updated");
  if (!refresh && exists(stamp)) return opts;
  await withLock(join(aptDir, ".lock"), async () => {
    if (!refresh && exists(stamp)) return;
    for (const d of ["lists/partial", "cache/archives/partial"]) {
      Deno.mkdirSync(join(aptDir, d), { recursive: true });
    }
    const lines = debSrcLines(machineSources());
    if (lines.length === 0) {
      throw new VmonError(
        "Cannot fetch Debian sources: no deb entries in /etc/apt/sources.list(.d)",
      );
    }
    writeAtomic(join(aptDir, "sources.list"), lines.join("\n") + "\n");
    onProgress(`apt-get update (private deb-src list, ${lines.length} entries)`);
    await run("apt-get", [...opts, "update"], {
      log: join(aptDir, "update.log"),
      what: "fetch Debian sources",
    });
    writeAtomic(stamp, new Date().toISOString() + "\n");
  }, { onWait: () => onProgress("waiting for another process running apt-get update") });
  return opts;
}

/** An unpacked Debian source package. */
export interface DebianSource {
  /** The source package name. */
  name: string;
  /** Its version without the epoch (as in file names): `5.4.4-3+deb12u1`. */
  version: string;
  /** The unpacked tree (Debian patches applied, as `apt-get source` leaves it). */
  tree: string;
}

/** Options of {@linkcode debianSource}. */
export interface DebianSourceOptions {
  /** Receives progress lines. */
  onProgress?: ProgressFn;
  /** Ask apt for a newer source package even if one is unpacked in the cache. */
  refresh?: boolean;
}

/**
 * Fetches and unpacks source package `name` once into
 * `cacheDir("images", "workloads", "src", name)`; later calls reuse it without network unless
 * `refresh` is set.
 *
 * @param name A Debian source package name (`lua5.4`).
 * @param options Progress callback and refresh flag.
 * @throws {VmonError} If apt knows no such source package or the download fails.
 */
export async function debianSource(
  name: string,
  options: DebianSourceOptions = {},
): Promise<DebianSource> {
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(name)) {
    throw new VmonError(`Cannot fetch Debian source "${name}": not a source package name`);
  }
  const onProgress = options.onProgress ?? (() => {});
  const refresh = options.refresh ?? false;
  const root = cacheDir("images", "workloads", "src", name);
  const current = join(root, "current");
  const fromCurrent = (): DebianSource | undefined => {
    if (!exists(current)) return undefined;
    const version = Deno.readTextFileSync(current).trim();
    const tree = join(root, version, "tree");
    return exists(tree) ? { name, version, tree } : undefined;
  };
  if (!refresh) {
    const hit = fromCurrent();
    if (hit) return hit;
  }
  return await withLock(join(root, ".lock"), async () => {
    if (!refresh) {
      const hit = fromCurrent();
      if (hit) return hit;
    }
    const start = performance.now();
    const opts = await privateApt(onProgress, refresh);
    const log = join(root, "fetch.log");
    const shown = await capture("apt-cache", [...opts, "showsrc", name]);
    if (!shown || !/^Version: /m.test(shown)) {
      throw new VmonError(`Cannot fetch Debian source "${name}": apt knows no such source package`);
    }
    const work = tempSibling(join(root, "download"));
    Deno.mkdirSync(work, { recursive: true });
    try {
      onProgress(`${name}: apt-get source ${name}`);
      await run("apt-get", [...opts, "source", name], {
        log,
        cwd: work,
        what: `fetch the Debian source "${name}"`,
      });
      const entries = [...Deno.readDirSync(work)];
      const dsc = entries.map((e) => e.name).find((n) =>
        n.startsWith(`${name}_`) && n.endsWith(".dsc")
      );
      const unpacked = entries.find((e) => e.isDirectory);
      if (!dsc || !unpacked) {
        throw new VmonError(`Cannot fetch Debian source "${name}": apt-get source left no tree`);
      }
      const version = dsc.slice(name.length + 1, -".dsc".length);
      const dest = join(root, version);
      Deno.mkdirSync(dest, { recursive: true });
      if (exists(join(dest, "tree"))) Deno.removeSync(join(dest, "tree"), { recursive: true });
      Deno.renameSync(join(work, unpacked.name), join(dest, "tree"));
      writeAtomic(current, version + "\n");
      onProgress(
        `${name}: source ${version} ready in ${formatDuration(performance.now() - start)}`,
      );
      return { name, version, tree: join(dest, "tree") };
    } finally {
      Deno.removeSync(work, { recursive: true });
    }
  }, { onWait: () => onProgress(`${name}: waiting for another process fetching the source`) });
}
