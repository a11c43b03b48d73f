/**
 * The RISC-V platform-level interrupt controller (PLIC), as in the RISC-V PLIC specification and
 * SiFive's `sifive,plic-1.0.0`: per-source priorities (3 bits), pending bits, per-context enable
 * bits, per-context thresholds and claim/complete. Contexts come two per hart: `2*h` is hart
 * `h`'s M-mode context, `2*h+1` its S-mode context. The output of each context is reported
 * through a callback when it changes; the platform wires S contexts to the hart's SEIP.
 *
 * Register map (offsets inside the 0x600000-byte window, 32-bit accesses):
 * - `0x000000 + 4*s`: priority of source `s` (source 0 does not exist and reads 0);
 * - `0x001000 + 4*w`: pending bits of sources `32*w .. 32*w+31` (read-only);
 * - `0x002000 + 0x80*c + 4*w`: enable bits of context `c`;
 * - `0x200000 + 0x1000*c`: priority threshold of context `c`;
 * - `0x200004 + 0x1000*c`: claim (read) / complete (write) of context `c`.
 *
 * @example Raise a source and claim it
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { Plic } from "./plic.ts";
 *
 * const outputs: string[] = [];
 * const plic = new Plic(1, { sources: 31, onOutput: (c, level) => outputs.push(`${c}:${level}`) });
 * plic.write(0x4 * 5, 4, 1); // priority of source 5
 * plic.write(0x2000 + 0x80 * 1, 4, 1 << 5); // enable source 5 for context 1 (hart 0, S)
 * plic.setLevel(5, true);
 * strictEqual(outputs.at(-1), "1:true");
 * strictEqual(plic.read(0x200004 + 0x1000 * 1, 4), 5); // claim
 * strictEqual(outputs.at(-1), "1:false");
 * ```
 *
 * @module
 */

import { type AccessSize, type RangeHandler, VmonError } from "../../../mod.ts";

/** Size of the PLIC's MMIO window. */
export const PLIC_SIZE = 0x600000;
/** Largest supported priority (3 priority bits). */
export const PLIC_MAX_PRIORITY = 7;

const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x200000;
const CONTEXT_STRIDE = 0x1000;

/** Options for {@linkcode Plic}. */
export interface PlicOptions {
  /** Number of interrupt sources (ids 1..sources), at most 1023. */
  readonly sources: number;
  /** Called when a context's output (interrupt request to its hart) changes. */
  readonly onOutput: (context: number, level: boolean) => void;
  /** Called once per kind of malformed access (non-32-bit width, reserved offset). */
  readonly onBadAccess?: (message: string) => void;
}

/** The PLIC model. It implements {@linkcode RangeHandler} for its MMIO window. */
export class Plic implements RangeHandler {
  readonly #sources: number;
  readonly #contexts: number;
  readonly #words: number;
  readonly #priority: Uint8Array;
  readonly #pending: Uint32Array;
  /** Sources claimed and not yet completed: the gateway does not forward them. */
  readonly #inFlight: Uint32Array;
  /** Current line levels (level-triggered sources). */
  readonly #level: Uint8Array;
  /** Edges seen while in flight, forwarded again at completion. */
  readonly #latched: Uint8Array;
  readonly #enable: Uint32Array;
  readonly #threshold: Uint8Array;
  readonly #output: Uint8Array;
  readonly #onOutput: (context: number, level: boolean) => void;
  readonly #onBadAccess: (message: string) => void;
  readonly #reported = new Set<string>();
  #claims = 0;

  /**
   * @param harts Number of harts (two contexts each).
   * @param options Source count and the output callback.
   */
  constructor(harts: number, options: PlicOptions) {
    if (!Number.isInteger(options.sources) || options.sources < 1 || options.sources > 1023) {
      throw new VmonError(`Invalid PLIC source count ${options.sources}: must be 1..1023`);
    }
    if (!Number.isInteger(harts) || harts < 1 || harts > 512) {
      throw new VmonError(`Invalid PLIC hart count ${harts}: must be 1..512`);
    }
    this.#sources = options.sources;
    this.#contexts = harts * 2;
    this.#words = Math.ceil((options.sources + 1) / 32);
    this.#priority = new Uint8Array(options.sources + 1);
    this.#pending = new Uint32Array(this.#words);
    this.#inFlight = new Uint32Array(this.#words);
    this.#level = new Uint8Array(options.sources + 1);
    this.#latched = new Uint8Array(options.sources + 1);
    this.#enable = new Uint32Array(this.#words * this.#contexts);
    this.#threshold = new Uint8Array(this.#contexts);
    this.#output = new Uint8Array(this.#contexts);
    this.#onOutput = options.onOutput;
    this.#onBadAccess = options.onBadAccess ?? (() => {});
  }

  /** Number of interrupt sources. */
  get sources(): number {
    return this.#sources;
  }

  /** Number of contexts (two per hart). */
  get contexts(): number {
    return this.#contexts;
  }

  /** Successful claims so far. */
  get claims(): number {
    return this.#claims;
  }

  /** The register state for a snapshot (the callbacks are not part of it). */
  saveState(): Record<string, Uint8Array | number> {
    const bytes = (a: Uint8Array | Uint32Array) =>
      new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
    return {
      priority: bytes(this.#priority),
      pending: bytes(this.#pending),
      inFlight: bytes(this.#inFlight),
      level: bytes(this.#level),
      latched: bytes(this.#latched),
      enable: bytes(this.#enable),
      threshold: bytes(this.#threshold),
      output: bytes(this.#output),
      claims: this.#claims,
    };
  }

  /**
   * Loads what {@linkcode Plic.saveState} returned (a PLIC of the same shape). The outputs are
   * loaded as they were, without calling `onOutput`: the harts' pending bits are restored with
   * the harts. Throws when the state does not fit this PLIC.
   */
  restoreState(state: Readonly<Record<string, unknown>>): void {
    const arrays: [string, Uint8Array | Uint32Array][] = [
      ["priority", this.#priority],
      ["pending", this.#pending],
      ["inFlight", this.#inFlight],
      ["level", this.#level],
      ["latched", this.#latched],
      ["enable", this.#enable],
      ["threshold", this.#threshold],
      ["output", this.#output],
    ];
    for (const [key, dst] of arrays) {
      const src = state[key];
      if (!(src instanceof Uint8Array) || src.length !== dst.byteLength) {
        throw new VmonError(`Cannot restore the PLIC: "${key}" does not fit this PLIC`);
      }
    }
    const claims = state.claims;
    if (typeof claims !== "number" || !Number.isSafeInteger(claims) || claims < 0) {
      throw new VmonError(`Cannot restore the PLIC: "claims" is malformed`);
    }
    for (const [key, dst] of arrays) {
      new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(state[key] as Uint8Array);
    }
    this.#claims = claims;
  }

  /** The current output level of `context`. */
  output(context: number): boolean {
    return this.#output[context] === 1;
  }

  /**
   * True when a source for which `usable(id)` holds can still raise `context`'s output: it is
   * enabled for the context, its priority is above the context's threshold, and it is not
   * claimed and waiting for its completion (which only the hart can write). For the stuck-guest
   * check: a context for which this is false cannot be woken by any device.
   */
  canInterrupt(context: number, usable: (id: number) => boolean): boolean {
    if (!Number.isInteger(context) || context < 0 || context >= this.#contexts) return false;
    const threshold = this.#threshold[context]!;
    for (let w = 0; w < this.#words; w++) {
      let bits = (this.#enable[context * this.#words + w]! & ~this.#inFlight[w]!) >>> 0;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits = (bits & (bits - 1)) >>> 0;
        const id = w * 32 + b;
        if (this.#priority[id]! > threshold && usable(id)) return true;
      }
    }
    return false;
  }

  /** True if source `id` is pending. */
  isPending(id: number): boolean {
    return this.#bit(this.#pending, id);
  }

  /** Sets the level of a level-triggered source's line. */
  setLevel(id: number, level: boolean): void {
    this.#checkSource(id);
    this.#level[id] = level ? 1 : 0;
    if (level && !this.#bit(this.#inFlight, id)) this.#setBit(this.#pending, id, true);
    // A level source that drops before being claimed is no longer requesting.
    if (!level && !this.#bit(this.#inFlight, id)) this.#setBit(this.#pending, id, false);
    this.#update();
  }

  /** Signals an edge on source `id` (edge-triggered devices). */
  pulse(id: number): void {
    this.#checkSource(id);
    if (this.#bit(this.#inFlight, id)) this.#latched[id] = 1;
    else this.#setBit(this.#pending, id, true);
    this.#update();
  }

  /** Reads a register; accesses other than 32 bits wide read 0. */
  read(offset: number, size: AccessSize, _vcpu?: number): number {
    if (size !== 4 || (offset & 3) !== 0) {
      this.#bad("non-32-bit read", `PLIC ignores a ${size}-byte read at offset ${offset}`);
      return 0;
    }
    if (offset < PENDING_BASE) {
      const id = offset >> 2;
      return id <= this.#sources ? this.#priority[id]! : 0;
    }
    if (offset < ENABLE_BASE) {
      const w = (offset - PENDING_BASE) >> 2;
      return w < this.#words ? this.#pending[w]! : 0;
    }
    if (offset < CONTEXT_BASE) {
      const c = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      if (c < this.#contexts && w < this.#words) return this.#enable[c * this.#words + w]!;
      return 0;
    }
    const c = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
    const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (c >= this.#contexts) return 0;
    if (reg === 0) return this.#threshold[c]!;
    if (reg === 4) return this.claim(c);
    return 0;
  }

  /** Writes a register; accesses other than 32 bits wide are ignored. */
  write(offset: number, size: AccessSize, value: number, _vcpu?: number): void {
    if (size !== 4 || (offset & 3) !== 0) {
      this.#bad("non-32-bit write", `PLIC ignores a ${size}-byte write at offset ${offset}`);
      return;
    }
    value >>>= 0;
    if (offset < PENDING_BASE) {
      const id = offset >> 2;
      if (id >= 1 && id <= this.#sources) {
        this.#priority[id] = Math.min(value, PLIC_MAX_PRIORITY) & PLIC_MAX_PRIORITY;
        this.#update();
      }
      return;
    }
    if (offset < ENABLE_BASE) return; // pending bits are read-only
    if (offset < CONTEXT_BASE) {
      const c = Math.floor((offset - ENABLE_BASE) / ENABLE_STRIDE);
      const w = ((offset - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
      if (c < this.#contexts && w < this.#words) {
        let mask = 0xffffffff;
        if (w === 0) mask &= ~1; // source 0 does not exist
        const top = this.#sources - w * 32; // highest valid bit index in this word
        if (top < 31) mask &= (2 ** (top + 1) - 1) | 0;
        this.#enable[c * this.#words + w] = (value & mask) >>> 0;
        this.#update();
      }
      return;
    }
    const c = Math.floor((offset - CONTEXT_BASE) / CONTEXT_STRIDE);
    const reg = (offset - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (c >= this.#contexts) return;
    if (reg === 0) {
      this.#threshold[c] = Math.min(value, PLIC_MAX_PRIORITY);
      this.#update();
    } else if (reg === 4) {
      this.complete(c, value);
    }
  }

  /**
   * Claims the highest-priority pending interrupt enabled for `context` above its threshold
   * (ties go to the lowest id). Returns its id, or 0 if there is none.
   */
  claim(context: number): number {
    const id = this.#best(context);
    if (id !== 0) {
      this.#setBit(this.#pending, id, false);
      this.#setBit(this.#inFlight, id, true);
      this.#claims++;
      this.#update();
    }
    return id;
  }

  /**
   * Completes interrupt `id` for `context`. Ignored (as the specification says) when `id` is not
   * a source enabled for that context.
   */
  complete(context: number, id: number): void {
    if (!Number.isInteger(id) || id < 1 || id > this.#sources) return;
    if (!this.#enabled(context, id)) return;
    if (!this.#bit(this.#inFlight, id)) return;
    this.#setBit(this.#inFlight, id, false);
    if (this.#level[id] === 1 || this.#latched[id] === 1) {
      this.#latched[id] = 0;
      this.#setBit(this.#pending, id, true);
    }
    this.#update();
  }

  #checkSource(id: number): void {
    if (!Number.isInteger(id) || id < 1 || id > this.#sources) {
      throw new VmonError(`Invalid PLIC source ${id}: must be 1..${this.#sources}`);
    }
  }

  #bit(arr: Uint32Array, id: number): boolean {
    return ((arr[id >> 5]! >>> (id & 31)) & 1) === 1;
  }

  #setBit(arr: Uint32Array, id: number, on: boolean): void {
    const w = id >> 5;
    const m = (1 << (id & 31)) >>> 0;
    arr[w] = on ? (arr[w]! | m) >>> 0 : (arr[w]! & ~m) >>> 0;
  }

  #enabled(context: number, id: number): boolean {
    return ((this.#enable[context * this.#words + (id >> 5)]! >>> (id & 31)) & 1) === 1;
  }

  #best(context: number): number {
    if (context < 0 || context >= this.#contexts) return 0;
    const threshold = this.#threshold[context]!;
    let best = 0;
    let bestPriority = threshold;
    for (let w = 0; w < this.#words; w++) {
      let bits = (this.#pending[w]! & this.#enable[context * this.#words + w]!) >>> 0;
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        bits = (bits & (bits - 1)) >>> 0;
        const id = w * 32 + b;
        const p = this.#priority[id]!;
        if (p > bestPriority) {
          best = id;
          bestPriority = p;
        }
      }
    }
    return best;
  }

  #update(): void {
    for (let c = 0; c < this.#contexts; c++) {
      const level = this.#best(c) !== 0 ? 1 : 0;
      if (level !== this.#output[c]) {
        this.#output[c] = level;
        this.#onOutput(c, level === 1);
      }
    }
  }

  #bad(kind: string, message: string): void {
    if (this.#reported.has(kind)) return;
    this.#reported.add(kind);
    this.#onBadAccess(message);
  }
}
