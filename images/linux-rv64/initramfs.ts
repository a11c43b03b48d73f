/**
 * Packs the linux-rv64 initramfs: a gzip-compressed newc cpio with the static busybox, its
 * applet links, `/dev/console` and `/dev/null`, and the committed `/init` script.
 *
 * @module
 */

import { join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { CpioWriter } from "./cpio.ts";
import { exists, type ProgressFn, writeAtomic } from "../_build.ts";

/** The committed `/init` script. */
export const INIT_SCRIPT: string = fromFileUrl(new URL("./init", import.meta.url));

/** Directories created in the root file system. */
const DIRS = [
  "bin",
  "sbin",
  "usr/bin",
  "usr/sbin",
  "dev",
  "proc",
  "sys",
  "tmp",
  "run",
  "root",
  "etc",
];

/**
 * Builds the cpio archive (uncompressed) from a busybox binary, its applet link paths and an
 * init script.
 *
 * @param busybox Path of the static busybox binary.
 * @param links Absolute applet paths (`/bin/sh`, ...), each made a symlink to `/bin/busybox`.
 * @param options `init`: the init script (default {@linkcode INIT_SCRIPT}).
 */
export function initramfsCpio(
  busybox: string,
  links: readonly string[],
  options: { init?: string } = {},
): Uint8Array {
  const w = new CpioWriter();
  for (const d of DIRS) w.dir(d);
  w.dir("tmp", { mode: 0o1777 });
  w.node("dev/console", { type: "c", major: 5, minor: 1 }, { mode: 0o600 });
  w.node("dev/null", { type: "c", major: 1, minor: 3 }, { mode: 0o666 });
  w.file("bin/busybox", Deno.readFileSync(busybox), { mode: 0o755 });
  for (const link of links) {
    if (link === "/bin/busybox" || link === "/init") continue;
    w.symlink(link, "/bin/busybox");
  }
  w.file("init", Deno.readFileSync(options.init ?? INIT_SCRIPT), { mode: 0o755 });
  w.file("etc/hostname", new TextEncoder().encode("vmon\n"));
  w.file("etc/passwd", new TextEncoder().encode("root:x:0:0:root:/root:/bin/sh\n"));
  w.file("etc/group", new TextEncoder().encode("root:x:0:\n"));
  return w.finish();
}

/** A packed initramfs. */
export interface InitramfsBuild {
  /** Path of `initramfs.cpio.gz`. */
  path: string;
  /** Whether it came from the cache. */
  cached: boolean;
}

/**
 * Packs (or returns the cached) `initramfs.cpio.gz`, keyed by the busybox build (its key, which
 * names the binary's inputs; the binary itself is not read unless the archive is packed), its
 * links, the init script and this recipe's code.
 *
 * @param busybox The busybox build (`binary` and `links`).
 * @param options `onProgress` for progress lines, `init` to use another init script.
 */
export async function buildInitramfs(
  busybox: { binary: string; key: string; links: readonly string[] },
  options: { onProgress?: ProgressFn; init?: string } = {},
): Promise<InitramfsBuild> {
  const init = options.init ?? INIT_SCRIPT;
  if (!exists(init)) throw new VmonError(`Cannot pack the initramfs: no init script "${init}"`);
  const code = [new URL("./initramfs.ts", import.meta.url), new URL("./cpio.ts", import.meta.url)]
    .map((u) => fromFileUrl(u));
  const key = hashFiles([init, ...code], [`busybox=${busybox.key}`, ...busybox.links]);
  const path = join(cacheDir("images", "linux-rv64", "initramfs", key), "initramfs.cpio.gz");
  if (exists(path)) {
    return { path, cached: true };
  }
  const cpio = initramfsCpio(busybox.binary, busybox.links, { init });
  // Loaded only to pack: a run that finds the archive cached does not pay for the import.
  const { gzipSync } = await import("fflate");
  const gz = gzipSync(cpio, { level: 9, mtime: 0 });
  writeAtomic(path, gz);
  options.onProgress?.(
    `initramfs: packed ${path} (${busybox.links.length} applet links, ${
      (cpio.length / 1024).toFixed(0)
    } KiB -> ${(gz.length / 1024).toFixed(0)} KiB gzip)`,
  );
  return { path, cached: false };
}
