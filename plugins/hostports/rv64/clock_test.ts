import assert from "node:assert/strict";
import rv64 from "./mod.ts";
import { createTestDeviceHost } from "../../../testing/mod.ts";

Deno.test("rv64: the icount clock refuses several harts with a clear error", () => {
  const base = createTestDeviceHost();
  const host = { ...base, machine: { ...base.machine, cpus: 2, arch: "riscv64" as const } };
  assert.throws(
    () =>
      rv64.setup(host, {
        clock: "icount",
        slice: 1_000_000,
        "mips-for-icount": 100,
        jit: "on",
        "jit-cache": 64,
      }),
    /Cannot use clock "icount" with 2 harts/,
  );
});
