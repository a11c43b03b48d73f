/**
 * `vmon new-plugin`: scaffolds a plugin folder (mod.ts, README.md, a test and a deno.json) that
 * imports vmon's public API as `@vmon/vmon` and its test host as `@vmon/vmon/testing`: the
 * deno.json maps both to this checkout by file URL, so the folder type-checks and tests where it
 * stands, and has the tasks `test`, `check`, `vmon` (this checkout's command line, with the
 * folder as the user's directory) and `bundle`.
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import { fromFileUrl, toFileUrl } from "../core/paths.ts";
import { PLUGIN_API_VERSION } from "../core/api/mod.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { VmonError } from "../core/errors.ts";

/** Plugin kinds that have a template. */
export const TEMPLATE_KINDS: readonly string[] = ["device"];

const NAME_RE = /^[a-z][a-z0-9-]*$/;

/** Options of {@linkcode scaffoldPlugin}. */
export interface ScaffoldOptions {
  /** The plugin kind (only `device` has a template). */
  readonly kind: string;
  /** Target folder (default `./<name>`); must not exist. */
  readonly dir?: string;
  /** vmon's `mod.ts` as a path or file URL (default this repository's). */
  readonly vmon?: string;
}

/** What {@linkcode scaffoldPlugin} wrote. */
export interface ScaffoldResult {
  /** The new folder (absolute). */
  readonly dir: string;
  /** The files written, relative to `dir`. */
  readonly files: readonly string[];
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (whole, key: string) => values[key] ?? whole);
}

/**
 * Writes a new plugin folder from the template for `options.kind`.
 *
 * @param name The plugin's name: lowercase letters, digits and dashes, starting with a letter.
 * @param options Kind, folder and vmon location.
 * @returns The folder and the files written.
 * @throws {VmonError} If the name or kind is invalid or the folder already exists.
 */
export function scaffoldPlugin(name: string, options: ScaffoldOptions): ScaffoldResult {
  if (!NAME_RE.test(name)) {
    throw new VmonError(
      `Invalid plugin name "${name}": use lowercase letters, digits and dashes, starting with a letter`,
    );
  }
  if (!TEMPLATE_KINDS.includes(options.kind)) {
    throw new VmonError(
      `Cannot scaffold a "${options.kind}" plugin: templates exist for ${
        TEMPLATE_KINDS.join(", ")
      }`,
    );
  }
  const dir = resolve(options.dir ?? name);
  let exists = true;
  try {
    Deno.lstatSync(dir);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    exists = false;
  }
  if (exists) throw new VmonError(`Cannot create plugin folder "${dir}": it already exists`);

  const vmonModPath = options.vmon === undefined
    ? join(REPO_ROOT, "mod.ts")
    : options.vmon.startsWith("file:")
    ? fromFileUrl(options.vmon)
    : resolve(options.vmon);
  const vmonRoot = dirname(vmonModPath);
  const ident = name.replaceAll("-", "_");
  const values: Record<string, string> = {
    name,
    ident,
    apiVersion: String(PLUGIN_API_VERSION),
    vmon: toFileUrl(vmonModPath).href,
    vmonTesting: toFileUrl(join(vmonRoot, "testing", "mod.ts")).href,
    vmonMain: join(vmonRoot, "cli", "main.ts"),
    vmonRoot,
    vmonConfig: join(vmonRoot, "deno.json"),
  };
  const templates = new URL(`./templates/${options.kind}/`, import.meta.url);
  const files: Array<[string, string]> = [
    ["mod.ts", "mod.ts.tmpl"],
    [`${ident}_test.ts`, "test.ts.tmpl"],
    ["README.md", "README.md.tmpl"],
    ["deno.json", "deno.json.tmpl"],
  ];
  // Build the folder under a temporary name and rename it into place, so that a failure leaves
  // nothing half-written and a concurrent scaffold of the same folder cannot interleave.
  const parent = dirname(dir);
  Deno.mkdirSync(parent, { recursive: true });
  const tmp = Deno.makeTempDirSync({ dir: parent, prefix: `.${name}-` });
  try {
    for (const [out, template] of files) {
      const text = Deno.readTextFileSync(new URL(template, templates));
      Deno.writeTextFileSync(join(tmp, out), fill(text, values));
    }
    try {
      Deno.lstatSync(dir);
      throw new VmonError(`Cannot create plugin folder "${dir}": it already exists`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    Deno.renameSync(tmp, dir);
  } catch (err) {
    Deno.removeSync(tmp, { recursive: true });
    throw err;
  }
  return { dir, files: files.map(([out]) => out) };
}
