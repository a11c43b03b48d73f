// What the docs promise plugin authors is there (issue 11): every test helper a document names
// (createTestDeviceHost, VirtioTestDriver, ...) is exported by the testing entry
// (`testing/mod.ts`, published as `@vmon/vmon/testing`), and so is everything a document or the
// scaffold imports from it.

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { join, relative } from "node:path";
import { listFiles, REPO_ROOT } from "../core/cache.ts";
import * as testing from "../testing/mod.ts";

/** Names declared with `export` in the testing folder's modules (values and types). */
function declaredInTesting(): Set<string> {
  const names = new Set<string>();
  for (const file of listFiles(join(REPO_ROOT, "testing"), [".ts"])) {
    if (file.endsWith("_test.ts")) continue;
    const text = Deno.readTextFileSync(file);
    for (
      const m of text.matchAll(/^export (?:async )?(?:function|class|const|interface|type) (\w+)/gm)
    ) {
      names.add(m[1]!);
    }
  }
  return names;
}

/** Names the testing entry exports (values at run time, types from `deno doc`). */
async function exportedByTesting(): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", join(REPO_ROOT, "testing", "mod.ts")],
    stdout: "piped",
    stderr: "piped",
  }).output();
  ok(out.success, new TextDecoder().decode(out.stderr));
  // deno doc 2: { version, nodes: { [module URL]: { symbols: [{ name }] } } }
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    nodes: Record<string, { symbols: { name: string }[] }>;
  };
  const nodes = Object.values(doc.nodes).flatMap((m) => m.symbols);
  ok(nodes.length > 0, "deno doc listed no symbols");
  return new Set([...Object.keys(testing), ...nodes.map((n) => n.name)]);
}

/** Every Markdown document and the scaffold templates, with their text. */
function documents(): { path: string; text: string }[] {
  const files = [
    ...listFiles(REPO_ROOT, [".md"]).filter((f) => !f.includes("/.cache/")),
    ...listFiles(join(REPO_ROOT, "cli", "templates"), [".tmpl"]),
  ];
  return files.map((path) => ({
    path: relative(REPO_ROOT, path),
    text: Deno.readTextFileSync(path),
  }));
}

Deno.test("every test helper a document names is exported by @vmon/vmon/testing", async () => {
  const declared = declaredInTesting();
  const exported = await exportedByTesting();
  ok(exported.has("VirtioTestDriver") && typeof testing.VirtioTestDriver === "function");
  const missing: string[] = [];
  let named = 0;
  for (const { path, text } of documents()) {
    const mentioned = new Set<string>();
    for (const m of text.matchAll(/`(\w+)(?:\([^`]*\))?`/g)) {
      if (declared.has(m[1]!)) mentioned.add(m[1]!);
    }
    const imports = /import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"@vmon\/vmon\/testing"/g;
    for (const m of text.matchAll(imports)) {
      for (const name of m[1]!.split(",").map((n) => n.replace(/^type\s+/, "").trim())) {
        if (name) mentioned.add(name.split(/\s+as\s+/)[0]!);
      }
    }
    for (const name of mentioned) {
      named++;
      if (!exported.has(name)) missing.push(`${path}: ${name}`);
    }
  }
  ok(named >= 5, `only ${named} mentions found: is the search broken?`);
  assertEquals(missing, [], "helpers the docs name that @vmon/vmon/testing does not export");
});

Deno.test("the package maps @vmon/vmon/testing to the testing entry", () => {
  const config = JSON.parse(Deno.readTextFileSync(join(REPO_ROOT, "deno.json")));
  assertEquals(config.exports["./testing"], "./testing/mod.ts");
  assertEquals(config.imports["@vmon/vmon/testing"], "./testing/mod.ts");
});
