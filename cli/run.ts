/**
 * `vmon run`: builds a machine manifest from an image's defaults, a manifest file and flags (in
 * that order of precedence, flags last), runs the machine with the user's terminal, and reports
 * statistics.
 *
 * @module
 */

import type { MachineExit } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { loadManifestFile } from "../core/manifest.ts";
import { createMachine } from "../core/machine.ts";
import { buildImage, listImages } from "../images/mod.ts";
import type { BuiltImage } from "../images/mod.ts";
import { buildRunManifest, checkFlags, type RunFlags } from "./run_manifest.ts";
import { formatStatsJson, formatStatsTable } from "./stats.ts";
import { Terminal } from "./terminal.ts";

export type { RunFlags } from "./run_manifest.ts";

/** Images `vmon run` boots when neither an image, a kernel nor a manifest is named, best first. */
export const DEFAULT_IMAGES: readonly string[] = ["linux-rv64", "linux", "hello"];

/** Checks that a file the user named exists and is a regular file. */
function checkFile(what: string, path: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new VmonError(`Cannot read ${what} "${path}": ${why}`);
  }
  if (!info.isFile) throw new VmonError(`Cannot read ${what} "${path}": not a regular file`);
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
export async function runCommand(flags: RunFlags): Promise<number> {
  const checked = checkFlags(flags); // once, and before building anything
  if (flags.manifest !== undefined) checkFile("manifest", flags.manifest);
  if (flags.kernel !== undefined) checkFile("kernel image", flags.kernel);
  if (flags.initrd !== undefined) checkFile("initrd", flags.initrd);
  for (const disk of flags.disk ?? []) checkFile("disk image", disk);

  const manifest = flags.manifest !== undefined
    ? await loadManifestFile(flags.manifest)
    : undefined;
  const imageName = flags.image ??
    (flags.manifest === undefined && flags.kernel === undefined ? defaultImageName() : undefined);
  let image: BuiltImage | undefined;
  if (imageName !== undefined) {
    image = await buildImage(imageName, {
      onProgress: (line) => console.error(`vmon: image ${imageName}: ${line}`),
    });
  }
  const machineManifest = buildRunManifest(checked, { image, manifest });
  const { trace, stats } = checked;

  const encoder = new TextEncoder();
  let quit: { reason: string; status: number } | undefined;
  const pending: Uint8Array[] = [];
  let sendInput: ((bytes: Uint8Array) => void) | undefined;
  let stop: ((reason: string, status: number) => void) | undefined;
  const terminal = new Terminal({
    onInput: (bytes) => sendInput ? sendInput(bytes) : pending.push(bytes),
    onQuit: (reason, status) => {
      quit ??= { reason, status };
      stop?.(reason, status);
    },
  });
  let exit: MachineExit;
  try {
    terminal.start();
    const machine = await createMachine(machineManifest, {
      trace,
      console: { write: (bytes: Uint8Array) => writeAll(Deno.stdout, bytes) },
    });
    sendInput = (bytes) => machine.sendInput(bytes);
    stop = (reason, status) => machine.stop(reason, status);
    for (const bytes of pending.splice(0)) machine.sendInput(bytes);
    if (quit !== undefined) machine.stop(quit.reason, quit.status);
    exit = await machine.run();
  } finally {
    terminal.restore();
  }
  if (terminal.interactive) writeAll(Deno.stderr, encoder.encode("\r\n"));
  if (stats === "table") console.error(formatStatsTable(exit.stats));
  if (stats === "json") console.log(formatStatsJson(exit));
  if (quit !== undefined && !exit.failed) console.error(`vmon: ${exit.reason}`);
  if (exit.failed) {
    console.error(`vmon: ${exit.reason}`);
    return exit.status === 0 ? 1 : exit.status;
  }
  return exit.status;
}
