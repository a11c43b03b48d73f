/**
 * The shape of an image recipe and of a built image. Recipes live in their own folders under
 * `images/` and are listed in the registry in `images/mod.ts`.
 *
 * @module
 */

import type { GuestArch } from "../core/api/mod.ts";

/** How a built image is meant to run when the user names only the image. */
export interface ImageDefaults {
  /** Host port name (`kvm`, `rv64`). */
  readonly hostport: string;
  /** Platform name (`x86-64-direct`, ...). */
  readonly platform: string;
  /** Device plugin names, set up in this order. */
  readonly devices: readonly string[];
  /** Number of vCPUs. */
  readonly cpus?: number;
  /** RAM size (`64M`). */
  readonly memory?: string;
  /** Platform option values the image expects (`{ ring: 3 }`). */
  readonly platformOptions?: Readonly<Record<string, string | number | boolean>>;
}

/** A built image: files in the cache and how to boot them. */
export interface BuiltImage {
  /** The image's registry name. */
  readonly name: string;
  /** Absolute path of the kernel (or guest ELF). */
  readonly kernel: string;
  /** Absolute path of an initramfs, if any. */
  readonly initrd?: string;
  /** Default kernel command line, if any. */
  readonly cmdline?: string;
  /** Default machine shape. */
  readonly defaults: ImageDefaults;
}

/** Options for building an image. */
export interface BuildImageOptions {
  /** Receives human-readable progress lines while the image builds (not when it is cached). */
  readonly onProgress?: (message: string) => void;
}

/** One entry in the image registry. */
export interface ImageRecipe {
  /** The name users type (`--image hello`). */
  readonly name: string;
  /** One line shown by `vmon images`. */
  readonly description: string;
  /** The guest architecture. */
  readonly arch: GuestArch;
  /** True when the image's init runs a command from the kernel command line (`vmon run --exec`). */
  readonly exec?: boolean;
  /** Builds the image (or finds it in the cache) and returns where it is. */
  build(options: BuildImageOptions): Promise<BuiltImage>;
}
