/**
 * The build cache: compiled C libraries, guest images and downloaded sources live here, never in
 * git. `VMON_CACHE` overrides the location (default `.cache/` in the repository).
 *
 * @module
 */

import { dirname, fromFileUrl, isAbsolute, join, relative, resolve } from "./paths.ts";
import { Sha256 } from "./sha256.ts";

/** The repository root (the folder holding `deno.json`). */
export const REPO_ROOT: string = dirname(dirname(fromFileUrl(import.meta.url)));

/** The cache's root folder: `VMON_CACHE`, or `.cache/` in the repository. */
function cacheRoot(): string {
  return resolve(Deno.env.get("VMON_CACHE") ?? join(REPO_ROOT, ".cache"));
}

/** Returns the cache directory (created if missing), optionally a subfolder of it. */
export function cacheDir(...parts: string[]): string {
  const dir = join(cacheRoot(), ...parts);
  Deno.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The name a file has in a cache key: its path relative to the cache (`cache:images/...`) or to
 * the repository (`images/linux-rv64/init`), so that a checkout or a cache in another folder
 * computes the same keys and finds the same builds; absolute only for a file outside both.
 *
 * @param path A file's path.
 *
 * @example
 * ```ts
 * import { keyPath, REPO_ROOT } from "./cache.ts";
 * if (keyPath(`${REPO_ROOT}/core/cache.ts`) !== "core/cache.ts") throw new Error("not relative");
 * ```
 */
export function keyPath(path: string): string {
  const abs = resolve(path);
  const under = (root: string): string | undefined => {
    const rel = relative(root, abs);
    return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : undefined;
  };
  const inCache = under(cacheRoot());
  if (inCache !== undefined) return `cache:${inCache}`;
  return under(REPO_ROOT) ?? abs;
}

/**
 * Hashes the contents and names (as {@linkcode keyPath} gives them, in that order) of files plus
 * extra strings; used to key cached builds so that they are rebuilt when their sources change.
 */
export function hashFiles(paths: readonly string[], extra: readonly string[] = []): string {
  const h = new Sha256();
  const named = paths.map((p) => ({ p, key: keyPath(p) }))
    .sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  for (const { p, key } of named) {
    h.update(key);
    h.update(Deno.readFileSync(p));
  }
  for (const e of extra) h.update(e);
  return h.hex().slice(0, 16);
}

/**
 * {@linkcode hashFiles}, remembered in the file `memo`: while every file has the size, times,
 * inode and device it had when the hash was computed (and `extra` is the same), the files are
 * not read again. A file rewritten in place within the same millisecond at the same size would
 * go unnoticed, as with make; anything else changes its stamp. A memo that cannot be read or
 * written only costs the hashing.
 *
 * @param paths The files.
 * @param extra Extra strings, as for hashFiles.
 * @param options `memo`: where the stamp and the hash are kept (a JSON file).
 */
export function hashFilesMemo(
  paths: readonly string[],
  extra: readonly string[],
  options: { readonly memo: string },
): string {
  const stamp = JSON.stringify({
    files: paths.map((p) => {
      const s = Deno.statSync(p);
      return [keyPath(p), s.size, s.mtime?.getTime() ?? 0, s.ctime?.getTime() ?? 0, s.ino, s.dev];
    }),
    extra,
  });
  try {
    const kept = JSON.parse(Deno.readTextFileSync(options.memo));
    if (kept?.stamp === stamp && typeof kept.hash === "string") return kept.hash;
  } catch {
    // none yet, or unreadable: hash
  }
  const hash = hashFiles(paths, extra);
  const tmp = `${options.memo}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(tmp, JSON.stringify({ stamp, hash }));
    Deno.renameSync(tmp, options.memo);
  } catch {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing was written
    }
  }
  return hash;
}

/** Lists files under `dir` (recursively) whose names end with one of `exts`. */
export function listFiles(dir: string, exts: readonly string[]): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const p = join(dir, entry.name);
    if (entry.isDirectory) out.push(...listFiles(p, exts));
    else if (exts.some((e) => entry.name.endsWith(e))) out.push(p);
  }
  return out.sort();
}
