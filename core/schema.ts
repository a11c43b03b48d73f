/**
 * Plugin options: checks a schema's shape (for `definePlugin`) and validates raw option values
 * (from a JSON manifest or from CLI strings) against it, converting CLI strings to their types.
 *
 * @module
 */

import type { OptionSpec, OptionsSchema, OptionType } from "./api/mod.ts";
import { VmonError } from "./errors.ts";

const OPTION_TYPES: readonly OptionType[] = [
  "string",
  "integer",
  "number",
  "boolean",
  "size",
  "path",
];

const SIZE_UNITS: Readonly<Record<string, number>> = {
  "": 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

const SIZE_RE = /^(0x[0-9a-f]+|\d+)\s*([kmgt]?)(?:i?b)?$/i;
const DEC_INT_RE = /^[+-]?\d+$/;
const HEX_INT_RE = /^([+-]?)0x([0-9a-f]+)$/i;

/**
 * Parses a byte size: a non-negative integer, or a string such as `4096`, `0x1000`, `512k`,
 * `64M`, `2G`, `1T` (binary units; a trailing `B` or `iB` is allowed).
 *
 * @param value The size as a number of bytes or a string.
 * @returns The number of bytes.
 * @throws {VmonError} When the value is not a size.
 *
 * @example
 * ```ts
 * import { parseSize } from "./schema.ts";
 * if (parseSize("64M") !== 64 * 1024 * 1024) throw new Error("wrong size");
 * if (parseSize("0x1000") !== 4096) throw new Error("wrong size");
 * ```
 */
export function parseSize(value: string | number): number {
  if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0) return value;
    throw new VmonError(`Invalid size ${value}: expected a non-negative whole number of bytes`);
  }
  const m = SIZE_RE.exec(value.trim());
  if (m === null) {
    throw new VmonError(
      `Invalid size "${value}": expected a byte count such as 4096, 0x1000, 512k, 64M or 2G`,
    );
  }
  const digits = m[1] ?? "";
  const base = digits.toLowerCase().startsWith("0x")
    ? parseInt(digits.slice(2), 16)
    : parseInt(digits, 10);
  const bytes = base * (SIZE_UNITS[(m[2] ?? "").toLowerCase()] ?? 1);
  if (!Number.isSafeInteger(bytes)) {
    throw new VmonError(`Invalid size "${value}": too large`);
  }
  return bytes;
}

/** Formats a byte count for messages: `64M`, `4k`, `1000`. */
export function formatSize(bytes: number): string {
  for (const [unit, n] of [["T", 1024 ** 4], ["G", 1024 ** 3], ["M", 1024 ** 2], ["k", 1024]]) {
    if (bytes >= (n as number) && bytes % (n as number) === 0) {
      return `${bytes / (n as number)}${unit}`;
    }
  }
  return String(bytes);
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return String(value);
}

function parseInteger(value: string): number | undefined {
  const s = value.trim();
  if (DEC_INT_RE.test(s)) return Number(s);
  const hx = HEX_INT_RE.exec(s);
  if (hx !== null) {
    const n = parseInt(hx[2] ?? "", 16);
    return hx[1] === "-" ? -n : n;
  }
  return undefined;
}

/** Converts one value to the option's type; returns an error detail string on failure. */
function convert(spec: OptionSpec, value: unknown): { value: string | number | boolean } | {
  error: string;
} {
  switch (spec.type) {
    case "string":
    case "path": {
      if (typeof value !== "string") return { error: `expected a string, got ${describe(value)}` };
      if (spec.type === "path" && value === "") return { error: 'expected a path, got ""' };
      if (spec.enum !== undefined && !spec.enum.includes(value)) {
        return { error: `got ${describe(value)}, expected one of ${spec.enum.join(", ")}` };
      }
      return { value };
    }
    case "boolean": {
      if (typeof value === "boolean") return { value };
      if (typeof value === "string") {
        const s = value.trim().toLowerCase();
        if (s === "true") return { value: true };
        if (s === "false") return { value: false };
      }
      return { error: `expected true or false, got ${describe(value)}` };
    }
    case "integer": {
      let n: number | undefined;
      if (typeof value === "number") n = value;
      else if (typeof value === "string") n = parseInteger(value);
      if (n === undefined || !Number.isSafeInteger(n)) {
        return { error: `expected an integer (decimal or 0x hex), got ${describe(value)}` };
      }
      return { value: n };
    }
    case "number": {
      let n: number | undefined;
      if (typeof value === "number") n = value;
      else if (typeof value === "string" && value.trim() !== "") {
        n = parseInteger(value) ?? Number(value.trim());
      }
      if (n === undefined || !Number.isFinite(n)) {
        return { error: `expected a number, got ${describe(value)}` };
      }
      return { value: n };
    }
    case "size": {
      if (typeof value !== "number" && typeof value !== "string") {
        return { error: `expected a size such as 4096, 64M or 2G, got ${describe(value)}` };
      }
      try {
        return { value: parseSize(value) };
      } catch {
        return { error: `expected a size such as 4096, 0x1000, 64M or 2G, got ${describe(value)}` };
      }
    }
  }
}

function checkRange(spec: OptionSpec, n: number): string | undefined {
  const show = (x: number) => spec.type === "size" ? formatSize(x) : String(x);
  if (spec.min !== undefined && n < spec.min) {
    return `${show(n)} is below the minimum ${show(spec.min)}`;
  }
  if (spec.max !== undefined && n > spec.max) {
    return `${show(n)} is above the maximum ${show(spec.max)}`;
  }
  return undefined;
}

/**
 * Checks that an options schema is well formed (known types, descriptions, defaults of the right
 * type and in range, `enum` only on strings, `min <= max`, no default on a required option).
 *
 * @param schema The schema to check (any value: it may come from a third-party plugin).
 * @param options `plugin`: the plugin name for messages.
 * @throws {VmonError} Naming the plugin and the option at fault.
 */
export function checkOptionsSchema(schema: unknown, options: { plugin: string }): void {
  const where = `Invalid options schema for plugin "${options.plugin}"`;
  if (schema === undefined) return;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new VmonError(`${where}: options must be an object of option specs`);
  }
  for (const [name, raw] of Object.entries(schema)) {
    if (!/^[a-zA-Z][a-zA-Z0-9_-]*$/.test(name)) {
      throw new VmonError(`${where}: option name "${name}" must start with a letter`);
    }
    if (typeof raw !== "object" || raw === null) {
      throw new VmonError(`${where}: option "${name}" must be an object`);
    }
    const spec = raw as Partial<OptionSpec>;
    if (!OPTION_TYPES.includes(spec.type as OptionType)) {
      throw new VmonError(
        `${where}: option "${name}" has type ${describe(spec.type)}, expected one of ${
          OPTION_TYPES.join(", ")
        }`,
      );
    }
    if (typeof spec.description !== "string" || spec.description === "") {
      throw new VmonError(`${where}: option "${name}" needs a description`);
    }
    if (spec.enum !== undefined) {
      if (spec.type !== "string") {
        throw new VmonError(`${where}: option "${name}" has an enum but is not a string`);
      }
      if (
        !Array.isArray(spec.enum) || spec.enum.length === 0 ||
        !spec.enum.every((e) => typeof e === "string")
      ) {
        throw new VmonError(`${where}: option "${name}" enum must be a non-empty string array`);
      }
    }
    for (const k of ["min", "max"] as const) {
      const v = spec[k];
      if (v === undefined) continue;
      if (spec.type !== "integer" && spec.type !== "number" && spec.type !== "size") {
        throw new VmonError(`${where}: option "${name}" has ${k} but is not numeric`);
      }
      if (typeof v !== "number" || !Number.isFinite(v)) {
        throw new VmonError(`${where}: option "${name}" ${k} must be a finite number`);
      }
    }
    if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max) {
      throw new VmonError(`${where}: option "${name}" has min ${spec.min} above max ${spec.max}`);
    }
    if (spec.required !== undefined && typeof spec.required !== "boolean") {
      throw new VmonError(`${where}: option "${name}" required must be a boolean`);
    }
    if (spec.default !== undefined) {
      if (spec.required === true) {
        throw new VmonError(`${where}: option "${name}" is required and has a default`);
      }
      const c = convert(spec as OptionSpec, spec.default);
      if ("error" in c) {
        throw new VmonError(`${where}: option "${name}" default is invalid: ${c.error}`);
      }
      if (typeof c.value === "number") {
        const r = checkRange(spec as OptionSpec, c.value);
        if (r !== undefined) {
          throw new VmonError(`${where}: option "${name}" default is invalid: ${r}`);
        }
      }
    }
  }
}

/**
 * Validates raw option values against a schema and returns the converted values with defaults
 * applied. Strings (from the CLI) are converted: `"true"`/`"false"` for booleans, decimal or
 * `0x` hex for integers, sizes such as `64M` for sizes. Unknown keys are refused with the list
 * of known ones; options whose value is `undefined` count as not given.
 *
 * @param schema The plugin's options schema (checked with {@linkcode checkOptionsSchema}).
 * @param raw The raw values: an object, or `undefined`/`null` for none.
 * @param options `plugin`: the plugin name for messages.
 * @returns A new object holding every given or defaulted option.
 * @throws {VmonError} For unknown options, missing required ones, and wrong types or ranges.
 *
 * @example
 * ```ts
 * import { validateOptions } from "./schema.ts";
 * const schema = {
 *   base: { type: "integer", description: "I/O port base", default: 0x3f8 },
 *   ram: { type: "size", description: "Buffer size", default: "4k" },
 * } as const;
 * const v = validateOptions(schema, { base: "0x2f8" }, { plugin: "uart16550" });
 * if (v.base !== 0x2f8 || v.ram !== 4096) throw new Error("conversion failed");
 * ```
 */
export function validateOptions(
  schema: OptionsSchema | undefined,
  raw: unknown,
  options: { plugin: string },
): Record<string, string | number | boolean | undefined> {
  const plugin = options.plugin;
  const known = schema ?? {};
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new VmonError(`Invalid options for plugin "${plugin}": expected an object of options`);
  }
  const given = raw as Record<string, unknown>;
  const names = Object.keys(known);
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(known, key)) {
      const expected = names.length === 0
        ? "it takes no options"
        : `expected one of ${names.join(", ")}`;
      throw new VmonError(`Unknown option "${key}" for plugin "${plugin}": ${expected}`);
    }
  }
  const out: Record<string, string | number | boolean | undefined> = {};
  for (const name of names) {
    const spec = known[name] as OptionSpec;
    const value = given[name];
    if (value === undefined) {
      if (spec.default !== undefined) {
        const c = convert(spec, spec.default);
        out[name] = "error" in c ? undefined : c.value;
      } else if (spec.required === true) {
        throw new VmonError(
          `Missing option "${name}" for plugin "${plugin}": it is required (${spec.type}: ${spec.description})`,
        );
      } else {
        out[name] = undefined;
      }
      continue;
    }
    const c = convert(spec, value);
    if ("error" in c) {
      throw new VmonError(`Invalid option "${name}" for plugin "${plugin}": ${c.error}`);
    }
    if (typeof c.value === "number") {
      const r = checkRange(spec, c.value);
      if (r !== undefined) {
        throw new VmonError(`Invalid option "${name}" for plugin "${plugin}": ${r}`);
      }
    }
    out[name] = c.value;
  }
  return out;
}
