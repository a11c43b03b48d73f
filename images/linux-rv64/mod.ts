/**
 * The `linux-rv64` image: a riscv64 Linux 6.1 kernel (Debian's linux-source-6.1 plus the
 * committed `kernel.config` fragment) and a busybox initramfs whose `/init` runs a command given
 * on the kernel command line (`vmon.exec=<base64>`) or an interactive shell, then powers off
 * with the command's status. Every step is cached under `cacheDir("images", "linux-rv64")`.
 *
 * @example Build the kernel command line that runs a command
 * ```ts
 * import { execCmdline } from "./mod.ts";
 *
 * const arg = execCmdline("uname -a; nproc");
 * if (arg !== "vmon.exec=" + btoa("uname -a; nproc")) throw new Error(arg);
 * ```
 *
 * @module
 */

import type { BuildImageOptions, BuiltImage, ImageRecipe } from "../types.ts";
import { buildBusybox } from "./busybox.ts";
import { ensureHostPackages } from "./deps.ts";
import { buildInitramfs } from "./initramfs.ts";
import { buildKernel } from "./kernel.ts";
import { DEFAULT_CMDLINE } from "./protocol.ts";
import { formatDuration, type ProgressFn } from "../_build.ts";

export {
  COMMAND_LINE_SIZE,
  DEFAULT_CMDLINE,
  execCmdline,
  EXIT_STATUS_MARKER,
  INIT_READY_MARKER,
  parseExitStatus,
} from "./protocol.ts";
export { findQemu, type QemuOptions, type QemuRun, runQemu } from "./qemu.ts";

/** Options of {@linkcode buildLinuxRv64}. */
export interface LinuxRv64Options extends BuildImageOptions {
  /** Parallel make jobs for the kernel and busybox (default 2). */
  readonly jobs?: number;
  /** Query apt for a newer busybox source package even if one is cached. */
  readonly refreshSources?: boolean;
}

/**
 * Builds the image (or finds every step in the cache): host packages, kernel, busybox,
 * initramfs. Quiet when everything is cached.
 *
 * @param options Progress callback and build options.
 */
export async function buildLinuxRv64(options: LinuxRv64Options = {}): Promise<BuiltImage> {
  const start = performance.now();
  let spoke = false;
  const progress: ProgressFn = (line) => {
    spoke = true;
    options.onProgress?.(line);
  };
  await ensureHostPackages(progress);
  const kernel = await buildKernel(progress, { jobs: options.jobs });
  const busybox = await buildBusybox(progress, {
    jobs: options.jobs,
    refresh: options.refreshSources,
  });
  const initramfs = buildInitramfs(busybox, { onProgress: progress });
  if (spoke) progress(`ready in ${formatDuration(performance.now() - start)}`);
  return {
    name: "linux-rv64",
    kernel: kernel.image,
    initrd: initramfs.path,
    cmdline: DEFAULT_CMDLINE,
    defaults: {
      hostport: "rv64",
      platform: "riscv-virt",
      // virtio-net with its default backend, user (passt): the demo has a network
      devices: ["uart16550", "debug-exit", "pvpanic", "virtio-net"],
      cpus: 1,
      memory: "256M",
    },
  };
}

/** The registry entry for `images/mod.ts`. */
export const LINUX_RV64: ImageRecipe = {
  name: "linux-rv64",
  description: "riscv64 Linux 6.1 + busybox initramfs (vmon.exec=<base64> runs a command)",
  arch: "riscv64",
  exec: true,
  build: (options) => buildLinuxRv64(options),
};
