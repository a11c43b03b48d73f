/**
 * A machine worker started before its machine: `vmon run` starts one as its very first step, so
 * that the worker's start-up (a new isolate importing the core) runs on another core while the
 * main thread loads the CLI and checks the image; {@linkcode createMachine} then takes it instead
 * of starting its own. The caller may name plugins the machine will probably use: the worker
 * loads them, and warms host ports (a host port's `warm()` opens its C library), while it waits
 * for the machine's manifest. This module imports nothing, so that starting the worker costs the
 * caller no module loading.
 *
 * @module
 */

import type { PreloadPlugin } from "./machine_protocol.ts";

/** A started worker, and the error it reported before a machine took it (a load failure). */
export interface PrewarmedWorker {
  /** The worker, running `machine_worker.ts`. */
  readonly worker: Worker;
  /** Set when the worker failed before a machine took it. */
  error?: string;
}

/** Options of {@linkcode prewarmMachineWorker}. */
export interface PrewarmOptions {
  /**
   * Plugins to load in the worker before the manifest arrives: a hint. A plugin that fails to
   * load or warm is skipped silently (the build reports its errors if the manifest names it), and
   * the build loads the plugins its manifest names, preloaded or not.
   */
  readonly preload?: readonly PreloadPlugin[];
}

let warm: PrewarmedWorker | undefined;

/** The URL of the machine worker's module. */
export const MACHINE_WORKER_URL: URL = new URL("./machine_worker.ts", import.meta.url);

/**
 * Starts a machine worker for the next machine of this process to take. A second call before that
 * does nothing. A process that ends without creating a machine just ends.
 *
 * @example
 * ```ts ignore
 * import { prewarmMachineWorker } from "./machine_prewarm.ts";
 * prewarmMachineWorker({ preload: [{ use: "rv64", kind: "hostport" }] });
 * // then load modules, check files, createMachine(...)
 * ```
 */
export function prewarmMachineWorker(options: PrewarmOptions = {}): void {
  if (warm !== undefined) return;
  const slot: PrewarmedWorker = { worker: new Worker(MACHINE_WORKER_URL, { type: "module" }) };
  // Until a machine takes it: keep a load error for the machine to report.
  slot.worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    slot.error = e.message;
  };
  if (options.preload?.length) {
    slot.worker.postMessage({ type: "preload", plugins: options.preload });
  }
  warm = slot;
}

/** Takes the started worker, if there is one (each is taken once). */
export function takePrewarmedWorker(): PrewarmedWorker | undefined {
  const slot = warm;
  warm = undefined;
  return slot;
}
