/**
 * The machine worker: holds the vCPUs, the exit bus and the device instances, and runs the
 * scheduler. It talks to the main thread through posted messages and two pieces of shared
 * memory it only writes to (core/machine_protocol.ts): the console ring and the watch record.
 * A vCPU never waits for the main thread (unless the console ring is full).
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { VmonError } from "./errors.ts";
import {
  ConsoleRing,
  type FromWorker,
  type SnapshotTrigger,
  type ToWorker,
  WATCH,
} from "./machine_protocol.ts";
import { loadPlugin } from "./loader.ts";
import type { PreloadPlugin } from "./machine_protocol.ts";
import { readSnapshot } from "./snapshot_vm.ts";
import { loadSnapshotCodec } from "./snapshot_codec.ts";
import { ConsoleTriggers, settle, writeSnapshot } from "./snapshot_worker.ts";
import { Vm } from "./vm.ts";

let vm: Vm | undefined;
/** The preload hint's work (settled, never rejected); the build starts after it. */
let preloading: Promise<void> = Promise.resolve();
/** Snapshot triggers of `--snapshot-on` (core/snapshot_worker.ts). */
let triggers: ConsoleTriggers | undefined;
let ring: ConsoleRing | undefined;
/** The ring's write position when the main thread was last told to drain. */
let notified = 0;

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

/** Tells the main thread that console output waits in the ring (once per batch). */
function flush(): void {
  if (ring === undefined) return;
  const at = ring.writePosition;
  if (at === notified) return;
  notified = at;
  post({ type: "console" });
}

function fail(err: unknown): void {
  flush();
  const user = err instanceof VmonError;
  post({
    type: "error",
    message: err instanceof Error ? err.message : String(err),
    status: user ? (err as VmonError).status : 70,
    stack: err instanceof Error ? err.stack : undefined,
    user,
  });
}

const io = {
  write(bytes: Uint8Array): void {
    triggers?.feed(bytes);
    // A full ring means the main thread has not drained for a while: tell it, then wait.
    ring?.write(bytes, () => {
      notified = ring!.writePosition;
      post({ type: "console" });
    });
  },
  log(line: string): void {
    post({ type: "log", line, at: ring?.writePosition ?? 0 });
  },
  flush,
};

/**
 * A snapshot trigger's text appeared: pause now (the running slice ends after this exit), take
 * the snapshot once the scheduler has parked (a microtask runs after the loop's next await),
 * then go on, stop or stay paused.
 */
function onTrigger(trigger: SnapshotTrigger): void {
  const v = vm;
  if (v === undefined) return;
  v.pause();
  queueMicrotask(() => {
    try {
      const result = trigger.path === undefined
        ? settle(v, trigger.text)
        : writeSnapshot(v, trigger.path, { compress: trigger.compress, trigger: trigger.text });
      post({ type: "snapshot", id: 0, result });
      if (trigger.then === "stop") v.stop("snapshot taken", 0);
      else if (trigger.then !== "pause") v.resume();
    } catch (err) {
      post({ type: "snapshot", id: 0, error: (err as Error).message });
      v.stop((err as Error).message, 1);
    }
  });
}

/**
 * Loads the hinted plugins and warms the host ports among them (opens their libraries). Every
 * failure is ignored: it is only a hint, and the build reports the errors of what it needs.
 */
async function preload(plugins: readonly PreloadPlugin[]): Promise<void> {
  await Promise.all(plugins.map(async ({ use, kind }) => {
    try {
      const def = await loadPlugin(use, { kind });
      if (def.kind === "hostport") def.warm?.();
    } catch {
      // The build loads it again if its manifest names it, and reports why it cannot.
    }
  }));
}

async function run(): Promise<void> {
  if (vm === undefined) throw new VmonError("Cannot run the machine: it is not built");
  const outcome = await vm.run();
  flush();
  const stats = vm.stats();
  vm.dispose();
  post({ type: "exit", exit: { ...outcome, stats } });
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case "build": {
      ring = new ConsoleRing(msg.ring);
      const record = new Int32Array(msg.watch, 0, WATCH.length);
      if (msg.snapshotOn?.length) triggers = new ConsoleTriggers(msg.snapshotOn, onTrigger);
      // The snapshot codec is loaded only for machines that will read or write a file.
      const files = msg.restore !== undefined || msg.snapshotOn?.some((t) => t.path !== undefined);
      preloading.then(() => files ? loadSnapshotCodec() : undefined).then(() => {
        const image = msg.restore === undefined ? undefined : readSnapshot(msg.restore);
        const manifest = image?.meta.manifest ?? msg.manifest;
        if (manifest === undefined) throw new VmonError("Cannot build the machine: no manifest");
        return Vm.build(manifest, {
          io,
          trace: msg.trace,
          watch: { record, owners: (owners) => post({ type: "owners", owners }) },
          restore: image,
        });
      }).then((v) => {
        vm = v;
        post({ type: "ready" });
      }, fail);
      break;
    }
    case "preload":
      preloading = preload(msg.plugins);
      break;
    case "run":
      run().catch((err) => {
        vm?.dispose();
        fail(err);
      });
      break;
    case "input":
      vm?.input(msg.bytes);
      break;
    case "pause":
      vm?.pause();
      break;
    case "resume":
      vm?.resume();
      break;
    case "stop":
      vm?.stop(msg.reason, msg.status);
      break;
    case "stats":
      if (vm !== undefined) post({ type: "stats", id: msg.id, stats: vm.stats() });
      break;
    case "snapshot":
      // Callbacks run between slices: no vCPU is inside an exit. A request is taken at the first
      // such point after it arrives (once the codec is loaded, at the first request).
      loadSnapshotCodec().then(() => {
        if (vm === undefined) {
          throw new VmonError("Cannot take a snapshot: the machine is not built");
        }
        const result = writeSnapshot(vm, msg.path, { compress: msg.compress });
        post({ type: "snapshot", id: msg.id, result });
      }).catch((err) => {
        post({ type: "snapshot", id: msg.id, error: (err as Error).message });
      });
      break;
  }
};
