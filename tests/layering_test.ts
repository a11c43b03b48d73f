/**
 * The project's layering rules, checked on the source (DESIGN.md, STYLE.md):
 * - plugin code imports only the public plugin API (core/api.ts, core/define_plugin.ts,
 *   core/errors.ts, the public libraries core/virtio/ and core/paging.ts, or mod.ts), its own
 *   folder, `node:` modules and npm packages; never another plugin or core's internals;
 * - only host ports import `ffi/`;
 * - core never imports a plugin statically (the loader imports them by name at run time);
 * - no module imports itself back through a cycle.
 * Test files and test fixtures may reach further (integration tests use real devices).
 */

import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { listFiles, REPO_ROOT } from "../core/cache.ts";

const PUBLIC_API = [
  "core/api.ts",
  "core/define_plugin.ts",
  "core/errors.ts",
  "core/paging.ts",
  "mod.ts",
];

function isTestFile(path: string): boolean {
  const base = path.split("/").at(-1)!;
  return base.endsWith("_test.ts") || base.startsWith("_test") || base.startsWith("_fake");
}

function imports(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s+"([^"]+)"/g)) {
    out.push(m[1]!);
  }
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+"([^"]+)"/g)) out.push(m[1]!);
  return out;
}

function repoRelative(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  return relative(REPO_ROOT, resolve(dirname(from), spec));
}

Deno.test("layering: plugins import only the public plugin API; only host ports import ffi/", () => {
  const problems: string[] = [];
  for (const file of listFiles(join(REPO_ROOT, "plugins"), [".ts"])) {
    if (isTestFile(file)) continue;
    const rel = relative(REPO_ROOT, file);
    const ownFolder = rel.split("/").slice(0, 3).join("/");
    for (const spec of imports(file)) {
      const target = repoRelative(file, spec);
      if (target === undefined) {
        if (!spec.startsWith("node:") && !spec.startsWith("npm:") && spec.includes("/")) {
          problems.push(`${rel}: imports "${spec}"`);
        }
        continue;
      }
      if (target.startsWith(ownFolder + "/")) continue;
      if (PUBLIC_API.includes(target) || target.startsWith("core/virtio/")) continue;
      if (target.startsWith("ffi/") && rel.startsWith("plugins/hostports/")) continue;
      problems.push(`${rel}: imports ${target}`);
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("layering: core does not import plugins or images statically", () => {
  const problems: string[] = [];
  for (const file of listFiles(join(REPO_ROOT, "core"), [".ts"])) {
    if (isTestFile(file)) continue;
    const rel = relative(REPO_ROOT, file);
    // The CLI and the comparison runner build images for the user; the rest of core may not.
    const mayUseImages = rel.startsWith("core/cli/") || rel.startsWith("core/compare/");
    for (const spec of imports(file)) {
      const target = repoRelative(file, spec);
      if (target === undefined) continue;
      if (target.startsWith("plugins/")) problems.push(`${rel}: imports ${target}`);
      if (target.startsWith("images/") && !mayUseImages) problems.push(`${rel}: imports ${target}`);
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("layering: no circular imports among the project's modules", () => {
  const graph = new Map<string, string[]>();
  const roots = ["core", "plugins", "ffi", "images"].map((d) => join(REPO_ROOT, d));
  const files = [join(REPO_ROOT, "mod.ts"), ...roots.flatMap((r) => listFiles(r, [".ts"]))];
  for (const file of files) {
    graph.set(
      file,
      imports(file).filter((s) => s.startsWith(".")).map((s) => resolve(dirname(file), s)),
    );
  }
  const state = new Map<string, "visiting" | "done">();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    const st = state.get(f);
    if (st === "done") return;
    if (st === "visiting") {
      cycles.push(
        [...path.slice(path.indexOf(f)), f].map((p) => relative(REPO_ROOT, p)).join(
          " -> ",
        ),
      );
      return;
    }
    state.set(f, "visiting");
    for (const d of graph.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, "done");
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});
