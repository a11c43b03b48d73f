// The plugin workflow end to end: scaffold a device plugin into a temp folder, run its generated
// test, give it an npm dependency, bundle it with esbuild, and load the bundle through the
// loader (it imports vmon's API from "@vmon/vmon", which vmon's import map resolves).

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { createTestDeviceHost } from "../testing/mod.ts";
import { loadPlugin } from "../core/loader.ts";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";

Deno.test("new-plugin, its test, plugin bundle and loading the bundle", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "vmon-plugin-test-" });
  const dir = join(root, "test-counter");
  try {
    await t.step("scaffold", async () => {
      const r = await runCli(["new-plugin", "test-counter", "--kind", "device", "--dir", dir]);
      assertEquals(r.status, 0, r.stderr);
      const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      assertEquals(names, ["README.md", "deno.json", "mod.ts", "test_counter_test.ts"]);
      const readme = await Deno.readTextFile(join(dir, "README.md"));
      assert(readme.includes("| `step` | integer | 1"), "README lists the options");
      const again = await runCli(["new-plugin", "test-counter", "--kind", "device", "--dir", dir]);
      assertOneLineError(again, /already exists/);
    });

    await t.step("the generated test passes", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "test"],
        cwd: dir,
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert(out.success, text);
      assert(/ok \| 2 passed \| 0 failed/.test(text), text);
    });

    await t.step("the scaffold type-checks where it stands, without --config", async () => {
      const config = JSON.parse(await Deno.readTextFile(join(dir, "deno.json")));
      assertEquals(Object.keys(config.imports).sort(), ["@vmon/vmon", "@vmon/vmon/testing"]);
      const mod = await Deno.readTextFile(join(dir, "mod.ts"));
      assert(mod.includes('from "@vmon/vmon"'), "the plugin imports @vmon/vmon");
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["check", "mod.ts", "test_counter_test.ts"],
        cwd: dir,
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      assert(out.success, new TextDecoder().decode(out.stderr));
    });

    await t.step("bundle with an npm dependency", async () => {
      const mod = join(dir, "mod.ts");
      let src = await Deno.readTextFile(mod);
      src = src.replace(
        /^(import type .*\n)/m,
        `$1import { strToU8 } from "npm:fflate@^0.8.2";\n`,
      ).replace(
        'description: "A counter device',
        'description: strToU8("A counter device").length > 0 ? "Bundled counter" : "A counter device',
      );
      await Deno.writeTextFile(mod, src);
      const r = await runCli(["plugin", "bundle", mod, "-o", join(dir, "bundle.js")]);
      assertEquals(r.status, 0, r.stderr);
      assert(/with fflate@/.test(r.stdout), r.stdout);
      const bundle = await Deno.readTextFile(join(dir, "bundle.js"));
      assert(!/from "npm:/.test(bundle), "npm imports were bundled");
      assert(/from "@vmon\/vmon"/.test(bundle), "vmon's API stays external");
      assert(!/from "file:/.test(bundle), "no absolute file imports remain");
    });

    await t.step("the bundle loads through loadPlugin and works", async () => {
      const def = await loadPlugin(join(dir, "bundle.js"), { kind: "device" });
      assertEquals(def.name, "test-counter");
      assertEquals(def.kind, "device");
      assertEquals(def.description, "Bundled counter");
      const host = createTestDeviceHost({ name: "test-counter", hasPio: true });
      const device = await def.setup(host, { base: 0x540, step: 7 });
      host.pioWrite(0x544, 4, 0);
      assertEquals(host.pioRead(0x540, 4), 7);
      device.dispose();
    });

    await t.step("vmon plugins shows the bundled plugin", async () => {
      const r = await runCli(["plugins", "--json", join(dir, "bundle.js")]);
      assertEquals(r.status, 0, r.stderr);
      const rows = JSON.parse(r.stdout) as Array<{ name: string; options?: object }>;
      const row = rows.find((p) => p.name === "test-counter");
      assert(row !== undefined, r.stdout);
      assertEquals(Object.keys(row.options ?? {}), ["base", "step"]);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("bundling refuses imports of vmon internals", async () => {
  const root = await Deno.makeTempDir({ prefix: "vmon-plugin-test-" });
  try {
    const entry = join(root, "mod.ts");
    const errors = new URL("../core/errors.ts", import.meta.url).href;
    await Deno.writeTextFile(
      entry,
      `import { VmonError } from "${errors}";\nexport default new VmonError("x");\n`,
    );
    assertOneLineError(
      await runCli(["plugin", "bundle", entry]),
      /^vmon: Cannot bundle plugin ".*": it imports vmon internals "core\/errors.ts"/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
