/**
 * `deno task fuzz:rv64`: the differential fuzzer of the rv64 block translator at scale
 * (`rv64_diff.ts`): runs sequences with seeds `start .. start + count - 1` (default 1,000,000
 * from seed 1) on the interpreter and on the translator in `workers` Workers, shows a progress bar
 * on stderr and prints one JSON line: sequences run, mismatches (with the first seeds and what
 * differed), instructions retired and the share run as translated code. Exits 1 on a mismatch.
 * A mismatch reproduces with `--start <seed> 1`.
 *
 * Usage: deno task fuzz:rv64 [count] [--start seed] [--workers n]
 *
 * @module
 */

import cliProgress from "cli-progress";
import process from "node:process";
import type { Mismatch } from "./rv64_diff.ts";

/** Work for one Worker. */
interface Job {
  readonly start: number;
  readonly count: number;
  readonly step: number;
}

/** What a Worker reports. */
type Report =
  | { type: "progress"; done: number }
  | {
    type: "done";
    done: number;
    mismatches: Mismatch[];
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
    using fuzz = new DiffFuzzer();
    const mismatches: Mismatch[] = [];
    let last = 0;
    for (let k = 0; k < count; k++) {
      const m = fuzz.check(start + k * step);
      if (m && mismatches.length < 20) mismatches.push(m);
      if (k - last >= 500) {
        post({ type: "progress", done: k - last });
        last = k;
      }
    }
    const stats = fuzz.jitStats();
    post({
      type: "done",
      done: count - last,
      mismatches,
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
  const results = await Promise.all(
    Array.from(
      { length: Math.min(workers, count) },
      (_, w) =>
        new Promise<Extract<Report, { type: "done" }>>((resolve, reject) => {
          const worker = new Worker(import.meta.url, { type: "module" });
          worker.onerror = (e) => {
            e.preventDefault();
            reject(new Error(`Fuzz worker ${w} failed: ${e.message}`));
          };
          worker.onmessage = (e: MessageEvent<Report>) => {
            bar.increment(e.data.done);
            if (e.data.type === "done") {
              worker.terminate();
              resolve(e.data);
            }
          };
          const n = Math.floor(count / workers) + (w < count % workers ? 1 : 0);
          worker.postMessage({ start: start + w, count: n, step: workers } satisfies Job);
        }),
    ),
  );
  bar.stop();
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((a, r) => a + f(r), 0);
  const mismatches = results.flatMap((r) => r.mismatches).sort((a, b) => a.seed - b.seed);
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
