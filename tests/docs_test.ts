/**
 * The docs stay true to the code: every plugin kept under `docs/examples/` is shown verbatim in a
 * guide (one source: the guide's code block is the file the tests load), and every top-level
 * folder has the README docs/DESIGN.md promises. The guides' TypeScript blocks themselves are
 * type-checked and run by `deno test --doc`.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { listFiles, REPO_ROOT } from "../core/cache.ts";

const DOCS = join(REPO_ROOT, "docs");

function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

Deno.test("docs: each example plugin is shown verbatim in a guide", () => {
  const blocks = listFiles(DOCS, [".md"]).flatMap((f) => codeBlocks(Deno.readTextFileSync(f)));
  const examples = listFiles(join(DOCS, "examples"), [".ts"]).filter((f) => f.endsWith("/mod.ts"));
  assert.ok(examples.length >= 1, "docs/examples/ holds no plugin");
  const missing = examples.filter((f) => !blocks.includes(Deno.readTextFileSync(f)))
    .map((f) => relative(REPO_ROOT, f));
  assert.deepEqual(missing, [], "example files whose code no guide shows verbatim");
});

Deno.test("docs: every top-level folder has a README", () => {
  const folders = ["core", "testing", "plugins", "ffi", "images", "lab", "cli", "tests", "docs"];
  const missing = folders.filter((d) => {
    try {
      return !Deno.statSync(join(REPO_ROOT, d, "README.md")).isFile;
    } catch {
      return true;
    }
  });
  assert.deepEqual(missing, []);
});
