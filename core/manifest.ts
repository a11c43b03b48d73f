/**
 * Machine manifests: validation of the JSON (or TypeScript) description of a machine, with
 * errors that name the JSON path at fault (`Invalid manifest: devices[1].use must be a string`).
 *
 * @module
 */

import { dirname, isAbsolute, resolve, toFileUrl } from "./paths.ts";
import type { BootSpec, MachineManifest, PluginRef } from "./api/mod.ts";
import { VmonError } from "./errors.ts";
import { formatSize, parseSize } from "./schema.ts";

/** The most vCPUs a manifest may ask for. */
export const MAX_CPUS = 64;

const TOP_KEYS = [
  "cpus",
  "memory",
  "overcommit",
  "hostport",
  "platform",
  "paging",
  "devices",
  "boot",
];
const REF_KEYS = ["use", "options"];
const BOOT_KEYS = ["kernel", "initrd", "cmdline"];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return typeof v === "string" ? `the string ${JSON.stringify(v)}` : `${typeof v} ${String(v)}`;
}

/** Whether a plugin reference names a file (relative or absolute path) rather than a name/URL. */
function isRelativePath(ref: string): boolean {
  return ref.startsWith("./") || ref.startsWith("../");
}

/**
 * Validates a manifest and returns a normalized copy: `memory` becomes a byte count and a plugin
 * reference given as a bare string (`"uart16550"`) becomes `{ use: "uart16550" }`. Absent keys
 * stay absent (the machine applies its defaults: 1 vCPU, paging `wired`, no devices), so that a
 * manifest can be layered over an image's defaults.
 *
 * @param json The parsed manifest.
 * @param options `source` names the file in messages; `baseDir` resolves relative plugin paths
 * (`./dev.ts`) and boot file paths against it (for manifests loaded from a file).
 * @throws {VmonError} `Invalid manifest: devices[1].use must be a string`.
 *
 * @example
 * ```ts
 * import { validateManifest } from "./manifest.ts";
 * const m = validateManifest({
 *   memory: "64M",
 *   hostport: "rv64",
 *   platform: { use: "riscv-virt" },
 *   devices: [{ use: "virtio-blk", options: { disk: "d.img" } }],
 * });
 * if (m.memory !== 64 * 1024 * 1024 || m.hostport.use !== "rv64") throw new Error("not normalized");
 * ```
 */
export function validateManifest(
  json: unknown,
  options: { source?: string; baseDir?: string } = {},
): MachineManifest {
  const prefix = `Invalid manifest${options.source !== undefined ? ` "${options.source}"` : ""}`;
  const fail = (path: string, what: string): never => {
    throw new VmonError(`${prefix}: ${path} ${what}`);
  };
  if (!isObject(json)) {
    throw new VmonError(`${prefix}: expected a JSON object, got ${typeName(json)}`);
  }
  for (const key of Object.keys(json)) {
    if (!TOP_KEYS.includes(key)) {
      throw new VmonError(
        `${prefix}: unknown key "${key}" (expected ${TOP_KEYS.join(", ")})`,
      );
    }
  }
  const base = options.baseDir;
  const fixPath = (p: string) => base !== undefined && !isAbsolute(p) ? resolve(base, p) : p;

  const ref = (v: unknown, path: string): PluginRef => {
    if (typeof v === "string") v = { use: v };
    if (!isObject(v)) {
      return fail(path, `must be a plugin name or { use, options }, got ${typeName(v)}`);
    }
    for (const key of Object.keys(v)) {
      if (!REF_KEYS.includes(key)) fail(path, `has unknown key "${key}" (expected use, options)`);
    }
    if (typeof v.use !== "string") {
      return fail(`${path}.use`, `must be a string, got ${typeName(v.use)}`);
    }
    if (v.use.trim() === "") fail(`${path}.use`, "must not be empty");
    if (v.options !== undefined && !isObject(v.options)) {
      fail(`${path}.options`, `must be an object, got ${typeName(v.options)}`);
    }
    const use = base !== undefined && isRelativePath(v.use) ? resolve(base, v.use) : v.use;
    return v.options === undefined ? { use } : { use, options: { ...v.options as object } };
  };

  let cpus: number | undefined;
  if (json.cpus !== undefined) {
    if (typeof json.cpus !== "number" || !Number.isInteger(json.cpus)) {
      fail("cpus", `must be a whole number, got ${typeName(json.cpus)}`);
    }
    cpus = json.cpus as number;
    if (cpus! < 1 || cpus! > MAX_CPUS) fail("cpus", `must be 1-${MAX_CPUS}, got ${cpus}`);
  }

  let memory: number | undefined;
  if (json.memory !== undefined) {
    if (typeof json.memory !== "number" && typeof json.memory !== "string") {
      fail("memory", `must be a size such as 64M or a byte count, got ${typeName(json.memory)}`);
    }
    try {
      memory = parseSize(json.memory as number | string);
    } catch {
      fail(
        "memory",
        `must be a size such as 64M or a byte count, got ${typeName(json.memory)}`,
      );
    }
    if (memory === 0 || (memory as number) % 4096 !== 0) {
      fail("memory", `must be a non-zero multiple of 4k, got ${memory}`);
    }
  }

  if (json.overcommit !== undefined && typeof json.overcommit !== "boolean") {
    fail("overcommit", `must be true or false, got ${typeName(json.overcommit)}`);
  }
  const overcommit = json.overcommit as boolean | undefined;

  if (json.hostport === undefined) fail("hostport", "is required");
  if (json.platform === undefined) fail("platform", "is required");
  const hostport = ref(json.hostport, "hostport");
  const platform = ref(json.platform, "platform");
  const paging = json.paging === undefined ? undefined : ref(json.paging, "paging");

  let devices: PluginRef[] | undefined;
  if (json.devices !== undefined) {
    if (!Array.isArray(json.devices)) {
      fail("devices", `must be an array, got ${typeName(json.devices)}`);
    }
    devices = (json.devices as unknown[]).map((d, i) => ref(d, `devices[${i}]`));
  }

  let boot: BootSpec | undefined;
  if (json.boot !== undefined) {
    if (!isObject(json.boot)) fail("boot", `must be an object, got ${typeName(json.boot)}`);
    const b = json.boot as Record<string, unknown>;
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(b)) {
      if (!BOOT_KEYS.includes(key)) {
        fail("boot", `has unknown key "${key}" (expected ${BOOT_KEYS.join(", ")})`);
      }
      if (value === undefined) continue;
      if (typeof value !== "string") {
        fail(`boot.${key}`, `must be a string, got ${typeName(value)}`);
      }
      out[key] = key === "cmdline" ? value as string : fixPath(value as string);
    }
    boot = out as BootSpec;
  }

  return {
    ...(cpus !== undefined ? { cpus } : {}),
    ...(memory !== undefined ? { memory } : {}),
    ...(overcommit !== undefined ? { overcommit } : {}),
    hostport,
    platform,
    ...(paging !== undefined ? { paging } : {}),
    ...(devices !== undefined ? { devices } : {}),
    ...(boot !== undefined ? { boot } : {}),
  };
}

/**
 * Refuses guest RAM larger than the host's memory. The host would not refuse it itself (guest RAM
 * is mapped lazily), but a guest that uses it drives the host into swap or the OOM killer: Linux
 * alone writes 64 bytes of `struct page` for every 4 KiB page it is given (16 GiB for 1 TiB)
 * before it prints a line. `overcommit` (manifest `"overcommit": true`) allows it for guests known
 * to touch little of their RAM.
 *
 * @param bytes Guest RAM in bytes.
 * @param options `overcommit` allows any size; `hostMemory` is the host's total memory in bytes
 *   (default: `Deno.systemMemoryInfo().total`).
 * @throws {VmonError} `Cannot give the machine 1T of RAM: more than the host's 23.5 GiB (...)`.
 *
 * @example
 * ```ts
 * import { checkHostMemory } from "./manifest.ts";
 * checkHostMemory(64 << 20, { hostMemory: 1 << 30 }); // fits
 * let refused = false;
 * try {
 *   checkHostMemory(2 ** 31, { hostMemory: 2 ** 30 });
 * } catch {
 *   refused = true;
 * }
 * if (!refused) throw new Error("2 GiB on a 1 GiB host was accepted");
 * checkHostMemory(2 ** 31, { hostMemory: 2 ** 30, overcommit: true }); // allowed
 * ```
 */
export function checkHostMemory(
  bytes: number,
  options: { readonly overcommit?: boolean; readonly hostMemory?: number } = {},
): void {
  if (options.overcommit) return;
  const host = options.hostMemory ?? Deno.systemMemoryInfo().total;
  if (bytes <= host) return;
  throw new VmonError(
    `Cannot give the machine ${formatSize(bytes)} of RAM: more than the host's ${
      (host / 2 ** 30).toFixed(1)
    } GiB (--overcommit, or "overcommit": true in a manifest, allows it)`,
  );
}

/**
 * Reads and validates a manifest file: JSON (`.json`), or a TypeScript / JavaScript module whose
 * default export is the manifest (`.ts`, `.js`, `.mjs`). Relative plugin paths and boot files in
 * it are resolved against the manifest's folder.
 *
 * @param path The manifest file, relative to the current directory or absolute.
 * @throws {VmonError} `Cannot read manifest "/abs/m.json": ...` or
 *   `Invalid manifest "/abs/m.json": ...` (messages show the resolved path).
 */
export async function loadManifestFile(path: string): Promise<MachineManifest> {
  const full = resolve(path);
  const baseDir = dirname(full);
  let json: unknown;
  if (/\.(m?js|ts|mts)$/.test(full)) {
    try {
      Deno.statSync(full);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
      throw new VmonError(`Cannot read manifest "${full}": ${why}`, { cause: e });
    }
    let mod: Record<string, unknown>;
    try {
      mod = await import(toFileUrl(full).href);
    } catch (e) {
      throw new VmonError(`Cannot load manifest "${full}": ${(e as Error).message}`, { cause: e });
    }
    if (mod.default === undefined) {
      throw new VmonError(`Invalid manifest "${full}": the module has no default export`);
    }
    json = mod.default;
  } else {
    let text: string;
    try {
      text = Deno.readTextFileSync(full);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "no such file" : (e as Error).message;
      throw new VmonError(`Cannot read manifest "${full}": ${why}`, { cause: e });
    }
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new VmonError(`Invalid manifest "${full}": not JSON: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }
  return validateManifest(json, { source: full, baseDir });
}
