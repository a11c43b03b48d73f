/**
 * Taking and restoring snapshots of a machine (docs/DESIGN.md, "Snapshots"), on the machine
 * worker: which sections a file holds, in which order plugins save and restore, and the checks
 * that refuse a file made for another machine. The file format itself is
 * `core/snapshot_format.ts`.
 *
 * @module
 */

import type {
  HostPortInstance,
  MachineManifest,
  PluginInstance,
  PluginState,
  SnapshotValue,
} from "./api/mod.ts";
import type { BusCounters, ExitBus } from "./bus.ts";
import { VmonError } from "./errors.ts";
import type { GuestMemory } from "./memory.ts";
import { validateManifest } from "./manifest.ts";
import {
  decodeRam,
  decodeSnapshot,
  decodeValue,
  encodeRam,
  encodeSnapshot,
  encodeValue,
  loadRam,
  type RamImage,
  SnapshotFileReader,
  type SnapshotSection,
} from "./snapshot_format.ts";
import type { MetricsRegistry } from "./stats.ts";

/** What of a machine a snapshot saves and restores. */
export interface SnapshotParts {
  /** The manifest the machine was built from. */
  readonly manifest: MachineManifest;
  /** Guest architecture and host port name. */
  readonly arch: string;
  /** Plugin instances in setup order (host port first, then platform, paging, devices). */
  readonly instances: readonly { readonly name: string; readonly instance: PluginInstance }[];
  /** Guest memory (its regions are saved). */
  readonly memory: GuestMemory;
  /** The exit bus (its counters are saved). */
  readonly bus: ExitBus;
  /** Plugin metrics (saved). */
  readonly metrics: MetricsRegistry;
}

/** What a snapshot file's META section says. */
export interface SnapshotMeta {
  /** The manifest of the machine. */
  readonly manifest: MachineManifest;
  /** Guest architecture. */
  readonly arch: string;
  /** Plugin names in setup order. */
  readonly plugins: readonly string[];
  /** RAM regions. */
  readonly regions: readonly { readonly gpa: number; readonly size: number }[];
  /** When it was taken (ISO 8601). */
  readonly created: string;
}

/** A snapshot file read and checked, ready to restore. */
export interface SnapshotImage {
  /** The file's name, for messages. */
  readonly name: string;
  /** Its META section. */
  readonly meta: SnapshotMeta;
  /** The plugins' saved states by name. */
  readonly plugins: ReadonlyMap<string, PluginState>;
  /** Core's counters. */
  readonly core: {
    readonly bus: BusCounters;
    readonly metrics: Record<string, Record<string, number>>;
  };
  /** RAM regions (their pages may not be read yet: use `loadRam`). */
  readonly ram: readonly RamImage[];
  /**
   * Writes the RAM images into fresh regions (one view per image, in order) and checks what it
   * read against the file's checksum. Throws one line when they do not match.
   */
  readonly loadRam: (regions: readonly Uint8Array[]) => void;
}

/** What {@linkcode saveSnapshot} reports. */
export interface SnapshotInfo {
  /** Bytes of the file. */
  readonly bytes: number;
  /** RAM pages stored (all-zero pages are left out). */
  readonly pages: number;
  /** RAM pages of the machine. */
  readonly totalPages: number;
  /** Milliseconds the machine was stopped to save it (file writing included). */
  readonly ms: number;
}

/** Options of {@linkcode saveSnapshot}. */
export interface SaveOptions {
  /** Deflate the sections (smaller file, slower). */
  readonly compress?: boolean;
}

/**
 * Refuses a snapshot of a machine with a plugin that cannot save its state, naming the first
 * such plugin.
 */
export function checkSavable(parts: SnapshotParts): void {
  for (const { name, instance } of parts.instances) {
    if (typeof instance.save !== "function") {
      throw new VmonError(`Cannot take a snapshot: plugin "${name}" has no save()`);
    }
  }
}

/**
 * Every plugin's saved state, devices first and the host port last (its save drops derived
 * state the others may still read), as snapshot sections in setup order.
 */
function savePlugins(parts: SnapshotParts): SnapshotSection[] {
  checkSavable(parts);
  const states: SnapshotSection[] = [];
  for (const { name, instance } of [...parts.instances].reverse()) {
    let saved: PluginState;
    try {
      saved = instance.save!();
    } catch (err) {
      if (err instanceof VmonError) throw err;
      throw new VmonError(
        `Cannot take a snapshot: plugin "${name}" failed to save: ${(err as Error).message}`,
      );
    }
    if (!Number.isInteger(saved?.version) || saved.version < 1) {
      throw new VmonError(
        `Cannot take a snapshot: plugin "${name}" returned no integer state version from save()`,
      );
    }
    states.unshift({
      tag: "PLUG",
      payload: encodeValue({ name, version: saved.version, state: saved.state }),
    });
  }
  return states;
}

/**
 * Does to the running machine what taking a snapshot does, without writing one: every plugin's
 * `save()` runs (so each settles the derived state a restored machine rebuilds: the host port
 * drops its TLBs and decoded code, a strategy its shadow tables or queue) and the states are
 * dropped. A run settled at a point counts exactly what a run restored from a snapshot taken at
 * that point counts (`vmon compare`'s cold runs rely on it). Call between exits.
 *
 * @param parts The machine.
 * @throws {VmonError} As a snapshot would: a plugin without `save()`, or one that fails.
 */
export function settleSnapshot(parts: SnapshotParts): void {
  savePlugins(parts);
}

/**
 * Saves the machine into a snapshot file's bytes. Call between exits (on the machine's thread,
 * no vCPU running). Plugins save devices first and the host port last (its save drops derived
 * state the others may still read).
 *
 * @param parts The machine.
 * @param options Compression.
 */
export function saveSnapshot(
  parts: SnapshotParts,
  options: SaveOptions = {},
): { readonly file: Uint8Array; readonly pages: number; readonly totalPages: number } {
  const states = savePlugins(parts);
  const core = encodeValue({
    bus: parts.bus.counters() as unknown as SnapshotValue,
    metrics: parts.metrics.snapshot(),
  });
  const ram: SnapshotSection[] = [];
  let pages = 0;
  let totalPages = 0;
  for (const r of parts.memory.regions) {
    const payload = encodeRam(r.gpa, parts.memory.view(r.gpa, r.size));
    const image = decodeRam(payload, { name: "(new)" });
    pages += image.pages.length / 4096;
    totalPages += r.size / 4096;
    ram.push({ tag: "RAM ", payload });
  }
  const meta: SnapshotMeta = {
    manifest: parts.manifest,
    arch: parts.arch,
    plugins: parts.instances.map((i) => i.name),
    regions: parts.memory.regions.map((r) => ({ gpa: r.gpa, size: r.size })),
    created: new Date().toISOString(),
  };
  const sections: SnapshotSection[] = [
    { tag: "META", payload: new TextEncoder().encode(JSON.stringify(meta)) },
    { tag: "CORE", payload: core },
    ...states,
    ...ram,
  ];
  return { file: encodeSnapshot(sections, options), pages, totalPages };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function counts(v: unknown): v is Record<string, number> {
  return isRecord(v) &&
    Object.values(v).every((n) => typeof n === "number" && Number.isSafeInteger(n) && n >= 0);
}

/**
 * Reads and checks a snapshot file: format, checksums, and the shape of every section. Refuses
 * a bad file with one line.
 *
 * @param bytes The file.
 * @param options `name`: the file's name for messages.
 */
export function parseSnapshot(
  bytes: Uint8Array,
  options: { readonly name: string },
): SnapshotImage {
  const all = decodeSnapshot(bytes, { name: options.name });
  const ram = all.filter((s) => s.tag === "RAM ").map((s) => decodeRam(s.payload, options));
  return parseSections(all.filter((s) => s.tag !== "RAM "), {
    name: options.name,
    ram,
    loadRam: (regions) => ram.forEach((r, i) => loadRam(r, regions[i]!)),
  });
}

/** Checks the sections of a snapshot (RAM sections already decoded). */
function parseSections(
  sections: readonly SnapshotSection[],
  options: {
    readonly name: string;
    readonly ram: readonly RamImage[];
    readonly loadRam: (regions: readonly Uint8Array[]) => void;
  },
): SnapshotImage {
  const name = options.name;
  const ram = options.ram;
  const fail = (why: string): never => {
    throw new VmonError(`Cannot restore snapshot "${name}": ${why}`);
  };
  const first = sections[0];
  if (first === undefined || first.tag !== "META") fail("it has no META section first");
  let metaJson: unknown;
  try {
    metaJson = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(first!.payload));
  } catch {
    fail("its META section is not valid JSON");
  }
  if (!isRecord(metaJson)) return fail("its META section is not an object");
  const { arch, plugins, regions, created } = metaJson;
  if (typeof arch !== "string") fail("its META section has no architecture");
  if (!Array.isArray(plugins) || !plugins.every((p) => typeof p === "string")) {
    fail("its META section has no plugin list");
  }
  if (
    !Array.isArray(regions) ||
    !regions.every((r) =>
      isRecord(r) && Number.isSafeInteger(r.gpa) && Number.isSafeInteger(r.size) &&
      (r.gpa as number) >= 0 && (r.size as number) > 0
    )
  ) {
    fail("its META section has no region list");
  }
  let manifest: MachineManifest;
  try {
    manifest = validateManifest(metaJson.manifest);
  } catch (err) {
    return fail(`its manifest is invalid: ${(err as Error).message}`);
  }
  const meta: SnapshotMeta = {
    manifest,
    arch: arch as string,
    plugins: plugins as string[],
    regions: regions as { gpa: number; size: number }[],
    created: typeof created === "string" ? created : "",
  };
  let core: SnapshotImage["core"] | undefined;
  const states = new Map<string, PluginState>();
  for (const s of sections.slice(1)) {
    switch (s.tag) {
      case "CORE": {
        if (core !== undefined) fail("it has two CORE sections");
        const v = decodeValue(s.payload, { name, what: "the CORE section" });
        const c = isRecord(v) ? v : {};
        const bus = c.bus;
        if (
          !isRecord(bus) || !counts(bus.exits) || !counts(bus.plugins) || !counts(bus.errors) ||
          !counts(bus.unclaimed) || !isRecord(c.metrics) || !Object.values(c.metrics).every(counts)
        ) {
          fail("its CORE section is malformed");
        }
        core = {
          bus: bus as unknown as BusCounters,
          metrics: c.metrics as Record<string, Record<string, number>>,
        };
        break;
      }
      case "PLUG": {
        const v = decodeValue(s.payload, { name, what: "a plugin section" });
        if (
          !isRecord(v) || typeof v.name !== "string" || !Number.isInteger(v.version) ||
          (v.version as number) < 1 || !("state" in v)
        ) {
          return fail("a plugin section is malformed");
        }
        if (states.has(v.name)) fail(`it holds plugin "${v.name}" twice`);
        states.set(v.name, { version: v.version as number, state: v.state as SnapshotValue });
        break;
      }
      default:
        fail(`it has an unknown section "${s.tag}"`);
    }
  }
  if (core === undefined) return fail("it has no CORE section");
  for (const p of meta.plugins) if (!states.has(p)) fail(`it has no state for plugin "${p}"`);
  if (states.size !== meta.plugins.length) fail("it holds state for plugins it does not list");
  const same = ram.length === meta.regions.length &&
    ram.every((r, i) => r.gpa === meta.regions[i]!.gpa && r.size === meta.regions[i]!.size);
  if (!same) fail("its RAM sections do not match its region list");
  return { name, meta, plugins: states, core, ram, loadRam: options.loadRam };
}

/**
 * Reads a snapshot file from disk and checks it ({@linkcode parseSnapshot}).
 *
 * @param path The file.
 */
export function readSnapshot(path: string): SnapshotImage {
  const reader = SnapshotFileReader.open(path);
  try {
    return parseSections(reader.sections, {
      name: path,
      ram: reader.ram,
      loadRam: (regions) => reader.loadRam(regions),
    });
  } catch (err) {
    reader.close();
    throw err;
  }
}

/**
 * Loads a snapshot into a machine built from its manifest, set up but not booted: checks that
 * the machine is the one saved (plugins, RAM layout, architecture), copies RAM, restores every
 * plugin in setup order (host port first) and core's counters.
 *
 * @param parts The freshly built machine.
 * @param image The checked snapshot.
 */
export function restoreSnapshot(parts: SnapshotParts, image: SnapshotImage): void {
  const fail = (why: string): never => {
    throw new VmonError(`Cannot restore snapshot "${image.name}": ${why}`);
  };
  if (image.meta.arch !== parts.arch) {
    fail(`it was taken of a ${image.meta.arch} machine, this one is ${parts.arch}`);
  }
  const names = parts.instances.map((i) => i.name);
  if (names.join("\n") !== image.meta.plugins.join("\n")) {
    fail(
      `it was taken of a machine with plugins ${image.meta.plugins.join(", ")}; this one has ${
        names.join(", ")
      }`,
    );
  }
  const regions = parts.memory.regions;
  if (
    regions.length !== image.ram.length ||
    regions.some((r, i) => r.gpa !== image.ram[i]!.gpa || r.size !== image.ram[i]!.size)
  ) {
    const fmt = (rs: readonly { gpa: number; size: number }[]) =>
      rs.map((r) => `${r.size / 2 ** 20} MiB at 0x${r.gpa.toString(16)}`).join(", ");
    fail(`it was taken with RAM ${fmt(image.ram)}; this machine has ${fmt(regions)}`);
  }
  for (const { name, instance } of parts.instances) {
    if (typeof instance.restore !== "function") fail(`plugin "${name}" has no restore()`);
  }
  const hostport = parts.instances[0]?.instance as HostPortInstance | undefined;
  for (const r of image.ram) {
    // Every 2 MiB block that holds stored pages is hinted as one bulk write (large pages).
    const BLOCK = 2 * 2 ** 20;
    const pagesPerBlock = BLOCK / 4096;
    for (let p = 0; p < r.size / 4096; p += pagesPerBlock) {
      let any = false;
      for (let b = p >> 3; b < Math.min((p + pagesPerBlock) >> 3, r.bitmap.length); b++) {
        if (r.bitmap[b] !== 0) {
          any = true;
          break;
        }
      }
      if (any) hostport?.hintBulkWrite?.(r.gpa + p * 4096, Math.min(BLOCK, r.size - p * 4096));
    }
  }
  image.loadRam(image.ram.map((r) => parts.memory.view(r.gpa, r.size)));
  for (const { name, instance } of parts.instances) {
    const saved = image.plugins.get(name)!;
    try {
      instance.restore!(saved);
    } catch (err) {
      if (err instanceof VmonError) {
        throw new VmonError(`Cannot restore snapshot "${image.name}": ${err.message}`);
      }
      fail(`plugin "${name}" failed to restore: ${(err as Error).message}`);
    }
  }
  parts.bus.restoreCounters(image.core.bus);
  parts.metrics.restore(image.core.metrics);
}
