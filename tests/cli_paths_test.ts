// Paths the user gives resolve against the directory the user ran vmon from (issue 11): under
// `deno task` that is INIT_CWD, not the repository the task runs in. Every child here runs in the
// repository (as `deno task vmon` does) with INIT_CWD set to a temporary "user directory", and
// errors show the resolved path.

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { join } from "node:path";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { buildRv64Guest, CROSS_CC, uartGuest } from "./fixtures/rv64_guest.ts";

Deno.test("every command resolves the user's relative paths against INIT_CWD", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-paths-test-" });
  const from = (cwd: string, args: string[]) => runCli(args, { env: { INIT_CWD: cwd } });
  try {
    const elf = await buildRv64Guest(dir, "guest.elf", uartGuest("guest here\n"));
    if (elf === undefined) {
      console.error(`skipping: ${CROSS_CC} is not installed`);
      return;
    }
    const json = (stdout: string) => JSON.parse(stdout.trimEnd().split("\n").at(-1) ?? "");

    await t.step("run --kernel", async () => {
      const r = await from(dir, ["run", "--host", "rv64", "--kernel", "guest.elf"]);
      assertEquals([r.status, r.stdout], [0, "guest here\n"], r.stderr);
    });

    await t.step("run --manifest (and the manifest's own paths against its folder)", async () => {
      Deno.mkdirSync(join(dir, "m"));
      Deno.writeTextFileSync(
        join(dir, "m", "machine.json"),
        JSON.stringify({
          hostport: "rv64",
          platform: "riscv-virt",
          boot: { kernel: "../guest.elf" },
        }),
      );
      const r = await from(dir, ["run", "--manifest", "m/machine.json"]);
      assertEquals([r.status, r.stdout], [0, "guest here\n"], r.stderr);
    });

    await t.step("errors show the resolved path: --initrd, --disk, --manifest", async () => {
      const base = ["run", "--host", "rv64", "--kernel", "guest.elf"];
      assertOneLineError(
        await from(dir, [...base, "--initrd", "no.cpio"]),
        new RegExp(`^vmon: Cannot read initrd "${dir}/no\\.cpio": no such file$`),
      );
      assertOneLineError(
        await from(dir, [...base, "--disk", "no.img"]),
        new RegExp(`^vmon: Cannot read disk image "${dir}/no\\.img": no such file$`),
      );
      assertOneLineError(
        await from(dir, ["run", "--manifest", "no.json"]),
        new RegExp(`^vmon: Cannot read manifest "${dir}/no\\.json": no such file$`),
      );
    });

    await t.step(
      "new-plugin --dir, then run --device ./mod.ts in the plugin's folder",
      async () => {
        const made = await from(dir, ["new-plugin", "my-dev", "--kind", "device", "--dir", "plug"]);
        assertEquals(made.status, 0, made.stderr);
        ok(Deno.statSync(join(dir, "plug", "mod.ts")).isFile, made.stdout);
        // The scaffold README's own command: ./mod.ts is the plugin, not vmon's mod.ts.
        const r = await from(join(dir, "plug"), [
          "run",
          "--host",
          "rv64",
          "--kernel",
          "../guest.elf",
          "--device",
          "./mod.ts,step=2",
          "--stats=json",
        ]);
        assertEquals(r.status, 0, r.stderr);
        assertEquals(json(r.stdout).stats.metrics["my-dev"], { bumps: 0, ignored: 0 });
      },
    );

    await t.step("run --paging ./x/mod.ts", async () => {
      Deno.mkdirSync(join(dir, "x"));
      Deno.copyFileSync(
        join(REPO_ROOT, "docs", "examples", "flush_counter", "mod.ts"),
        join(dir, "x", "mod.ts"),
      );
      const args = ["run", "--host", "rv64", "--kernel", "guest.elf", "--stats=json"];
      const r = await from(dir, [...args, "--paging", "./x/mod.ts"]);
      assertEquals(r.status, 0, r.stderr);
      ok(json(r.stdout).stats.metrics["flush-counter"], r.stdout);
      assertOneLineError(
        await from(dir, [...args, "--paging", "./y/mod.ts"]),
        new RegExp(`^vmon: Cannot load plugin "${dir}/y/mod\\.ts": no such file$`),
      );
    });

    await t.step("plugin bundle ../plug/mod.ts -o out.js", async () => {
      Deno.mkdirSync(join(dir, "sub"));
      const r = await from(join(dir, "sub"), [
        "plugin",
        "bundle",
        "../plug/mod.ts",
        "-o",
        "out.js",
      ]);
      assertEquals(r.status, 0, r.stderr);
      ok(r.stdout.startsWith(`Wrote ${join(dir, "sub", "out.js")} (`), r.stdout);
      assertOneLineError(
        await from(join(dir, "sub"), ["plugin", "bundle", "../nothere/mod.ts"]),
        new RegExp(`^vmon: Cannot bundle plugin "${dir}/nothere/mod\\.ts": no such file$`),
      );
    });

    await t.step("compare --out is checked (resolved) before anything runs", async () => {
      Deno.writeTextFileSync(join(dir, "taken"), "a file");
      assertOneLineError(
        await from(dir, ["compare", "--workloads", "forkwait", "--out", "taken"]),
        new RegExp(`^vmon: Invalid --out "${dir}/taken": it exists and is not a folder$`),
      );
    });

    await t.step("an INIT_CWD that does not exist is one line", async () => {
      assertOneLineError(
        await from(join(dir, "gone"), ["images"]),
        /^vmon: Cannot enter the directory vmon was started from ".*\/gone": no such directory$/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a --disk that cannot be written says how to attach it read-only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-paths-test-" });
  const disk = join(dir, "ro.img");
  Deno.writeFileSync(disk, new Uint8Array(4096));
  Deno.writeFileSync(join(dir, "kernel"), new Uint8Array(64)); // checked later than the disk
  // Root ignores file modes: an immutable file refuses root's writes too.
  const lock = Deno.uid() === 0
    ? await new Deno.Command("chattr", { args: ["+i", disk], stderr: "null" }).output()
      .then((o) => o.success, () => false)
    : (Deno.chmodSync(disk, 0o444), true);
  try {
    if (!lock) {
      console.error("skipping: cannot make a file unwritable for root here (chattr +i failed)");
      return;
    }
    assertOneLineError(
      await runCli(["run", "--host", "rv64", "--kernel", "kernel", "--disk", "ro.img"], {
        env: { INIT_CWD: dir },
      }),
      new RegExp(
        `^vmon: Cannot open disk image "${disk}" for writing: permission denied ` +
          `\\(to attach it read-only: --device virtio-blk,file=${disk},readonly=true\\)$`,
      ),
    );
  } finally {
    if (Deno.uid() === 0) {
      await new Deno.Command("chattr", { args: ["-i", disk], stderr: "null" }).output()
        .catch(() => {});
    }
    await Deno.remove(dir, { recursive: true });
  }
});
