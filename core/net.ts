/**
 * Packet endpoints on the machine worker: core's side of `DeviceHost.net`. An endpoint is opened
 * through the host port (which owns the C backends of `ffi/net`), and core calls the device's
 * event function on the vCPU thread:
 *
 * - between vCPU slices: the scheduler calls {@linkcode PacketEndpoints.poll} after every slice,
 *   and the backend's thread ends a running slice when packets arrive (the host port's kick), so
 *   packets reach the device within a few thousand guest instructions whatever the slice length;
 * - when every vCPU is halted and the scheduler sleeps: each endpoint has one pending
 *   `wait()` (a blocking C call on a thread of Deno's pool) that resolves when the backend has
 *   an event; core then wakes the scheduler, which polls.
 *
 * The vCPU thread never waits for another thread: receive and send copy packets from and to
 * rings in C memory without blocking.
 *
 * @module
 */

import type {
  HostPacketEndpoint,
  HostPortInstance,
  PacketBackendSpec,
  PacketEndpoint,
} from "./api/mod.ts";
import { VmonError } from "./errors.ts";

interface Entry {
  readonly host: HostPacketEndpoint;
  readonly owner: string;
  handler: (() => void) | undefined;
  /** The event number last handed to the handler. */
  handled: number;
  closed: boolean;
  /** The backend failed to start: the machine was failed, and its device hears nothing more. */
  failed: boolean;
  /** Resolves the wait loop's pause after a wake, once the scheduler has polled. */
  polled: (() => void) | undefined;
}

/** Options of {@linkcode PacketEndpoints}. */
export interface PacketEndpointsOptions {
  /** Wakes the scheduler (it polls right after). */
  readonly wake: () => void;
  /** Warnings (a device's event function that threw). */
  readonly warn: (message: string) => void;
  /** Fails the machine: a backend that was opened without waiting could not start. */
  readonly fail: (message: string) => void;
}

/** The packet endpoints of one machine. */
export class PacketEndpoints {
  #entries = new Set<Entry>();
  #wake: () => void;
  #warn: (message: string) => void;
  #fail: (message: string) => void;

  /** @param options How to wake the scheduler, where warnings go and how to fail the machine. */
  constructor(options: PacketEndpointsOptions) {
    this.#wake = options.wake;
    this.#warn = options.warn;
    this.#fail = options.fail;
  }

  /**
   * Opens an endpoint for device `owner` through the host port.
   *
   * @param hostport The machine's host port and its name.
   * @param spec The backend.
   * @param owner The device's name, for messages.
   * @throws {VmonError} When the host port has no packet backends or the backend fails to open.
   */
  open(
    hostport: { instance: HostPortInstance; name: string },
    spec: PacketBackendSpec,
    owner: string,
  ): PacketEndpoint {
    const open = hostport.instance.openPacketEndpoint?.bind(hostport.instance);
    if (open === undefined) {
      throw new VmonError(
        `Cannot open the ${spec.kind} network backend: host port "${hostport.name}" has no packet backends`,
      );
    }
    const host = open(spec);
    const entry: Entry = {
      host,
      owner,
      handler: undefined,
      handled: host.poll(),
      closed: false,
      failed: false,
      polled: undefined,
    };
    this.#entries.add(entry);
    void this.#waitLoop(entry);
    const close = () => this.#close(entry);
    return {
      description: host.description,
      receive: (into) => host.receive(into),
      send: (packet) => host.send(packet),
      flush: () => host.flush(),
      onEvent: (fn) => entry.handler = fn,
      error: () => host.error(),
      stats: () => host.stats(),
      close,
    };
  }

  /**
   * Hands every endpoint's new events to its device. The scheduler calls this between slices and
   * before it sleeps; it also arms each backend to end the next slice when packets arrive.
   */
  poll(): void {
    for (const e of this.#entries) {
      const seq = e.host.poll();
      // A backend that never started fails the machine; its device never hears of it. Asked at
      // every poll, not only on events: it may have stopped before the endpoint was registered.
      const failed = e.failed ? undefined : e.host.startError?.();
      if (failed !== undefined) {
        e.failed = true;
        this.#fail(failed);
      }
      if (e.failed) e.handled = seq;
      if (seq !== e.handled) {
        e.handled = seq;
        try {
          e.handler?.();
        } catch (err) {
          this.#warn(
            `${e.owner}: warning: packet event handler failed: ${
              err instanceof Error ? err.message : String(err)
            }`,
          );
        }
      }
      const p = e.polled;
      e.polled = undefined;
      p?.();
    }
  }

  /** Closes every endpoint (before the host port is disposed: the backends call its kick). */
  closeAll(): void {
    for (const e of [...this.#entries]) this.#close(e);
  }

  #close(e: Entry): void {
    if (e.closed) return;
    e.closed = true;
    this.#entries.delete(e);
    e.host.close();
    e.polled?.();
  }

  /** Wakes the scheduler on events that arrive while no slice runs (all vCPUs halted). */
  async #waitLoop(e: Entry): Promise<void> {
    while (!e.closed) {
      let seq: number;
      try {
        seq = await e.host.wait(e.handled);
      } catch (err) {
        this.#warn(`${e.owner}: warning: packet wait failed: ${(err as Error).message}`);
        return;
      }
      if (e.closed) return;
      if (seq === e.handled) continue;
      // Let the scheduler poll before waiting again (no spinning while it is paused or busy).
      await new Promise<void>((resolve) => {
        e.polled = resolve;
        this.#wake();
      });
    }
  }
}
