/**
 * `vmon run`: builds a machine manifest from an image's defaults, a manifest file and flags (in
 * that order of precedence, flags last), runs the machine with the user's terminal, and reports
 * statistics.
 *
 * @module
 */

import { resolve } from "node:path";
import type { MachineExit, PluginRef } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { impliedPlatform } from "../core/loader.ts";
import { loadManifestFile } from "../core/manifest.ts";
import { createMachine } from "../core/machine.ts";
import { buildImage, listImages } from "../images/mod.ts";
import type { BuiltImage } from "../images/mod.ts";
import { parsePluginSpec } from "./flags.ts";
import { buildRunManifest, checkFlags, type RunFlags } from "./run_manifest.ts";
import {
  attachSnapshotSupport,
  checkSnapshotFlags,
  type SnapshotFlags,
  type SnapshotSupport,
} from "./run_snapshot.ts";
import { Terminal } from "./terminal.ts";

export type { RunFlags } from "./run_manifest.ts";

/** Images `vmon run` boots when neither an image, a kernel nor a manifest is named, best first. */
export const DEFAULT_IMAGES: readonly string[] = ["linux-rv64", "linux", "hello"];

/** Why a file operation failed, in a few words. */
function reason(err: unknown): string {
  return err instanceof Deno.errors.NotFound
    ? "no such file"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : err instanceof Error
    ? err.message.replace(/ \(os error \d+\)$/, "").toLowerCase()
    : String(err);
}

/**
 * Checks that a file the user named exists and is a regular file; messages show the path
 * resolved against the user's directory.
 */
function checkFile(what: string, path: string): void {
  const full = resolve(path);
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(full);
  } catch (err) {
    throw new VmonError(`Cannot read ${what} "${full}": ${reason(err)}`);
  }
  if (!info.isFile) throw new VmonError(`Cannot read ${what} "${full}": not a regular file`);
}

/**
 * Checks that a `--disk` file (attached writable) can be opened for writing, saying how to attach
 * it read-only when it cannot.
 */
function checkWritableDisk(path: string): void {
  checkFile("disk image", path);
  const full = resolve(path);
  try {
    Deno.openSync(full, { read: true, write: true }).close();
  } catch (err) {
    throw new VmonError(
      `Cannot open disk image "${full}" for writing: ${
        reason(err)
      } (to attach it read-only: --device virtio-blk,file=${full},readonly=true)`,
    );
  }
}

/**
 * Refuses `--exec` for an image whose guest cannot run commands (it would be ignored). A kernel
 * or initramfs of the user's own is not checked: its init may follow the protocol.
 */
function checkExec(flags: RunFlags, imageName: string | undefined): void {
  if (flags.exec === undefined || imageName === undefined) return;
  if (flags.kernel !== undefined || flags.initrd !== undefined) return;
  const recipe = listImages().find((image) => image.name === imageName);
  if (recipe === undefined || recipe.exec) return;
  const able = listImages().filter((image) => image.exec).map((image) => image.name);
  throw new VmonError(
    `Cannot use --exec with image "${imageName}": its guest cannot run commands (images that can: ${
      able.join(", ")
    })`,
  );
}

/**
 * The platform `vmon run` uses when neither flags, a manifest nor an image names one: the one the
 * host port implies (`--host rv64` alone means riscv-virt).
 */
async function implied(
  flags: RunFlags,
  sources: { image?: BuiltImage; manifest?: { hostport: PluginRef } },
): Promise<PluginRef | undefined> {
  if (flags.platform !== undefined || sources.image !== undefined) return undefined;
  const host = flags.host !== undefined
    ? parsePluginSpec(flags.host, { flag: "--host" }).use
    : sources.manifest?.hostport.use;
  return host === undefined ? undefined : { use: await impliedPlatform(host) };
}

/**
 * The stall report bound from `VMON_STALL_WARNING` (seconds; 0 turns the report off), or
 * undefined for the machine's default.
 */
function stallWarningMs(): number | undefined {
  const v = Deno.env.get("VMON_STALL_WARNING");
  if (v === undefined || v.trim() === "") return undefined;
  const seconds = Number(v);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new VmonError(
      `Invalid VMON_STALL_WARNING "${v}": expected seconds (0 turns the report off)`,
    );
  }
  return seconds * 1000;
}

/** Picks the image `vmon run` boots when none is named. */
export function defaultImageName(): string {
  const names = listImages().map((image) => image.name);
  const name = DEFAULT_IMAGES.find((n) => names.includes(n)) ?? names[0];
  if (name === undefined) throw new VmonError("Cannot pick a default image: no images exist");
  return name;
}

/** Writes all of `bytes` to a synchronous sink such as `Deno.stdout`. */
function writeAll(sink: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += sink.writeSync(bytes.subarray(off));
}

/**
 * Runs `vmon run`: loads the image and manifest, builds and runs the machine with the terminal
 * attached, prints statistics, and returns the exit status for the process.
 *
 * @param flags The command-line flags.
 * @returns The machine's exit status.
 */
export async function runCommand(flags: RunFlags & SnapshotFlags): Promise<number> {
  const checked = checkFlags(flags); // once, and before building anything
  const snapshot = checkSnapshotFlags(flags);
  if (flags.manifest !== undefined) checkFile("manifest", flags.manifest);
  if (flags.kernel !== undefined) checkFile("kernel image", flags.kernel);
  if (flags.initrd !== undefined) checkFile("initrd", flags.initrd);
  for (const disk of flags.disk ?? []) if (disk !== "") checkWritableDisk(disk);

  const manifest = flags.manifest !== undefined
    ? await loadManifestFile(flags.manifest)
    : undefined;
  const imageName = flags.image ??
    (flags.manifest === undefined && flags.kernel === undefined && snapshot.restore === undefined
      ? defaultImageName()
      : undefined);
  checkExec(flags, imageName);
  let image: BuiltImage | undefined;
  if (imageName !== undefined) {
    image = await buildImage(imageName, {
      onProgress: (line) => console.error(`vmon: image ${imageName}: ${line}`),
    });
  }
  const platform = manifest?.platform === undefined
    ? await implied(flags, { image, manifest })
    : undefined;
  const machineManifest = snapshot.restore !== undefined
    ? { restore: snapshot.restore }
    : buildRunManifest(checked, { image, manifest, platform });
  const { trace, stats } = checked;

  const encoder = new TextEncoder();
  let quit: { reason: string; status: number } | undefined;
  const pending: Uint8Array[] = [];
  let sendInput: ((bytes: Uint8Array) => void) | undefined;
  let stop: ((reason: string, status: number) => void) | undefined;
  const stallWarning = stallWarningMs();
  // A signal while plugins are set up ends the build too (a setup that never returns).
  const building = new AbortController();
  const terminal = new Terminal({
    onInput: (bytes) => sendInput ? sendInput(bytes) : pending.push(bytes),
    onQuit: (reason, status) => {
      quit ??= { reason, status };
      if (stop !== undefined) stop(reason, status);
      else building.abort(new VmonError(`Cannot build the machine: ${reason}`, { status }));
    },
  });
  let exit: MachineExit;
  let support: SnapshotSupport | undefined;
  try {
    terminal.start();
    const machine = await createMachine(machineManifest, {
      trace,
      console: { write: (bytes: Uint8Array) => writeAll(Deno.stdout, bytes) },
      ...(stallWarning !== undefined ? { stallWarningMs: stallWarning } : {}),
      signal: building.signal,
      ...snapshot.machineOptions,
      onSnapshot: (result) => support?.onSnapshot(result),
    });
    support = attachSnapshotSupport(machine, { checked: snapshot, exec: flags.exec });
    sendInput = (bytes) => machine.sendInput(bytes);
    stop = (reason, status) => machine.stop(reason, status);
    for (const bytes of pending.splice(0)) machine.sendInput(bytes);
    if (quit !== undefined) machine.stop(quit.reason, quit.status);
    support.started();
    exit = await machine.run();
    support.exited(exit);
  } finally {
    support?.close();
    terminal.restore();
  }
  if (terminal.interactive) writeAll(Deno.stderr, encoder.encode("\r\n"));
  if (stats !== "none") {
    // Loaded only when asked for (the table's module loads cli-table3).
    const { formatStatsJson, formatStatsTable } = await import("./stats.ts");
    if (stats === "table") console.error(formatStatsTable(exit.stats));
    if (stats === "json") console.log(formatStatsJson(exit));
  }
  if (quit !== undefined && !exit.failed) console.error(`vmon: ${exit.reason}`);
  if (exit.failed) {
    console.error(`vmon: ${exit.reason}`);
    return exit.status === 0 ? 1 : exit.status;
  }
  return exit.status;
}
