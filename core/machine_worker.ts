/**
 * The machine worker: holds the vCPUs, the exit bus and the device instances, and runs the
 * scheduler. It talks to the main thread only through posted messages, so a vCPU never waits
 * for the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { VmonError } from "./errors.ts";
import type { FromWorker, ToWorker } from "./machine_protocol.ts";
import { Vm } from "./vm.ts";

const OUTPUT_FLUSH_BYTES = 4096;

let vm: Vm | undefined;
let out: Uint8Array[] = [];
let outBytes = 0;

function post(msg: FromWorker, transfer: Transferable[] = []): void {
  self.postMessage(msg, transfer);
}

function flush(): void {
  if (outBytes === 0) return;
  const bytes = new Uint8Array(outBytes);
  let o = 0;
  for (const chunk of out) {
    bytes.set(chunk, o);
    o += chunk.length;
  }
  out = [];
  outBytes = 0;
  post({ type: "console", bytes }, [bytes.buffer]);
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
    out.push(bytes.slice());
    outBytes += bytes.length;
    if (outBytes >= OUTPUT_FLUSH_BYTES) flush();
  },
  log(line: string): void {
    flush();
    post({ type: "log", line });
  },
  flush,
};

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
    case "build":
      Vm.build(msg.manifest, { io, trace: msg.trace }).then((v) => {
        vm = v;
        post({ type: "ready" });
      }, fail);
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
  }
};
