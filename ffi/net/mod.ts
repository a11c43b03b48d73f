/**
 * The packet backends of vmon's C accelerator (`ffi/net/*.c`): a TAP device or passt, each
 * behind an endpoint whose C thread moves packets between the backend and two rings and ends the
 * running vCPU slice when packets arrive (README.md). Only host ports import this module: they
 * open endpoints for core's `DeviceHost.net` with their own kick function
 * (`HostPortInstance.openPacketEndpoint`).
 *
 * @module
 */

import { delimiter, join } from "../../core/paths.ts";
import type {
  HostForward,
  HostPacketEndpoint,
  PacketBackendSpec,
  PacketBackendStats,
} from "../../core/api/mod.ts";
import { MAX_FRAME_SIZE, PACKET_HEADER_SIZE } from "../../core/api/mod.ts";
import { VmonError } from "../../core/errors.ts";
import { buildLibrary as buildBackend, loadLibrary, openBuiltLibrary } from "../mod.ts";
import { NET_COUNTER_NAMES, NET_SYMBOLS } from "./symbols.ts";

export * from "./symbols.ts";

/** The loaded net library. */
export type NetLibrary = Deno.DynamicLibrary<typeof NET_SYMBOLS>;

/**
 * Builds the net library into the cache if needed and returns its path (used by
 * `tests/prepare.ts` before the parallel tests).
 */
export function buildLibrary(): string {
  return buildBackend("net");
}

/**
 * Opens the net library on this thread (building it first if needed; `VMON_FFI_LIB_NET` names a
 * prebuilt one). Cached per thread.
 *
 * @example
 * ```ts
 * import { loadNet } from "./mod.ts";
 * console.assert(typeof loadNet().symbols.vmon_net_open_tap === "function");
 * ```
 */
export function loadNet(): NetLibrary {
  return loadLibrary("net", NET_SYMBOLS);
}

/**
 * Opens the packet backends' library on this thread if that needs no compiling (see
 * `openBuiltLibrary`): a later {@linkcode loadNet} then returns at once. Undefined when it is not
 * built yet.
 */
export function openBuiltNet(): NetLibrary | undefined {
  return openBuiltLibrary("net", NET_SYMBOLS);
}

/** The guest's side of the `user` network, as QEMU's user networking numbers it. */
export const USER_NETWORK = {
  /** The address passt's DHCP server gives the guest. */
  guest: "10.0.2.15",
  /** The prefix length. */
  prefix: 24,
  /** The gateway: connections to it reach the host's loopback. */
  gateway: "10.0.2.2",
  /** The DNS address: queries to it go to the host's resolver. */
  dns: "10.0.2.3",
} as const;

/**
 * The passt executable: `VMON_PASST` if set, else `passt` on `PATH`; undefined when missing.
 */
export function findPasst(): string | undefined {
  const override = Deno.env.get("VMON_PASST");
  if (override) return override;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, "passt");
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch { /* not here */ }
  }
  return undefined;
}

/**
 * The arguments vmon gives passt (before `--fd 3`, which the C side adds): foreground, log to
 * stderr, exit with the connection, QEMU's user-network addresses, DNS forwarded to the host's
 * resolver, and one `-t` per forwarded port.
 *
 * @example
 * ```ts
 * import { passtArguments } from "./mod.ts";
 * const args = passtArguments([
 *   { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 8080, guestPort: 80 },
 * ]);
 * if (!args.includes("127.0.0.1/8080:80")) throw new Error(args.join(" "));
 * ```
 *
 * @param hostfwd The forwarded ports.
 */
export function passtArguments(hostfwd: readonly HostForward[] = []): string[] {
  const u = USER_NETWORK;
  const args = ["--foreground", "--stderr", "--one-off"];
  args.push("--address", u.guest, "--netmask", String(u.prefix), "--gateway", u.gateway);
  args.push("--dns", u.dns, "--dns-forward", u.dns, "--no-dhcp-search");
  for (const f of hostfwd) {
    args.push("--tcp-ports", `${f.hostAddress}/${f.hostPort}:${f.guestPort}`);
  }
  return args;
}

const ERR_LEN = 512;

function cString(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

function readCString(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? undefined : end));
}

/** A C function the backend's thread calls to end the running vCPU slice, and its argument. */
export interface KickFunction {
  /** `void (*)(void *)`, safe to call from any thread, never blocking. */
  readonly fn: Deno.PointerValue;
  /** Its argument; must stay valid until the endpoint is closed. */
  readonly arg: Deno.PointerValue;
}

/** Options of {@linkcode openPacketBackend}. */
export interface OpenPacketBackendOptions {
  /** How the backend's thread ends the running vCPU slice (none: the slice runs to its end). */
  readonly kick?: KickFunction;
  /**
   * Wait until passt has configured itself (its forwarded ports bound) before returning, so that
   * a failure throws here (default true). With false the call returns once passt runs; until it
   * is ready packets queue, and a passt that exits first is reported by `startError()` with the
   * same message.
   */
  readonly wait?: boolean;
}

/** The message of a user network (passt) that did not start. */
function passtStartError(why: string): string {
  return `Cannot start the user network (passt): ${why}`;
}

/**
 * Opens a packet backend and starts its thread.
 *
 * @example A TAP device needs root (or a device owned by the user)
 * ```ts ignore
 * import { openPacketBackend } from "./mod.ts";
 * using tap = openPacketBackend({ kind: "tap", ifname: "tap0" });
 * ```
 *
 * @param spec The backend (`user`: passt with its forwarded ports, `tap`: an interface name).
 * @param options The kick function of the host port.
 * @throws {VmonError} With one line: `Cannot open TAP device "tap0": busy (...)`,
 *   `Cannot start the user network (passt): ...`.
 */
export function openPacketBackend(
  spec: PacketBackendSpec,
  options: OpenPacketBackendOptions = {},
): NetBackend {
  const lib = loadNet().symbols;
  const err = new Uint8Array(ERR_LEN);
  let ptr: Deno.PointerValue;
  let description: string;
  if (spec.kind === "tap") {
    const name = spec.ifname ?? "";
    ptr = lib.vmon_net_open_tap(cString(name), err, ERR_LEN);
    if (!ptr) {
      throw new VmonError(
        `Cannot open TAP device${name ? ` "${name}"` : ""}: ${readCString(err)}`,
      );
    }
    description = `TAP device ${Deno.UnsafePointerView.getCString(lib.vmon_net_ifname(ptr)!)}`;
  } else {
    const passt = findPasst();
    if (passt === undefined) {
      throw new VmonError(
        "Cannot start the user network: passt is not installed (Debian package passt; vmon run installs it when run as root)",
      );
    }
    const args = passtArguments(spec.hostfwd);
    const packed = cString(args.join("\0"));
    const wait = options.wait ?? true;
    ptr = lib.vmon_net_open_passt(cString(passt), packed, args.length, wait ? 1 : 0, err, ERR_LEN);
    if (!ptr) throw new VmonError(passtStartError(readCString(err)));
    description = `passt (pid ${lib.vmon_net_pid(ptr)})`;
  }
  const backend = new NetBackend(lib, ptr!, description);
  if (lib.vmon_net_start(ptr, options.kick?.fn ?? null, options.kick?.arg ?? null) !== 0) {
    backend.close();
    throw new VmonError(`Cannot start the ${description}: no thread could be created`);
  }
  return backend;
}

/**
 * One open backend: the C endpoint as a {@linkcode HostPacketEndpoint}. Made by
 * {@linkcode openPacketBackend}.
 */
export class NetBackend implements HostPacketEndpoint {
  readonly description: string;
  #lib: NetLibrary["symbols"];
  #ptr: Deno.PointerValue;
  #counters: BigUint64Array;
  /** The counters when the endpoint was closed. */
  #final: number[] | undefined;
  #closed = false;
  #err = new Uint8Array(ERR_LEN);

  /**
   * @param lib The loaded library's symbols.
   * @param ptr The endpoint (owned by this object from now on: `close()` frees it).
   * @param description What the backend is, for messages.
   */
  constructor(lib: NetLibrary["symbols"], ptr: Deno.PointerValue, description: string) {
    this.#lib = lib;
    this.#ptr = ptr;
    this.description = description;
    // Owned by the endpoint, valid until close(); read only while open.
    this.#counters = new BigUint64Array(
      Deno.UnsafePointerView.getArrayBuffer(
        lib.vmon_net_counters(ptr)!,
        NET_COUNTER_NAMES.length * 8,
      ),
    );
  }

  #open(): Deno.PointerValue {
    if (this.#closed) throw new VmonError(`Cannot use the ${this.description}: it was closed`);
    return this.#ptr;
  }

  receive(into: Uint8Array): number {
    const n = this.#lib.vmon_net_recv(this.#open(), into, into.length);
    if (n < 0) {
      throw new VmonError(`Cannot receive a packet of ${-n} bytes into ${into.length} bytes`);
    }
    return n;
  }

  send(packet: Uint8Array): boolean {
    const r = this.#lib.vmon_net_send(this.#open(), packet, packet.length);
    if (r === -1) {
      throw new VmonError(
        `Cannot send a packet of ${packet.length} bytes: packets have ${
          PACKET_HEADER_SIZE + 14
        } to ${PACKET_HEADER_SIZE + MAX_FRAME_SIZE} bytes`,
      );
    }
    return r !== 0; // -2: the backend stopped; the packet is dropped like on a cut cable
  }

  flush(): void {
    this.#lib.vmon_net_flush(this.#open());
  }

  poll(): number {
    return this.#lib.vmon_net_poll(this.#open());
  }

  async wait(seen: number): Promise<number> {
    if (this.#closed) return seen;
    return await this.#lib.vmon_net_wait(this.#ptr, seen >>> 0, -1);
  }

  error(): string | undefined {
    if (this.#closed) return undefined;
    return this.#lib.vmon_net_error(this.#ptr, this.#err, ERR_LEN)
      ? readCString(this.#err)
      : undefined;
  }

  startError(): string | undefined {
    if (this.#closed || this.#lib.vmon_net_ready(this.#ptr)) return undefined;
    const why = this.error();
    return why === undefined ? undefined : passtStartError(why);
  }

  stats(): PacketBackendStats {
    const c: Record<string, number> = {};
    NET_COUNTER_NAMES.forEach((name, i) =>
      c[name] = this.#final?.[i] ?? Number(this.#counters[i]!)
    );
    return {
      rxFrames: c.rxFrames!,
      rxDropped: c.rxDropped!,
      txFrames: c.txFrames!,
      txDropped: c.txDropped!,
      kicks: c.kicks!,
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#final = [...this.#counters].map(Number);
    this.#closed = true;
    this.#lib.vmon_net_close(this.#ptr);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
