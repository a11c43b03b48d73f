/**
 * Command-line flag syntax shared by the commands: plugin specs (`name` or
 * `name,key=value,key=value`) and trace categories.
 *
 * @module
 */

import type { PluginRef } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { TRACE_WORDS } from "../core/trace.ts";

/** Words `--trace` accepts: core's trace categories and `all` (the list is core/trace.ts's). */
export const TRACE_CATEGORIES: readonly string[] = TRACE_WORDS;

const KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * Splits `text` at single commas; a doubled comma (`,,`) stands for a literal comma, as in QEMU.
 */
function splitCommas(text: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ",") {
      if (text[i + 1] === ",") {
        current += ",";
        i++;
      } else {
        parts.push(current);
        current = "";
      }
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * Parses a plugin spec such as `virtio-blk,file=disk.img,readonly=true` into a
 * {@linkcode PluginRef}. Option values stay strings; the plugin's schema converts and checks them.
 * A key without `=` means `key=true`; `,,` is a literal comma inside a value.
 *
 * @param spec The text after `--device` (or `--host`, `--platform`, `--paging`).
 * @param options `flag` names the command-line flag in error messages (default `--device`).
 * @returns The plugin reference.
 * @throws {VmonError} If the name is empty, a key is malformed or given twice.
 *
 * @example
 * ```ts
 * import { parsePluginSpec } from "./flags.ts";
 *
 * const ref = parsePluginSpec("virtio-blk,file=disk.img,readonly=true");
 * if (ref.use !== "virtio-blk" || ref.options?.file !== "disk.img") throw new Error("bad parse");
 * ```
 */
export function parsePluginSpec(spec: string, options: { flag?: string } = {}): PluginRef {
  const flag = options.flag ?? "--device";
  const [name = "", ...pairs] = splitCommas(spec);
  if (name.trim() === "") {
    throw new VmonError(`Invalid ${flag} "${spec}": the plugin name is missing`);
  }
  if (pairs.length === 0) return { use: name };
  const values: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? "true" : pair.slice(eq + 1);
    if (!KEY.test(key)) {
      throw new VmonError(
        `Invalid ${flag} "${spec}": "${pair}" is not key=value with a key of letters, digits, - and _`,
      );
    }
    if (Object.hasOwn(values, key)) {
      throw new VmonError(`Invalid ${flag} "${spec}": option "${key}" is given twice`);
    }
    values[key] = value;
  }
  return { use: name, options: values };
}
