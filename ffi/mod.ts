/**
 * The one loader of vmon's C accelerator libraries (`ffi/kvm`, `ffi/rv64`). Only host ports (and
 * the backends' own `mod.ts`) import this module.
 *
 * `loadLibrary(backend, symbols, options)` builds `ffi/<backend>/*.c` into the cache when needed
 * ({@linkcode buildLibrary}: `libvmon-<backend>-<hash>.so`) and opens it with `Deno.dlopen` by
 * absolute path. Each thread (the main thread, every Worker) opens the library itself; the
 * handle is cached per thread, so later calls are free. `VMON_FFI_LIB_<BACKEND>` (for example
 * `VMON_FFI_LIB_KVM`, `VMON_FFI_LIB_RV64`) names a prebuilt library to load instead. Each backend
 * wraps this in its own `mod.ts` with its typed symbol table (`loadKvm`, `loadRv64`).
 *
 * @module
 */

import { isAbsolute, resolve } from "../core/paths.ts";
import { VmonError } from "../core/errors.ts";
import { buildLibrary, type BuildOptions, planLibrary } from "./build.ts";

export { buildLibrary, type BuildOptions, CFLAGS, findCompiler, planLibrary } from "./build.ts";
export type { LibraryPlan } from "./build.ts";

/** Options for {@linkcode loadLibrary}: those of the build, used when it compiles. */
export type LoadOptions = BuildOptions;

// Module state is per thread in Deno: every Worker has its own copy of this map.
const opened = new Map<string, { path: string; lib: Deno.DynamicLibrary<any> }>();

/** The environment variable that names a prebuilt library for `backend`. */
export function overrideVariable(backend: string): string {
  return `VMON_FFI_LIB_${backend.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/**
 * Returns the path of the library that {@linkcode loadLibrary} opens: the override from
 * `VMON_FFI_LIB_<BACKEND>` if set, else the cached build (compiled now if missing).
 *
 * @param backend The folder name under `ffi/`.
 * @param options Build options.
 */
export function libraryPath(backend: string, options: LoadOptions = {}): string {
  const override = Deno.env.get(overrideVariable(backend));
  if (override !== undefined && override !== "") {
    return isAbsolute(override) ? override : resolve(override);
  }
  return resolve(buildLibrary(backend, options));
}

/**
 * Builds (if needed) and opens the C library of `backend` with the given symbol table. The
 * handle is cached per thread and backend; it stays open for the life of the thread.
 *
 * @example
 * ```ts
 * import { loadLibrary } from "./mod.ts";
 * import { KVM_SYMBOLS } from "./kvm/symbols.ts";
 * const lib = loadLibrary("kvm", KVM_SYMBOLS);
 * console.assert(typeof lib.symbols.vmon_kvm_open === "function");
 * ```
 *
 * @param backend The folder name under `ffi/` (`kvm`, `rv64`).
 * @param symbols The backend's symbol table.
 * @param options Build options (used only when the library is compiled).
 * @throws {VmonError} When the build fails or the library cannot be opened.
 */
export function loadLibrary<S extends Deno.ForeignLibraryInterface>(
  backend: string,
  symbols: S,
  options: LoadOptions = {},
): Deno.DynamicLibrary<S> {
  const cached = opened.get(backend);
  if (cached !== undefined) return cached.lib as Deno.DynamicLibrary<S>;
  return open(backend, symbols, libraryPath(backend, options));
}

/**
 * Opens the library of `backend` as {@linkcode loadLibrary} does, but only when that needs no
 * compiling: the override of `VMON_FFI_LIB_<BACKEND>`, or a library already built for the current
 * sources. Undefined when there is none yet (or no compiler to name it); a library that exists
 * but cannot be opened throws as in {@linkcode loadLibrary}. Host ports call it to warm up.
 *
 * @param backend The folder name under `ffi/`.
 * @param symbols The backend's symbol table.
 * @param options Build options (they name the library; nothing is compiled).
 */
export function openBuiltLibrary<S extends Deno.ForeignLibraryInterface>(
  backend: string,
  symbols: S,
  options: LoadOptions = {},
): Deno.DynamicLibrary<S> | undefined {
  const cached = opened.get(backend);
  if (cached !== undefined) return cached.lib as Deno.DynamicLibrary<S>;
  const override = Deno.env.get(overrideVariable(backend));
  let path: string;
  if (override !== undefined && override !== "") {
    path = isAbsolute(override) ? override : resolve(override);
  } else {
    try {
      path = resolve(planLibrary(backend, options).path);
      Deno.statSync(path);
    } catch {
      return undefined; // not built yet, or no compiler: loadLibrary will say
    }
  }
  return open(backend, symbols, path);
}

/** Opens `path` for `backend` on this thread and keeps the handle. */
function open<S extends Deno.ForeignLibraryInterface>(
  backend: string,
  symbols: S,
  path: string,
): Deno.DynamicLibrary<S> {
  let lib: Deno.DynamicLibrary<S>;
  try {
    lib = Deno.dlopen(path, symbols);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new VmonError(`Cannot load the C accelerator (${backend}) "${path}": ${why}`, {
      cause,
    });
  }
  opened.set(backend, { path, lib });
  return lib;
}
