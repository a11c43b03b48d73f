/**
 * Boot snapshots for `vmon compare --from-snapshot`: the bench image is booted once per strategy
 * variant (the variant's paging strategy and its state are part of the machine a snapshot holds:
 * a snapshot restores the manifest it was taken with, strategy included) with the boot manifest
 * every run of the variant uses (lab/runner.ts `bootManifest`, `vmon.exec=console`), up to init's
 * `vmon: init ready` marker, where a snapshot is written. Every Linux run of that variant then
 * starts from the snapshot and gets its workload typed in before its first instruction, exactly
 * where a cold run settles and gets it typed (lab/runner.ts `runMachine`), so the boot is paid
 * once per variant instead of once per run and nothing else changes.
 *
 * @module
 */

import { join } from "node:path";
import type { MachineManifest } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { INIT_READY_MARKER } from "../images/linux-rv64/protocol.ts";
import { createMachine } from "../core/machine.ts";
import type { Variant } from "./types.ts";

/** Options of {@linkcode BootSnapshots}. */
export interface BootSnapshotsOptions {
  /** The boot manifest of a variant, the one its cold runs boot (lab/runner.ts `bootManifest`). */
  readonly manifest: (variant: Variant) => MachineManifest;
  /** Host milliseconds after which a snapshot boot is stopped and refused. */
  readonly timeoutMs: number;
  /** Receives the console bytes of the snapshot boots (for `--console`). */
  readonly echo?: (bytes: Uint8Array) => void;
  /** Told when a snapshot boot starts and when its snapshot is written. */
  readonly onSnapshot?: (variant: Variant, event: "boot" | "written", path: string) => void;
}

/**
 * The boot snapshots of one comparison, in a temporary folder of their own: made on first use,
 * one per variant id, removed by `dispose`.
 */
export class BootSnapshots {
  #options: BootSnapshotsOptions;
  #dir: string | undefined;
  #paths = new Map<string, string>();

  /** @param options How to make a variant's boot manifest, the timeout and the echo. */
  constructor(options: BootSnapshotsOptions) {
    this.#options = options;
  }

  /** Variants whose snapshot was taken so far. */
  get taken(): number {
    return this.#paths.size;
  }

  /**
   * The snapshot of `variant`'s booted machine, taken now if this is its first use.
   *
   * @param variant The strategy variant.
   * @returns The snapshot file.
   * @throws {VmonError} When the boot fails, times out, never prints the marker or the
   *   snapshot cannot be written: one line naming the variant.
   */
  async pathFor(variant: Variant): Promise<string> {
    const known = this.#paths.get(variant.id);
    if (known !== undefined) return known;
    this.#dir ??= await Deno.makeTempDir({ prefix: "vmon-compare-snap-" });
    const path = join(this.#dir, `${this.#paths.size}-${variant.id.replace(/\W+/g, "_")}.snap`);
    this.#options.onSnapshot?.(variant, "boot", path);
    await this.#take(variant, path);
    this.#paths.set(variant.id, path);
    this.#options.onSnapshot?.(variant, "written", path);
    return path;
  }

  async #take(variant: Variant, path: string): Promise<void> {
    const fail = (why: string): never => {
      throw new VmonError(`Cannot take the boot snapshot of ${variant.id}: ${why}`);
    };
    let tail = "";
    const dec = new TextDecoder();
    let written = false;
    let error: string | undefined;
    const machine = await createMachine(this.#options.manifest(variant), {
      console: {
        write: (bytes) => {
          this.#options.echo?.(bytes);
          tail = (tail + dec.decode(bytes, { stream: true })).slice(-400);
        },
      },
      log: () => {},
      snapshotOn: [{ text: INIT_READY_MARKER, path, then: "stop" }],
      onSnapshot: (r) => {
        if ("error" in r) error = r.error;
        else written = true;
      },
    });
    const seconds = Math.round(this.#options.timeoutMs / 1000);
    const timer = setTimeout(
      () => machine.stop(`timed out after ${seconds} s`, 124),
      this.#options.timeoutMs,
    );
    try {
      const exit = await machine.run();
      if (error !== undefined) fail(error);
      if (!written) {
        const last = tail.split("\n").map((l) => l.trim()).filter(Boolean).slice(-3).join(" | ");
        fail(
          `the machine ended (${exit.reason}, status ${exit.status}) before printing "${INIT_READY_MARKER}" (last lines: ${last})`,
        );
      }
    } finally {
      clearTimeout(timer);
      await machine[Symbol.asyncDispose]();
    }
  }

  /** Removes the snapshot files. */
  async dispose(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    this.#paths.clear();
    if (dir !== undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
