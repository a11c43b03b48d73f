/**
 * Packet endpoints: how a network device reaches the host's network. A device asks the
 * {@linkcode NetService} of its `DeviceHost` for an endpoint of a backend (`user`: passt, `tap`:
 * a TAP interface); core opens it through the host port (which owns the C backends of `ffi/net`,
 * since only host ports load C code) and calls the device back on the vCPU thread when packets
 * arrive, so the vCPU never waits for another thread (docs/DESIGN.md, "Network devices").
 *
 * A packet on an endpoint is the 12-byte `virtio_net_hdr` of virtio 1.x followed by the Ethernet
 * frame, in both directions: a TAP device reads and writes that header itself
 * (`IFF_VNET_HDR`), passt's packets get a zero header. Offloads (checksum, segmentation) would
 * travel in that header.
 *
 * @module
 */

/** Bytes of the `virtio_net_hdr` in front of every packet on an endpoint. */
export const PACKET_HEADER_SIZE = 12;

/** The largest Ethernet frame an endpoint carries (65535-byte MTU, header and a VLAN tag). */
export const MAX_FRAME_SIZE: number = 65535 + 18;

/** One host port forwarded to the guest by the `user` backend (QEMU's `hostfwd`). */
export interface HostForward {
  /** Only TCP is forwarded. */
  readonly protocol: "tcp";
  /** The host address to listen on (`127.0.0.1` when the rule names none). */
  readonly hostAddress: string;
  /** The host port. */
  readonly hostPort: number;
  /** The guest port connections go to. */
  readonly guestPort: number;
}

/**
 * Which host backend an endpoint uses: `user` starts passt (unprivileged; DHCP, the gateway
 * 10.0.2.2 reaches the host's loopback, `hostfwd` rules), `tap` attaches a TAP interface (an
 * existing one by name, or a new one).
 */
export type PacketBackendSpec =
  | { readonly kind: "user"; readonly hostfwd?: readonly HostForward[] }
  | { readonly kind: "tap"; readonly ifname?: string };

/** Counters of a backend, for `--stats`. */
export interface PacketBackendStats {
  /** Packets the backend delivered to the endpoint. */
  readonly rxFrames: number;
  /** Packets the backend refused before they reached the endpoint (runts, oversized). */
  readonly rxDropped: number;
  /** Packets written to the backend. */
  readonly txFrames: number;
  /** Packets the backend refused (the TAP interface was down, passt stopped). */
  readonly txDropped: number;
  /** Times the backend's thread ended a running vCPU slice to deliver packets. */
  readonly kicks: number;
}

/**
 * A host port's side of an endpoint (`HostPortInstance.openPacketEndpoint`): the C backend as
 * core drives it. Every method is called on the machine's thread, except that `wait` runs its
 * blocking part on another thread.
 */
export interface HostPacketEndpoint {
  /** What the backend is, for messages: `passt (pid 123)`, `TAP device tap0`. */
  readonly description: string;
  /**
   * Copies the oldest received packet (header + frame) into `into` and returns its length, 0
   * when there is none. `into` must hold {@linkcode PACKET_HEADER_SIZE} + {@linkcode MAX_FRAME_SIZE}
   * bytes.
   */
  receive(into: Uint8Array): number;
  /**
   * Queues one packet (header + frame). Returns false when the backend's queue is full: an event
   * follows when there is room. Throws for a length outside the Ethernet limits.
   */
  send(packet: Uint8Array): boolean;
  /** Writes queued packets now (after a batch of `send`s). */
  flush(): void;
  /**
   * The event number: it changes when packets arrived, when there is room to send again after a
   * refused `send`, and when the backend stopped. Also arms the backend to end the running vCPU
   * slice at its next event.
   */
  poll(): number;
  /** Resolves with the event number once it differs from `seen`, or when the endpoint closes. */
  wait(seen: number): Promise<number>;
  /** Why the backend stopped (passt exited, the TAP device went away), or undefined. */
  error(): string | undefined;
  /**
   * Optional, for a backend opened without waiting until it is ready (passt configures itself
   * while the machine boots): the one-line message when it stopped before it was ready
   * (`Cannot start the user network (passt): ...`), which fails the machine. Undefined while it
   * starts, once it is ready, and for backends that are ready when opened.
   */
  startError?(): string | undefined;
  /** Counters. */
  stats(): PacketBackendStats;
  /** Stops the backend (passt is stopped too). Idempotent. */
  close(): void;
}

/** A device's side of an endpoint (`DeviceHost.net.open`). */
export interface PacketEndpoint {
  /** What the backend is, for messages. */
  readonly description: string;
  /** As {@linkcode HostPacketEndpoint.receive}. */
  receive(into: Uint8Array): number;
  /** As {@linkcode HostPacketEndpoint.send}. */
  send(packet: Uint8Array): boolean;
  /** As {@linkcode HostPacketEndpoint.flush}. */
  flush(): void;
  /**
   * Sets the function core calls on the vCPU thread, between vCPU slices, after the endpoint's
   * events (packets arrived, room to send again, the backend stopped), however long the slices
   * are: the backend ends a running slice and wakes a sleeping machine.
   */
  onEvent(fn: () => void): void;
  /** Why the backend stopped, or undefined while it runs. */
  error(): string | undefined;
  /** Counters. */
  stats(): PacketBackendStats;
  /** Closes the endpoint (also done when the machine ends). Idempotent. */
  close(): void;
}

/** Packet endpoints for devices (`DeviceHost.net`). */
export interface NetService {
  /**
   * Opens an endpoint on a host backend.
   *
   * @throws {VmonError} With one line naming the backend and why, such as
   *   `Cannot open TAP device "tap0": busy (another process has it open)`.
   */
  open(spec: PacketBackendSpec): PacketEndpoint;
}
