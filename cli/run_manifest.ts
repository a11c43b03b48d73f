/**
 * The machine manifest `vmon run` builds from an image's defaults (`imageManifest` of images/),
 * a manifest file and flags. {@linkcode checkFlags} checks the flags that need no I/O once and
 * {@linkcode buildRunManifest} takes its result. Pure: no I/O, so it is tested directly.
 *
 * @module
 */

import { execCmdline } from "../images/linux-rv64/protocol.ts";
import type { BootSpec, MachineManifest, PluginRef } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { parseSize } from "../core/schema.ts";
import { MAX_CPUS } from "../core/manifest.ts";
import { type BuiltImage, imageManifest } from "../images/mod.ts";
import { parseTraceSpec } from "../core/trace.ts";
import { parsePluginSpec } from "./flags.ts";
import { applyNetFlag, type NetFlag, parseNetFlag } from "./net_flag.ts";

/** The flags of `vmon run`, as commander delivers them. */
export interface RunFlags {
  /** `--host <spec>`. */
  host?: string;
  /** `--platform <spec>`. */
  platform?: string;
  /** `--device <spec>`, repeatable. */
  device?: string[];
  /** `--paging <spec>`. */
  paging?: string;
  /** `--cpus <n>`. */
  cpus?: string;
  /** `--mem <size>`. */
  mem?: string;
  /** `--overcommit`: allow `--mem` larger than the host's memory. */
  overcommit?: boolean;
  /** `--image <name>`. */
  image?: string;
  /** `--kernel <file>`. */
  kernel?: string;
  /** `--initrd <file>`. */
  initrd?: string;
  /** `--append <cmdline>`. */
  append?: string;
  /** `--exec <cmd>`. */
  exec?: string;
  /** `--disk <file>`, repeatable. */
  disk?: string[];
  /** `--net <spec>`: user[,hostfwd=...], tap[,ifname=...] or none. */
  net?: string;
  /** `--manifest <file>`. */
  manifest?: string;
  /** `--trace <cats>`. */
  trace?: string;
  /** `--stats [format]`: true or `table` for tables, `json` for JSON. */
  stats?: string | true;
}

/**
 * The flags of `vmon run` after {@linkcode checkFlags}: those that need no I/O checked and parsed,
 * the others (paths, plugin specs, `--exec`) as given.
 */
export interface CheckedFlags extends Omit<RunFlags, "cpus" | "mem" | "trace" | "stats" | "net"> {
  /** `--net`, parsed. */
  net?: NetFlag;
  /** `--cpus` as a number. */
  cpus?: number;
  /** `--mem` in bytes. */
  memory?: number;
  /** `--trace` categories. */
  trace: string[];
  /** `--stats` output. */
  stats: "none" | "table" | "json";
}

/**
 * Checks the flags that need no I/O, once: `--cpus`, `--mem`, `--trace`, `--stats`, `--exec`,
 * `--net`.
 *
 * @param flags The command-line flags.
 * @returns The flags with those values parsed, for {@linkcode buildRunManifest} and the run.
 * @throws {VmonError} Naming the flag and the accepted values.
 */
export function checkFlags(flags: RunFlags): CheckedFlags {
  let cpus: number | undefined;
  if (flags.cpus !== undefined) {
    const n = /^\d+$/.test(flags.cpus) ? Number(flags.cpus) : NaN;
    if (!Number.isSafeInteger(n) || n < 1 || n > MAX_CPUS) {
      throw new VmonError(
        `Invalid --cpus "${flags.cpus}": expected a whole number from 1 to ${MAX_CPUS}`,
      );
    }
    cpus = n;
  }
  let memory: number | undefined;
  if (flags.mem !== undefined) {
    try {
      memory = parseSize(flags.mem);
    } catch (err) {
      const why = err instanceof Error ? err.message.replace(/^[^:]*:\s*/, "") : String(err);
      throw new VmonError(`Invalid --mem "${flags.mem}": ${why}`);
    }
    if (memory === 0) throw new VmonError(`Invalid --mem "${flags.mem}": must be more than 0`);
    if (memory % 4096 !== 0) {
      throw new VmonError(
        `Invalid --mem "${flags.mem}": must be a whole number of 4 KiB pages, such as 256M`,
      );
    }
  }
  const trace: string[] = flags.trace === undefined
    ? []
    : [...parseTraceSpec(flags.trace, { what: "--trace" })];
  let stats: CheckedFlags["stats"] = "none";
  if (flags.stats === true || flags.stats === "table") stats = "table";
  else if (flags.stats === "json") stats = "json";
  else if (flags.stats !== undefined) {
    throw new VmonError(`Invalid --stats "${flags.stats}": expected --stats or --stats=json`);
  }
  if (flags.exec !== undefined && flags.exec.trim() === "") {
    throw new VmonError(`Invalid --exec "": the command is empty`);
  }
  const net = flags.net === undefined ? undefined : parseNetFlag(flags.net);
  const { cpus: _cpus, mem: _mem, trace: _trace, stats: _stats, net: _net, ...rest } = flags;
  return { ...rest, cpus, memory, trace, stats, ...(net ? { net } : {}) };
}

/**
 * Encodes `--exec`'s command for the kernel command line: `vmon.exec=<base64 of the UTF-8 text>`
 * (the Linux images' protocol, images/linux-rv64/README.md), so any characters and several lines
 * pass. The Linux images' init runs it with `sh` and powers off with its exit status.
 *
 * @param command The shell command or script.
 * @param base The rest of the command line, for the kernel's 1024-byte limit.
 */
export function execCmdlineParam(command: string, base = ""): string {
  return execCmdline(command, { base });
}

/** Where the parts of a run manifest come from. */
export interface ManifestSources {
  /** The built image, if one was named or defaulted. */
  readonly image?: BuiltImage;
  /** The manifest file's contents, if `--manifest` was given. */
  readonly manifest?: MachineManifest;
  /** The platform when none of the above nor `--platform` names one (the host port's only one). */
  readonly platform?: PluginRef;
}

/** Applies a `--host`/`--platform`/`--paging` spec over a base reference. */
function overrideRef(base: PluginRef | undefined, spec: string, flag: string): PluginRef {
  const ref = parsePluginSpec(spec, { flag });
  if (base !== undefined && base.use === ref.use) {
    return { use: ref.use, options: { ...base.options, ...ref.options } };
  }
  return ref;
}

/**
 * Builds the manifest `vmon run` starts: the image's defaults (`imageManifest`), overridden by the
 * manifest file, overridden by flags. `--net` sets, adds or (`none`) removes the `virtio-net`
 * device; then `--device X,...` replaces the options of a device `X` that
 * came from the image or manifest (once per such device) and otherwise appends; `--disk F`
 * appends `virtio-blk,file=F`; `--append` extends the command line; `--exec` adds
 * `vmon.exec=<base64>`.
 *
 * @param flags The command-line flags, checked by {@linkcode checkFlags}.
 * @param sources The image and manifest file, already loaded.
 * @returns A manifest for `createMachine`.
 * @throws {VmonError} If a plugin spec or `--disk` is malformed or no host port or platform is
 *   known.
 *
 * @example
 * ```ts
 * import { buildRunManifest, checkFlags } from "./run_manifest.ts";
 *
 * const m = buildRunManifest(
 *   checkFlags({
 *     host: "rv64",
 *     platform: "riscv-virt",
 *     kernel: "/boot/Image",
 *     mem: "64M",
 *     disk: ["d.img"],
 *   }),
 *   {},
 * );
 * if (m.memory !== 64 << 20 || m.devices?.[0]?.use !== "virtio-blk") throw new Error("bad");
 * ```
 */
export function buildRunManifest(flags: CheckedFlags, sources: ManifestSources): MachineManifest {
  const { image, manifest } = sources;
  const fromImage = image !== undefined ? imageManifest(image) : undefined;

  let hostport: PluginRef | undefined = manifest?.hostport ?? fromImage?.hostport;
  let platform: PluginRef | undefined = manifest?.platform ?? fromImage?.platform ??
    sources.platform;
  let paging: PluginRef | undefined = manifest?.paging ?? fromImage?.paging;
  let baseDevices: PluginRef[] = [...(manifest?.devices ?? fromImage?.devices ?? [])];
  if (flags.net !== undefined) baseDevices = applyNetFlag(baseDevices, flags.net);
  let cpus = manifest?.cpus ?? fromImage?.cpus;
  let memory: number | string | undefined = manifest?.memory ?? fromImage?.memory;
  const boot: { kernel?: string; initrd?: string; cmdline?: string } = {
    ...fromImage?.boot,
    ...manifest?.boot,
  };

  if (flags.host !== undefined) hostport = overrideRef(hostport, flags.host, "--host");
  if (flags.platform !== undefined) platform = overrideRef(platform, flags.platform, "--platform");
  if (flags.paging !== undefined) paging = overrideRef(paging, flags.paging, "--paging");
  if (flags.cpus !== undefined) cpus = flags.cpus;
  if (flags.memory !== undefined) memory = flags.memory;

  const devices = [...baseDevices];
  const overridden = new Set<number>();
  for (const spec of flags.device ?? []) {
    const ref = parsePluginSpec(spec, { flag: "--device" });
    const at = baseDevices.findIndex((dev, i) => dev.use === ref.use && !overridden.has(i));
    if (at >= 0) {
      overridden.add(at);
      devices[at] = { use: ref.use, options: { ...baseDevices[at]?.options, ...ref.options } };
    } else {
      devices.push(ref);
    }
  }
  for (const file of flags.disk ?? []) {
    if (file === "") throw new VmonError(`Invalid --disk "": the file name is empty`);
    devices.push({ use: "virtio-blk", options: { file } });
  }

  if (flags.kernel !== undefined) {
    boot.kernel = flags.kernel;
    if (image !== undefined) boot.initrd = undefined; // the image's initrd belongs to its kernel
  }
  if (flags.initrd !== undefined) boot.initrd = flags.initrd;
  const extra: string[] = [];
  if (flags.append !== undefined && flags.append.trim() !== "") extra.push(flags.append.trim());
  if (flags.exec !== undefined) {
    extra.push(execCmdlineParam(flags.exec, [boot.cmdline, ...extra].filter((x) => x).join(" ")));
  }
  if (extra.length > 0) boot.cmdline = [boot.cmdline, ...extra].filter((s) => s).join(" ");

  if (hostport === undefined) {
    throw new VmonError(
      "Cannot build the machine: no host port (give --host, --image or --manifest)",
    );
  }
  if (platform === undefined) {
    throw new VmonError(
      "Cannot build the machine: no platform (give --platform, --host, --image or --manifest)",
    );
  }
  const bootSpec: BootSpec = Object.fromEntries(
    Object.entries(boot).filter(([, v]) => v !== undefined),
  );
  return {
    hostport,
    platform,
    ...(paging ? { paging } : {}),
    devices,
    ...(cpus !== undefined ? { cpus } : {}),
    ...(memory !== undefined ? { memory } : {}),
    ...(flags.overcommit || manifest?.overcommit ? { overcommit: true } : {}),
    boot: bootSpec,
  };
}
