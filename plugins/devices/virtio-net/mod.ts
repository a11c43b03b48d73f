/**
 * The `virtio-net` device plugin: a virtio network device (device id 1) on virtio-mmio whose
 * packets go to a host backend through core's packet endpoints (`DeviceHost.net`): `user`
 * (passt: unprivileged, DHCP, the gateway reaches the host's loopback, `hostfwd`), `tap` (a TAP
 * interface) or `none` (no backend: the link is down).
 *
 * @module
 */

import {
  attachVirtioMmio,
  definePlugin,
  type HostForward,
  type PacketBackendSpec,
  type PacketEndpoint,
  PLUGIN_API_VERSION,
  VmonError,
} from "../../../mod.ts";
import { formatMac, parseMac, VirtioNet } from "./net.ts";

export * from "./net.ts";

/** The first bytes of vmon's default MAC addresses (locally administered, unicast: "vmon"). */
export const DEFAULT_MAC_PREFIX = "02:76:6d:6f:6e";

/**
 * The default MAC of the device called `name`: `02:76:6d:6f:6e:NN`, where NN is the index of
 * the device of its kind (`virtio-net` 0, `virtio-net.1` 1, ...): stable across runs.
 *
 * @example
 * ```ts
 * import { defaultMac } from "./mod.ts";
 * if (defaultMac("virtio-net.2") !== "02:76:6d:6f:6e:02") throw new Error();
 * ```
 */
export function defaultMac(name: string): string {
  const m = /\.(\d+)$/.exec(name);
  const index = m ? Number(m[1]) & 0xff : 0;
  return `${DEFAULT_MAC_PREFIX}:${index.toString(16).padStart(2, "0")}`;
}

const HOSTFWD_SYNTAX = "expected tcp:[hostaddr]:hostport-[guestaddr]:guestport";

function port(text: string, rule: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) {
    throw new VmonError(`Invalid hostfwd rule "${rule}": port "${text}" is not 1 to 65535`);
  }
  return n;
}

/**
 * Parses `hostfwd` rules, QEMU's syntax separated by spaces: `tcp:[hostaddr]:hostport-
 * [guestaddr]:guestport`. Without a host address the port listens on 127.0.0.1 only (QEMU listens
 * on every address; give `0.0.0.0` for that). A guest address, if given, must be the guest's
 * (10.0.2.15): passt forwards to the guest's own address.
 *
 * @example
 * ```ts
 * import { parseHostForwards } from "./mod.ts";
 * const [f] = parseHostForwards("tcp:8080-:80");
 * if (f?.hostAddress !== "127.0.0.1" || f.hostPort !== 8080 || f.guestPort !== 80) throw new Error();
 * ```
 *
 * @param text The rules.
 * @throws {VmonError} For a rule that does not parse.
 */
export function parseHostForwards(text: string): HostForward[] {
  const out: HostForward[] = [];
  for (const rule of text.split(/[\s;]+/).filter(Boolean)) {
    const m = /^(tcp|udp):(?:([0-9.]*):)?(\d*)-(?:([0-9.]*):)?(\d*)$/.exec(rule);
    if (!m) throw new VmonError(`Invalid hostfwd rule "${rule}": ${HOSTFWD_SYNTAX}`);
    if (m[1] !== "tcp") {
      throw new VmonError(`Invalid hostfwd rule "${rule}": only tcp ports are forwarded`);
    }
    const hostAddress = m[2] || "127.0.0.1";
    if (
      !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostAddress) || hostAddress.split(".").some((x) => +x > 255)
    ) {
      throw new VmonError(
        `Invalid hostfwd rule "${rule}": "${hostAddress}" is not an IPv4 address`,
      );
    }
    if (m[4] && m[4] !== "10.0.2.15") {
      throw new VmonError(
        `Invalid hostfwd rule "${rule}": the guest address can only be the guest's own, 10.0.2.15`,
      );
    }
    out.push({
      protocol: "tcp",
      hostAddress,
      hostPort: port(m[3]!, rule),
      guestPort: port(m[5]!, rule),
    });
  }
  return out;
}

export default definePlugin({
  name: "virtio-net",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "virtio network device: user (passt), tap or no backend",
  options: {
    backend: {
      type: "string",
      description: "Where packets go: user (passt, unprivileged), tap (a TAP interface), none",
      enum: ["user", "tap", "none"],
      default: "user",
    },
    mac: {
      type: "string",
      description: "MAC address (default 02:76:6d:6f:6e:NN, NN the device's index)",
    },
    hostfwd: {
      type: "string",
      description: "user: forwarded host ports, tcp:[hostaddr]:hostport-[guestaddr]:guestport ...",
    },
    ifname: {
      type: "string",
      description: "tap: the TAP interface (existing or new; default: a new tapN)",
    },
    base: { type: "integer", description: "MMIO address (default: allocated)", min: 0 },
    irq: { type: "integer", description: "Interrupt line (default: allocated)", min: 0 },
  },
  setup(host, options) {
    const macText = options.mac ?? defaultMac(host.name);
    const mac = parseMac(macText);
    if (mac === undefined) {
      throw new VmonError(`Invalid MAC address "${macText}": expected six hex bytes, unicast`);
    }
    if (options.backend !== "user" && options.hostfwd !== undefined) {
      throw new VmonError(
        `Cannot forward host ports with backend "${options.backend}": only user does`,
      );
    }
    if (options.backend !== "tap" && options.ifname !== undefined) {
      throw new VmonError(`Cannot use ifname with backend "${options.backend}": only tap has one`);
    }
    let spec: PacketBackendSpec | undefined;
    if (options.backend === "user") {
      spec = { kind: "user", hostfwd: parseHostForwards(options.hostfwd ?? "") };
    } else if (options.backend === "tap") {
      spec = { kind: "tap", ...(options.ifname ? { ifname: options.ifname } : {}) };
    }
    let endpoint: PacketEndpoint | undefined;
    if (spec !== undefined) {
      if (host.net === undefined) {
        throw new VmonError(
          `Cannot open the ${spec.kind} network backend: this device host has no packet endpoints`,
        );
      }
      endpoint = host.net.open(spec);
      host.log.debug(`${formatMac(mac)} on ${endpoint.description}`);
    }
    try {
      const m = host.metrics;
      const device = new VirtioNet({
        mac,
        endpoint,
        memory: host.memory,
        log: host.log,
        counters: {
          rxPackets: m.counter("rx_packets", "Packets delivered to the guest"),
          rxBytes: m.counter("rx_bytes", "Ethernet bytes delivered to the guest"),
          rxDropped: m.counter(
            "rx_dropped",
            "Packets dropped: too large for the guest's buffers, or no driver",
          ),
          rxMalformed: m.counter(
            "rx_malformed",
            "Receive chains of the wrong shape, returned unused",
          ),
          txPackets: m.counter("tx_packets", "Packets sent by the guest"),
          txBytes: m.counter("tx_bytes", "Ethernet bytes sent by the guest"),
          txDropped: m.counter("tx_dropped", "Packets sent while no backend runs"),
          txMalformed: m.counter("tx_malformed", "Transmit chains of the wrong shape, dropped"),
          backendKicks: m.counter(
            "backend_kicks",
            "vCPU slices the backend ended early to deliver packets",
          ),
          backendDropped: m.counter("backend_dropped", "Packets the backend dropped"),
        },
      });
      return attachVirtioMmio(host, device, { base: options.base, irq: options.irq });
    } catch (err) {
      endpoint?.close();
      throw err;
    }
  },
});
