/**
 * Host packages the linux-rv64 recipe needs, installed with apt-get only when missing.
 *
 * @module
 */

import { join } from "node:path";
import { cacheDir } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import { formatDuration, type ProgressFn, writeAtomic } from "../_build.ts";

/**
 * Debian packages needed to build the kernel, busybox and the initramfs, and passt, which the
 * image's default machine runs for its network (`virtio-net`'s `user` backend).
 */
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
  "passt",
];

/** Installed packages (name to version), as dpkg lists them. */
type DpkgSnapshot = Map<string, string>;

let snapshot: { key: string; packages: DpkgSnapshot } | undefined;

/**
 * Reads which packages dpkg lists as installed, with their versions. One `dpkg-query` per change
 * of dpkg's database: the answer is kept in memory and in the cache, keyed by the database file's
 * size and modification time, so a start with everything cached runs no dpkg-query at all.
 */
async function dpkgSnapshot(): Promise<DpkgSnapshot> {
  let key = "none";
  try {
    const st = Deno.statSync("/var/lib/dpkg/status");
    key = `${st.size}:${st.mtime?.getTime() ?? 0}`;
  } catch {
    // No dpkg database: dpkg-query below reports the problem.
  }
  if (snapshot?.key === key) return snapshot.packages;
  const file = join(cacheDir("images"), "dpkg-snapshot.json");
  try {
    const saved = JSON.parse(Deno.readTextFileSync(file)) as {
      key: string;
      packages: [string, string][];
    };
    if (saved.key === key && key !== "none") {
      snapshot = { key, packages: new Map(saved.packages) };
      return snapshot.packages;
    }
  } catch {
    // Missing or unreadable: ask dpkg.
  }
  const out = await new Deno.Command("dpkg-query", {
    args: ["-W", "-f=${Package} ${db:Status-Status} ${Version}\n"],
    stdout: "piped",
    stderr: "null",
  }).output().catch((e) => {
    throw new VmonError("Cannot check host packages: dpkg-query is not available", { cause: e });
  });
  const packages: DpkgSnapshot = new Map();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    const [name, status, version] = line.split(" ");
    if (name && status === "installed") packages.set(name.split(":")[0]!, version ?? "");
  }
  snapshot = { key, packages };
  if (key !== "none") writeAtomic(file, JSON.stringify({ key, packages: [...packages] }));
  return packages;
}

/** Returns the packages of `names` that dpkg does not list as installed. */
export async function missingPackages(names: readonly string[]): Promise<string[]> {
  const installed = await dpkgSnapshot();
  return names.filter((n) => !installed.has(n));
}

/** Returns the installed version of a Debian package, or undefined. */
export async function packageVersion(name: string): Promise<string | undefined> {
  return (await dpkgSnapshot()).get(name) || undefined;
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
