/**
 * The checksum (CRC-32, node:zlib) and compression (deflate, fflate) of snapshot files, loaded on
 * first need: importing them cost every machine worker about 20 ms of its start-up (measured
 * here), although most machines never take or restore a snapshot. Whoever
 * encodes or decodes a snapshot file awaits {@linkcode loadSnapshotCodec} first (the machine
 * worker does before a restore, before a snapshot request, and at build time when a trigger will
 * write a file); core/snapshot_format.ts then calls {@linkcode snapshotCodec} synchronously.
 *
 * @module
 */

/** The functions snapshot files need. */
export interface SnapshotCodec {
  /** CRC-32 of `data`, continuing from `value` (0 to start). */
  crc32(data: Uint8Array, value?: number): number;
  /** Deflates `data` (level 1: fast). */
  deflate(data: Uint8Array): Uint8Array;
  /** Inflates `data` into `out`, which has its exact inflated size; returns the filled `out`. */
  inflate(data: Uint8Array, out: Uint8Array): Uint8Array;
}

let loaded: SnapshotCodec | undefined;
let loading: Promise<SnapshotCodec> | undefined;

/**
 * Loads the codec once; later calls return at once.
 *
 * @returns The codec.
 *
 * @example
 * ```ts
 * import { loadSnapshotCodec } from "./snapshot_codec.ts";
 * const codec = await loadSnapshotCodec();
 * if (codec.crc32(new TextEncoder().encode("123456789")) >>> 0 !== 0xcbf43926) {
 *   throw new Error("bad CRC-32");
 * }
 * ```
 */
export function loadSnapshotCodec(): Promise<SnapshotCodec> {
  if (loaded !== undefined) return Promise.resolve(loaded);
  loading ??= Promise.all([import("node:zlib"), import("fflate")]).then(([zlib, fflate]) => {
    loaded = {
      crc32: (data, value) => zlib.crc32(data, value),
      deflate: (data) => fflate.deflateSync(data, { level: 1 }),
      inflate: (data, out) => fflate.inflateSync(data, { out }),
    };
    return loaded;
  });
  return loading;
}

/**
 * The loaded codec.
 *
 * @throws {Error} If {@linkcode loadSnapshotCodec} has not completed: a bug in the caller, which
 *   must await it before encoding or decoding a snapshot file.
 */
export function snapshotCodec(): SnapshotCodec {
  if (loaded === undefined) {
    throw new Error("The snapshot codec is not loaded: await loadSnapshotCodec() first");
  }
  return loaded;
}
