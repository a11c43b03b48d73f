/**
 * Cuts a workload's output out of the guest console: `/bench/run.sh` prints
 * `vmon-bench: begin <name> <args>` before and `vmon-bench: end <name> status <N>` after the
 * workload; in between come the result line(s) and a `time: <name> <ms> ms` line. Kernel
 * messages (`[    1.234567] ...`) that interleave are dropped. The host time at which each marker
 * line arrives is recorded, which gives the workload's wall-time window (only when the markers
 * arrived in different console chunks: output buffered on its way says nothing about time).
 *
 * @module
 */

/** What the capture saw. */
export interface BenchOutput {
  /** The begin marker line, if seen. */
  readonly begin?: string;
  /** The end marker line, if seen. */
  readonly end?: string;
  /** The status in the end marker. */
  readonly endStatus?: number;
  /** Lines between the markers without `time:` lines and kernel messages. */
  readonly output: string[];
  /** The `result:` lines among them, or all of `output` when there are none. */
  readonly result: string[];
  /** The `time:` line. */
  readonly timeLine?: string;
  /** Its milliseconds. */
  readonly guestMs?: number;
  /** Host ms between the markers' arrival (absent when both arrived in one chunk). */
  readonly windowMs?: number;
  /** The last console lines (for messages when markers are missing). */
  readonly tail: string[];
}

const BEGIN = /^vmon-bench: begin (\S+)/;
const END = /^vmon-bench: end (\S+) status (-?\d+)/;
const TIME = /^time:\s*(?:\S+\s+)?([0-9]+(?:\.[0-9]+)?)\s*ms\b/;
const KERNEL = /^\[\s*\d+\.\d+\]/;
const TAIL_LINES = 20;

/**
 * Collects console bytes and splits out one workload's output.
 *
 * @example
 * ```ts
 * import { BenchCapture } from "./capture.ts";
 *
 * let t = 0;
 * const cap = new BenchCapture({ now: () => t += 10 });
 * const text = "boot\nvmon-bench: begin forkwait 2\nresult: forkwait n=2 checksum=1\n" +
 *   "time: forkwait 3.5 ms\nvmon-bench: end forkwait status 0\n";
 * for (const line of text.split(/(?<=\n)/)) cap.write(new TextEncoder().encode(line));
 * const out = cap.finish();
 * if (out.result[0] !== "result: forkwait n=2 checksum=1" || out.guestMs !== 3.5) throw new Error();
 * if (out.endStatus !== 0 || out.windowMs !== 10) throw new Error(String(out.windowMs));
 * ```
 */
export class BenchCapture {
  #decoder = new TextDecoder();
  #partial = "";
  #now: () => number;
  #state: "before" | "inside" | "after" = "before";
  #begin?: string;
  #beginAt?: number;
  #end?: string;
  #endAt?: number;
  #endStatus?: number;
  #output: string[] = [];
  #chunk = 0;
  #beginChunk = -1;
  #endChunk = -1;
  #timeLine?: string;
  #tail: string[] = [];

  /** @param options `now`: the clock in ms (default `performance.now`). */
  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.now());
  }

  /** Feeds console bytes (any chunking). */
  write(bytes: Uint8Array): void {
    this.#chunk++;
    const text = this.#partial + this.#decoder.decode(bytes, { stream: true });
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
  }

  #line(raw: string): void {
    const line = raw.replace(/\r/g, "").trimEnd();
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    if (this.#state === "before") {
      if (BEGIN.test(line)) {
        this.#state = "inside";
        this.#begin = line;
        this.#beginAt = this.#now();
        this.#beginChunk = this.#chunk;
      }
      return;
    }
    if (this.#state !== "inside") return;
    const end = END.exec(line);
    if (end) {
      this.#state = "after";
      this.#end = line;
      this.#endAt = this.#now();
      this.#endChunk = this.#chunk;
      this.#endStatus = Number(end[2]);
      return;
    }
    if (line === "" || KERNEL.test(line)) return;
    if (TIME.test(line)) {
      this.#timeLine ??= line;
      return;
    }
    this.#output.push(line);
  }

  /** Flushes a last unterminated line and returns what was seen. */
  finish(): BenchOutput {
    const rest = this.#partial + this.#decoder.decode();
    this.#partial = "";
    if (rest !== "") this.#line(rest);
    const results = this.#output.filter((l) => l.startsWith("result:"));
    const time = this.#timeLine !== undefined ? TIME.exec(this.#timeLine) : null;
    return {
      ...(this.#begin !== undefined ? { begin: this.#begin } : {}),
      ...(this.#end !== undefined ? { end: this.#end } : {}),
      ...(this.#endStatus !== undefined ? { endStatus: this.#endStatus } : {}),
      output: [...this.#output],
      result: results.length > 0 ? results : [...this.#output],
      ...(this.#timeLine !== undefined ? { timeLine: this.#timeLine } : {}),
      ...(time ? { guestMs: Number(time[1]) } : {}),
      // Markers that arrived in the same console chunk were buffered together on the way: the
      // time between them says nothing about the workload.
      ...(this.#beginAt !== undefined && this.#endAt !== undefined &&
          this.#beginChunk !== this.#endChunk
        ? { windowMs: this.#endAt - this.#beginAt }
        : {}),
      tail: [...this.#tail],
    };
  }
}
