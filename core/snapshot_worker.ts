/**
 * The machine worker's side of snapshots: writing a snapshot file of the running machine, and
 * the console triggers of `--snapshot-on` (a snapshot taken right after the exit that printed a
 * text, which under `clock=icount` is the same instruction in every run).
 *
 * @module
 */

import { VmonError } from "./errors.ts";
import type { SnapshotResult, SnapshotTrigger } from "./machine_protocol.ts";
import type { Vm } from "./vm.ts";

/**
 * Saves `vm` into the file `path` (written to a temporary file first, then renamed, so a failed
 * write never leaves a truncated snapshot under the name). Call between exits.
 *
 * @param vm The machine.
 * @param path The file.
 * @param options Compression, and the trigger text to report.
 */
export function writeSnapshot(
  vm: Vm,
  path: string,
  options: { readonly compress?: boolean; readonly trigger?: string } = {},
): SnapshotResult {
  const t0 = performance.now();
  const { file, pages, totalPages } = vm.snapshot({ compress: options.compress });
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    Deno.writeFileSync(tmp, file, { mode: 0o600 });
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      Deno.removeSync(tmp);
    } catch { /* it was not created */ }
    throw new VmonError(`Cannot write snapshot "${path}": ${(err as Error).message}`);
  }
  return {
    path,
    bytes: file.length,
    pages,
    totalPages,
    ms: performance.now() - t0,
    ...(options.trigger !== undefined ? { trigger: options.trigger } : {}),
  };
}

/**
 * Settles `vm` as a snapshot would, without a file (a trigger without a path). Call between exits.
 *
 * @param vm The machine.
 * @param trigger The trigger text to report.
 */
export function settle(vm: Vm, trigger: string): SnapshotResult {
  const t0 = performance.now();
  vm.settle();
  return { bytes: 0, pages: 0, totalPages: 0, ms: performance.now() - t0, trigger };
}

/**
 * Watches console output for the texts of snapshot triggers. Each trigger fires once, the first
 * time its text appears (across writes): it pauses the machine at once (the running slice ends
 * after the current exit) and takes the snapshot as soon as the scheduler has parked.
 */
export class ConsoleTriggers {
  #pending: { trigger: SnapshotTrigger; bytes: Uint8Array; tail: number[] }[];
  #fire: (trigger: SnapshotTrigger) => void;

  /**
   * @param triggers The triggers.
   * @param fire Called once per trigger, from the console write that completed its text.
   */
  constructor(triggers: readonly SnapshotTrigger[], fire: (trigger: SnapshotTrigger) => void) {
    const enc = new TextEncoder();
    this.#pending = triggers.map((trigger) => {
      const bytes = enc.encode(trigger.text);
      if (bytes.length === 0) throw new VmonError("Invalid snapshot trigger: the text is empty");
      return { trigger, bytes, tail: [] };
    });
    this.#fire = fire;
  }

  /** True while a trigger waits. */
  get active(): boolean {
    return this.#pending.length > 0;
  }

  /** Feeds console output. */
  feed(bytes: Uint8Array): void {
    if (this.#pending.length === 0) return;
    for (const p of [...this.#pending]) {
      const want = p.bytes;
      const tail = p.tail;
      for (const b of bytes) {
        tail.push(b);
        if (tail.length > want.length) tail.shift();
        if (tail.length === want.length && tail.every((x, i) => x === want[i])) {
          this.#pending.splice(this.#pending.indexOf(p), 1);
          this.#fire(p.trigger);
          break;
        }
      }
    }
  }
}
