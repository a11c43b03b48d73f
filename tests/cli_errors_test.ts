// Bad input to `vmon run` and friends: every case prints one clear `vmon: ...` line on stderr,
// exits non-zero, and shows no stack trace.

import { join } from "node:path";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";

const X86 = ["--host", "kvm", "--platform", "x86-64-direct"];
const RV = ["--host", "rv64", "--platform", "riscv-virt"];

async function kvmUsable(): Promise<string | undefined> {
  try {
    const f = await Deno.open("/dev/kvm", { read: true, write: true });
    f.close();
    return undefined;
  } catch (err) {
    return `/dev/kvm is not usable here (${err instanceof Error ? err.message : err})`;
  }
}
const noKvm = await kvmUsable();
if (noKvm) console.error(`skipping machine tests: ${noKvm}`);

/** A temp file with `contents`, removed after `fn`. */
async function withTempFile(
  contents: string | Uint8Array,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmon-cli-test-" });
  const path = join(dir, "file.bin");
  await Deno.writeFile(
    path,
    typeof contents === "string" ? new TextEncoder().encode(contents) : contents,
  );
  try {
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("bad --mem is refused", async () => {
  assertOneLineError(
    await runCli(["run", ...X86, "--kernel", "/nonexistent", "--mem", "lots"]),
    /^vmon: Invalid --mem "lots": expected a byte count/,
  );
});

Deno.test("bad --cpus is refused", async () => {
  assertOneLineError(
    await runCli(["run", "--cpus", "0"]),
    /^vmon: Invalid --cpus "0": expected a whole number/,
  );
});

Deno.test("bad --trace category is refused", async () => {
  assertOneLineError(
    await runCli(["run", "--trace", "exits,bogus"]),
    /^vmon: Invalid --trace "exits,bogus": unknown category "bogus"/,
  );
});

Deno.test("bad --stats format is refused", async () => {
  assertOneLineError(
    await runCli(["run", "--stats=xml"]),
    /^vmon: Invalid --stats "xml"/,
  );
});

Deno.test("a malformed --device spec is refused", async () => {
  assertOneLineError(
    await runCli(["run", "--device", "uart16550,=3"]),
    /^vmon: Invalid --device "uart16550,=3"/,
  );
});

Deno.test("a missing kernel file is refused", async () => {
  assertOneLineError(
    await runCli(["run", ...X86, "--kernel", "/nonexistent/vmlinux"]),
    /^vmon: Cannot read kernel image "\/nonexistent\/vmlinux": no such file$/,
  );
});

Deno.test("a missing manifest file is refused", async () => {
  assertOneLineError(
    await runCli(["run", "--manifest", "/nonexistent/machine.json"]),
    /^vmon: Cannot read manifest "\/nonexistent\/machine.json": no such file$/,
  );
});

Deno.test("a missing disk image is refused", async () => {
  assertOneLineError(
    await runCli(["run", ...X86, "--kernel", "/nonexistent", "--disk", "/nonexistent/disk.img"]),
    /^vmon: Cannot read (kernel image|disk image) "\/nonexistent/,
  );
});

Deno.test("an unknown image name is refused", async () => {
  assertOneLineError(
    await runCli(["run", "--image", "no-such-image"]),
    /^vmon: Cannot build image "no-such-image": unknown image \(known: /,
  );
});

Deno.test("--kernel without a host port is refused", async () => {
  await withTempFile("not a kernel", async (path) => {
    assertOneLineError(
      await runCli(["run", "--kernel", path]),
      /^vmon: Cannot build the machine: no host port/,
    );
  });
});

Deno.test("new-plugin refuses a bad name and a bad kind", async () => {
  assertOneLineError(
    await runCli(["new-plugin", "Bad_Name", "--kind", "device", "--dir", "/nonexistent/x"]),
    /^vmon: Invalid plugin name "Bad_Name"/,
  );
  assertOneLineError(
    await runCli(["new-plugin", "ok", "--kind", "gadget"]),
    /^vmon: Option '--kind <kind>' argument 'gadget' is invalid\. Allowed choices are device\.$/,
  );
});

Deno.test("new-plugin refuses to overwrite an existing folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-cli-test-" });
  try {
    assertOneLineError(
      await runCli(["new-plugin", "counter", "--kind", "device", "--dir", dir]),
      /^vmon: Cannot create plugin folder ".*": it already exists$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plugin bundle of a missing entry is refused", async () => {
  assertOneLineError(
    await runCli(["plugin", "bundle", "/nonexistent/mod.ts"]),
    /^vmon: Cannot bundle plugin "\/nonexistent\/mod.ts": no such file$/,
  );
});

// These need the machine to get as far as loading plugins and the kernel (rv64 runs anywhere).

Deno.test({
  name: "an unknown device plugin is refused",
  fn: async () => {
    await withTempFile("not a kernel", async (path) => {
      assertOneLineError(
        await runCli(["run", ...RV, "--kernel", path, "--device", "no-such-device"]),
        /^vmon: .*no-such-device/,
      );
    });
  },
});

Deno.test({
  name: "a bad device option value is refused",
  fn: async () => {
    await withTempFile("not a kernel", async (path) => {
      assertOneLineError(
        await runCli(["run", ...RV, "--kernel", path, "--device", "uart16550,base=banana"]),
        /^vmon: Invalid option "base" for plugin "uart16550": .*"banana"$/,
      );
    });
  },
});

Deno.test({
  name: "an unknown option of a plugin is refused",
  fn: async () => {
    await withTempFile("not a kernel", async (path) => {
      assertOneLineError(
        await runCli(["run", ...RV, "--kernel", path, "--device", "uart16550,colour=blue"]),
        /^vmon: Unknown option "colour" for plugin "uart16550"/,
      );
    });
  },
});

Deno.test({
  name: "a kernel that is not an ELF file is refused",
  fn: async () => {
    await withTempFile("#!/bin/sh\necho this is not a kernel\n", async (path) => {
      assertOneLineError(
        await runCli(["run", ...RV, "--kernel", path]),
        /^vmon: Cannot load kernel image ".*file\.bin": not a .*ELF/,
      );
    });
  },
});

Deno.test({
  name: "a host port that cannot open its device gives a clear line",
  ignore: noKvm !== undefined,
  fn: async () => {
    await withTempFile("not a kernel", async (path) => {
      assertOneLineError(
        await runCli([
          "run",
          "--host",
          "kvm,device=/nonexistent/kvm",
          "--platform",
          "x86-64-direct",
          "--kernel",
          path,
        ]),
        /^vmon: .*\/nonexistent\/kvm/,
      );
    });
  },
});
