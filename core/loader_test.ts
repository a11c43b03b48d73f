import {
  impliedPlatform,
  listBuiltinPlugins,
  loadPlugin,
  resolveOptions,
  runPluginPhase,
} from "./loader.ts";
import { VmonError } from "./errors.ts";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

const DEFINE = fileURLToPath(import.meta.resolve("./define_plugin.ts"));

function eq(actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

async function rejects(fn: () => Promise<unknown>, message: string | RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`expected VmonError, got ${e}`);
    const ok = typeof message === "string" ? e.message === message : message.test(e.message);
    if (!ok) throw new Error(`got ${JSON.stringify(e.message)}, expected ${message}`);
    return;
  }
  throw new Error(`expected an error ${message}`);
}

/** Source of a plugin module; `body` is spliced into the definition. */
function pluginSource(body: string, importPath = DEFINE): string {
  return `import { definePlugin } from ${JSON.stringify(importPath)};\n` +
    `export default definePlugin({ description: "test plugin", setup: () => ({ dispose() {} }), ${body} });\n`;
}

/** A temp folder for one test; removed by the returned function. */
function tempDir(): [string, () => void] {
  const dir = Deno.makeTempDirSync({ prefix: "vmon_loader_test_" });
  return [dir, () => Deno.removeSync(dir, { recursive: true })];
}

Deno.test("loadPlugin resolves built-in names by kind", async () => {
  const def = await loadPlugin("wired", { kind: "paging" });
  eq([def.name, def.kind], ["wired", "paging"]);
  eq((await loadPlugin("wired")).name, "wired");
  await rejects(
    () => loadPlugin("wired", { kind: "device" }),
    'Plugin "wired" is a paging plugin, expected a device plugin',
  );
  await rejects(
    () => loadPlugin("no-such-plugin", { kind: "paging" }),
    /^Unknown paging plugin "no-such-plugin": available: .*wired/,
  );
  await rejects(
    () => loadPlugin("no-such-plugin"),
    /^Unknown plugin "no-such-plugin": available: .*wired/,
  );
  await rejects(
    () => loadPlugin("Bad Name"),
    'Cannot load plugin "Bad Name": not a built-in plugin name, a file path or a URL',
  );
  await rejects(() => loadPlugin(""), 'Cannot load plugin "": empty reference');
});

Deno.test("loadPlugin handles ambiguous, unknown and misnamed built-ins in a plugins tree", async () => {
  const [root, done] = tempDir();
  try {
    const add = (dir: string, name: string, body: string) => {
      Deno.mkdirSync(join(root, "plugins", dir, name), { recursive: true });
      Deno.writeTextFileSync(join(root, "plugins", dir, name, "mod.ts"), pluginSource(body));
    };
    add("devices", "twin", 'name: "twin", kind: "device", apiVersion: 1');
    add("paging", "twin", 'name: "twin", kind: "paging", apiVersion: 1');
    add("devices", "alpha", 'name: "alpha", kind: "device", apiVersion: 1');
    add("devices", "liar", 'name: "other", kind: "device", apiVersion: 1');
    add(
      "devices",
      "broken",
      'name: "broken", kind: "device", apiVersion: 1, options: { x: { type: "nope", description: "d" } }',
    );
    Deno.mkdirSync(join(root, "plugins", "devices", "empty"), { recursive: true }); // no mod.ts
    await rejects(
      () => loadPlugin("twin", { root }),
      'Plugin name "twin" is ambiguous: there are device and paging plugins of that name',
    );
    eq((await loadPlugin("twin", { root, kind: "paging" })).kind, "paging");
    eq((await loadPlugin("twin", { root, kind: "device" })).kind, "device");
    await rejects(
      () => loadPlugin("gamma", { root, kind: "device" }),
      'Unknown device plugin "gamma": available: alpha, broken, liar, twin',
    );
    await rejects(
      () => loadPlugin("gamma", { root, kind: "hostport" }),
      'Unknown host port plugin "gamma": none are built in',
    );
    await rejects(() => loadPlugin("empty", { root }), /^Unknown plugin "empty"/);
    await rejects(
      () => loadPlugin("liar", { root }),
      /^Cannot load plugin "liar": .*liar\/mod\.ts defines a plugin named "other"$/,
    );
    const list = await listBuiltinPlugins({ root });
    eq(list.map((p) => `${p.kind}/${p.name}${p.error ? " !" : ""}`), [
      "device/alpha",
      "device/broken !",
      "device/liar !",
      "device/twin",
      "paging/twin",
    ]);
    eq(
      list[1]?.error,
      'Invalid options schema for plugin "broken": option "x" has type "nope", expected one of string, integer, number, boolean, size, path',
    );
    eq((await listBuiltinPlugins({ root, kind: "paging" })).map((p) => p.name), ["twin"]);
  } finally {
    done();
  }
});

Deno.test("loadPlugin imports plugins by path and by URL and checks them", async () => {
  const [dir, done] = tempDir();
  try {
    const write = (name: string, text: string) => {
      const p = join(dir, name);
      Deno.writeTextFileSync(p, text);
      return p;
    };
    const good = write(
      "good.ts",
      pluginSource(
        'name: "good-dev", kind: "device", apiVersion: 1, options: { n: { type: "integer", description: "n", default: 3 } }',
      ),
    );
    const def = await loadPlugin(good, { kind: "device" });
    eq([def.name, def.kind], ["good-dev", "device"]);
    // Relative to the current directory.
    const rel = relative(Deno.cwd(), good);
    eq((await loadPlugin(rel.startsWith(".") ? rel : `./${rel}`)).name, "good-dev");
    eq((await loadPlugin(pathToFileURL(good).href)).name, "good-dev");
    eq(resolveOptions(def, { n: "0x10" }), { n: 16 });
    await rejects(
      () => Promise.resolve(resolveOptions(def, { m: 1 })),
      'Unknown option "m" for plugin "good-dev": expected one of n',
    );

    const plain = write("plain.ts", "export default { hello: 1 };\n");
    await rejects(
      () => loadPlugin(plain),
      `Cannot load plugin "${plain}": default export is not a vmon plugin (use definePlugin)`,
    );
    const none = write("none.ts", "export const x = 1;\n");
    await rejects(
      () => loadPlugin(none),
      `Cannot load plugin "${none}": default export is not a vmon plugin (use definePlugin)`,
    );
    const v2 = write(
      "v2.ts",
      'export default { name: "foo", kind: "device", apiVersion: 2, description: "d", setup() {} };\n',
    );
    await rejects(
      () => loadPlugin(v2),
      'Plugin "foo" targets plugin API 2, this vmon implements 1',
    );
    const kind = write("kind.ts", pluginSource('name: "pg", kind: "paging", apiVersion: 1'));
    await rejects(
      () => loadPlugin(kind, { kind: "device" }),
      'Plugin "pg" is a paging plugin, expected a device plugin',
    );
    const invalid = write(
      "invalid.ts",
      'export default { name: "Bad", kind: "device", apiVersion: 1, description: "d", setup() {} };\n',
    );
    await rejects(
      () => loadPlugin(invalid),
      new RegExp(`^Invalid plugin definition ".*invalid\\.ts": name must be`),
    );
    const throwing = write(
      "throwing.ts",
      pluginSource('name: "x", kind: "nonsense", apiVersion: 1'),
    );
    await rejects(
      () => loadPlugin(throwing),
      /^Invalid plugin definition "x": kind must be one of/,
    );
    const syntax = write("syntax.ts", "export default {{;\n");
    await rejects(() => loadPlugin(syntax), /^Cannot load plugin ".*syntax\.ts": /);
    await rejects(
      () => loadPlugin(join(dir, "missing.ts")),
      `Cannot load plugin "${join(dir, "missing.ts")}": no such file`,
    );
    await rejects(
      () => loadPlugin("./definitely/missing.js"),
      // The message shows the path resolved against the current directory.
      `Cannot load plugin "${join(Deno.cwd(), "definitely", "missing.js")}": no such file`,
    );
    await rejects(
      () => loadPlugin("ftp://example.com/p.js"),
      'Cannot load plugin "ftp://example.com/p.js": unsupported URL scheme "ftp:" (use file:, http:, https:, data:)',
    );
    const data = "data:text/javascript," + encodeURIComponent(
      'export default { name: "data-dev", kind: "device", apiVersion: 1, description: "d", setup() { return { dispose() {} }; } };',
    );
    eq((await loadPlugin(data)).name, "data-dev");
  } finally {
    done();
  }
});

Deno.test("loadPlugin loads a single-file esbuild bundle", async () => {
  const [dir, done] = tempDir();
  try {
    const entry = join(dir, "entry.ts");
    Deno.writeTextFileSync(entry, pluginSource('name: "bundled", kind: "device", apiVersion: 1'));
    const outfile = join(dir, "bundle.js");
    try {
      await esbuild.build({
        entryPoints: [entry],
        bundle: true,
        format: "esm",
        outfile,
        logLevel: "silent",
      });
    } finally {
      await esbuild.stop();
    }
    const text = Deno.readTextFileSync(outfile);
    if (/^import /m.test(text)) throw new Error("the bundle still imports modules");
    const def = await loadPlugin(outfile, { kind: "device" });
    eq([def.name, typeof def.setup], ["bundled", "function"]);
  } finally {
    done();
  }
});

Deno.test("each host port implies its only platform", async () => {
  eq(await impliedPlatform("rv64"), "riscv-virt");
  eq(await impliedPlatform("kvm"), "x86-64-direct");
  await rejects(() => impliedPlatform("riscv-virt"), /is a platform plugin, expected a host port/);
});

Deno.test("a plugin phase that throws is reported with the plugin's kind, name and phase", async () => {
  const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
  let caught: unknown;
  try {
    await runPluginPhase({ kind: "device", name: "my-counter", phase: "setup" }, () => {
      throw bug;
    });
  } catch (e) {
    caught = e;
  }
  if (!(caught instanceof VmonError)) throw new Error(`expected a VmonError, got ${caught}`);
  eq(
    caught.message,
    `Device plugin "my-counter" failed in setup: TypeError: Cannot read properties of undefined (reading 'x')`,
  );
  eq([caught.status, caught.cause === bug], [70, true]);
  if (!caught.stack?.includes(bug.stack!.split("\n")[1]!)) throw new Error("the stack is lost");
  // A VmonError is already a message for the user: it passes unchanged.
  const mine = new VmonError('Cannot open file "x": no such file');
  await rejects(
    () =>
      runPluginPhase({ kind: "platform", name: "p", phase: "boot" }, () => Promise.reject(mine)),
    mine.message,
  );
  eq(await runPluginPhase({ kind: "paging", name: "w", phase: "setup" }, () => 7), 7);
});
