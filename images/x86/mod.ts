/**
 * Recipes for vmon's own freestanding x86-64 guests (`hello`, `exits`, `smp`, `memtest`),
 * built from the C and assembly sources in this folder with the system gcc and ld. All four are
 * built together into `cacheDir("images", "x86", <hash>)`, where the hash covers the sources,
 * the flags and the toolchain versions.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fromFileUrl } from "../../core/paths.ts";
import { cacheDir, hashFiles } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";
import type { BuildImageOptions, BuiltImage, ImageDefaults, ImageRecipe } from "../types.ts";

const SOURCE_DIR = dirname(fromFileUrl(import.meta.url));

/** Compiler flags for the guests: freestanding, integer registers only, no red zone. */
const CFLAGS = [
  "-ffreestanding",
  "-nostdlib",
  "-static",
  "-mgeneral-regs-only",
  "-mno-red-zone",
  "-fno-pic",
  "-fno-builtin",
  "-fno-stack-protector",
  "-O2",
  "-fno-asynchronous-unwind-tables",
  "-fcf-protection=none",
  "-Wall",
  "-Wextra",
  "-Werror",
] as const;

const LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "--build-id=none"] as const;

const COMMON_SOURCES = ["start.S", "lib.c"] as const;

interface GuestSpec {
  readonly name: string;
  readonly description: string;
  readonly cmdline?: string;
  readonly defaults: ImageDefaults;
}

const DEVICES = ["uart16550", "debug-exit"] as const;

const GUESTS: readonly GuestSpec[] = [
  {
    name: "hello",
    description: "x86-64: prints a greeting over the UART and exits with code arg",
    defaults: { hostport: "kvm", platform: "x86-64-direct", devices: DEVICES, memory: "16M" },
  },
  {
    name: "exits",
    description: "x86-64: makes arg port-I/O exits (out/in on port 0x80), then exits 0",
    cmdline: "arg=10000",
    // Ring 0: a port-I/O exit costs about 12 us from ring 0 but 25-45 us from ring 3 on nested
    // KVM (PVM traps ring-3 I/O through #GP and the I/O bitmap).
    defaults: {
      hostport: "kvm",
      platform: "x86-64-direct",
      devices: DEVICES,
      memory: "16M",
      platformOptions: { ring: 0 },
    },
  },
  {
    name: "smp",
    description: "x86-64: every vCPU prints its id and meets at a barrier; vCPU 0 exits",
    defaults: {
      hostport: "kvm",
      platform: "x86-64-direct",
      devices: DEVICES,
      cpus: 4,
      memory: "16M",
    },
  },
  {
    name: "crash",
    description: "x86-64: fails on purpose (arg 1 triple fault, 2 internal error, 3 page fault)",
    defaults: {
      hostport: "kvm",
      platform: "x86-64-direct",
      devices: DEVICES,
      memory: "16M",
      platformOptions: { ring: 0 },
    },
  },
  {
    name: "memtest",
    description: "x86-64: writes and checks patterns over free RAM, prints a checksum",
    defaults: { hostport: "kvm", platform: "x86-64-direct", devices: DEVICES, memory: "64M" },
  },
];

let pending: Promise<string> | undefined;

async function run(cmd: string, args: readonly string[], cwd: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args: [...args], cwd, stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new VmonError(`Cannot build x86 guest images: cannot run ${cmd}`, { cause: e });
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    throw new VmonError(
      `Cannot build x86 guest images: ${cmd} ${args.join(" ")} failed:\n${text.trimEnd()}`,
    );
  }
  return text;
}

async function toolchainVersion(): Promise<string> {
  const gcc = (await run("gcc", ["--version"], SOURCE_DIR)).split("\n")[0] ?? "";
  const ld = (await run("ld", ["--version"], SOURCE_DIR)).split("\n")[0] ?? "";
  return `${gcc}|${ld}`;
}

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(SOURCE_DIR)) {
    if (/\.(c|h|S|ld)$/.test(entry.name)) files.push(join(SOURCE_DIR, entry.name));
  }
  return files.sort();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds all x86 guests (once per hash of sources, flags and toolchain) and returns the folder
 * holding `hello.elf`, `exits.elf`, `smp.elf` and `memtest.elf`.
 *
 * @param options `onProgress` receives progress lines while building; `cacheRoot` replaces
 *   `cacheDir("images", "x86")` (tests build into a temporary folder).
 * @throws {VmonError} When gcc or ld cannot run or fails (with its output).
 */
export async function buildX86Images(
  options: { onProgress?: (message: string) => void; cacheRoot?: string } = {},
): Promise<string> {
  const onProgress = options.onProgress ?? (() => {});
  const toolchain = await toolchainVersion();
  const hash = hashFiles(sourceFiles(), [toolchain, CFLAGS.join(" "), LDFLAGS.join(" ")]);
  const root = options.cacheRoot ?? cacheDir("images", "x86");
  const final = join(root, hash);
  if (GUESTS.every((g) => exists(join(final, `${g.name}.elf`)))) return final;

  onProgress(`Building x86-64 guest images (${hash}) with ${toolchain.split("|")[0]}`);
  const work = await Deno.makeTempDir({ dir: root, prefix: `.build-${hash}-` });
  try {
    const objects = new Map<string, string>();
    const units = [...COMMON_SOURCES, ...GUESTS.map((g) => `${g.name}.c`)];
    for (const unit of units) {
      onProgress(`  compiling ${unit}`);
      const object = join(work, unit.replace(/\.[cS]$/, ".o"));
      await run("gcc", [...CFLAGS, "-c", join(SOURCE_DIR, unit), "-o", object], work);
      objects.set(unit, object);
    }
    for (const guest of GUESTS) {
      onProgress(`  linking ${guest.name}.elf`);
      const inputs = [...COMMON_SOURCES, `${guest.name}.c`].map((u) => objects.get(u) ?? u);
      await run("ld", [
        ...LDFLAGS,
        "-T",
        join(SOURCE_DIR, "linker.ld"),
        "-o",
        join(work, `${guest.name}.elf`),
        ...inputs,
      ], work);
    }
    for (const object of objects.values()) await Deno.remove(object);
    try {
      await Deno.rename(work, final);
    } catch (e) {
      // Another process finished the same build first: keep its result.
      if (!GUESTS.every((g) => exists(join(final, `${g.name}.elf`)))) throw e;
    }
  } finally {
    if (exists(work)) await Deno.remove(work, { recursive: true });
  }
  onProgress(`Built x86-64 guest images in ${final}`);
  return final;
}

function recipe(guest: GuestSpec): ImageRecipe {
  return {
    name: guest.name,
    description: guest.description,
    arch: "x86_64",
    async build(options: BuildImageOptions): Promise<BuiltImage> {
      pending ??= buildX86Images(options).finally(() => {
        pending = undefined;
      });
      const dir = await pending;
      return {
        name: guest.name,
        kernel: join(dir, `${guest.name}.elf`),
        ...(guest.cmdline === undefined ? {} : { cmdline: guest.cmdline }),
        defaults: guest.defaults,
      };
    },
  };
}

/** The x86-64 guest image recipes. */
export const X86_IMAGES: readonly ImageRecipe[] = GUESTS.map(recipe);
