/**
 * Builds vmon's C accelerator libraries: every `ffi/<backend>/*.c` is compiled with the system C
 * compiler into `cacheDir("ffi")/libvmon-<backend>-<hash>.so`, where the hash covers the sources,
 * the headers (`ffi/<backend>/*.h`, `ffi/common/*.h`), the compiler and its flags. A changed
 * source gives a new file name, because a second `dlopen` of the same path returns the old code.
 *
 * @module
 */

import { basename, join } from "../core/paths.ts";
import { cacheDir, hashFilesMemo, keyPath, listFiles, REPO_ROOT } from "../core/cache.ts";
import { VmonError } from "../core/errors.ts";

/** The compiler flags every library is built with (before the include path and outputs). */
export const CFLAGS: readonly string[] = [
  "-O2",
  "-g",
  "-shared",
  "-fPIC",
  "-Wall",
  "-fvisibility=hidden",
  "-fno-strict-aliasing",
  "-pthread",
];

/** Options for {@linkcode buildLibrary}. */
export interface BuildOptions {
  /** The C compiler command (default: `CC` from the environment, else `cc`, `gcc`, `clang`). */
  cc?: string;
  /** Extra flags appended after {@linkcode CFLAGS} (they change the hash). */
  extraFlags?: readonly string[];
  /** Libraries to link, such as `-lm` (they change the hash). */
  libs?: readonly string[];
  /** The folder of the sources (default `ffi/<backend>`; tests build from temporary folders). */
  sourceDir?: string;
  /** Called with the progress line when the library is actually compiled (default: stderr). */
  onProgress?: (line: string) => void;
}

/** The folder holding `ffi/<backend>/`. */
export const FFI_DIR: string = join(REPO_ROOT, "ffi");

const BACKEND_NAME = /^[a-z0-9_-]+$/;

function checkBackend(backend: string, sourceDir?: string): string {
  if (!BACKEND_NAME.test(backend)) {
    throw new VmonError(
      `Cannot build the C accelerator "${backend}": backend names use a-z, 0-9, - and _`,
    );
  }
  const dir = sourceDir ?? join(FFI_DIR, backend);
  try {
    if (!Deno.statSync(dir).isDirectory) throw new Error("not a folder");
  } catch (cause) {
    throw new VmonError(`Cannot build the C accelerator "${backend}": no folder ${dir}`, { cause });
  }
  return dir;
}

function whichOnPath(command: string): string | undefined {
  if (command.includes("/")) {
    try {
      return Deno.statSync(command).isFile ? command : undefined;
    } catch {
      return undefined;
    }
  }
  for (const dir of (Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(":")) {
    if (dir === "") continue;
    const p = join(dir, command);
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Finds the C compiler: `cc` if given, else `CC`, else `cc`, `gcc` or `clang` on `PATH`.
 * Returns the command words (a `CC` such as `ccache gcc` has two).
 *
 * @throws {VmonError} When no compiler is found.
 */
export function findCompiler(cc?: string): string[] {
  const given = cc ?? Deno.env.get("CC");
  if (given !== undefined && given.trim() !== "") {
    const words = given.trim().split(/\s+/);
    if (whichOnPath(words[0]!) === undefined) {
      throw new VmonError(
        `Cannot build the C accelerator: no C compiler found (install gcc or set CC; CC="${given}" is not a program on PATH)`,
      );
    }
    return words;
  }
  for (const name of ["cc", "gcc", "clang"]) {
    if (whichOnPath(name) !== undefined) return [name];
  }
  throw new VmonError(
    "Cannot build the C accelerator: no C compiler found (install gcc or set CC)",
  );
}

/** The sources and headers of a backend, with the hash that names its library. */
export interface LibraryPlan {
  /** The backend (`kvm`, `rv64`). */
  readonly backend: string;
  /** Absolute paths of the `.c` files. */
  readonly sources: readonly string[];
  /** Absolute paths of the headers that are part of the hash. */
  readonly headers: readonly string[];
  /** Compiler command words. */
  readonly cc: readonly string[];
  /** Full argument list before `-o`. */
  readonly flags: readonly string[];
  /** Libraries after the sources. */
  readonly libs: readonly string[];
  /** The source hash. */
  readonly hash: string;
  /** Where the library is (or will be) in the cache. */
  readonly path: string;
}

/**
 * Works out what {@linkcode buildLibrary} would compile, without compiling.
 *
 * @param backend The folder name under `ffi/`.
 * @param options Compiler and flags.
 */
export function planLibrary(backend: string, options: BuildOptions = {}): LibraryPlan {
  const dir = checkBackend(backend, options.sourceDir);
  const all = listFiles(dir, [".c", ".h"]);
  // Only the backend folder's own files (listFiles is recursive; tests or tools may live below).
  const own = all.filter((p) => join(dir, basename(p)) === p);
  const sources = own.filter((p) => p.endsWith(".c"));
  if (sources.length === 0) {
    throw new VmonError(`Cannot build the C accelerator "${backend}": no .c files in ${dir}`);
  }
  let common: string[] = [];
  try {
    common = listFiles(join(FFI_DIR, "common"), [".h"]);
  } catch {
    // no shared headers
  }
  const headers = [...own.filter((p) => p.endsWith(".h")), ...common];
  const cc = findCompiler(options.cc);
  const flags = [...CFLAGS, ...(options.extraFlags ?? []), `-I${join(FFI_DIR, "common")}`];
  const libs = [...(options.libs ?? [])];
  // The include path is named as the key names files (core/cache.ts keyPath): a checkout in
  // another folder finds the same build.
  const keyFlags = flags.map((f) => f.startsWith("-I") ? `-I${keyPath(f.slice(2))}` : f);
  // Every machine worker plans its libraries: the stamp of the sources saves reading and hashing
  // them while none changed.
  const hash = hashFilesMemo([...sources, ...headers], [cc.join(" "), ...keyFlags, "--", ...libs], {
    memo: join(
      cacheDir("ffi"),
      `sources-${backend}-${keyPath(dir).replace(/[^A-Za-z0-9]/g, "_")}.json`,
    ),
  });
  const path = join(cacheDir("ffi"), `libvmon-${backend}-${hash}.so`);
  return { backend, sources, headers, cc, flags, libs, hash, path };
}

function firstErrorLines(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trimEnd()).filter((l) => l !== "");
  const errors = lines.filter((l) => /error|undefined reference|fatal/i.test(l));
  const pick = (errors.length > 0 ? errors : lines).slice(0, 6);
  return pick.join("; ") || "no output";
}

/**
 * Returns the absolute path of the compiled library for `backend`, compiling it into the cache
 * first when no library with the current source hash exists. Compiling prints one line
 * (`Compiling the C accelerator (kvm)...`) on stderr. Safe to call from parallel processes: the
 * library is written to a temporary file and renamed into place.
 *
 * @example Build the KVM layer
 * ```ts
 * import { buildLibrary } from "./build.ts";
 * const path = buildLibrary("kvm");
 * console.assert(path.endsWith(".so"));
 * ```
 *
 * @param backend The folder name under `ffi/` (`kvm`, `rv64`).
 * @param options Compiler, extra flags, progress callback.
 * @throws {VmonError} When no compiler is found or the compilation fails (with the compiler's
 * first error lines).
 */
export function buildLibrary(backend: string, options: BuildOptions = {}): string {
  const plan = planLibrary(backend, options);
  try {
    Deno.statSync(plan.path);
    return plan.path;
  } catch {
    // not built yet
  }
  (options.onProgress ?? ((line) => console.error(line)))(
    `Compiling the C accelerator (${backend})...`,
  );
  const tmp = `${plan.path}.${Deno.pid}-${crypto.randomUUID()}.tmp`;
  const [cmd, ...ccArgs] = plan.cc;
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command(cmd!, {
      args: [...ccArgs, ...plan.flags, "-o", tmp, ...plan.sources, ...plan.libs],
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C" },
    }).outputSync();
  } catch (cause) {
    throw new VmonError(
      `Cannot build the C accelerator: no C compiler found (install gcc or set CC; running "${cmd}" failed)`,
      { cause },
    );
  }
  if (!out.success) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing written
    }
    const stderr = new TextDecoder().decode(out.stderr);
    throw new VmonError(
      `Cannot build the C accelerator (${backend}): ${plan.cc.join(" ")} failed: ${
        firstErrorLines(stderr)
      }`,
    );
  }
  Deno.renameSync(tmp, plan.path);
  return plan.path;
}
