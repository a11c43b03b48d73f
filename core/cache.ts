/**
 * The build cache: compiled C libraries, guest images and downloaded sources live here, never in
 * git. `VMON_CACHE` overrides the location (default `.cache/` in the repository).
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createHash } from "node:crypto";

/** The repository root (the folder holding `deno.json`). */
export const REPO_ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** Returns the cache directory (created if missing), optionally a subfolder of it. */
export function cacheDir(...parts: string[]): string {
  const root = Deno.env.get("VMON_CACHE") ?? join(REPO_ROOT, ".cache");
  const dir = join(root, ...parts);
  Deno.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Hashes the contents and names of files (sorted by path) plus extra strings; used to key cached
 * builds so that they are rebuilt when their sources change.
 */
export function hashFiles(paths: readonly string[], extra: readonly string[] = []): string {
  const h = createHash("sha256");
  for (const p of [...paths].sort()) {
    h.update(p);
    h.update(Deno.readFileSync(p));
  }
  for (const e of extra) h.update(e);
  return h.digest("hex").slice(0, 16);
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
