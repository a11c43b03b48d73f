/**
 * Parses the console output of `/bench/run.sh` runs: the marker lines
 * `vmon-bench: begin <workload> <args>` and `vmon-bench: end <workload> status <n>`, and the
 * `result:` and `time:` lines between them. A harness compares `result` lines across paging
 * strategies and reads `time:` separately.
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
  /** The `result:` line without the prefix (`forkwait n=20 checksum=...`), if printed. */
  result?: string;
  /** The checksum from the result line (hex digits), if present. */
  checksum?: string;
  /** The elapsed time from the `time:` line, in milliseconds, if printed. */
  timeMs?: number;
  /** Every other line printed between the markers (messages, errors). */
  other: string[];
}

/**
 * Cuts console output into workload runs. Lines outside begin/end markers are ignored, so
 * the init's own lines do not matter, and so are kernel messages (`[    5.25] ...`) inside
 * them. Boot with `quiet` to keep most kernel messages off the console.
 *
 * @param output Console text (`\n` or `\r\n` line ends).
 * @returns The runs in order; a run whose end marker is missing has `status` undefined.
 */
export function parseBenchOutput(output: string): BenchRun[] {
  const runs: BenchRun[] = [];
  let current: BenchRun | undefined;
  for (const raw of output.split("\n")) {
    const line = raw.replace(/\r+$/, "");
    if (line.startsWith(BEGIN_MARKER)) {
      const words = line.slice(BEGIN_MARKER.length).trim().split(/\s+/);
      current = { workload: words[0] ?? "", args: words.slice(1), other: [] };
      runs.push(current);
      continue;
    }
    if (current === undefined) continue;
    const end = /^vmon-bench: end (\S+) status (\d+)$/.exec(line);
    if (end && end[1] === current.workload) {
      current.status = Number(end[2]);
      current = undefined;
      continue;
    }
    if (line.startsWith("result: ") && current.result === undefined) {
      current.result = line.slice("result: ".length).trim();
      current.checksum = /\bchecksum=([0-9a-f]+)\b/.exec(current.result)?.[1];
      continue;
    }
    const time = /^time: \S+ (\d+(?:\.\d+)?) ms$/.exec(line);
    if (time && current.timeMs === undefined) {
      current.timeMs = Number(time[1]);
      continue;
    }
    // Kernel messages (printk with timestamps) can land on the console between a run's lines.
    if (/^\[\s*\d+\.\d+\] /.test(line)) continue;
    current.other.push(line);
  }
  return runs;
}
