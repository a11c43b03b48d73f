/**
 * The image registry: guest images vmon can build from sources in this repository. Each entry
 * is a recipe with a `build` function; builds land in the cache (`cacheDir("images", ...)`),
 * keyed by a hash of their sources and toolchain, and are rebuilt only when those change.
 *
 * To add an image, write a recipe ({@linkcode ImageRecipe}) in its own folder and add it to the
 * `IMAGES` table below. {@linkcode imageManifest} turns a built image into the manifest that boots
 * it (the one definition of an image's machine, used by `vmon run` and the paging comparison).
 *
 * @example List the images
 * ```ts
 * import { listImages } from "./mod.ts";
 *
 * const names = listImages().map((image) => image.name);
 * if (!names.includes("hello")) throw new Error("hello is missing");
 * ```
 *
 * @module
 */

import { VmonError } from "../core/errors.ts";
import type { BuildImageOptions, BuiltImage, ImageRecipe } from "./types.ts";
import { X86_IMAGES } from "./x86/mod.ts";
import { LINUX_RV64 } from "./linux-rv64/mod.ts";
import { PV_GUEST } from "./pv-guest/mod.ts";
import { LINUX_RV64_BENCH } from "./workloads/mod.ts";

export type { BuildImageOptions, BuiltImage, ImageDefaults, ImageRecipe } from "./types.ts";
export { imageManifest, type ImageManifestOptions } from "./manifest.ts";

/** Every image recipe, in the order `vmon images` lists them. */
const IMAGES: readonly ImageRecipe[] = [
  ...X86_IMAGES,
  LINUX_RV64,
  LINUX_RV64_BENCH,
  PV_GUEST,
];

/** Returns every image recipe in the registry. */
export function listImages(): readonly ImageRecipe[] {
  return IMAGES;
}

/**
 * Builds image `name` (or finds it in the cache) and returns its files and default machine.
 *
 * @param name The image's registry name, such as `hello`.
 * @param options `onProgress` receives progress lines while building.
 * @throws {VmonError} If no image has that name (the message lists the known ones) or the build
 *   fails.
 *
 * @example Build the hello guest
 * ```ts ignore
 * import { buildImage } from "./mod.ts";
 *
 * const image = await buildImage("hello", { onProgress: console.error });
 * console.log(image.kernel);
 * ```
 */
export function buildImage(name: string, options: BuildImageOptions = {}): Promise<BuiltImage> {
  const recipe = IMAGES.find((image) => image.name === name);
  if (recipe === undefined) {
    const known = IMAGES.map((image) => image.name).join(", ");
    return Promise.reject(
      new VmonError(`Cannot build image "${name}": unknown image (known: ${known})`),
    );
  }
  return recipe.build(options);
}

// `deno task image <name>...`: builds the named images (all if none) and prints their paths.
if (import.meta.main) {
  const start = performance.now();
  const log = (line: string) =>
    console.error(`[${((performance.now() - start) / 1000).toFixed(1).padStart(6)}s] ${line}`);
  try {
    const names = Deno.args.length > 0 ? Deno.args : IMAGES.map((image) => image.name);
    for (const name of names) {
      const onProgress = (line: string) => log(`${name}: ${line}`);
      console.log(JSON.stringify(await buildImage(name, { onProgress })));
    }
  } catch (e) {
    if (!(e instanceof VmonError)) throw e;
    console.error(e.message);
    Deno.exit(e.status);
  }
}
