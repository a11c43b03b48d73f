// Unit tests of the CLI's pure parts: plugin specs, the run manifest's layering, the terminal's
// Ctrl-A escape, and the table formatting.

import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import { parsePluginSpec } from "../cli/flags.ts";
import {
  buildRunManifest,
  checkFlags,
  execCmdlineParam,
  type ManifestSources,
  type RunFlags,
} from "../cli/run_manifest.ts";
import { Terminal } from "../cli/terminal.ts";
import { formatPluginTable } from "../cli/listing_format.ts";
import { formatStatsJson, formatStatsTable } from "../cli/stats.ts";
import type { BuiltImage } from "../images/mod.ts";

/** `vmon run`'s path: the flags checked once, then the manifest built from them. */
const build = (flags: RunFlags, sources: ManifestSources) =>
  buildRunManifest(checkFlags(flags), sources);

const vmonError = (pattern: RegExp) => (err: unknown) =>
  err instanceof VmonError && pattern.test(err.message);

Deno.test("parsePluginSpec: names, options, flags and literal commas", () => {
  assertEquals(parsePluginSpec("uart16550"), { use: "uart16550" });
  assertEquals(parsePluginSpec("virtio-blk,file=disk.img,readonly=true"), {
    use: "virtio-blk",
    options: { file: "disk.img", readonly: "true" },
  });
  assertEquals(parsePluginSpec("virtio-blk,file=a,,b.img,readonly"), {
    use: "virtio-blk",
    options: { file: "a,b.img", readonly: "true" },
  });
  assertEquals(parsePluginSpec("./dev.ts,x=1=2"), { use: "./dev.ts", options: { x: "1=2" } });
  throws(() => parsePluginSpec(""), vmonError(/^Invalid --device "": the plugin name is missing/));
  throws(() => parsePluginSpec(",a=1", { flag: "--host" }), vmonError(/^Invalid --host/));
  throws(() => parsePluginSpec("d,=1"), vmonError(/"=1" is not key=value/));
  throws(() => parsePluginSpec("d,a=1,a=2"), vmonError(/option "a" is given twice/));
});

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

Deno.test("buildRunManifest: the image's defaults alone", () => {
  assertEquals(build({}, { image: IMAGE }), {
    hostport: { use: "rv64" },
    platform: { use: "riscv-virt", options: { ring: 3 } },
    devices: [{ use: "uart16550" }, { use: "debug-exit" }],
    memory: "128M",
    boot: { kernel: "/cache/kernel", initrd: "/cache/initrd", cmdline: "console=ttyS0" },
  });
});

Deno.test("buildRunManifest: manifest over image, flags over both", () => {
  const m = build(
    {
      host: "rv64,harts=2",
      device: ["uart16550,base=0x2f8", "uart16550", "./extra.ts,x=1"],
      disk: ["root.img"],
      paging: "shadow",
      cpus: "2",
      mem: "1G",
      append: "quiet",
      exec: "uname -a",
    },
    {
      image: IMAGE,
      manifest: {
        hostport: { use: "rv64", options: { trace: true } },
        platform: { use: "riscv-virt" },
        devices: [{ use: "uart16550", options: { irq: 4 } }],
        cpus: 4,
        boot: { cmdline: "console=hvc0" },
      },
    },
  );
  assertEquals(m.hostport, { use: "rv64", options: { trace: true, harts: "2" } });
  assertEquals(m.platform, { use: "riscv-virt" });
  assertEquals(m.paging, { use: "shadow" });
  assertEquals(m.devices, [
    { use: "uart16550", options: { irq: 4, base: "0x2f8" } },
    { use: "uart16550" },
    { use: "./extra.ts", options: { x: "1" } },
    { use: "virtio-blk", options: { file: "root.img" } },
  ]);
  assertEquals(m.cpus, 2);
  assertEquals(m.memory, 1 << 30);
  assertEquals(m.boot, {
    kernel: "/cache/kernel",
    initrd: "/cache/initrd",
    cmdline: `console=hvc0 quiet vmon.exec=${btoa("uname -a")}`,
  });
});

Deno.test("buildRunManifest: a different --host replaces the image's host and options", () => {
  const m = build({ host: "kvm,device=/dev/null" }, { image: IMAGE });
  assertEquals(m.hostport, { use: "kvm", options: { device: "/dev/null" } });
});

Deno.test("buildRunManifest: --kernel drops the image's initrd unless --initrd is given", () => {
  assertEquals(build({ kernel: "k" }, { image: IMAGE }).boot, {
    kernel: "k",
    cmdline: "console=ttyS0",
  });
  assertEquals(build({ kernel: "k", initrd: "i" }, { image: IMAGE }).boot, {
    kernel: "k",
    initrd: "i",
    cmdline: "console=ttyS0",
  });
});

Deno.test("buildRunManifest: flags alone, and what is missing", () => {
  const m = build(
    { host: "kvm", platform: "x86-64-direct", kernel: "g.elf", mem: "16M" },
    {},
  );
  assertEquals(m, {
    hostport: { use: "kvm" },
    platform: { use: "x86-64-direct" },
    devices: [],
    memory: 16 << 20,
    boot: { kernel: "g.elf" },
  });
  throws(() => build({ kernel: "k" }, {}), vmonError(/no host port/));
  throws(() => build({ host: "kvm" }, {}), vmonError(/no platform/));
});

Deno.test("execCmdlineParam: any text passes as base64", () => {
  const word = execCmdlineParam("echo \"hi\" 'there'\nexit 3");
  const b64 = word.slice("vmon.exec=".length);
  assertEquals(
    new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))),
    "echo \"hi\" 'there'\nexit 3",
  );
});

Deno.test("buildRunManifest: bad flag values", () => {
  const base = { host: "kvm", platform: "p" };
  throws(() => build({ ...base, mem: "lots" }, {}), vmonError(/^Invalid --mem "lots"/));
  throws(() => build({ ...base, mem: "0" }, {}), vmonError(/must be more than 0/));
  for (const cpus of ["0", "-1", "1.5", "x", "65"]) {
    throws(() => build({ ...base, cpus }, {}), vmonError(/^Invalid --cpus/));
  }
  throws(() => build({ ...base, trace: "io,nope" }, {}), vmonError(/"nope"/));
  throws(() => build({ ...base, stats: "xml" }, {}), vmonError(/--stats "xml"/));
  throws(() => build({ ...base, disk: [""] }, {}), vmonError(/--disk ""/));
  throws(() => execCmdlineParam("x".repeat(1000), "console=ttyS0"), vmonError(/limit 1024/));
});

function fakeStdin(terminal: boolean) {
  const modes: boolean[] = [];
  return {
    modes,
    stdin: {
      read: () => Promise.resolve(null),
      isTerminal: () => terminal,
      setRaw: (mode: boolean) => void modes.push(mode),
    },
  };
}

Deno.test("Terminal: Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A, other bytes pass", () => {
  const quits: string[] = [];
  const { stdin } = fakeStdin(true);
  const t = new Terminal({ onInput: () => {}, onQuit: (r) => quits.push(r) }, { stdin });
  assertEquals([...t.filter(new Uint8Array([0x61, 0x01, 0x01, 0x62]))], [0x61, 0x01, 0x62]);
  assertEquals([...t.filter(new Uint8Array([0x01, 0x63]))], [0x01, 0x63]);
  assertEquals(quits, []);
  // The escape may be split across reads.
  assertEquals([...t.filter(new Uint8Array([0x01]))], []);
  assertEquals([...t.filter(new Uint8Array([0x78, 0x64]))], [0x64]);
  assertEquals(quits.length, 1);
  assert(String(quits.at(0)).includes("Ctrl-A x"));
});

Deno.test("Terminal: raw mode on a TTY is entered and restored once; not on a pipe", () => {
  const tty = fakeStdin(true);
  const t = new Terminal({ onInput: () => {}, onQuit: () => {} }, { stdin: tty.stdin });
  t.start();
  t.restore();
  t.restore();
  assertEquals(tty.modes, [true, false]);
  const pipe = fakeStdin(false);
  const p = new Terminal({ onInput: () => {}, onQuit: () => {} }, { stdin: pipe.stdin });
  p.start();
  p.restore();
  assertEquals(pipe.modes, []);
});

Deno.test("formatPluginTable lists kind, name, description and options", () => {
  const text = formatPluginTable([
    {
      name: "zz",
      kind: "device",
      description: "Last",
      options: { n: { type: "integer", description: "A number", min: 1, max: 9, default: 2 } },
    },
    { name: "aa", kind: "hostport", description: "First" },
  ]);
  assert(text.indexOf("aa") < text.indexOf("zz"), text);
  assert(text.includes("n (integer, 1..9, default 2): A number"), text);
});

Deno.test("stats: table and JSON", () => {
  const stats = {
    exits: { io: 10, hlt: 1 },
    plugins: { uart16550: 10 },
    metrics: { uart16550: { tx: 5 } },
    hostport: { instructions: 1000 },
    wallMs: 3,
  };
  const table = formatStatsTable(stats);
  for (const word of ["io", "hlt", "uart16550", "uart16550: tx", "instructions", "1,000"]) {
    assert(table.includes(word), `${word} missing:\n${table}`);
  }
  assert(table.indexOf("io") < table.indexOf("hlt"), "sorted by count");
  const json = JSON.parse(
    formatStatsJson({ status: 3, reason: "guest exit", failed: false, stats }),
  );
  assertEquals(json, { status: 3, reason: "guest exit", failed: false, stats });
});
