/**
 * Device placement through the whole monitor (issue 11): a device given `base=` goes through the
 * same checks as an allocated one: over RAM or another device it is refused with one line naming
 * the device the user asked for, and a UART placed by hand where the platform would put it
 * leaves the platform's other windows elsewhere, so the machine runs.
 */

import assert from "node:assert/strict";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const missing = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (missing !== undefined) console.error(`device_placement_test: skipped: ${missing}`);

const linuxTest = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: missing !== undefined, fn, sanitizeResources: false });

linuxTest("placement: a device given an address in RAM is refused, naming it", async () => {
  for (
    const [device, pattern] of [
      [
        "virtio-rng,base=0x80000000",
        /^vmon: Cannot place device "virtio-rng" at 0x80000000-0x800001ff: overlaps RAM at 0x80000000-/,
      ],
      [
        "uart16550,base=0x80001000",
        /^vmon: Cannot place device "uart16550" at 0x80001000-0x800010ff: overlaps RAM at 0x80000000-/,
      ],
      [
        "pvpanic,base=0x0c000000",
        /^vmon: Cannot place device "pvpanic" at 0xc000000-0xc000001: overlaps "plic" at 0xc000000-/,
      ],
    ] as const
  ) {
    const r = await runCli(["run", "--image", "linux-rv64", "--device", device, "--exec", "true"]);
    assertOneLineError(r, pattern);
  }
});

linuxTest(
  "placement: a UART given its usual address runs, other windows go elsewhere",
  async () => {
    const r = await runCli([
      "run",
      "--image",
      "linux-rv64",
      "--device",
      "uart16550,base=0x10000000",
      "--exec",
      "echo placed-by-hand",
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /placed-by-hand/);
  },
);
