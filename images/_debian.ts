/**
 * Debian source packages for the image recipes: `apt-get source` through a private apt
 * configuration (a sources list derived at run time from the machine's own
 * `/etc/apt/sources.list(.d)`, `deb` entries turned into `deb-src`, and private lists and cache
 * directories under `cacheDir("images", "apt")`; `/etc/apt` is only read, never written), and a
 * check that a cross-built program is a static riscv64 executable. Private to `images/`.
 *
 * @module
 */

import { join } from "node:path";
import { cacheDir } from "../core/cache.ts";
import { VmonError } from "../core/errors.ts";
import * as build from "./_build.ts";

/** One apt sources file: its name (for the format) and its text. */
export interface SourcesFile {
  /** File name; names ending in `.sources` are deb822, others one-line format. */
  name: string;
  /** File contents. */
  text: string;
}

/**
 * Turns the machine's apt `deb` entries into one-line `deb-src` entries (deb822 stanzas with
 * `Types: deb` included), keeping options such as `signed-by`. Disabled stanzas
 * (`Enabled: no`) and existing `deb-src` lines are skipped.
 *
 * @param files The sources files, as {@linkcode machineSources} returns them.
 *
 * @example
 * ```ts
 * import { debSrcLines } from "./_debian.ts";
 * const lines = debSrcLines([{ name: "x.list", text: "deb http://h/debian bookworm main\n" }]);
 * if (lines[0] !== "deb-src http://h/debian bookworm main") throw new Error(lines[0]);
 * ```
 */
export function debSrcLines(files: readonly SourcesFile[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    if (file.name.endsWith(".sources")) {
      for (const stanza of file.text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        let last = "";
        for (const line of stanza.split("\n")) {
          if (line.startsWith("#")) continue;
          if (/^\s/.test(line) && last) {
            // Continuation line (for example an inline Signed-By key): not supported one-line.
            fields.set(last, `${fields.get(last)}\n${line.trim()}`);
            continue;
          }
          const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
          if (!m) continue;
          last = m[1]!.toLowerCase();
          fields.set(last, m[2]!.trim());
        }
        const types = (fields.get("types") ?? "").split(/\s+/);
        if (!types.includes("deb") || fields.get("enabled") === "no") continue;
        const signedBy = fields.get("signed-by");
        const opts = signedBy && !signedBy.includes("\n") ? ` [signed-by=${signedBy}]` : "";
        const comps = fields.get("components") ?? "";
        for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
          for (const suite of (fields.get("suites") ?? "").split(/\s+/).filter(Boolean)) {
            out.push(`deb-src${opts} ${uri} ${suite} ${comps}`.trimEnd());
          }
        }
      }
    } else {
      for (const raw of file.text.split("\n")) {
        const line = raw.replace(/#.*$/, "").trim();
        if (/^deb\s/.test(line)) out.push(line.replace(/^deb/, "deb-src"));
      }
    }
  }
  return out;
}

/**
 * Reads the apt sources files the machine's apt reads (`sources.list`, then the `.list` and
 * `.sources` files of `sources.list.d` in name order); missing files are skipped.
 *
 * @param root The apt configuration folder (default `/etc/apt`).
 */
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
async function privateApt(onProgress: build.ProgressFn, refresh: boolean): Promise<string[]> {
  const aptDir = cacheDir("images", "apt");
  const opts = aptOptions(aptDir);
  const stamp = join(aptDir, "updated");
  await build.once(join(aptDir, ".lock"), {
    cached: () => !refresh && build.exists(stamp) ? true : undefined,
    build: async () => {
      for (const d of ["lists/partial", "cache/archives/partial"]) {
        Deno.mkdirSync(join(aptDir, d), { recursive: true });
      }
      const lines = debSrcLines(machineSources());
      if (lines.length === 0) {
        throw new VmonError(
          "Cannot fetch Debian sources: no deb entries in /etc/apt/sources.list(.d)",
        );
      }
      build.writeAtomic(join(aptDir, "sources.list"), lines.join("\n") + "\n");
      onProgress(`apt-get update (private deb-src list, ${lines.length} entries)`);
      await build.runLogged("apt-get", [...opts, "update"], {
        log: join(aptDir, "update.log"),
        what: "fetch Debian sources",
      });
      build.writeAtomic(stamp, new Date().toISOString() + "\n");
      return true;
    },
    onWait: () => onProgress("waiting for another process running apt-get update"),
  });
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
  onProgress?: build.ProgressFn;
  /** Ask apt for a newer source package even if one is unpacked in the cache. */
  refresh?: boolean;
}

/**
 * Fetches and unpacks source package `name` once into `dir` (`<dir>/<version>/tree`, with the
 * version in `<dir>/current`); later calls reuse it without network unless `refresh` is set.
 *
 * @param name A Debian source package name (`lua5.4`).
 * @param dir The cache folder of this package's sources.
 * @param options Progress callback and refresh flag.
 * @throws {VmonError} If apt knows no such source package or the download fails.
 */
export async function debianSource(
  name: string,
  dir: string,
  options: DebianSourceOptions = {},
): Promise<DebianSource> {
  if (!/^[a-z0-9][a-z0-9.+-]+$/.test(name)) {
    throw new VmonError(`Cannot fetch Debian source "${name}": not a source package name`);
  }
  const onProgress = options.onProgress ?? (() => {});
  const refresh = options.refresh ?? false;
  const current = join(dir, "current");
  const fromCurrent = (): DebianSource | undefined => {
    if (refresh || !build.exists(current)) return undefined;
    const version = Deno.readTextFileSync(current).trim();
    const tree = join(dir, version, "tree");
    return build.exists(tree) ? { name, version, tree } : undefined;
  };
  return await build.once(join(dir, ".lock"), {
    cached: fromCurrent,
    build: async () => {
      const start = performance.now();
      const opts = await privateApt(onProgress, refresh);
      const log = join(dir, "fetch.log");
      const shown = await build.capture("apt-cache", [...opts, "showsrc", name]);
      if (!shown || !/^Version: /m.test(shown)) {
        throw new VmonError(
          `Cannot fetch Debian source "${name}": apt knows no such source package`,
        );
      }
      const work = build.tempSibling(join(dir, "download"));
      Deno.mkdirSync(work, { recursive: true });
      try {
        onProgress(`${name}: apt-get source ${name}`);
        await build.runLogged("apt-get", [...opts, "source", name], {
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
        // busybox_1.35.0-4+deb12u1.dsc -> 1.35.0-4+deb12u1 (the epoch is not in file names).
        const version = dsc.slice(name.length + 1, -".dsc".length);
        const dest = join(dir, version);
        Deno.mkdirSync(dest, { recursive: true });
        if (build.exists(join(dest, "tree"))) {
          Deno.removeSync(join(dest, "tree"), { recursive: true });
        }
        Deno.renameSync(join(work, unpacked.name), join(dest, "tree"));
        build.writeAtomic(current, version + "\n");
        onProgress(
          `${name}: source ${version} ready in ${build.formatDuration(performance.now() - start)}`,
        );
        return { name, version, tree: join(dest, "tree") };
      } finally {
        Deno.removeSync(work, { recursive: true });
      }
    },
    onWait: () => onProgress(`${name}: waiting for another process fetching the source`),
  });
}

/**
 * Throws a `VmonError` unless `path` is a static RISC-V 64 ELF executable (64-bit
 * little-endian, machine 243, no `PT_INTERP` program header).
 *
 * @param path The file to check.
 * @throws {VmonError} Naming what is wrong with the file.
 */
export function checkStaticRiscv(path: string): void {
  const b = Deno.readFileSync(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const bad = (why: string) => new VmonError(`Cannot use program "${path}": ${why}`);
  if (b.length < 64 || dv.getUint32(0) !== 0x7f454c46) throw bad("not an ELF file");
  if (b[4] !== 2 || b[5] !== 1) throw bad("not a 64-bit little-endian ELF");
  if (dv.getUint16(18, true) !== 243) throw bad("not a RISC-V executable");
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > b.length) throw bad("truncated program headers");
    if (dv.getUint32(off, true) === 3) throw bad("dynamically linked (has PT_INTERP)");
  }
}
