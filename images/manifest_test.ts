import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import { imageManifest } from "./mod.ts";
import type { BuiltImage } from "./types.ts";

const IMAGE: BuiltImage = {
  name: "test",
  kernel: "/cache/kernel",
  initrd: "/cache/initrd",
  cmdline: "console=ttyS0",
  defaults: {
    hostport: "rv64",
    platform: "riscv-virt",
    devices: ["uart16550", "debug-exit"],
    memory: "128M",
    platformOptions: { ring: 3 },
  },
};

Deno.test("imageManifest: the image's defaults alone", () => {
  assertEquals(imageManifest(IMAGE), {
    hostport: { use: "rv64" },
    platform: { use: "riscv-virt", options: { ring: 3 } },
    devices: [{ use: "uart16550" }, { use: "debug-exit" }],
    memory: "128M",
    boot: { kernel: "/cache/kernel", initrd: "/cache/initrd", cmdline: "console=ttyS0" },
  });
  const bare = imageManifest({ name: "x", kernel: "/k", defaults: { ...IMAGE.defaults, cpus: 4 } });
  assertEquals(bare.boot, { kernel: "/k" });
  assertEquals(bare.cpus, 4);
});

Deno.test("imageManifest: host port, vCPUs, RAM and an --exec command override the image", () => {
  const m = imageManifest(IMAGE, {
    hostport: { use: "rv64", options: { clock: "icount" } },
    cpus: 2,
    memory: 1 << 30,
    exec: "uname -a",
  });
  assertEquals(m.hostport, { use: "rv64", options: { clock: "icount" } });
  assertEquals([m.cpus, m.memory], [2, 1 << 30]);
  assertEquals(m.boot?.cmdline, `console=ttyS0 vmon.exec=${btoa("uname -a")}`);
  assertEquals(
    imageManifest({ ...IMAGE, cmdline: undefined }, { exec: "true" }).boot?.cmdline,
    `vmon.exec=${btoa("true")}`,
  );
  throws(
    () => imageManifest(IMAGE, { exec: "x".repeat(1000) }),
    (e: unknown) => e instanceof VmonError && /limit 1024/.test(e.message),
  );
});
