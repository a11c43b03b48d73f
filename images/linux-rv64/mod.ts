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

import { join } from "node:path";
import { cacheDir } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import type { BuildImageOptions, BuiltImage, ImageRecipe } from "../types.ts";
import { buildBusybox } from "./busybox.ts";
import { ensureHostPackages } from "./deps.ts";
import { buildInitramfs, INIT_SCRIPT } from "./initramfs.ts";
import { buildKernel, KERNEL_FRAGMENT, KERNEL_NET_FRAGMENT } from "./kernel.ts";
import { linuxRv64Defaults } from "./defaults.ts";
import { DEFAULT_CMDLINE } from "./protocol.ts";
import { exists, formatDuration, type ProgressFn, writeAtomic } from "../_build.ts";

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
  /**
   * Networking (default true): the kernel gets `kernel-net.config` and the default machine a
   * `virtio-net` device. The bench image builds without it, so the paging comparison's kernel
   * and machine are those of the counters it reports.
   */
  readonly network?: boolean;
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
  const network = options.network ?? true;
  const kernel = await buildKernel(progress, {
    jobs: options.jobs,
    fragments: network ? [KERNEL_FRAGMENT, KERNEL_NET_FRAGMENT] : [KERNEL_FRAGMENT],
  });
  const busybox = await buildBusybox(progress, {
    jobs: options.jobs,
    refresh: options.refreshSources,
  });
  const initramfs = await buildInitramfs(busybox, {
    onProgress: progress,
    ...(network ? {} : { init: initWithoutNetwork() }),
  });
  if (spoke) progress(`ready in ${formatDuration(performance.now() - start)}`);
  return {
    name: "linux-rv64",
    kernel: kernel.image,
    initrd: initramfs.path,
    cmdline: DEFAULT_CMDLINE,
    defaults: linuxRv64Defaults(network),
  };
}

/** Marks the network part of `/init` (from its begin line to its end line and a blank line). */
const NETWORK_PART = /# vmon: network begin[^\n]*\n[\s\S]*?# vmon: network end\n\n/;

/**
 * `/init` without its network part, for images built without networking: byte for byte the
 * script before networking existed, so the bench image's initramfs (and the paging counters
 * measured on it, which move with any byte of it) stay as they were. Written to the cache.
 */
function initWithoutNetwork(): string {
  const text = Deno.readTextFileSync(INIT_SCRIPT);
  if (!NETWORK_PART.test(text)) {
    throw new VmonError(`Cannot pack the initramfs: "${INIT_SCRIPT}" has no network part markers`);
  }
  const stripped = text.replace(NETWORK_PART, "");
  const path = join(cacheDir("images", "linux-rv64", "init-without-network"), "init");
  if (!exists(path) || Deno.readTextFileSync(path) !== stripped) writeAtomic(path, stripped);
  return path;
}

/** The registry entry for `images/mod.ts`. */
export const LINUX_RV64: ImageRecipe = {
  name: "linux-rv64",
  description: "riscv64 Linux 6.1 + busybox initramfs (vmon.exec=<base64> runs a command)",
  arch: "riscv64",
  exec: true,
  build: (options) => buildLinuxRv64(options),
};
