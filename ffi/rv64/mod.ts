/**
 * The rv64 software RISC-V machine of vmon's C accelerator: build and load `ffi/rv64/*.c` with
 * the one loader of `ffi/mod.ts`. Only the rv64 host port (and tests of this folder's C code)
 * import this module.
 *
 * @module
 */

import {
  buildLibrary as buildBackend,
  type BuildOptions,
  loadLibrary,
  openBuiltLibrary,
} from "../mod.ts";
import { RV64_SYMBOLS } from "./symbols.ts";

export * from "./symbols.ts";

/** The loaded rv64 library. */
export type Rv64Library = Deno.DynamicLibrary<typeof RV64_SYMBOLS>;

/** How the rv64 library is built: the common flags of `ffi/build.ts` plus libm (fpu.c). */
export const RV64_BUILD: Readonly<BuildOptions> = { libs: ["-lm"] };

/**
 * Builds the rv64 library into the cache if needed and returns its path (used by
 * `tests/prepare.ts` before the parallel tests).
 */
export function buildLibrary(): string {
  return buildBackend("rv64", RV64_BUILD);
}

/**
 * Opens the rv64 library on this thread (building it first if needed; `VMON_FFI_LIB_RV64` names a
 * prebuilt one). Cached per thread: later calls return the same handle.
 *
 * @example
 * ```ts
 * import { loadRv64 } from "./mod.ts";
 * const lib = loadRv64();
 * console.assert(typeof lib.symbols.rv64_create === "function");
 * ```
 */
export function loadRv64(): Rv64Library {
  return loadLibrary("rv64", RV64_SYMBOLS, RV64_BUILD);
}

/**
 * Opens the rv64 library on this thread if that needs no compiling (see `openBuiltLibrary`):
 * a later {@linkcode loadRv64} then returns at once. Undefined when it is not built yet.
 */
export function openBuiltRv64(): Rv64Library | undefined {
  return openBuiltLibrary("rv64", RV64_SYMBOLS, RV64_BUILD);
}
