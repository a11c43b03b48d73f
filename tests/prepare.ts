/**
 * Prepares the build cache before the test suite runs in parallel: builds every C accelerator
 * library under `ffi/` and every guest image in the registry, one after another, with visible
 * progress (a progress bar on a terminal, one line per step otherwise). Everything lands in the
 * cache (`VMON_CACHE`, default `.cache/`), so tests running in parallel afterwards find it there.
 *
 * Usage: `deno run --allow-all tests/prepare.ts [--only images|ffi]`
 *
 * Host packages the tests compare with are installed with apt-get when missing, as the image
 * recipes install the cross compiler: `qemu-system-misc` (`qemu-system-riscv64`, the peer of the
 * QEMU comparison tests), so that no peer check is skipped on a fresh machine.
 *
 * C libraries are found by convention: every backend `ffi/<name>/mod.ts` exports
 * `buildLibrary()`, which builds that library into the cache (or finds it there) with the one
 * builder of `ffi/build.ts`.
 *
 * @module
 */

import cliProgress from "cli-progress";
import process from "node:process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { REPO_ROOT } from "../core/cache.ts";
import { buildImage, listImages } from "../images/mod.ts";
import { ensureHostPackages, missingPackages } from "../images/linux-rv64/deps.ts";

/**
 * Debian packages of the peers the tests compare with (qemu-system-riscv64) and of what the
 * network tests run (passt, virtio-net's user backend; the linux-rv64 recipe installs it too).
 */
export const PEER_PACKAGES: readonly string[] = ["qemu-system-misc", "passt"];

async function ffiSteps(): Promise<Step[]> {
  const steps: Step[] = [];
  const ffi = join(REPO_ROOT, "ffi");
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(ffi)].filter((e) => e.isDirectory);
  } catch {
    return steps;
  }
  for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const path = join(ffi, entry.name, "mod.ts");
    try {
      Deno.statSync(path);
    } catch {
      continue; // not a backend (ffi/common holds shared headers)
    }
    const mod = await import(pathToFileURL(path).href) as Record<string, unknown>;
    const build = mod.buildLibrary;
    if (typeof build !== "function") continue;
    steps.push({
      label: `C library ffi/${entry.name}`,
      run: async () => await build(),
    });
  }
  return steps;
}

/** One step of the preparation. */
export interface Step {
  /** What the progress display calls it. */
  readonly label: string;
  /** Does the work, reporting progress lines. */
  run(progress: (line: string) => void): Promise<unknown>;
}

/**
 * The step that installs the missing peer packages (with the image recipes' own packages, which
 * they need), or none when all are installed.
 *
 * @param options `missing`: how to find missing packages (default: ask dpkg).
 */
export async function packageSteps(
  options: { missing?: (names: readonly string[]) => Promise<string[]> } = {},
): Promise<Step[]> {
  const missing = await (options.missing ?? missingPackages)(PEER_PACKAGES);
  if (missing.length === 0) return [];
  return [{
    label: `host packages ${missing.join(", ")}`,
    run: (progress) => ensureHostPackages(progress, { extra: missing }),
  }];
}

function imageSteps(): Step[] {
  return listImages().map((image) => ({
    label: `image ${image.name}`,
    run: (progress) => buildImage(image.name, { onProgress: progress }),
  }));
}

async function main(): Promise<number> {
  const only = Deno.args[0] === "--only" ? Deno.args[1] : undefined;
  const steps = [
    ...(only === undefined ? await packageSteps() : []),
    ...(only === undefined || only === "ffi" ? await ffiSteps() : []),
    ...(only === undefined || only === "images" ? imageSteps() : []),
  ];
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  const bar = tty
    ? new cliProgress.SingleBar({
      stream: process.stderr,
      format: "prepare [{bar}] {value}/{total} {step} {line}",
      barsize: 20,
      hideCursor: true,
      clearOnComplete: false,
    }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(steps.length, 0, { step: "", line: "" });
  const say = (text: string) => {
    if (bar) bar.update({ line: text.slice(0, 60) });
    else console.error(text);
  };
  let failures = 0;
  for (const [i, step] of steps.entries()) {
    const t0 = performance.now();
    bar?.update(i, { step: step.label, line: "" });
    if (!bar) console.error(`prepare: [${i + 1}/${steps.length}] ${step.label}`);
    try {
      await step.run((line) => say(`prepare:   ${step.label}: ${line}`));
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      if (bar) bar.update(i + 1, { step: step.label, line: `done in ${secs}s` });
      else console.error(`prepare:   ${step.label}: ready (${secs}s)`);
    } catch (err) {
      failures++;
      bar?.stop();
      console.error(
        `prepare: ${step.label} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      bar?.start(steps.length, i + 1, { step: "", line: "" });
    }
  }
  bar?.stop();
  const total = ((performance.now() - started) / 1000).toFixed(1);
  console.error(
    `prepare: ${steps.length - failures} of ${steps.length} ready in ${total}s` +
      (failures ? ` (${failures} failed; their tests will fail)` : ""),
  );
  // Failed builds are reported above; the tests that need them fail with their own messages,
  // and every other test still runs.
  return 0;
}

if (import.meta.main) Deno.exit(await main());
