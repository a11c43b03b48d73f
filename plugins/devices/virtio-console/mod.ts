/**
 * The `virtio-console` device plugin: a virtio console (device id 3) with one port (port 0,
 * `/dev/hvc0` in Linux): the transmit queue goes to the machine's console, console input goes to
 * the receive queue. Offers VIRTIO_CONSOLE_F_EMERG_WRITE (a byte written to the `emerg_wr` config
 * field is printed at once).
 *
 * @module
 */

import {
  attachVirtioMmio,
  type ConsolePort,
  type Counter,
  definePlugin,
  PLUGIN_API_VERSION,
  type SnapshotValue,
  type VirtioActivation,
  type VirtioDevice,
  VirtioDeviceId,
  VmonError,
} from "../../../mod.ts";

/** Console feature bits. */
export const ConsoleFeature = {
  SIZE: 1n << 0n,
  MULTIPORT: 1n << 1n,
  EMERG_WRITE: 1n << 2n,
} as const;

/** Queue indices of port 0. */
export const ConsoleQueue = { RX: 0, TX: 1 } as const;

/** Host input held while the driver has no receive buffers (beyond it input is dropped). */
export const INPUT_LIMIT = 64 * 1024;

/** Config space: cols u16, rows u16, max_nr_ports u32, emerg_wr u32. */
const CONFIG_SIZE = 12;
const EMERG_WR = 8;

/** The virtio console device model (single port). */
export class VirtioConsole implements VirtioDevice {
  /** Device id 3. */
  readonly deviceId: number = VirtioDeviceId.CONSOLE;
  /** EMERG_WRITE only (no MULTIPORT, no SIZE). */
  readonly features: bigint = ConsoleFeature.EMERG_WRITE;
  /** receiveq0 and transmitq0. */
  readonly queueMaxSizes: readonly number[] = [64, 64];
  /** cols, rows, max_nr_ports, emerg_wr. */
  readonly configSize = CONFIG_SIZE;
  #out: ConsolePort;
  #activation: VirtioActivation | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #counters: { tx?: Counter; rx?: Counter; dropped?: Counter };

  /**
   * @param out Where guest output goes.
   * @param options Counters for transmitted, received and dropped bytes.
   */
  constructor(
    out: ConsolePort,
    options: { tx?: Counter; rx?: Counter; dropped?: Counter } = {},
  ) {
    this.#out = out;
    this.#counters = options;
  }

  /** Bytes of input waiting for receive buffers. */
  get pendingInput(): number {
    return this.#pendingBytes;
  }

  /** Reads config space: 80x25 is not claimed (no SIZE feature), one port. */
  readConfig(offset: number, size: number): number {
    const cfg = new DataView(new ArrayBuffer(CONFIG_SIZE));
    cfg.setUint32(4, 1, true); // max_nr_ports (only meaningful with MULTIPORT)
    if (size === 1) return cfg.getUint8(offset);
    if (size === 2) return cfg.getUint16(offset, true);
    return cfg.getUint32(offset, true);
  }

  /** A write to `emerg_wr` prints one character at once. */
  writeConfig(offset: number, _size: number, value: number): void {
    if (offset !== EMERG_WR) return;
    this.#out.write(new Uint8Array([value & 0xff]));
    this.#counters.tx?.add();
  }

  /** Starts using the queues; input that arrived before is delivered now. */
  activate(activation: VirtioActivation): void {
    this.#activation = activation;
    this.#deliver();
  }

  /** TX: sends every chain's bytes to the console; RX: new buffers for pending input. */
  notify(index: number): void {
    if (index === ConsoleQueue.TX) this.#transmit();
    else if (index === ConsoleQueue.RX) this.#deliver();
  }

  /** Forgets the queues (pending input stays for the next activation). */
  reset(): void {
    this.#activation = undefined;
  }

  /** Snapshot state: console input not yet delivered to the guest. */
  saveState(): SnapshotValue {
    return { pending: this.#take(this.#pendingBytes, true) };
  }

  /** Loads what {@linkcode VirtioConsole.saveState} returned. */
  restoreState(state: SnapshotValue): void {
    const st = state as { pending?: unknown } | null;
    if (
      st === null || typeof st !== "object" || !(st.pending instanceof Uint8Array) ||
      st.pending.length > INPUT_LIMIT
    ) {
      throw new VmonError("Cannot restore virtio-console: the saved state is malformed");
    }
    this.#pending = st.pending.length > 0 ? [st.pending.slice()] : [];
    this.#pendingBytes = st.pending.length;
  }

  /** Host input: queued, then written into receive buffers as the driver provides them. */
  receive(bytes: Uint8Array): void {
    const room = INPUT_LIMIT - this.#pendingBytes;
    if (bytes.length > room) this.#counters.dropped?.add(bytes.length - Math.max(room, 0));
    const take = bytes.subarray(0, Math.max(room, 0));
    if (take.length === 0) return;
    this.#pending.push(take.slice());
    this.#pendingBytes += take.length;
    const a = this.#activation;
    if (a) a.guard(() => this.#deliver());
  }

  #transmit(): void {
    const a = this.#activation;
    const q = a?.queues[ConsoleQueue.TX];
    if (!a || !q) return;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const data = q.readChain(chain);
      parts.push(data);
      total += data.length;
      q.pushUsed(chain.head, 0);
    }
    if (total > 0) {
      const out = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      this.#out.write(out);
      this.#counters.tx?.add(total);
    }
    a.signalUsed(q);
  }

  #deliver(): void {
    const a = this.#activation;
    const q = a?.queues[ConsoleQueue.RX];
    if (!a || !q || this.#pendingBytes === 0) return;
    let used = false;
    while (this.#pendingBytes > 0) {
      const chain = q.pop();
      if (!chain) break;
      const data = this.#take(chain.writableLength);
      const n = q.writeChain(chain, data);
      q.pushUsed(chain.head, n);
      this.#counters.rx?.add(n);
      used = true;
    }
    if (used) a.signalUsed(q);
  }

  /** Removes up to `max` bytes of pending input (`peek`: copies them, leaving them pending). */
  #take(max: number, peek = false): Uint8Array {
    if (peek) {
      const out = new Uint8Array(Math.min(max, this.#pendingBytes));
      let at = 0;
      for (const p of this.#pending) {
        if (at >= out.length) break;
        const part = p.subarray(0, out.length - at);
        out.set(part, at);
        at += part.length;
      }
      return out;
    }
    const n = Math.min(max, this.#pendingBytes);
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const head = this.#pending[0]!;
      const k = Math.min(head.length, n - at);
      out.set(head.subarray(0, k), at);
      at += k;
      if (k === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(k);
    }
    this.#pendingBytes -= n;
    return out;
  }
}

export default definePlugin({
  name: "virtio-console",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "virtio console (hvc0): guest output to the console, console input to the guest",
  options: {
    input: {
      type: "boolean",
      description: "Take console input (keyboard) into the receive queue",
      default: true,
    },
    base: { type: "integer", description: "MMIO address (default: allocated)", min: 0 },
    irq: { type: "integer", description: "Interrupt line (default: allocated)", min: 0 },
  },
  setup(host, options) {
    const m = host.metrics;
    const device = new VirtioConsole(host.console, {
      tx: m.counter("tx_bytes", "Bytes the guest wrote"),
      rx: m.counter("rx_bytes", "Bytes delivered to the guest"),
      dropped: m.counter("input_dropped", "Console input dropped (no receive buffers)"),
    });
    const instance = attachVirtioMmio(host, device, { base: options.base, irq: options.irq });
    if (options.input && !host.console.onInput((bytes) => device.receive(bytes))) {
      host.log.info("console input goes to another device");
    }
    return instance;
  },
});
