import assert from "node:assert/strict";
import { createTestDeviceHost, setupTestDevice } from "../../../testing/mod.ts";
import pvpanic from "./mod.ts";

Deno.test("pvpanic: MMIO variant is described for the device tree and reports its events", async () => {
  const host = createTestDeviceHost({ hasPio: false });
  await setupTestDevice(pvpanic, host);
  const desc = host.descriptions.find((d) => d.node === "pvpanic");
  assert.ok(desc?.mmio);
  assert.deepEqual(desc.compatible, ["qemu,pvpanic-mmio"]);
  assert.equal(host.mmioRead(desc.mmio.base, 1), 3);
  assert.equal(host.exits.length, 0);
});

Deno.test("pvpanic: a panic event ends the machine as a failure with the chosen status", async () => {
  const host = createTestDeviceHost({ hasPio: false });
  await setupTestDevice(pvpanic, host, { status: 9 });
  const base = host.descriptions[0]!.mmio!.base;
  host.mmioWrite(base, 1, 2); // crash kernel loaded: counted only
  assert.equal(host.exits.length, 0);
  host.mmioWrite(base, 1, 1);
  assert.deepEqual(host.exits, [{
    status: 9,
    reason: "Guest kernel panic (reported through pvpanic)",
    failed: true,
  }]);
});

Deno.test("pvpanic: port 0x505 on port I/O platforms", async () => {
  const host = createTestDeviceHost({ hasPio: true });
  await setupTestDevice(pvpanic, host);
  assert.equal(host.pioRead(0x505, 1), 3);
  host.pioWrite(0x505, 1, 1);
  assert.equal(host.exits[0]?.status, 1);
});
