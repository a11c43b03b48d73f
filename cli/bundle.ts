/**
 * `vmon plugin bundle`: bundles a plugin and its npm (and file) dependencies into one ES module
 * with esbuild, leaving vmon's own public API as an external import of `@vmon/vmon`, which vmon's
 * import map (deno.json) resolves to this repository's `mod.ts`. The bundle therefore shares
 * `definePlugin`, `VmonError` and the API types with the vmon that loads it, and loads with
 * `vmon run --device ./bundle.js`.
 *
 * Module resolution follows Deno's exactly: `deno info --json` (with vmon's config) resolves
 * every `npm:` specifier and npm dependency to a package in Deno's npm cache, and the bundler
 * resolves inside packages through a temporary tree of symbolic links that gives each package
 * its own `node_modules` with the versions Deno chose.
 *
 * @module
 */

import * as esbuild from "esbuild";
import { builtinModules } from "node:module";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { VmonError } from "../core/errors.ts";
import { REPO_ROOT } from "../core/cache.ts";

/** The bare specifier a bundle imports vmon's public API from. */
export const VMON_SPECIFIER = "@vmon/vmon";

/** Options of {@linkcode bundlePlugin}. */
export interface BundleOptions {
  /** Output file (default `bundle.js` next to the entry). */
  readonly outfile?: string;
  /** The vmon `mod.ts` the plugin imports (path or file URL; default this repository's). */
  readonly vmon?: string;
  /** Minify the output (default false). */
  readonly minify?: boolean;
}

/** What {@linkcode bundlePlugin} produced. */
export interface BundleResult {
  /** Absolute path of the bundle. */
  readonly outfile: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** npm packages bundled in (`name@version`). */
  readonly npmPackages: readonly string[];
}

interface NpmPackage {
  readonly name: string;
  readonly version: string;
  readonly dependencies: readonly string[];
  readonly localPath?: string;
}

interface DenoInfo {
  readonly modules: ReadonlyArray<{
    readonly specifier: string;
    readonly kind?: string;
    readonly local?: string;
    readonly mediaType?: string;
    readonly error?: string;
  }>;
  readonly redirects: Readonly<Record<string, string>>;
  readonly npmPackages?: Readonly<Record<string, NpmPackage>>;
}

async function denoInfo(entry: string): Promise<DenoInfo> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "info",
      "--json",
      "--no-lock",
      "--config",
      join(REPO_ROOT, "deno.json"),
      entry,
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim();
    const line = text.split("\n").find((l) => l.trim() !== "") ?? "deno info failed";
    throw new VmonError(
      `Cannot bundle plugin "${entry}": ${line.replace(/^error:\s*/i, "")}`,
    );
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as DenoInfo;
  const broken = info.modules.find((m) => m.error !== undefined);
  if (broken) {
    throw new VmonError(`Cannot bundle plugin "${entry}": ${broken.error}`);
  }
  return info;
}

/** Splits `name/sub/path` (or `@scope/name/sub`) into the package name and subpath. */
function splitPackage(spec: string): { name: string; sub: string } {
  const parts = spec.split("/");
  const n = spec.startsWith("@") ? 2 : 1;
  return { name: parts.slice(0, n).join("/"), sub: parts.slice(n).join("/") };
}

/** Splits an `npm:/name@version/sub` id into the package id and subpath. */
function splitNpmId(resolved: string): { id: string; sub: string } {
  const rest = resolved.replace(/^npm:\/?/, "");
  const parts = rest.split("/");
  const n = rest.startsWith("@") ? 2 : 1;
  return { id: parts.slice(0, n).join("/"), sub: parts.slice(n).join("/") };
}

const BUILTINS = new Set(builtinModules);

/**
 * Bundles the plugin at `entry` into one ES module.
 *
 * @param entry The plugin's entry module (its `mod.ts`).
 * @param options Output file, vmon location, minification.
 * @returns Where the bundle went, its size and the npm packages inside it.
 * @throws {VmonError} If the entry or a dependency cannot be resolved, or esbuild fails.
 */
export async function bundlePlugin(
  entry: string,
  options: BundleOptions = {},
): Promise<BundleResult> {
  const entryPath = resolve(entry);
  try {
    if (!Deno.statSync(entryPath).isFile) throw new Error("not a regular file");
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new VmonError(`Cannot bundle plugin "${entryPath}": ${why}`);
  }
  const outfile = resolve(options.outfile ?? join(dirname(entryPath), "bundle.js"));
  const vmonMod = options.vmon === undefined
    ? join(REPO_ROOT, "mod.ts")
    : options.vmon.startsWith("file:")
    ? fileURLToPath(options.vmon)
    : resolve(options.vmon);
  const vmonRoot = dirname(vmonMod);

  const info = await denoInfo(entryPath);
  const packages = info.npmPackages ?? {};
  const byLocalPath = Object.entries(packages)
    .filter(([, p]) => p.localPath !== undefined)
    .sort((a, b) => (b[1].localPath?.length ?? 0) - (a[1].localPath?.length ?? 0));
  const used = new Set<string>();

  // One folder per package id holding node_modules/<self> and node_modules/<dep> links.
  const farm = await Deno.makeTempDir({ prefix: "vmon-bundle-" });
  const farmDirs = new Map<string, string>();
  const farmFor = (id: string): string => {
    const existing = farmDirs.get(id);
    if (existing) return existing;
    const pkg = packages[id];
    if (pkg === undefined || pkg.localPath === undefined) {
      throw new VmonError(`Cannot bundle plugin "${entryPath}": npm package ${id} is not cached`);
    }
    const dir = join(farm, id.replaceAll("/", "+"));
    const link = (name: string, target: string) => {
      const at = join(dir, "node_modules", name);
      Deno.mkdirSync(dirname(at), { recursive: true });
      try {
        Deno.symlinkSync(target, at);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
    };
    for (const depId of pkg.dependencies) {
      const dep = packages[depId];
      if (dep?.localPath) link(dep.name, dep.localPath);
    }
    link(pkg.name, pkg.localPath);
    farmDirs.set(id, dir);
    return dir;
  };
  const packageOf = (path: string): string | undefined =>
    byLocalPath.find(([, p]) => path.startsWith(p.localPath + "/"))?.[0];

  const denoResolver: esbuild.Plugin = {
    name: "vmon-deno-resolver",
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData?.inner) return undefined;
        if (args.kind === "entry-point") return undefined;
        let spec = args.path;
        if (spec.startsWith("node:") || BUILTINS.has(spec)) {
          return { path: spec.startsWith("node:") ? spec : `node:${spec}`, external: true };
        }
        if (spec === VMON_SPECIFIER) return { path: VMON_SPECIFIER, external: true };
        if (spec.startsWith("file:")) spec = fileURLToPath(spec);
        if (spec.startsWith("npm:")) {
          const target = info.redirects[spec] ?? spec;
          const { id, sub } = splitNpmId(target);
          const pkg = packages[id];
          if (pkg === undefined) {
            throw new VmonError(`Cannot bundle plugin "${entryPath}": cannot resolve "${spec}"`);
          }
          used.add(id);
          const r = await build.resolve(sub ? `${pkg.name}/${sub}` : pkg.name, {
            kind: args.kind,
            resolveDir: farmFor(id),
            pluginData: { inner: true },
          });
          if (r.errors.length > 0) return { errors: r.errors };
          return { path: r.path, sideEffects: r.sideEffects };
        }
        if (spec.startsWith("http:") || spec.startsWith("https:") || spec.startsWith("jsr:")) {
          throw new VmonError(
            `Cannot bundle plugin "${entryPath}": remote import "${spec}" is not supported; use npm:`,
          );
        }
        // A file path (absolute, relative or from a file URL).
        if (isAbsolute(spec) || spec.startsWith(".")) {
          const path = isAbsolute(spec) ? spec : resolve(args.resolveDir, spec);
          if (path === vmonMod) return { path: VMON_SPECIFIER, external: true };
          const importerPkg = packageOf(args.importer);
          if (importerPkg === undefined && path.startsWith(vmonRoot + "/")) {
            throw new VmonError(
              `Cannot bundle plugin "${entryPath}": it imports vmon internals "${
                relative(vmonRoot, path)
              }"; import the public API from ${pathToFileURL(vmonMod).href}`,
            );
          }
          return undefined; // esbuild resolves relative files itself
        }
        // A bare specifier: inside an npm package, resolve against that package's dependencies.
        const importerPkg = packageOf(args.importer);
        if (importerPkg === undefined) {
          throw new VmonError(
            `Cannot bundle plugin "${entryPath}": bare import "${spec}" in ${
              basename(args.importer)
            }; use an npm: specifier`,
          );
        }
        const { name } = splitPackage(spec);
        const depId = packages[importerPkg]?.dependencies.find((d) => packages[d]?.name === name);
        if (depId !== undefined) used.add(depId);
        const r = await build.resolve(spec, {
          kind: args.kind,
          resolveDir: farmFor(importerPkg),
          pluginData: { inner: true },
        });
        if (r.errors.length > 0) return { errors: r.errors };
        return { path: r.path, sideEffects: r.sideEffects };
      });
    },
  };

  let result: esbuild.BuildResult;
  try {
    result = await esbuild.build({
      entryPoints: [entryPath],
      bundle: true,
      format: "esm",
      platform: "node",
      target: "es2022",
      write: false,
      outfile,
      minify: options.minify ?? false,
      logLevel: "silent",
      plugins: [denoResolver],
      banner: {
        js: [
          `// vmon plugin bundle of ${
            basename(entryPath)
          }; imports vmon's API from "${VMON_SPECIFIER}".`,
          `import { createRequire as __vmonCreateRequire } from "node:module";`,
          `const require = __vmonCreateRequire(import.meta.url);`,
        ].join("\n"),
      },
    });
  } catch (err) {
    if (err instanceof VmonError) throw err;
    const failure = err as esbuild.BuildFailure;
    const first = failure.errors?.[0];
    if (first?.detail instanceof VmonError) throw first.detail;
    const where = first?.location
      ? ` (${relative(Deno.cwd(), first.location.file)}:${first.location.line})`
      : "";
    throw new VmonError(
      `Cannot bundle plugin "${entryPath}": ${first?.text ?? String(err)}${where}`,
      { cause: err },
    );
  } finally {
    await esbuild.stop();
    await Deno.remove(farm, { recursive: true }).catch(() => {});
  }
  const file = result.outputFiles?.find((f) => f.path === outfile) ?? result.outputFiles?.[0];
  if (file === undefined) throw new VmonError(`Cannot bundle plugin "${entryPath}": no output`);
  Deno.mkdirSync(dirname(outfile), { recursive: true });
  const tmp = `${outfile}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  Deno.writeFileSync(tmp, file.contents);
  Deno.renameSync(tmp, outfile);
  return {
    outfile,
    bytes: file.contents.length,
    npmPackages: [...used].sort(),
  };
}
