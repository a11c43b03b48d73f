/**
 * Host packages the linux-rv64 recipe needs, installed with apt-get only when missing.
 *
 * @module
 */

import { VmonError } from "../../core/errors.ts";
import { capture, formatDuration, type ProgressFn } from "../_build.ts";

/** Debian packages needed to build the kernel, busybox and the initramfs. */
export const HOST_PACKAGES: readonly string[] = [
  "make",
  "gcc",
  "libc6-dev",
  "gcc-riscv64-linux-gnu",
  "libc6-dev-riscv64-cross",
  "linux-source-6.1",
  "xz-utils",
  "flex",
  "bison",
  "bc",
  "perl",
  "libssl-dev",
  "libelf-dev",
  "dpkg-dev",
];

/** Returns the packages of `names` that dpkg does not list as installed. */
export async function missingPackages(names: readonly string[]): Promise<string[]> {
  const out = await new Deno.Command("dpkg-query", {
    args: ["-W", "-f=${Package} ${db:Status-Status}\n", ...names],
    stdout: "piped",
    stderr: "null",
  }).output().catch((e) => {
    throw new VmonError("Cannot check host packages: dpkg-query is not available", { cause: e });
  });
  const installed = new Set<string>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [name, status] = line.split(" ");
    if (name && status === "installed") installed.add(name.split(":")[0]!);
  }
  return names.filter((n) => !installed.has(n));
}

/** Returns the installed version of a Debian package, or undefined. */
export async function packageVersion(name: string): Promise<string | undefined> {
  const v = await capture("dpkg-query", ["-W", "-f=${Version}", name]);
  return v?.trim() || undefined;
}

async function aptGet(args: string[]): Promise<void> {
  // Output is inherited so the user sees apt's own progress.
  const status = await new Deno.Command("apt-get", {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    throw new VmonError(`Cannot install host packages: "apt-get ${args.join(" ")}" failed`);
  }
}

/**
 * Makes sure every package of {@linkcode HOST_PACKAGES} (plus `extra`) is installed: checks with
 * dpkg-query first and runs `apt-get update` and `apt-get install` only when something is missing.
 *
 * @param onProgress Receives progress lines.
 * @param options `extra` packages to require as well.
 */
export async function ensureHostPackages(
  onProgress: ProgressFn,
  options: { extra?: readonly string[] } = {},
): Promise<void> {
  const wanted = [...HOST_PACKAGES, ...(options.extra ?? [])];
  const missing = await missingPackages(wanted);
  if (missing.length === 0) return;
  if (Deno.uid() !== 0) {
    throw new VmonError(
      `Cannot install host packages: not root; run "sudo apt-get install ${missing.join(" ")}"`,
    );
  }
  const start = performance.now();
  onProgress(`host packages: installing ${missing.join(", ")}`);
  await aptGet(["update"]);
  await aptGet(["install", "-y", "--no-install-recommends", ...missing]);
  const still = await missingPackages(missing);
  if (still.length > 0) {
    throw new VmonError(`Cannot install host packages: still missing ${still.join(", ")}`);
  }
  onProgress(`host packages: installed in ${formatDuration(performance.now() - start)}`);
}
