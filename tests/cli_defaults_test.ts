// Defaults that make sense and messages that say what failed (issue 11): a host port implies its
// only platform, a platform adds its serial console unless told not to (and never twice), --exec
// is refused for images that cannot run commands, a plugin that throws in setup is named with the
// phase, and --mem names the flag.

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { buildImage } from "../images/mod.ts";
import { buildRv64Guest, CROSS_CC, uartGuest } from "./fixtures/rv64_guest.ts";

const HELLO = "hello through the uart";

Deno.test("a host port implies its platform; the platform adds its serial console", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-defaults-test-" });
  try {
    const elf = await buildRv64Guest(dir, "uart.elf", uartGuest(`${HELLO}\n`));
    if (elf === undefined) {
      console.error(`skipping: ${CROSS_CC} is not installed`);
      return;
    }
    const json = (stdout: string) => JSON.parse(stdout.trimEnd().split("\n").at(-1) ?? "");

    await t.step("--host rv64 alone: riscv-virt with a uart16550 the guest writes to", async () => {
      const r = await runCli(["run", "--host", "rv64", "--kernel", elf, "--stats=json"]);
      assertEquals(r.status, 0, r.stderr);
      assertEquals(r.stdout.split("\n")[0], HELLO);
      const stats = json(r.stdout).stats;
      ok(stats.metrics["riscv-virt"] !== undefined, JSON.stringify(stats.metrics));
      assertEquals(stats.plugins.uart16550, HELLO.length + 1);
    });

    await t.step("console=false turns it off: the same writes go nowhere", async () => {
      const r = await runCli([
        "run",
        "--host",
        "rv64",
        "--platform",
        "riscv-virt,console=false",
        "--kernel",
        elf,
        "--stats=json",
      ]);
      assertEquals(r.status, 0, r.stderr);
      const stats = json(r.stdout).stats;
      ok(!r.stdout.includes(HELLO), r.stdout);
      assertEquals(stats.plugins.uart16550, undefined);
      assertEquals(stats.plugins.unclaimed, HELLO.length + 1);
    });

    await t.step(
      "a uart16550 the user names (with options) is the only one",
      async () => {
        const r = await runCli([
          "run",
          "--host",
          "rv64",
          "--platform",
          "riscv-virt",
          "--device",
          "uart16550,polled=true",
          "--kernel",
          elf,
          "--stats=json",
        ]);
        assertEquals(r.status, 0, r.stderr);
        const stats = json(r.stdout).stats;
        assertEquals(r.stdout.split("\n").filter((l) => l === HELLO).length, 1);
        assertEquals(Object.keys(stats.metrics).filter((n) => n.startsWith("uart16550")), [
          "uart16550",
        ]);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the README's raw-kernel example prints the console (it printed nothing)", async () => {
  const image = await buildImage("linux-rv64");
  // vmon run --host rv64 --platform riscv-virt --kernel Image --initrd ... --append console=ttyS0
  const r = await runCli([
    "run",
    "--host",
    "rv64",
    "--platform",
    "riscv-virt",
    "--kernel",
    image.kernel,
    "--initrd",
    image.initrd!,
    "--mem",
    "256M",
    "--append",
    "console=ttyS0",
    "--exec",
    "echo raw kernel speaking",
  ]);
  assertEquals(r.status, 0, r.stderr);
  const lines = r.stdout.split(/\r?\n/);
  ok(lines.includes("vmon: init ready"), r.stdout.slice(-2000));
  ok(lines.includes("raw kernel speaking"), r.stdout.slice(-2000));
});

Deno.test("--exec on an image that cannot run commands is refused", async () => {
  for (const image of ["pv-guest", "hello"]) {
    assertOneLineError(
      await runCli(["run", "--image", image, "--exec", "uname -a"]),
      new RegExp(
        `^vmon: Cannot use --exec with image "${image}": its guest cannot run commands ` +
          `\\(images that can: linux-rv64, linux-rv64-bench\\)$`,
      ),
    );
  }
});

Deno.test("a plugin that throws in setup is named with the phase, not called a vmon bug", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-defaults-test-" });
  try {
    const plugin = join(dir, "broken.ts");
    await Deno.writeTextFile(
      plugin,
      `import { definePlugin } from ${
        JSON.stringify(pathToFileURL(join(REPO_ROOT, "mod.ts")).href)
      };
export default definePlugin({
  name: "broken-dev",
  kind: "device",
  apiVersion: 1,
  description: "throws in setup",
  setup() {
    const table: Record<string, { x: number }> = {};
    return { dispose: () => {}, x: table.missing!.x };
  },
});
`,
    );
    const elf = await buildRv64Guest(dir, "uart.elf", uartGuest("x\n"));
    const kernel = elf ?? "/dev/null"; // the failure comes before the boot
    const args = ["run", "--host", "rv64", "--kernel", kernel, "--device", plugin];
    const r = await runCli(args);
    assertOneLineError(
      r,
      /^vmon: Device plugin "broken-dev" failed in setup: TypeError: .*'x'.* \(VMON_DEBUG=1 prints the stack\)$/,
    );
    assertEquals(r.status, 70);
    const debug = await runCli(args, { env: { VMON_DEBUG: "1" } });
    ok(debug.stderr.includes("broken.ts:"), `no stack into the plugin:\n${debug.stderr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--mem that is not whole pages names the flag", async () => {
  assertOneLineError(
    await runCli(["run", "--host", "rv64", "--kernel", "/nonexistent", "--mem", "1"]),
    /^vmon: Invalid --mem "1": must be a whole number of 4 KiB pages, such as 256M$/,
  );
});
