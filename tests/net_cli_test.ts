// `vmon run --net`: parsing, one-line errors, and how it changes the image's devices.

import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { applyNetFlag, parseNetFlag } from "../cli/net_flag.ts";
import { buildRunManifest, checkFlags } from "../cli/run_manifest.ts";
import type { BuiltImage } from "../images/mod.ts";

const image: BuiltImage = {
  name: "linux-rv64",
  kernel: "/cache/Image",
  initrd: "/cache/initramfs.cpio.gz",
  cmdline: "console=ttyS0 panic=-1",
  defaults: {
    hostport: "rv64",
    platform: "riscv-virt",
    devices: ["uart16550", "debug-exit", "pvpanic", "virtio-net"],
    memory: "256M",
  },
};

Deno.test("--net: user, tap and none", () => {
  assertEquals(parseNetFlag("none"), { backend: "none" });
  assertEquals(parseNetFlag("user"), { backend: "user", options: { backend: "user" } });
  assertEquals(
    parseNetFlag("user,hostfwd=tcp:8080-:80,hostfwd=tcp:2222-:22,mac=02:00:00:00:00:01"),
    {
      backend: "user",
      options: {
        backend: "user",
        hostfwd: "tcp:8080-:80 tcp:2222-:22",
        mac: "02:00:00:00:00:01",
      },
    },
  );
  assertEquals(parseNetFlag("tap,ifname=tap0"), {
    backend: "tap",
    options: { backend: "tap", ifname: "tap0" },
  });
});

Deno.test("--net: mistakes give one line", () => {
  throws(() => parseNetFlag("slirp"), /^VmonError: Invalid --net "slirp": expected user/);
  throws(() => parseNetFlag("none,ifname=x"), /none takes no options/);
  throws(() => parseNetFlag("tap,hostfwd=tcp:1-:1"), /tap takes ifname and mac, not "hostfwd"/);
  throws(() => parseNetFlag("user,ifname=x"), /user takes hostfwd and mac, not "ifname"/);
  throws(() => parseNetFlag("tap,ifname="), /ifname has no value/);
  throws(() => parseNetFlag("tap,ifname=a,ifname=b"), /ifname is given twice/);
  throws(() => checkFlags({ net: "bogus" }), /Invalid --net "bogus"/);
});

Deno.test("--net: replaces, adds or removes the image's virtio-net", () => {
  const devices = [{ use: "uart16550" }, {
    use: "virtio-net",
    options: { backend: "tap", ifname: "tap9", mac: "02:00:00:00:00:09" },
  }];
  assertEquals(applyNetFlag(devices, parseNetFlag("none")), [{ use: "uart16550" }]);
  assertEquals(applyNetFlag(devices, parseNetFlag("user,hostfwd=tcp:1-:2")), [
    { use: "uart16550" },
    {
      use: "virtio-net",
      options: { mac: "02:00:00:00:00:09", backend: "user", hostfwd: "tcp:1-:2" },
    },
  ]);
  assertEquals(applyNetFlag([{ use: "uart16550" }], parseNetFlag("tap")), [
    { use: "uart16550" },
    { use: "virtio-net", options: { backend: "tap" } },
  ]);
});

Deno.test("--net: through the run manifest (the image's default is user)", () => {
  const devicesOf = (net?: string, device?: string[]) =>
    buildRunManifest(checkFlags({ ...(net ? { net } : {}), ...(device ? { device } : {}) }), {
      image,
    }).devices;
  assertEquals(devicesOf()?.map((d) => d.use), [
    "uart16550",
    "debug-exit",
    "pvpanic",
    "virtio-net",
  ]);
  assertEquals(devicesOf("none")?.map((d) => d.use), ["uart16550", "debug-exit", "pvpanic"]);
  assertEquals(devicesOf("tap,ifname=vmtap0")?.at(-1), {
    use: "virtio-net",
    options: { backend: "tap", ifname: "vmtap0" },
  });
  // --device after --net: its options win.
  assertEquals(devicesOf("tap,ifname=vmtap0", ["virtio-net,mac=02:00:00:00:00:05"])?.at(-1), {
    use: "virtio-net",
    options: { backend: "tap", ifname: "vmtap0", mac: "02:00:00:00:00:05" },
  });
});
