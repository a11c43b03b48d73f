/**
 * The KVM layer of vmon's C accelerator: build and load `ffi/kvm/*.c`. Only the kvm host port
 * imports this module.
 *
 * @module
 */

import { buildLibrary as buildBackend, loadLibrary, type LoadOptions } from "../mod.ts";
import { KVM_SYMBOLS } from "./symbols.ts";

export * from "./symbols.ts";

/** The loaded KVM library. */
export type KvmLibrary = Deno.DynamicLibrary<typeof KVM_SYMBOLS>;

/**
 * Builds the KVM library into the cache if needed and returns its path (used by
 * `tests/prepare.ts` before the parallel tests).
 */
export function buildLibrary(): string {
  return buildBackend("kvm");
}

/**
 * Opens the KVM library on this thread (building it first if needed; `VMON_FFI_LIB_KVM` names a
 * prebuilt one). Cached per thread.
 *
 * @param options Build options, used only when the library is compiled.
 */
export function loadKvm(options: LoadOptions = {}): KvmLibrary {
  return loadLibrary("kvm", KVM_SYMBOLS, options);
}
