/**
 * How the linux-rv64 image runs when the user names only the image: its host port, platform and
 * devices. Kept apart from the recipe (it imports nothing), so that `vmon run` can name these
 * plugins to its machine worker before it has loaded anything else (cli/main.ts).
 *
 * @module
 */

import type { ImageDefaults } from "../types.ts";

/**
 * The image's machine: rv64 on riscv-virt with a console, the exit devices and, when the image
 * has networking, virtio-net with its default backend (user, passt).
 *
 * @example
 * ```ts
 * import { linuxRv64Defaults } from "./defaults.ts";
 * if (!linuxRv64Defaults(true).devices.includes("virtio-net")) throw new Error("no network");
 * ```
 *
 * @param network Whether the image has networking (the bench image has none).
 */
export function linuxRv64Defaults(network: boolean): ImageDefaults {
  return {
    hostport: "rv64",
    platform: "riscv-virt",
    devices: ["uart16550", "debug-exit", "pvpanic", ...(network ? ["virtio-net"] : [])],
    cpus: 1,
    memory: "256M",
  };
}
