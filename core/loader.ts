/**
 * The plugin loader: resolves a plugin reference (a built-in name, a file path or a URL) to a
 * checked plugin definition, and validates option values against its schema.
 *
 * Built-in plugins live in `plugins/<kind folder>/<name>/mod.ts`, the kind folders being
 * `hostports`, `platforms`, `devices` and `paging` (singular folder names are accepted too).
 *
 * @module
 */

import { join, resolve, toFileUrl } from "./paths.ts";
import type { OptionsSchema, PluginDefinition, PluginKind } from "./api/mod.ts";
import { PLUGIN_API_VERSION } from "./api/mod.ts";
import { REPO_ROOT } from "./cache.ts";
import { checkPluginDefinition, PLUGIN_KINDS, PLUGIN_NAME_RE } from "./define_plugin.ts";
import { VmonError } from "./errors.ts";
import { validateOptions } from "./schema.ts";

/** Plugin API versions this vmon can load. */
export const SUPPORTED_API_VERSIONS: readonly number[] = [PLUGIN_API_VERSION];

/** Folder names under `plugins/` for each kind (the first one is the canonical one). */
const KIND_DIRS: Readonly<Record<PluginKind, readonly string[]>> = {
  hostport: ["hostports", "hostport"],
  platform: ["platforms", "platform"],
  device: ["devices", "device"],
  paging: ["paging"],
};

const URL_SCHEMES = ["file:", "http:", "https:", "data:"];

/** A built-in plugin as `vmon plugins` lists it. */
export interface BuiltinPluginInfo {
  /** The plugin's name. */
  readonly name: string;
  /** Its kind. */
  readonly kind: PluginKind;
  /** One line of description (or why it could not be loaded). */
  readonly description: string;
  /** Its options schema. */
  readonly options?: OptionsSchema;
  /** The absolute path of its `mod.ts`. */
  readonly path: string;
  /** Set when the module failed to load or is not a valid plugin. */
  readonly error?: string;
}

interface BuiltinFolder {
  readonly name: string;
  readonly kind: PluginKind;
  readonly path: string;
}

function kindLabel(kind: PluginKind): string {
  return kind === "hostport" ? "host port" : kind;
}

/** Scans `plugins/` for built-in plugin folders (those holding a `mod.ts`). */
function scanBuiltins(root: string): BuiltinFolder[] {
  const out: BuiltinFolder[] = [];
  const seen = new Set<string>();
  for (const kind of PLUGIN_KINDS) {
    for (const dir of KIND_DIRS[kind]) {
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(join(root, "plugins", dir))];
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!e.isDirectory || !PLUGIN_NAME_RE.test(e.name)) continue;
        const path = join(root, "plugins", dir, e.name, "mod.ts");
        try {
          if (!Deno.statSync(path).isFile) continue;
        } catch {
          continue;
        }
        const key = `${kind}/${e.name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ name: e.name, kind, path });
      }
    }
  }
  return out.sort((a, b) =>
    PLUGIN_KINDS.indexOf(a.kind) - PLUGIN_KINDS.indexOf(b.kind) || a.name.localeCompare(b.name)
  );
}

/** Classifies a reference: `url`, `path` or `name`. */
function classify(ref: string): "url" | "path" | "name" {
  if (/^[a-z][a-z0-9+.-]+:/i.test(ref)) return "url";
  if (
    ref.includes("/") || ref.includes("\\") || ref.startsWith(".") ||
    /\.(m?[jt]s|tsx|jsx)$/.test(ref)
  ) {
    return "path";
  }
  return "name";
}

async function importDefinition(url: string, ref: string): Promise<PluginDefinition> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    // A definePlugin check failing while the module runs already names the plugin.
    if (e instanceof VmonError) throw e;
    const msg = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new VmonError(`Cannot load plugin "${ref}": ${msg}`, { cause: e });
  }
  const def = mod.default;
  if (
    typeof def !== "object" || def === null || typeof (def as { setup?: unknown }).setup !==
      "function" ||
    typeof (def as { kind?: unknown }).kind !== "string"
  ) {
    throw new VmonError(
      `Cannot load plugin "${ref}": default export is not a vmon plugin (use definePlugin)`,
    );
  }
  const checked = checkPluginDefinition(def, { source: ref });
  if (!SUPPORTED_API_VERSIONS.includes(checked.apiVersion)) {
    throw new VmonError(
      `Plugin "${checked.name}" targets plugin API ${checked.apiVersion}, this vmon implements ${PLUGIN_API_VERSION}`,
    );
  }
  return checked;
}

/**
 * Loads a plugin definition.
 *
 * - A built-in name (`uart16550`) resolves to `plugins/<kind folder>/<name>/mod.ts`. With
 *   `kind`, only that kind is searched (a plugin of another kind with that name is reported);
 *   without, the name must be unique over all kinds. Unknown names list the available ones.
 * - A file path (`./my_dev.ts`, `/abs/bundle.js`; relative to the current directory) or a URL
 *   (`file:`, `https:`, `http:`, `data:`) is imported; esbuild bundles work like any module.
 *
 * The module's default export must be a plugin definition (made with `definePlugin`), for a
 * plugin API version this vmon implements, and of the expected `kind` when one is given.
 *
 * @param ref The reference.
 * @param options `kind`: the kind the caller needs; `root` overrides the repository root
 * holding `plugins/` (for tests).
 * @throws {VmonError} With the reference and the reason.
 *
 * @example
 * ```ts
 * import { loadPlugin } from "./loader.ts";
 * const wired = await loadPlugin("wired", { kind: "paging" });
 * if (wired.kind !== "paging") throw new Error("wrong kind");
 * ```
 */
export async function loadPlugin(
  ref: string,
  options: { kind?: PluginKind; root?: string } = {},
): Promise<PluginDefinition> {
  const kind = options.kind;
  if (kind !== undefined && !PLUGIN_KINDS.includes(kind)) {
    throw new VmonError(`Cannot load plugin "${ref}": unknown kind "${kind}"`);
  }
  if (typeof ref !== "string" || ref.trim() === "") {
    throw new VmonError(`Cannot load plugin ${JSON.stringify(ref)}: empty reference`);
  }
  let def: PluginDefinition;
  const type = classify(ref);
  if (type === "url") {
    const scheme = ref.slice(0, ref.indexOf(":") + 1).toLowerCase();
    if (!URL_SCHEMES.includes(scheme)) {
      throw new VmonError(
        `Cannot load plugin "${ref}": unsupported URL scheme "${scheme}" (use ${
          URL_SCHEMES.join(", ")
        })`,
      );
    }
    def = await importDefinition(ref, ref);
  } else if (type === "path") {
    // Relative to the current directory, which the CLI sets to the user's (INIT_CWD).
    const full = resolve(Deno.cwd(), ref);
    try {
      if (!Deno.statSync(full).isFile) throw new Error("not a file");
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : "not a readable file";
      throw new VmonError(`Cannot load plugin "${full}": ${why}`, { cause: e });
    }
    def = await importDefinition(toFileUrl(full).href, full);
  } else {
    def = await loadBuiltin(ref, kind, options.root ?? REPO_ROOT);
  }
  if (kind !== undefined && def.kind !== kind) {
    throw new VmonError(
      `Plugin "${def.name}" is a ${kindLabel(def.kind)} plugin, expected a ${
        kindLabel(kind)
      } plugin`,
    );
  }
  return def;
}

async function loadBuiltin(
  name: string,
  kind: PluginKind | undefined,
  root: string,
): Promise<PluginDefinition> {
  const all = scanBuiltins(root);
  if (!PLUGIN_NAME_RE.test(name)) {
    throw new VmonError(
      `Cannot load plugin "${name}": not a built-in plugin name, a file path or a URL`,
    );
  }
  const matches = all.filter((b) => b.name === name);
  let found: BuiltinFolder | undefined;
  if (kind !== undefined) {
    found = matches.find((b) => b.kind === kind);
    if (found === undefined && matches[0] !== undefined) {
      throw new VmonError(
        `Plugin "${name}" is a ${kindLabel(matches[0].kind)} plugin, expected a ${
          kindLabel(kind)
        } plugin`,
      );
    }
    if (found === undefined) {
      const names = all.filter((b) => b.kind === kind).map((b) => b.name);
      throw new VmonError(
        `Unknown ${kindLabel(kind)} plugin "${name}": ${
          names.length > 0 ? `available: ${names.join(", ")}` : "none are built in"
        }`,
      );
    }
  } else {
    if (matches.length > 1) {
      throw new VmonError(
        `Plugin name "${name}" is ambiguous: there are ${
          matches.map((m) => `${kindLabel(m.kind)}`).join(" and ")
        } plugins of that name`,
      );
    }
    found = matches[0];
    if (found === undefined) {
      throw new VmonError(
        `Unknown plugin "${name}": available: ${all.map((b) => b.name).join(", ") || "none"}`,
      );
    }
  }
  const def = await importDefinition(toFileUrl(found.path).href, name);
  if (def.name !== found.name) {
    throw new VmonError(
      `Cannot load plugin "${name}": ${found.path} defines a plugin named "${def.name}"`,
    );
  }
  return def;
}

/**
 * The platform a host port implies: the one built-in platform that builds machines of the host
 * port's architecture (riscv-virt for rv64, x86-64-direct for kvm).
 *
 * @param hostport The host port reference (a built-in name, a path or a URL).
 * @param options `root` overrides the repository root holding `plugins/` (for tests).
 * @returns The platform's name.
 * @throws {VmonError} If the host port cannot be loaded, or no built-in platform or several
 *   build its architecture (the message lists them).
 *
 * @example
 * ```ts
 * import { impliedPlatform } from "./loader.ts";
 * if (await impliedPlatform("rv64") !== "riscv-virt") throw new Error("wrong platform");
 * ```
 */
export async function impliedPlatform(
  hostport: string,
  options: { root?: string } = {},
): Promise<string> {
  const root = options.root ?? REPO_ROOT;
  const port = await loadPlugin(hostport, { kind: "hostport", root });
  if (port.kind !== "hostport") throw new Error("unreachable: loadPlugin checked the kind");
  const fits: string[] = [];
  for (const b of scanBuiltins(root)) {
    if (b.kind !== "platform") continue;
    const def = await loadBuiltin(b.name, "platform", root);
    if (def.kind === "platform" && def.arch === port.arch) fits.push(def.name);
  }
  if (fits.length === 1) return fits[0]!;
  throw new VmonError(
    fits.length === 0
      ? `Cannot pick a platform for host port "${port.name}": no built-in platform builds ${port.arch} machines`
      : `Cannot pick a platform for host port "${port.name}": ${
        fits.join(", ")
      } all build ${port.arch} machines; name one`,
  );
}

/** What a plugin was doing when it failed: its kind, name and phase. */
export interface PluginPhase {
  /** The plugin's kind. */
  readonly kind: PluginKind;
  /** The plugin's name (as the machine names it: `virtio-blk.1`). */
  readonly name: string;
  /** The phase: `setup`, `boot`. */
  readonly phase: string;
}

/**
 * Runs one phase of a plugin (its `setup`, a platform's `boot`) and turns an unexpected failure
 * (anything but a {@linkcode VmonError}, which is already a message for the user) into one line
 * naming the plugin and the phase: `Device plugin "my-counter" failed in setup: TypeError: x is
 * undefined`, status 70 (a software error), with the plugin's own stack kept for
 * `VMON_DEBUG=1`.
 *
 * @param what The plugin and phase.
 * @param fn The phase.
 * @returns What `fn` returned.
 * @throws {VmonError} `fn`'s VmonError as is, anything else wrapped.
 *
 * @example
 * ```ts
 * import { runPluginPhase } from "./loader.ts";
 *
 * const failed = await runPluginPhase({ kind: "device", name: "x", phase: "setup" }, () => {
 *   throw new TypeError("oops");
 * }).catch((e: Error) => e.message);
 * if (failed !== 'Device plugin "x" failed in setup: TypeError: oops') throw new Error(failed);
 * ```
 */
export async function runPluginPhase<T>(what: PluginPhase, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof VmonError) throw err;
    const detail = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    const label = kindLabel(what.kind);
    const wrapped = new VmonError(
      `${label[0]!.toUpperCase()}${label.slice(1)} plugin "${what.name}" failed in ${what.phase}: ${
        detail.split("\n")[0]
      }`,
      { status: 70, cause: err },
    );
    if (err instanceof Error && err.stack) {
      Object.defineProperty(wrapped, "stack", { value: `${wrapped.message}\n${err.stack}` });
    }
    throw wrapped;
  }
}

/**
 * Lists the built-in plugins with their descriptions and options schemas (for `vmon plugins`).
 * A plugin that fails to load is listed with `error` set rather than failing the listing.
 *
 * @param options `kind` lists only that kind; `root` overrides the repository root.
 */
export async function listBuiltinPlugins(
  options: { kind?: PluginKind; root?: string } = {},
): Promise<BuiltinPluginInfo[]> {
  const out: BuiltinPluginInfo[] = [];
  const root = options.root ?? REPO_ROOT;
  for (const b of scanBuiltins(root)) {
    if (options.kind !== undefined && b.kind !== options.kind) continue;
    try {
      const def = await loadBuiltin(b.name, b.kind, root);
      out.push({
        name: def.name,
        kind: def.kind,
        description: def.description,
        ...(def.options !== undefined ? { options: def.options as OptionsSchema } : {}),
        path: b.path,
      });
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      out.push({
        name: b.name,
        kind: b.kind,
        description: `(cannot load: ${error})`,
        path: b.path,
        error,
      });
    }
  }
  return out;
}

/**
 * Validates raw option values (from a manifest or CLI strings) against a plugin's schema.
 *
 * @param def The plugin definition.
 * @param raw The raw values (an object, or undefined for none).
 * @returns The converted values with defaults applied, ready for `setup`.
 * @throws {VmonError} `Unknown option "foo" for plugin "uart16550": expected one of base, irq`.
 */
export function resolveOptions(
  def: PluginDefinition,
  raw: unknown,
): Record<string, string | number | boolean | undefined> {
  return validateOptions(def.options as OptionsSchema | undefined, raw, { plugin: def.name });
}
