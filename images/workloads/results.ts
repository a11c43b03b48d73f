/**
 * The one parser of `/bench/run.sh` output. The script prints `vmon-bench: begin <workload>
 * <args>` before and `vmon-bench: end <workload> status <n>` after a workload; in between come
 * the workload's `result:` line(s), its `time: <workload> <ms> ms` line and anything else it
 * prints. Kernel messages (`[    1.234567] ...`) that interleave are dropped, and so are lines
 * outside the markers (the init's own). A harness compares `result:` lines across paging
 * strategies and reads `time:` separately.
 *
 * {@linkcode BenchCapture} reads console bytes as they arrive (any chunking) and records the host
 * time at which each marker line arrived, which gives a workload's wall-time window;
 * {@linkcode parseBenchOutput} cuts finished console text into runs.
 *
 * @example
 * ```ts
 * import { parseBenchOutput } from "./results.ts";
 *
 * const runs = parseBenchOutput([
 *   "vmon-bench: begin forkwait 20",
 *   "result: forkwait n=20 checksum=00000000000000ff",
 *   "time: forkwait 12.500 ms",
 *   "vmon-bench: end forkwait status 0",
 * ].join("\r\n"));
 * if (runs[0]?.checksum !== "00000000000000ff" || runs[0]?.timeMs !== 12.5) {
 *   throw new Error(JSON.stringify(runs));
 * }
 * ```
 *
 * @module
 */

/** Prefix of the line `/bench/run.sh` prints before a workload. */
export const BEGIN_MARKER = "vmon-bench: begin ";

/** Prefix of the line `/bench/run.sh` prints after a workload (then `<name> status <n>`). */
export const END_MARKER = "vmon-bench: end ";

/** One workload run cut out of console output. */
export interface BenchRun {
  /** The workload name (`forkwait`). */
  workload: string;
  /** The arguments as printed in the begin marker. */
  args: string[];
  /** The exit status from the end marker; undefined if the end marker is missing. */
  status?: number;
  /** The first `result:` line without the prefix (`forkwait n=20 checksum=...`), if printed. */
  result?: string;
  /** The checksum from the result line (hex digits), if present. */
  checksum?: string;
  /** The elapsed time from the first `time:` line, in milliseconds, if printed. */
  timeMs?: number;
  /** Every other line printed between the markers (messages, errors). */
  other: string[];
}

/** The first workload run of a console, as {@linkcode BenchCapture.finish} returns it. */
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
  /** The last console lines, markers and all (for messages when markers are missing). */
  readonly tail: string[];
}

/** One run as the console showed it: its markers, what came between them and when. */
interface Section {
  readonly begin: string;
  readonly workload: string;
  readonly args: string[];
  /** Lines between the markers, without kernel messages and empty lines. */
  readonly lines: string[];
  readonly beginAt: number;
  readonly beginChunk: number;
  end?: string;
  status?: number;
  endAt?: number;
  endChunk?: number;
}

const END = /^vmon-bench: end (\S+) status (-?\d+)$/;
const TIME = /^time:\s*(?:\S+\s+)?([0-9]+(?:\.[0-9]+)?)\s*ms\b/;
const KERNEL = /^\[\s*\d+\.\d+\]/;
const RESULT = "result:";
const TAIL_LINES = 20;

/**
 * Reads console output as it arrives and cuts it into workload runs.
 *
 * @example A harness that runs one workload per machine
 * ```ts
 * import { BenchCapture } from "./results.ts";
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
  #chunk = 0;
  #sections: Section[] = [];
  #current?: Section;
  #tail: string[] = [];

  /**
   * Starts an empty capture.
   *
   * @param options `now`: the clock in ms (default `performance.now`).
   */
  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? (() => performance.now());
  }

  /** Feeds console bytes (any chunking, UTF-8 split anywhere). */
  write(bytes: Uint8Array): void {
    this.writeText(this.#decoder.decode(bytes, { stream: true }));
  }

  /** Feeds console text, as one chunk. */
  writeText(text: string): void {
    this.#chunk++;
    const lines = (this.#partial + text).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#line(line);
  }

  #line(raw: string): void {
    const line = raw.replace(/\r/g, "").trimEnd();
    this.#tail.push(line);
    if (this.#tail.length > TAIL_LINES) this.#tail.shift();
    if (line.startsWith(BEGIN_MARKER)) {
      const words = line.slice(BEGIN_MARKER.length).trim().split(/\s+/);
      this.#current = {
        begin: line,
        workload: words[0] ?? "",
        args: words.slice(1),
        lines: [],
        beginAt: this.#now(),
        beginChunk: this.#chunk,
      };
      this.#sections.push(this.#current);
      return;
    }
    const current = this.#current;
    if (current === undefined) return;
    const end = END.exec(line);
    if (end && end[1] === current.workload) {
      current.end = line;
      current.status = Number(end[2]);
      current.endAt = this.#now();
      current.endChunk = this.#chunk;
      this.#current = undefined;
      return;
    }
    if (line === "" || KERNEL.test(line)) return;
    current.lines.push(line);
  }

  #flush(): void {
    const rest = this.#partial + this.#decoder.decode();
    this.#partial = "";
    if (rest !== "") this.#line(rest);
  }

  /** Flushes a last unterminated line and returns every run seen, in order. */
  runs(): BenchRun[] {
    this.#flush();
    return this.#sections.map((s) => {
      const run: BenchRun = { workload: s.workload, args: [...s.args], other: [] };
      if (s.status !== undefined) run.status = s.status;
      for (const line of s.lines) {
        if (run.result === undefined && line.startsWith(RESULT)) {
          run.result = line.slice(RESULT.length).trim();
          const checksum = /\bchecksum=([0-9a-f]+)\b/.exec(run.result)?.[1];
          if (checksum !== undefined) run.checksum = checksum;
          continue;
        }
        const time = TIME.exec(line);
        if (time && run.timeMs === undefined) {
          run.timeMs = Number(time[1]);
          continue;
        }
        run.other.push(line);
      }
      return run;
    });
  }

  /**
   * Flushes a last unterminated line and returns the first run's output (what a harness running
   * one workload per machine reads), with the console's last lines.
   */
  finish(): BenchOutput {
    this.#flush();
    const s = this.#sections[0];
    const tail = [...this.#tail];
    if (s === undefined) return { output: [], result: [], tail };
    const output = s.lines.filter((l) => !TIME.test(l));
    const results = output.filter((l) => l.startsWith(RESULT));
    const timeLine = s.lines.find((l) => TIME.test(l));
    const time = timeLine !== undefined ? TIME.exec(timeLine) : null;
    return {
      begin: s.begin,
      ...(s.end !== undefined ? { end: s.end } : {}),
      ...(s.status !== undefined ? { endStatus: s.status } : {}),
      output,
      result: results.length > 0 ? results : [...output],
      ...(timeLine !== undefined ? { timeLine } : {}),
      ...(time ? { guestMs: Number(time[1]) } : {}),
      // Markers that arrived in the same console chunk were buffered together on the way: the
      // time between them says nothing about the workload.
      ...(s.endAt !== undefined && s.endChunk !== s.beginChunk
        ? { windowMs: s.endAt - s.beginAt }
        : {}),
      tail,
    };
  }
}

/**
 * Cuts console output into workload runs. Lines outside begin/end markers are ignored, so the
 * init's own lines do not matter, and so are kernel messages (`[    5.25] ...`) inside them. Boot
 * with `quiet` to keep most kernel messages off the console.
 *
 * @param output Console text (`\n` or `\r\n` line ends).
 * @returns The runs in order; a run whose end marker is missing has `status` undefined.
 */
export function parseBenchOutput(output: string): BenchRun[] {
  const capture = new BenchCapture();
  capture.writeText(output);
  return capture.runs();
}
