/**
 * The `virtio-rng` device plugin: an entropy source (virtio device id 4) that fills every
 * device-writable buffer the driver offers with bytes from `crypto.getRandomValues`.
 *
 * @module
 */

import {
  attachVirtioMmio,
  definePlugin,
  PLUGIN_API_VERSION,
  type VirtioActivation,
  type VirtioDevice,
  VirtioDeviceId,
} from "../../../mod.ts";

/** Most bytes given for one request (the driver asks again for more). */
export const MAX_REQUEST = 64 * 1024;

/** getRandomValues fills at most this many bytes per call. */
const CHUNK = 65536;

/** The virtio-rng device model. */
export class VirtioRng implements VirtioDevice {
  /** Device id 4. */
  readonly deviceId: number = VirtioDeviceId.RNG;
  /** No device features. */
  readonly features = 0n;
  /** One request queue. */
  readonly queueMaxSizes: readonly number[] = [64];
  /** No config space. */
  readonly configSize = 0;
  #activation: VirtioActivation | undefined;
  #bytes: { add(n: number): void } | undefined;

  /** @param options `counter`: counts bytes handed out. */
  constructor(options: { counter?: { add(n: number): void } } = {}) {
    this.#bytes = options.counter;
  }

  /** No config space: reads 0. */
  readConfig(): number {
    return 0;
  }

  /** No config space: ignored. */
  writeConfig(): void {}

  /** Remembers the queues. */
  activate(activation: VirtioActivation): void {
    this.#activation = activation;
  }

  /** Fills every available buffer with random bytes. */
  notify(index: number): void {
    const a = this.#activation;
    const q = a?.queues[index];
    if (!a || !q) return;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      const n = Math.min(chain.writableLength, MAX_REQUEST);
      const data = new Uint8Array(n);
      for (let at = 0; at < n; at += CHUNK) crypto.getRandomValues(data.subarray(at, at + CHUNK));
      const written = q.writeChain(chain, data);
      q.pushUsed(chain.head, written);
      this.#bytes?.add(written);
    }
    a.signalUsed(q);
  }

  /** Forgets the queues. */
  /** Snapshot state: none (every request is answered before the notifying exit returns). */
  saveState(): null {
    return null;
  }

  /** Nothing to load. */
  restoreState(): void {}

  reset(): void {
    this.#activation = undefined;
  }
}

export default definePlugin({
  name: "virtio-rng",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "virtio entropy source (host crypto.getRandomValues)",
  options: {
    base: { type: "integer", description: "MMIO address (default: allocated)", min: 0 },
    irq: { type: "integer", description: "Interrupt line (default: allocated)", min: 0 },
  },
  setup(host, options) {
    const device = new VirtioRng({
      counter: host.metrics.counter("bytes", "Random bytes given to the guest"),
    });
    return attachVirtioMmio(host, device, { base: options.base, irq: options.irq });
  },
});
