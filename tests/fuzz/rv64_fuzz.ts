/**
 * `deno task fuzz:rv64`: the differential fuzzer of the rv64 block translator at scale
 * (`rv64_diff.ts`): runs sequences with seeds `start .. start + count - 1` (default 1,000,000
 * from seed 1) on the interpreter and on the translator in `workers` Workers, shows a progress bar
 * on stderr and prints one JSON line: sequences run, mismatches (with the first seeds and what
 * differed), instructions retired and the share run as translated code. Exits 1 on a mismatch.
 * A mismatch reproduces with `--start <seed> 1`. A sequence that does not return within
 * {@linkcode HANG_MS} (translated code that loops, a budget that never runs out: a C call the
 * Worker cannot leave) is a mismatch too: its Worker is ended and a new one goes on with the seeds
 * after it.
 *
 * Usage: deno task fuzz:rv64 [count] [--start seed] [--workers n]
 *
 * @module
 */

import cliProgress from "cli-progress";
import process from "node:process";
import type { Mismatch } from "./rv64_diff.ts";

/** A sequence running longer than this (milliseconds) is a hang. Sequences take well under 1 ms. */
const HANG_MS = 20_000;

/** Work for one Worker. */
interface Job {
  readonly start: number;
  readonly count: number;
  readonly step: number;
  /** One Float64: the Worker writes the seed it is running (the hang watchdog reads it). */
  readonly current: SharedArrayBuffer;
}

/** What a Worker reports. */
type Report =
  | { type: "progress"; done: number }
  /** Sent at once, so that a later hang of the Worker loses nothing. */
  | { type: "mismatch"; done: 0; mismatch: Mismatch }
  | {
    type: "done";
    done: number;
    instructions: number;
    translated: number;
    blocks: number;
    flushes: number;
    invalidations: number;
  };

// ---- in a Worker: run seeds start, start + step, ... ----------------------------------------
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  const { DiffFuzzer } = await import("./rv64_diff.ts");
  const post = (r: Report) => (self as unknown as Worker).postMessage(r);
  (self as unknown as Worker).onmessage = (e: MessageEvent<Job>) => {
    const { start, count, step } = e.data;
    const current = new Float64Array(e.data.current);
    using fuzz = new DiffFuzzer();
    let mismatches = 0;
    let last = 0;
    for (let k = 0; k < count; k++) {
      current[0] = start + k * step;
      const m = fuzz.check(start + k * step);
      if (m && mismatches++ < 20) {
        post({ type: "mismatch", done: 0, mismatch: m });
      }
      if (k - last >= 500) {
        post({ type: "progress", done: k - last });
        last = k;
      }
    }
    const stats = fuzz.jitStats();
    post({
      type: "done",
      done: count - last,
      instructions: fuzz.instructions,
      translated: fuzz.translated,
      blocks: stats.jitBlocks ?? 0,
      flushes: stats.jitFlushes ?? 0,
      invalidations: stats.jitInvalidations ?? 0,
    });
  };
} else {
  const args = [...Deno.args];
  const flag = (name: string, def: number) => {
    const i = args.indexOf(name);
    if (i < 0) return def;
    const v = Number(args.splice(i, 2)[1]);
    if (!Number.isInteger(v) || v < 0) {
      console.error(`Invalid ${name} "${args[i + 1]}": expected a non-negative integer`);
      Deno.exit(2);
    }
    return v;
  };
  const start = flag("--start", 1);
  const workers = Math.max(1, flag("--workers", navigator.hardwareConcurrency ?? 1));
  const count = Number(args[0] ?? 1_000_000);
  if (!Number.isInteger(count) || count < 1) {
    console.error(`Invalid sequence count "${args[0]}": expected a positive integer`);
    Deno.exit(2);
  }
  const bar = new cliProgress.SingleBar({
    format: "fuzz:rv64 [{bar}] {percentage}% | {value}/{total} sequences | {eta_formatted} left",
    noTTYOutput: true, // a line every 10 s in logs
    notTTYSchedule: 10_000,
    stream: process.stderr,
  }, cliProgress.Presets.shades_classic);
  bar.start(count, 0);
  const t0 = performance.now();
  /** Mismatches as the Workers report them, and the hangs the watchdog saw. */
  const found: Mismatch[] = [];
  /**
   * Runs seeds `start, start + step, ...` (`count` of them) in a Worker; when one hangs, ends that
   * Worker, records the seed and goes on after it in a new one. Resolves with the summed report.
   */
  const runJob = async (w: number, first: number, count: number, step: number) => {
    const total: Extract<Report, { type: "done" }> = {
      type: "done",
      done: 0,
      instructions: 0,
      translated: 0,
      blocks: 0,
      flushes: 0,
      invalidations: 0,
    };
    let from = first;
    let left = count;
    while (left > 0) {
      const current = new SharedArrayBuffer(8);
      const seen = new Float64Array(current);
      seen[0] = NaN;
      const outcome = await new Promise<Extract<Report, { type: "done" }> | { hung: number }>(
        (resolve, reject) => {
          const worker = new Worker(import.meta.url, { type: "module" });
          let watched = NaN;
          let since = performance.now();
          const watchdog = setInterval(() => {
            const now = seen[0]!;
            if (now !== watched) {
              watched = now;
              since = performance.now();
            } else if (!Number.isNaN(now) && performance.now() - since > HANG_MS) {
              clearInterval(watchdog);
              worker.terminate();
              resolve({ hung: now });
            }
          }, 1000);
          worker.onerror = (e) => {
            e.preventDefault();
            clearInterval(watchdog);
            reject(new Error(`Fuzz worker ${w} failed: ${e.message}`));
          };
          worker.onmessage = (e: MessageEvent<Report>) => {
            bar.increment(e.data.done);
            if (e.data.type === "mismatch") found.push(e.data.mismatch);
            if (e.data.type === "done") {
              clearInterval(watchdog);
              worker.terminate();
              resolve(e.data);
            }
          };
          worker.postMessage({ start: from, count: left, step, current } satisfies Job);
        },
      );
      if ("hung" in outcome) {
        found.push({
          seed: outcome.hung,
          what: `the sequence did not return within ${HANG_MS / 1000} s (a run that never ends)`,
        });
        // Sequences before it in this Worker were counted by its progress reports, roughly:
        // the bar may lag; the totals below count what finished.
        const ran = (outcome.hung - from) / step + 1;
        from = outcome.hung + step;
        left -= ran;
        continue;
      }
      for (
        const k of [
          "done",
          "instructions",
          "translated",
          "blocks",
          "flushes",
          "invalidations",
        ] as const
      ) {
        total[k] += outcome[k];
      }
      left = 0;
    }
    return total;
  };
  const results = await Promise.all(
    Array.from({ length: Math.min(workers, count) }, (_, w) => {
      const n = Math.floor(count / workers) + (w < count % workers ? 1 : 0);
      return runJob(w, start + w, n, workers);
    }),
  );
  bar.stop();
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((a, r) => a + f(r), 0);
  const mismatches = found.sort((a, b) => a.seed - b.seed);
  const instructions = sum((r) => r.instructions);
  const translated = sum((r) => r.translated);
  console.log(JSON.stringify({
    fuzz: "rv64_jit",
    sequences: count,
    start,
    workers,
    mismatches: mismatches.length,
    first: mismatches.slice(0, 5),
    instructions,
    translated,
    translated_share: instructions ? Math.round((translated / instructions) * 1000) / 1000 : 0,
    blocks: sum((r) => r.blocks),
    flushes: sum((r) => r.flushes),
    invalidations: sum((r) => r.invalidations),
    ms: Math.round(performance.now() - t0),
  }));
  if (mismatches.length > 0) Deno.exit(1);
}
