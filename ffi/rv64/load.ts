/**
 * Builds (once per source hash, into the cache) and loads the rv64 C library.
 *
 * @module
 */

import { join } from "node:path";
import { cacheDir, hashFiles, listFiles, REPO_ROOT } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { RV64_SYMBOLS } from "./symbols.ts";

/** The loaded rv64 library. */
export type Rv64Library = Deno.DynamicLibrary<typeof RV64_SYMBOLS>;

/** Compiler flags of the library build. */
export const RV64_CFLAGS: readonly string[] = [
  "-O2",
  "-fPIC",
  "-shared",
  "-fvisibility=hidden",
  "-fno-strict-aliasing",
  "-Wall",
];

let loaded: Rv64Library | undefined;

/**
 * Returns the path of the compiled library, compiling `ffi/rv64/*.c` into the cache when the
 * sources changed. `VMON_RV64_LIB` names a prebuilt library instead.
 */
export function buildRv64(): string {
  const override = Deno.env.get("VMON_RV64_LIB");
  if (override) return override;
  const srcDir = join(REPO_ROOT, "ffi", "rv64");
  const sources = listFiles(srcDir, [".c"]).filter((p) => !p.includes("/test"));
  const headers = listFiles(srcDir, [".h"]);
  const hash = hashFiles([...sources, ...headers], RV64_CFLAGS);
  const out = join(cacheDir("ffi"), `librv64-${hash}.so`);
  try {
    Deno.statSync(out);
    return out;
  } catch {
    // not built yet
  }
  const tmp = `${out}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  const res = new Deno.Command("gcc", {
    args: [...RV64_CFLAGS, "-o", tmp, ...sources, "-lm"],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  if (!res.success) {
    throw new VmonError(
      `Cannot build the rv64 library: gcc failed: ${new TextDecoder().decode(res.stderr).trim()}`,
    );
  }
  Deno.renameSync(tmp, out);
  return out;
}

/** Loads the rv64 library (built on first use); the same instance is returned afterwards. */
export function loadRv64(): Rv64Library {
  if (loaded) return loaded;
  const path = buildRv64();
  try {
    loaded = Deno.dlopen(path, RV64_SYMBOLS);
  } catch (cause) {
    throw new VmonError(`Cannot load the rv64 library "${path}": ${String(cause)}`, { cause });
  }
  return loaded;
}
