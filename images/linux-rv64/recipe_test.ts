import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { assertVmonError } from "../_test_support.ts";
import { BUSYBOX_FRAGMENT } from "./busybox.ts";
import { readCpio, S_IFCHR, S_IFLNK, S_IFMT } from "./cpio.ts";
import { INIT_SCRIPT, initramfsCpio } from "./initramfs.ts";
import { missingPackages } from "./deps.ts";
import { configMismatches, KERNEL_FRAGMENT, parseFragment } from "./kernel.ts";
import { COMMAND_LINE_SIZE, execCmdline, parseExitStatus } from "./protocol.ts";

Deno.test("kernel config: fragments parse and mismatches are named", () => {
  const frag = "# comment\nCONFIG_SMP=y\nCONFIG_NR_CPUS=8\n# CONFIG_NET is not set\n";
  assertEquals(
    [...parseFragment(frag)],
    [["CONFIG_SMP", "y"], ["CONFIG_NR_CPUS", "8"], ["CONFIG_NET", "n"]],
  );
  assertEquals(configMismatches(frag, "CONFIG_SMP=y\nCONFIG_NR_CPUS=8\n"), []);
  assertEquals(
    configMismatches(frag, "# CONFIG_SMP is not set\nCONFIG_NR_CPUS=4\nCONFIG_NET=y\n"),
    ["CONFIG_SMP=y (got n)", "CONFIG_NR_CPUS=8 (got 4)", "CONFIG_NET=n (got y)"],
  );
  assertVmonError(() => parseFragment("SMP=y"), 'bad line "SMP=y"');
});

Deno.test("kernel config: the committed fragments ask for what the image needs", () => {
  const k = parseFragment(Deno.readTextFileSync(KERNEL_FRAGMENT));
  for (
    const sym of [
      "CONFIG_64BIT",
      "CONFIG_SMP",
      "CONFIG_MMU",
      "CONFIG_FPU",
      "CONFIG_RISCV_ISA_C",
      "CONFIG_HVC_RISCV_SBI",
      "CONFIG_SERIAL_8250_CONSOLE",
      "CONFIG_SERIAL_OF_PLATFORM",
      "CONFIG_SIFIVE_PLIC",
      "CONFIG_VIRTIO_MMIO",
      "CONFIG_VIRTIO_BLK",
      "CONFIG_VIRTIO_CONSOLE",
      "CONFIG_HW_RANDOM_VIRTIO",
      "CONFIG_DEVTMPFS",
      "CONFIG_BLK_DEV_INITRD",
      "CONFIG_RD_GZIP",
      "CONFIG_POWER_RESET_SYSCON",
      "CONFIG_DEVMEM",
    ]
  ) assertEquals([sym, k.get(sym)], [sym, "y"]);
  assertEquals(Number(k.get("CONFIG_NR_CPUS")) >= 8, true);
  assertEquals(k.get("CONFIG_MODULES"), "n");
  assertEquals(parseFragment(Deno.readTextFileSync(BUSYBOX_FRAGMENT)).get("CONFIG_STATIC"), "y");
});

Deno.test("initramfs: busybox, applet links, console node and an executable /init", () => {
  const fake = Deno.makeTempFileSync({ prefix: "vmon-bb-" });
  try {
    Deno.writeTextFileSync(fake, "not really busybox");
    const entries = readCpio(initramfsCpio(fake, ["/bin/sh", "/usr/sbin/devmem", "/linuxrc"]));
    const by = new Map(entries.map((e) => [e.name, e]));
    assertEquals(new TextDecoder().decode(by.get("bin/busybox")!.data), "not really busybox");
    const sh = by.get("bin/sh")!;
    assertEquals([sh.mode & S_IFMT, new TextDecoder().decode(sh.data)], [S_IFLNK, "/bin/busybox"]);
    assertEquals(by.get("usr/sbin/devmem")!.mode & S_IFMT, S_IFLNK);
    const con = by.get("dev/console")!;
    assertEquals([con.mode & S_IFMT, con.rdevMajor, con.rdevMinor], [S_IFCHR, 5, 1]);
    const init = by.get("init")!;
    assertEquals(init.mode & 0o777, 0o755);
    assertEquals(new TextDecoder().decode(init.data), Deno.readTextFileSync(INIT_SCRIPT));
    for (const d of ["proc", "sys", "dev", "tmp"]) assertEquals(by.has(d), true);
  } finally {
    Deno.removeSync(fake);
  }
});

Deno.test("protocol: vmon.exec carries UTF-8 base64 and respects the kernel limit", () => {
  const word = execCmdline("echo 'héllo' | wc -c");
  const b64 = word.slice("vmon.exec=".length);
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  assertEquals(new TextDecoder().decode(bytes), "echo 'héllo' | wc -c");
  assertEquals(/\s/.test(word), false);
  assertVmonError(() => execCmdline("x".repeat(COMMAND_LINE_SIZE)), "limit 1024");
  assertVmonError(
    () => execCmdline("x".repeat(600), { base: "y".repeat(300) }),
    "would be",
  );
  assertEquals(parseExitStatus("foo\r\nvmon: exit status 42\r\n"), 42);
  assertEquals(parseExitStatus("vmon: init ready\n"), undefined);
});

const hasDpkg = await new Deno.Command("sh", {
  args: ["-c", "command -v dpkg-query"],
  stdout: "null",
}).output().then((o) => o.success, () => false);

Deno.test({
  name: `host packages: dpkg-query tells installed from missing${
    hasDpkg ? "" : " (skipped: dpkg-query is not available)"
  }`,
  ignore: !hasDpkg,
  async fn() {
    assertEquals(await missingPackages(["dpkg", "vmon-no-such-package-x"]), [
      "vmon-no-such-package-x",
    ]);
    assertEquals(await missingPackages([]), []);
  },
});
