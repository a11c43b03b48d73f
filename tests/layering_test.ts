/**
 * The project's layering rules (docs/DESIGN.md, "Layout"), checked on the source:
 * - folders depend one way: core <- plugins, images, testing <- lab <- cli, and `ffi/` sits
 *   beside core for the host ports alone. {@linkcode ALLOWED} is the whole rule, with no
 *   exception for any file;
 * - test files (`*_test.ts`, `_test*.ts`) may also use the test hosts (`testing/`) and, as
 *   integration tests, anything below them in the same way as the folder's code, plus the shared
 *   fixtures of `tests/`;
 * - plugin code imports only the public entry (`mod.ts`), its own folder, `node:` modules and npm
 *   packages; host ports may also import `ffi/`;
 * - no cycle between folders and no cycle between modules.
 */

import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { listFiles, REPO_ROOT } from "../core/cache.ts";

/** The top-level folders and the folders each may import from (its own always allowed). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  ffi: ["core"],
  plugins: ["core", "ffi"],
  images: ["core"],
  testing: ["core"],
  lab: ["core", "images", "testing"],
  cli: ["core", "images", "testing", "lab"],
  tests: ["core", "ffi", "plugins", "images", "testing", "lab", "cli"],
};

/** The public entry files; `mod.ts` at the top belongs to core. */
const TOP_FILES: Readonly<Record<string, string>> = { "mod.ts": "core" };

function isTestFile(path: string): boolean {
  const base = path.split("/").at(-1)!;
  return base.endsWith("_test.ts") || base.startsWith("_test");
}

function imports(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^"';]*?from\s+"([^"]+)"/g)) {
    out.push(m[1]!);
  }
  for (const m of text.matchAll(/(?:^|\n)\s*import\s+"([^"]+)"/g)) out.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g)) out.push(m[1]!);
  return out;
}

function folderOf(rel: string): string | undefined {
  return TOP_FILES[rel] ?? (rel.includes("/") ? rel.split("/")[0] : undefined);
}

function sourceFiles(): string[] {
  const roots = Object.keys(ALLOWED).map((d) => join(REPO_ROOT, d));
  return [
    ...Object.keys(TOP_FILES).map((f) => join(REPO_ROOT, f)),
    ...roots.flatMap((r) => listFiles(r, [".ts"])),
  ];
}

function repoTarget(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  return relative(REPO_ROOT, resolve(dirname(from), spec));
}

/** Every import of a project file that breaks {@linkcode ALLOWED}, as "from: imports target". */
export function layeringProblems(files: readonly string[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const rel = relative(REPO_ROOT, file);
    const from = folderOf(rel)!;
    const test = isTestFile(rel);
    for (const spec of imports(file)) {
      const target = repoTarget(file, spec);
      if (target === undefined) continue;
      const to = folderOf(target);
      if (to === undefined || to === from) continue;
      if (ALLOWED[from]?.includes(to)) continue;
      if (test && (to === "testing" || target.startsWith("tests/fixtures/"))) continue;
      problems.push(`${rel}: imports ${target}`);
    }
  }
  return problems;
}

Deno.test("layering: folders import only the folders below them", () => {
  assert.deepEqual(layeringProblems(sourceFiles()), []);
});

Deno.test("layering: the rule itself has no cycle between folders", () => {
  const visit = (folder: string, path: string[]): void => {
    assert.ok(!path.includes(folder), `cycle: ${[...path, folder].join(" -> ")}`);
    for (const next of ALLOWED[folder] ?? []) visit(next, [...path, folder]);
  };
  for (const folder of Object.keys(ALLOWED)) visit(folder, []);
});

Deno.test("layering: plugins import only the public entry; only host ports import ffi/", () => {
  const problems: string[] = [];
  for (const file of listFiles(join(REPO_ROOT, "plugins"), [".ts"])) {
    const rel = relative(REPO_ROOT, file);
    if (isTestFile(rel)) continue;
    const ownFolder = rel.split("/").slice(0, 3).join("/");
    for (const spec of imports(file)) {
      const target = repoTarget(file, spec);
      if (target === undefined) {
        if (!spec.startsWith("node:") && !spec.startsWith("npm:") && spec.includes("/")) {
          problems.push(`${rel}: imports "${spec}"`);
        }
        continue;
      }
      if (target.startsWith(ownFolder + "/") || target === "mod.ts") continue;
      if (target.startsWith("ffi/") && rel.startsWith("plugins/hostports/")) continue;
      problems.push(`${rel}: imports ${target}`);
    }
  }
  assert.deepEqual(problems, []);
});

Deno.test("layering: no circular imports among the project's modules", () => {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles()) {
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
        [...path.slice(path.indexOf(f)), f].map((p) => relative(REPO_ROOT, p)).join(" -> "),
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

Deno.test("layering: the checker catches an import against the direction", () => {
  const dir = Deno.makeTempDirSync({ dir: join(REPO_ROOT, "core"), prefix: "_layering_" });
  try {
    const bad = join(dir, "bad.ts");
    Deno.writeTextFileSync(bad, `import { main } from "../../cli/mod.ts";\nvoid main;\n`);
    assert.deepEqual(layeringProblems([bad]), [
      `${relative(REPO_ROOT, bad)}: imports cli/mod.ts`,
    ]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
