/**
 * The virtio device model contract (like Firecracker's `VirtioDevice`): a device declares its
 * id, features, queue sizes and config space; the transport negotiates with the driver, builds
 * the queues and calls `activate` once the driver is ready, then `notify` for every queue
 * notification, and `reset` when the driver resets the device.
 *
 * @module
 */

import type { GuestMemoryAccess, SnapshotValue } from "../api/mod.ts";
import type { Virtqueue } from "./queue.ts";

/** Device status bits (virtio 1.2 section 2.1). */
export const VirtioStatus = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Transport-level feature bits (virtio 1.2 section 6), as bigints. */
export const VirtioFeature = {
  /** Indirect descriptors. */
  INDIRECT_DESC: 1n << 28n,
  /** used_event / avail_event notification suppression. */
  EVENT_IDX: 1n << 29n,
  /** A virtio 1.x (non-legacy) device: required. */
  VERSION_1: 1n << 32n,
} as const;

/** Device ids (virtio 1.2 section 5). */
export const VirtioDeviceId = { NET: 1, BLOCK: 2, CONSOLE: 3, RNG: 4 } as const;

/** Interrupt status bits. */
export const VirtioInterrupt = { USED_BUFFER: 1, CONFIG_CHANGE: 2 } as const;

/** What a device gets when the driver sets DRIVER_OK. */
export interface VirtioActivation {
  /** Guest memory (buffers of chains are inside it, checked). */
  readonly memory: GuestMemoryAccess;
  /** The queues, by index; undefined for a queue the driver did not enable. */
  readonly queues: readonly (Virtqueue | undefined)[];
  /** The negotiated features. */
  readonly features: bigint;
  /** Interrupts the driver for `queue`'s new used entries if it wants one. */
  signalUsed(queue: Virtqueue): void;
  /** Bumps the config generation and sends a configuration change interrupt. */
  configChanged(): void;
  /**
   * Runs `fn` for an event the device started itself (host input, a timer): errors set
   * DEVICE_NEEDS_RESET instead of escaping. Does nothing after a failure or a reset.
   */
  guard(fn: () => void): void;
}

/** A virtio device model, independent of the transport. */
export interface VirtioDevice {
  /** The virtio device id ({@linkcode VirtioDeviceId}). */
  readonly deviceId: number;
  /** Device-specific feature bits offered (the transport adds VERSION_1 and ring features). */
  readonly features: bigint;
  /** Maximum size of each queue (powers of 2); the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Bytes of device configuration space. */
  readonly configSize: number;
  /** Reads `size` bytes of config space at `offset` (inside `configSize`), little-endian. */
  readConfig(offset: number, size: number): number;
  /** Writes config space (most devices ignore it). */
  writeConfig(offset: number, size: number, value: number): void;
  /** The driver is ready: start using the queues. */
  activate(activation: VirtioActivation): void;
  /** The driver notified queue `queue` (only after activation). Errors mark the device broken. */
  notify(queue: number): void;
  /** The driver reset the device: forget the activation and return to the initial state. */
  reset(): void;
  /** Releases host resources (files). */
  dispose?(): void;
  /**
   * Optional: the device model's own state for a snapshot (the transport saves the registers
   * and ring positions). A device without it cannot be snapshotted through
   * `attachVirtioMmio`: give stateless devices one that returns `null`.
   */
  saveState?(): SnapshotValue;
  /**
   * Optional: loads what `saveState` returned, before `activate` runs again on the restored
   * queues. Throws a `VmonError` naming the device when the state does not fit.
   */
  restoreState?(state: SnapshotValue): void;
  /** Version of the layout `saveState` returns (default 1). */
  readonly stateVersion?: number;
}
