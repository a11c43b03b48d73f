/**
 * Cross-builds a static riscv64 busybox from Debian's busybox source package, fetched with
 * `apt-get source` through a private sources list derived from the machine's own apt sources
 * (never touching /etc/apt), cached under `cacheDir("images", "linux-rv64", ...)`.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { packageVersion } from "./deps.ts";
import { configMismatches, parseFragment } from "./kernel.ts";
import {
  capture,
  copyAtomic,
  exists,
  formatDuration,
  type ProgressFn,
  runLogged,
  tempSibling,
  withLock,
  writeAtomic,
} from "./_run.ts";

/** The committed busybox config fragment. */
export const BUSYBOX_FRAGMENT: string = fileURLToPath(
  new URL("./busybox.config", import.meta.url),
);

const CROSS = "riscv64-linux-gnu-";

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
 * @example
 * ```ts
 * import { debSrcLines } from "./busybox.ts";
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

/** Reads the apt sources files the machine's apt reads (sources.list and sources.list.d). */
function machineSources(): SourcesFile[] {
  const files: SourcesFile[] = [];
  const read = (path: string, name: string) => {
    try {
      files.push({ name, text: Deno.readTextFileSync(path) });
    } catch { /* missing */ }
  };
  read("/etc/apt/sources.list", "sources.list");
  try {
    const names = [...Deno.readDirSync("/etc/apt/sources.list.d")].map((e) => e.name).sort();
    for (const n of names) {
      if (n.endsWith(".list") || n.endsWith(".sources")) {
        read(join("/etc/apt/sources.list.d", n), n);
      }
    }
  } catch { /* no directory */ }
  return files;
}

/** Private apt options: own sources list, state and cache directories. */
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
 * Fetches and unpacks the busybox source package once; later runs reuse it (and its version)
 * without network unless `refresh` is set. Returns the unpacked tree and the package version.
 */
async function busyboxSource(
  onProgress: ProgressFn,
  refresh: boolean,
): Promise<{ tree: string; version: string }> {
  const root = cacheDir("images", "linux-rv64", "busybox-src");
  const current = join(root, "current");
  const fromCurrent = () => {
    const version = Deno.readTextFileSync(current).trim();
    const tree = join(root, version.replace(/^\d+:/, ""), "tree");
    return exists(join(tree, "Makefile")) ? { tree, version } : undefined;
  };
  if (!refresh && exists(current)) {
    const hit = fromCurrent();
    if (hit) return hit;
  }
  return await withLock(join(root, ".lock"), async () => {
    if (!refresh && exists(current)) {
      const hit = fromCurrent();
      if (hit) return hit;
    }
    const start = performance.now();
    const aptDir = join(root, "apt");
    for (const d of ["lists/partial", "cache/archives/partial"]) {
      Deno.mkdirSync(join(aptDir, d), { recursive: true });
    }
    const lines = debSrcLines(machineSources());
    if (lines.length === 0) {
      throw new VmonError(
        "Cannot fetch the busybox source: no deb entries in /etc/apt/sources.list(.d)",
      );
    }
    writeAtomic(join(aptDir, "sources.list"), lines.join("\n") + "\n");
    const log = join(root, "fetch.log");
    const opts = aptOptions(aptDir);
    onProgress(`busybox: apt-get update (private deb-src list, ${lines.length} entries)`);
    await runLogged("apt-get", [...opts, "update"], { log, what: "fetch the busybox source" });
    const shown = await capture("apt-cache", [...opts, "showsrc", "busybox"]);
    const versions = [...(shown ?? "").matchAll(/^Version: (\S+)$/gm)].map((m) => m[1]!);
    if (versions.length === 0) {
      throw new VmonError("Cannot fetch the busybox source: apt knows no busybox source package");
    }
    const work = tempSibling(join(root, "download"));
    Deno.mkdirSync(work, { recursive: true });
    onProgress("busybox: apt-get source busybox");
    await runLogged("apt-get", [...opts, "source", "busybox"], {
      log,
      cwd: work,
      what: "fetch the busybox source",
    });
    const dsc = [...Deno.readDirSync(work)].map((e) => e.name).find((n) => n.endsWith(".dsc"));
    const unpacked = [...Deno.readDirSync(work)].find((e) =>
      e.isDirectory && e.name.startsWith("busybox-")
    );
    if (!dsc || !unpacked) {
      throw new VmonError(
        `Cannot fetch the busybox source: apt-get source left no tree in ${work}`,
      );
    }
    // busybox_1.35.0-4+deb12u1.dsc -> 1.35.0-4+deb12u1 (the epoch is not in file names).
    const version = dsc.replace(/^busybox_/, "").replace(/\.dsc$/, "");
    const dest = join(root, version);
    Deno.mkdirSync(dest, { recursive: true });
    if (exists(join(dest, "tree"))) Deno.removeSync(join(dest, "tree"), { recursive: true });
    Deno.renameSync(join(work, unpacked.name), join(dest, "tree"));
    Deno.removeSync(work, { recursive: true });
    writeAtomic(current, version + "\n");
    onProgress(
      `busybox: source ${version} ready in ${formatDuration(performance.now() - start)}`,
    );
    return { tree: join(dest, "tree"), version };
  }, { onWait: () => onProgress("busybox: waiting for another process fetching the source") });
}

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

/** Checks that `path` is a static RISC-V 64 ELF executable. */
export function checkStaticRiscv(path: string): void {
  const b = Deno.readFileSync(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const bad = (why: string) => new VmonError(`Cannot use busybox binary "${path}": ${why}`);
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

/** A built busybox. */
export interface BusyboxBuild {
  /** The static riscv64 busybox binary. */
  binary: string;
  /** Absolute paths of its applet links, one per entry (`/bin/sh`, ...). */
  links: string[];
  /** The Debian source package version it was built from. */
  version: string;
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
 * Builds (or returns the cached) static riscv64 busybox: `make defconfig`, the committed
 * fragment applied, `make oldconfig`, a check that every fragment line took effect, then
 * `make busybox busybox.links`.
 *
 * @param onProgress Receives progress lines.
 * @param options Build options.
 */
export async function buildBusybox(
  onProgress: ProgressFn,
  options: BusyboxOptions = {},
): Promise<BusyboxBuild> {
  const { tree, version } = await busyboxSource(onProgress, options.refresh ?? false);
  const gccVersion = (await packageVersion("gcc-riscv64-linux-gnu")) ?? "unknown";
  const key = hashFiles([BUSYBOX_FRAGMENT], [`busybox=${version}`, `gcc=${gccVersion}`]);
  const dir = cacheDir("images", "linux-rv64", "busybox", key);
  const binary = join(dir, "busybox");
  const linksFile = join(dir, "busybox.links");
  const result = (cached: boolean): BusyboxBuild => ({
    binary,
    links: Deno.readTextFileSync(linksFile).split("\n").map((l) => l.trim())
      .filter((l) => l.startsWith("/") && l !== "/linuxrc"),
    version,
    cached,
  });
  if (exists(binary) && exists(linksFile)) {
    return result(true);
  }
  return await withLock(join(dir, ".lock"), async () => {
    if (exists(binary) && exists(linksFile)) return result(true);
    const obj = join(dir, "obj");
    const log = join(dir, "build.log");
    const make = ["-C", tree, `O=${obj}`, `CROSS_COMPILE=${CROSS}`];
    const start = performance.now();
    onProgress(`busybox: configuring ${version} (defconfig + ${BUSYBOX_FRAGMENT}), log ${log}`);
    Deno.mkdirSync(obj, { recursive: true });
    await runLogged("make", [...make, "defconfig"], { log, what: "configure busybox" });
    const fragment = Deno.readTextFileSync(BUSYBOX_FRAGMENT);
    const configPath = join(obj, ".config");
    Deno.writeTextFileSync(configPath, applyFragment(Deno.readTextFileSync(configPath), fragment));
    // stdin is /dev/null: any new question takes its default.
    await runLogged("make", [...make, "oldconfig"], { log, what: "configure busybox" });
    const bad = configMismatches(fragment, Deno.readTextFileSync(configPath));
    if (bad.length > 0) {
      throw new VmonError(
        `Cannot configure busybox: fragment options did not take effect: ${bad.join(", ")}`,
      );
    }
    const jobs = options.jobs ?? 2;
    onProgress(`busybox: compiling with -j${jobs} (takes minutes; log ${log})`);
    await runLogged("make", [...make, `-j${jobs}`, "busybox", "busybox.links"], {
      log,
      what: "build busybox",
      heartbeat: (ms) => onProgress(`busybox: compiling, ${formatDuration(ms)}`),
    });
    checkStaticRiscv(join(obj, "busybox"));
    copyAtomic(join(obj, "busybox.links"), linksFile + ".new");
    copyAtomic(join(obj, "busybox"), binary);
    Deno.renameSync(linksFile + ".new", linksFile);
    writeAtomic(join(dir, "inputs.txt"), `busybox ${version}\ngcc ${gccVersion}\n`);
    onProgress(
      `busybox: built ${binary} in ${formatDuration(performance.now() - start)}`,
    );
    return result(false);
  }, { onWait: () => onProgress("busybox: waiting for another process building it") });
}
