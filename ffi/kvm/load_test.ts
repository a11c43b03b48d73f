// Each Worker opens the KVM library itself and can run a vCPU with a time slice on its thread.

import { deepStrictEqual as assertEquals } from "node:assert/strict";

const missing = (() => {
  try {
    Deno.statSync("/dev/kvm");
    return undefined;
  } catch {
    return "/dev/kvm is absent";
  }
})();

Deno.test({
  name: `kvm library: a Worker loads it and runs a HLT guest${
    missing ? ` (skipped: ${missing})` : ""
  }`,
  ignore: missing !== undefined,
  async fn() {
    const worker = new Worker(new URL("./worker_fixture.ts", import.meta.url), { type: "module" });
    try {
      const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new Error(e.message));
        };
      });
      assertEquals(result.kind, 3, JSON.stringify(result)); // ExitKind.Halt
      assertEquals(result.same, true);
    } finally {
      worker.terminate();
    }
  },
});
