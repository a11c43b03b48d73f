/**
 * `vmon run --net <spec>`: the machine's network, as the `virtio-net` device and its backend
 * (plugins/devices/virtio-net/README.md). `user[,hostfwd=RULE]...` (passt: DHCP, the gateway
 * 10.0.2.2 reaches the host's loopback, RULE `tcp:[hostaddr]:hostport-[guestaddr]:guestport`
 * forwards a host port, repeatable), `tap[,ifname=NAME]` (a TAP interface), `none` (no network
 * device). Both backends take `mac=`. The Linux images have `user` by default.
 *
 * @module
 */

import type { PluginRef } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";

/** The device `--net` adds, replaces or removes. */
export const NET_DEVICE = "virtio-net";

/** A parsed `--net`. */
export type NetFlag =
  | { readonly backend: "none" }
  | { readonly backend: "user" | "tap"; readonly options: Readonly<Record<string, string>> };

const KEYS: Record<string, readonly string[]> = {
  user: ["hostfwd", "mac"],
  tap: ["ifname", "mac"],
};

/**
 * Parses `--net`'s spec. `hostfwd=` may repeat (its rules are joined with spaces).
 *
 * @example
 * ```ts
 * import { parseNetFlag } from "./net_flag.ts";
 *
 * const net = parseNetFlag("user,hostfwd=tcp:8080-:80,hostfwd=tcp:2222-:22");
 * if (net.backend !== "user" || net.options.hostfwd !== "tcp:8080-:80 tcp:2222-:22") {
 *   throw new Error("bad parse");
 * }
 * ```
 *
 * @param spec The text after `--net`.
 * @throws {VmonError} One line naming what is wrong and what is accepted.
 */
export function parseNetFlag(spec: string): NetFlag {
  const [kind = "", ...parts] = spec.split(",");
  const usage = "expected user[,hostfwd=tcp:HOSTPORT-:GUESTPORT...], tap[,ifname=NAME] or none";
  if (kind === "none") {
    if (parts.length > 0) throw new VmonError(`Invalid --net "${spec}": none takes no options`);
    return { backend: "none" };
  }
  if (kind !== "user" && kind !== "tap") throw new VmonError(`Invalid --net "${spec}": ${usage}`);
  const options: Record<string, string> = { backend: kind };
  for (const part of parts) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    if (!KEYS[kind]!.includes(key)) {
      throw new VmonError(
        `Invalid --net "${spec}": ${kind} takes ${KEYS[kind]!.join(" and ")}, not "${key}"`,
      );
    }
    if (value === "") throw new VmonError(`Invalid --net "${spec}": ${key} has no value`);
    if (key === "hostfwd" && options.hostfwd !== undefined) {
      options.hostfwd = `${options.hostfwd} ${value}`;
    } else if (options[key] !== undefined) {
      throw new VmonError(`Invalid --net "${spec}": ${key} is given twice`);
    } else {
      options[key] = value;
    }
  }
  return { backend: kind, options };
}

/**
 * Applies `--net` to a machine's devices: `none` removes the network devices; otherwise the first
 * `virtio-net` gets the backend and its options (keeping its MAC, address and interrupt unless
 * `--net` gives a MAC), or one is added.
 *
 * @param devices The devices from the image and the manifest.
 * @param net The parsed flag.
 * @returns The new device list.
 */
export function applyNetFlag(devices: readonly PluginRef[], net: NetFlag): PluginRef[] {
  if (net.backend === "none") return devices.filter((d) => d.use !== NET_DEVICE);
  const at = devices.findIndex((d) => d.use === NET_DEVICE);
  if (at < 0) return [...devices, { use: NET_DEVICE, options: { ...net.options } }];
  const { backend: _b, hostfwd: _h, ifname: _i, ...kept } = devices[at]!.options ?? {};
  const out = [...devices];
  out[at] = { use: NET_DEVICE, options: { ...kept, ...net.options } };
  return out;
}
