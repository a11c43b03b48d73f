/**
 * The `pv-guest` image: a bare-metal riscv64 S-mode guest that drives the queued paging
 * strategy's paravirtual page-table update call (SBI extension 0x0A564D4E) with valid, invalid and
 * random batches of a configurable size (`pv.batch=N` on the command line), prints its results
 * through the SBI debug console and powers off through SBI SRST. Built freestanding with
 * riscv64-linux-gnu-gcc into `cacheDir("images", "pv-guest", <hash>)`.
 *
 * @module
 */

import { join } from "node:path";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import type { BuildImageOptions, BuiltImage, ImageRecipe } from "../types.ts";

const SOURCE_DIR = join(import.meta.dirname!, "src");
const SOURCES = ["start.S", "main.c"];

/** The cross compiler. */
export const PV_GUEST_CC = "riscv64-linux-gnu-gcc";

/** Compiler and linker flags of the build. */
export const PV_GUEST_FLAGS: readonly string[] = [
  "-ffreestanding",
  "-nostdlib",
  "-nostartfiles",
  "-static",
  "-fno-pic",
  "-mcmodel=medany",
  "-march=rv64imac_zicsr_zifencei",
  "-mabi=lp64",
  "-O2",
  "-Wall",
  "-Wl,--build-id=none",
  "-Wl,--no-warn-rwx-segments",
];

async function run(args: readonly string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(PV_GUEST_CC, { args: [...args], stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new VmonError(`Cannot build image "pv-guest": cannot run ${PV_GUEST_CC}`, { cause: e });
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new VmonError(`Cannot build image "pv-guest": ${PV_GUEST_CC} failed:\n${text.trimEnd()}`);
  }
  return text;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds `pv-guest.elf` (once per hash of sources, flags and compiler version) and returns its
 * path.
 *
 * @param options `onProgress` receives progress lines while building.
 * @throws {VmonError} When the cross compiler is missing or fails (with its output).
 */
export async function buildPvGuest(options: BuildImageOptions = {}): Promise<string> {
  const version = (await run(["--version"])).split("\n")[0] ?? "";
  const files = [...SOURCES, "link.ld"].map((f) => join(SOURCE_DIR, f));
  const hash = hashFiles(files, [version, PV_GUEST_FLAGS.join(" ")]);
  const dir = cacheDir("images", "pv-guest");
  const final = join(dir, `pv-guest-${hash}.elf`);
  if (exists(final)) return final;
  options.onProgress?.(`Building pv-guest (${hash}) with ${version}`);
  const tmp = `${final}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  try {
    await run([
      ...PV_GUEST_FLAGS,
      "-T",
      join(SOURCE_DIR, "link.ld"),
      "-o",
      tmp,
      ...SOURCES.map((f) => join(SOURCE_DIR, f)),
    ]);
    await Deno.rename(tmp, final);
  } finally {
    if (exists(tmp)) await Deno.remove(tmp);
  }
  return final;
}

/** The `pv-guest` image recipe. */
export const PV_GUEST: ImageRecipe = {
  name: "pv-guest",
  description: "Bare-metal riscv64 guest driving the queued strategy's paravirtual update call",
  arch: "riscv64",
  async build(options: BuildImageOptions): Promise<BuiltImage> {
    return {
      name: "pv-guest",
      kernel: await buildPvGuest(options),
      cmdline: "pv.batch=16",
      defaults: { hostport: "rv64", platform: "riscv-virt", devices: [], memory: "32M" },
    };
  },
};
