/**
 * What an image's machine is: the one place that turns a built image into the manifest that boots
 * it (the image's host port, platform and platform options, devices, vCPUs, RAM, kernel,
 * initramfs and command line), with the few typed overrides callers need: another host port,
 * vCPUs, RAM and, for the Linux images, a command to run (`vmon.exec=`, see
 * `linux-rv64/protocol.ts`). `vmon run` layers a manifest file and flags over it; the paging
 * comparison (`lab/`) boots its workloads with it. Pure: no I/O.
 *
 * @example Boot the linux-rv64 image on the deterministic clock and run one command
 * ```ts
 * import { imageManifest } from "./manifest.ts";
 *
 * const image = {
 *   name: "linux-rv64",
 *   kernel: "/cache/Image",
 *   initrd: "/cache/initramfs.cpio.gz",
 *   cmdline: "console=ttyS0 panic=-1",
 *   defaults: { hostport: "rv64", platform: "riscv-virt", devices: ["uart16550"], memory: "256M" },
 * };
 * const m = imageManifest(image, {
 *   hostport: { use: "rv64", options: { clock: "icount" } },
 *   cpus: 2,
 *   exec: "uname -a",
 * });
 * const cmdline = `console=ttyS0 panic=-1 vmon.exec=${btoa("uname -a")}`;
 * if (m.boot?.cmdline !== cmdline || m.cpus !== 2 || m.memory !== "256M") throw new Error();
 * ```
 *
 * @module
 */

import type { BootSpec, MachineManifest, PluginRef } from "../core/api/mod.ts";
import { execCmdline } from "./linux-rv64/protocol.ts";
import type { BuiltImage } from "./types.ts";

/** Typed overrides of {@linkcode imageManifest}; anything absent keeps the image's default. */
export interface ImageManifestOptions {
  /**
   * The host port, with options, instead of the image's (which names a plugin without options),
   * such as `{ use: "rv64", options: { clock: "icount" } }`.
   */
  readonly hostport?: PluginRef;
  /** Number of vCPUs. */
  readonly cpus?: number;
  /** RAM: bytes, or a size such as `256M`. */
  readonly memory?: number | string;
  /**
   * Linux images: a shell command (or script) that the image's `/init` runs instead of a shell,
   * powering off with its status. It is appended to the image's command line as
   * `vmon.exec=<base64>`.
   */
  readonly exec?: string;
}

/**
 * The manifest that boots `image` with its defaults and the given overrides. No paging strategy
 * is set (the machine's default applies).
 *
 * @param image The built image (`buildImage`).
 * @param options Host port, vCPUs, RAM and `--exec` command overriding the image's defaults.
 * @returns A manifest for `createMachine`.
 * @throws {VmonError} If the `exec` command makes the kernel command line too long.
 */
export function imageManifest(
  image: BuiltImage,
  options: ImageManifestOptions = {},
): MachineManifest {
  const d = image.defaults;
  const cpus = options.cpus ?? d.cpus;
  const memory = options.memory ?? d.memory;
  let cmdline = image.cmdline;
  if (options.exec !== undefined) {
    const word = execCmdline(options.exec, { base: cmdline ?? "" });
    cmdline = cmdline ? `${cmdline} ${word}` : word;
  }
  const boot: BootSpec = {
    kernel: image.kernel,
    ...(image.initrd !== undefined ? { initrd: image.initrd } : {}),
    ...(cmdline !== undefined ? { cmdline } : {}),
  };
  return {
    hostport: options.hostport ?? { use: d.hostport },
    platform: {
      use: d.platform,
      ...(d.platformOptions ? { options: { ...d.platformOptions } } : {}),
    },
    devices: d.devices.map((use) => ({ use })),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(memory !== undefined ? { memory } : {}),
    boot,
  };
}
