import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { CpioWriter, readCpio, S_IFCHR, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from "./cpio.ts";
import { VmonError } from "../../core/errors.ts";

const enc = new TextEncoder();

function assertThrows(fn: () => unknown, type: typeof VmonError, text: string): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof type)) throw new Error(`expected ${type.name}, got ${e}`);
    if (!e.message.includes(text)) throw new Error(`expected "${text}" in "${e.message}"`);
    return;
  }
  throw new Error(`expected ${type.name} "${text}", nothing thrown`);
}

Deno.test("cpio: members round-trip with parents added first and 4-byte alignment", () => {
  const w = new CpioWriter({ mtime: 1234 });
  w.file("/usr/bin/tool", enc.encode("abcde"), { mode: 0o750, uid: 7, gid: 8 });
  w.symlink("bin/sh", "/bin/busybox");
  w.node("dev/console", { type: "c", major: 5, minor: 1 });
  w.dir("usr"); // already added as a parent: a no-op
  const bytes = w.finish();
  assertEquals(bytes.length % 4, 0);
  const entries = readCpio(bytes);
  assertEquals(entries.map((e) => e.name), [
    "usr",
    "usr/bin",
    "usr/bin/tool",
    "bin",
    "bin/sh",
    "dev",
    "dev/console",
  ]);
  const tool = entries[2]!;
  assertEquals(tool.mode, S_IFREG | 0o750);
  assertEquals([tool.uid, tool.gid, tool.mtime], [7, 8, 1234]);
  assertEquals(new TextDecoder().decode(tool.data), "abcde");
  assertEquals(entries[0]!.mode, S_IFDIR | 0o755);
  assertEquals(entries[4]!.mode & S_IFMT, S_IFLNK);
  assertEquals(new TextDecoder().decode(entries[4]!.data), "/bin/busybox");
  const con = entries[6]!;
  assertEquals([con.mode, con.rdevMajor, con.rdevMinor], [S_IFCHR | 0o600, 5, 1]);
});

Deno.test("cpio: duplicate and unclean paths are refused", () => {
  const w = new CpioWriter();
  w.file("a", new Uint8Array(1));
  assertThrows(() => w.file("a", new Uint8Array(1)), VmonError, 'Cannot add "a"');
  assertThrows(() => w.file("x/../etc", new Uint8Array(1)), VmonError, "not a clean");
  assertThrows(() => w.file("/", new Uint8Array(1)), VmonError, "not a clean");
});

Deno.test("cpio: a truncated archive is an error, not a crash", () => {
  const bytes = new CpioWriter().file("f", enc.encode("hello world")).finish();
  assertThrows(() => readCpio(bytes.subarray(0, 130)), VmonError, "Cannot read cpio archive");
  const bad = bytes.slice();
  bad[0] = 0x41;
  assertThrows(() => readCpio(bad), VmonError, "bad magic");
});

Deno.test("cpio: GNU cpio lists and extracts what the writer produces", async (t) => {
  const which = await new Deno.Command("sh", { args: ["-c", "command -v cpio"], stdout: "null" })
    .output();
  if (!which.success) {
    await t.step({ name: "skipped: GNU cpio is not installed", ignore: true, fn: () => {} });
    return;
  }
  const dir = Deno.makeTempDirSync({ prefix: "vmon-cpio-" });
  try {
    const w = new CpioWriter();
    w.file("bin/hello", enc.encode("#!/bin/sh\necho hi\n"), { mode: 0o755 });
    w.symlink("bin/hi", "hello");
    w.file("etc/odd-size", new Uint8Array(13).fill(0x5a));
    const archive = `${dir}/a.cpio`;
    Deno.writeFileSync(archive, w.finish());
    const list = await new Deno.Command("sh", {
      args: ["-c", `cpio -it < "${archive}"`],
      stdout: "piped",
      stderr: "null",
    }).output();
    assertEquals(list.success, true);
    assertEquals(
      new TextDecoder().decode(list.stdout).trim().split("\n"),
      ["bin", "bin/hello", "bin/hi", "etc", "etc/odd-size"],
    );
    const out = `${dir}/x`;
    Deno.mkdirSync(out);
    const ex = await new Deno.Command("sh", {
      args: ["-c", `cpio -idm --no-absolute-filenames < "${archive}"`],
      cwd: out,
      stderr: "null",
    }).output();
    assertEquals(ex.success, true);
    assertEquals(Deno.readTextFileSync(`${out}/bin/hello`), "#!/bin/sh\necho hi\n");
    assertEquals(Deno.statSync(`${out}/bin/hello`).mode! & 0o777, 0o755);
    assertEquals(Deno.readLinkSync(`${out}/bin/hi`), "hello");
    assertEquals(Deno.readFileSync(`${out}/etc/odd-size`).length, 13);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
