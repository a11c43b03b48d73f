/**
 * `deno task bench:restore`: the 256 MiB linux-rv64 guest restored from a snapshot taken at its
 * shell prompt, against the cold boot it replaces, both measured in this run. Prints one JSON
 * line with medians of:
 *
 * - monitor time (`restoreMs`, `coldBootMs`): the machine built and run on this thread with its
 *   plugin modules loaded (as in a warm worker), from the start of the build until the guest
 *   answers a command typed at the restored prompt, or until the cold boot's prompt appears;
 *   their `ratio`; target: restore <= 50 ms (`withinTarget`);
 * - end to end (`createToPromptMs`, `createColdToPromptMs`): the same through `createMachine`,
 *   whose new worker first loads and compiles every module.
 *
 * The image's virtio-net device is left out: its restore starts passt again, a host process whose
 * start-up is not monitor work.
 */

import { join } from "node:path";
import { createMachine, type MachineManifest } from "../../mod.ts";
import { buildImage, imageManifest } from "../../images/mod.ts";
import { Vm } from "../../core/vm.ts";
import { readSnapshot } from "../../core/snapshot_vm.ts";
import { loadSnapshotCodec } from "../../core/snapshot_codec.ts";

// Encoding and decoding files directly needs the checksum and compression code.
await loadSnapshotCodec();

const RUNS = 5;
const TARGET_MS = 50;
const PROMPT = "/ # ";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Resolves when `text` appears in the console after `from`. */
function watcher() {
  let out = "";
  const dec = new TextDecoder();
  const waits: { text: string; resolve: (t: number) => void }[] = [];
  return {
    write(b: Uint8Array) {
      out += dec.decode(b, { stream: true });
      for (const w of [...waits]) {
        if (out.includes(w.text)) {
          waits.splice(waits.indexOf(w), 1);
          w.resolve(performance.now());
        }
      }
    },
    until(text: string): Promise<number> {
      return new Promise((resolve) => {
        if (out.includes(text)) resolve(performance.now());
        else waits.push({ text, resolve });
      });
    },
  };
}

const image = await buildImage("linux-rv64");
const base = imageManifest(image);
const manifest: MachineManifest = {
  ...base,
  devices: (base.devices ?? []).filter((d) => d.use !== "virtio-net"),
};
const dir = await Deno.makeTempDir({ prefix: "vmon-bench-restore-" });
const snap = join(dir, "prompt.snap");
try {
  const cold: number[] = [];
  let bytes = 0;
  let pages = 0;
  for (let i = 0; i < RUNS; i++) {
    const w = watcher();
    const t0 = performance.now();
    const m = await createMachine(manifest, {
      console: w,
      log: () => {},
      // The first boot also writes the snapshot, once the prompt is there.
      ...(i === 0 ? { snapshotOn: [{ text: PROMPT, path: snap, then: "stop" as const }] } : {}),
      onSnapshot: (r) => {
        if ("error" in r) throw new Error(r.error);
        bytes = r.bytes;
        pages = r.pages;
      },
    });
    const run = m.run();
    cold.push(await w.until(PROMPT) - t0);
    if (i > 0) m.stop("done", 0);
    await run;
  }
  const restore: number[] = [];
  const ready: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const w = watcher();
    const t0 = performance.now();
    const m = await createMachine({ restore: snap }, { console: w, log: () => {} });
    ready.push(performance.now() - t0);
    m.sendInput(new TextEncoder().encode("echo vmon-restored\n"));
    const run = m.run();
    restore.push(await w.until(`vmon-restored\r\n${PROMPT}`) - t0);
    m.stop("done", 0);
    await run;
  }
  // Monitor time: the machine on this thread, modules loaded (one warm-up of each first).
  const inThread = async (restoreFile: string | undefined, until: string) => {
    const w = watcher();
    const t0 = performance.now();
    const image = restoreFile === undefined ? undefined : readSnapshot(restoreFile);
    const vm = await Vm.build(image?.meta.manifest ?? manifest, {
      io: { write: (b) => w.write(b), log: () => {} },
      ...(image !== undefined ? { restore: image } : {}),
    });
    if (Deno.env.get("VMON_BENCH_VERBOSE")) {
      console.error(`built in ${(performance.now() - t0).toFixed(1)} ms`);
    }
    if (restoreFile !== undefined) vm.input(new TextEncoder().encode("echo vmon-restored\n"));
    const run = vm.run();
    const t = await w.until(until) - t0;
    vm.stop("done", 0);
    await run;
    vm.dispose();
    return t;
  };
  const warmRestore: number[] = [];
  const warmCold: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const r = await inThread(snap, `vmon-restored\r\n${PROMPT}`);
    const c = await inThread(undefined, PROMPT);
    if (i > 0) {
      warmRestore.push(r);
      warmCold.push(c);
    }
  }
  const restoreMs = median(warmRestore);
  const coldMs = median(warmCold);
  const r1 = (x: number) => Math.round(x * 10) / 10;
  console.log(JSON.stringify({
    bench: "restore",
    image: "linux-rv64 (256 MiB, without virtio-net)",
    restoreMs: r1(restoreMs),
    reference: "cold boot to the shell prompt, same harness, same run",
    coldBootMs: r1(coldMs),
    ratio: Math.round(restoreMs / coldMs * 1000) / 1000,
    createToPromptMs: r1(median(restore)),
    createReadyMs: r1(median(ready)),
    createColdToPromptMs: r1(median(cold)),
    snapshotMiB: r1(bytes / 2 ** 20),
    pagesStored: pages,
    runs: RUNS,
    targetMs: TARGET_MS,
    withinTarget: restoreMs <= TARGET_MS,
  }));
} finally {
  await Deno.remove(dir, { recursive: true });
}
