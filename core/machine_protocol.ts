/**
 * The messages between the main thread's `Machine` and the machine worker.
 *
 * @module
 */

import type { MachineExit, MachineManifest, MachineStats } from "./api/mod.ts";

/** Main thread to worker. */
export type ToWorker =
  | { type: "build"; manifest: MachineManifest; trace: readonly string[] }
  | { type: "run" }
  | { type: "input"; bytes: Uint8Array }
  | { type: "stop"; reason: string; status: number }
  | { type: "pause" }
  | { type: "resume" }
  | { type: "stats"; id: number };

/** Worker to main thread. */
export type FromWorker =
  | { type: "ready" }
  | { type: "console"; bytes: Uint8Array }
  | { type: "log"; line: string }
  | { type: "error"; message: string; status: number; stack?: string; user: boolean }
  | { type: "exit"; exit: MachineExit }
  | { type: "stats"; id: number; stats: MachineStats };
