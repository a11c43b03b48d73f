// The C files of ffi/rv64 call one another one way (ffi/README.md, "C layering"): this test scans
// them for which file defines each non-static function and which files use it, and fails on a
// cycle between files, on a call that goes up or sideways in the layer table below, and on an
// #include cycle. The paging mechanism (shadow.c) is reached only through the hooks of
// rv64_paging_ops, which are no calls by name, so they are no edges here.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { listFiles, REPO_ROOT } from "../../core/cache.ts";

const DIR = join(REPO_ROOT, "ffi", "rv64");
const COMMON = join(REPO_ROOT, "ffi", "common");

/**
 * The layers, bottom first; a file may use only functions of files in lower layers. Keep in step
 * with the table in ffi/README.md and the comment above the declarations in rv64.h.
 */
const LAYERS: Readonly<Record<string, number>> = {
  "trap.c": 0, // raising traps and exits; translation modes
  "decode.c": 0, // instruction decoding
  "jit_x86_64.c": 0, // the translator's x86-64 backend (encoder, lowering of a block)
  "mmu.c": 1, // memory, translation, TLBs, slow paths
  "fpu.c": 1, // floating point
  "jit.c": 2, // the block translator: tables, blocks, code cache (jit.h)
  "shadow.c": 2, // the paging mechanism, beside the translator (behind rv64_paging_ops)
  "cpu.c": 3, // the interpreter
  "jit.h": 3, // the translator's inline lookup, part of the interpreter's jumps
  "api.c": 4, // the exported API
};

/** C source without comments (line structure kept). */
function stripComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/\/\/[^\n]*/g, "");
}

/** C source without comments and string/char literals (line structure kept). */
function stripC(text: string): string {
  return stripComments(text)
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\\n]|\\.)*'/g, "' '");
}

/** A C file split into its preprocessor directives and the code outside them. */
function splitDirectives(text: string): { code: string; directives: string[] } {
  const lines = stripC(text).split("\n");
  const code: string[] = [];
  const directives: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*#/.test(lines[i]!)) {
      code.push(lines[i]!);
      continue;
    }
    let d = lines[i]!;
    code.push("");
    while (d.endsWith("\\") && i + 1 < lines.length) {
      d = d.slice(0, -1) + " " + lines[++i]!;
      code.push("");
    }
    directives.push(d);
  }
  return { code: code.join("\n"), directives };
}

interface Scan {
  /** Non-static functions defined in the file. */
  readonly exported: Set<string>;
  /** Static functions defined in the file. */
  readonly local: Set<string>;
  /** Identifiers used inside function bodies, initializers and macro bodies. */
  readonly used: Set<string>;
  /** `#include "..."` targets. */
  readonly includes: string[];
}

function scan(path: string): Scan {
  const { code, directives } = splitDirectives(Deno.readTextFileSync(path));
  const exported = new Set<string>();
  const local = new Set<string>();
  const used = new Set<string>();
  const includes: string[] = [];
  const raw = stripComments(Deno.readTextFileSync(path));
  for (const m of raw.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) includes.push(m[1]!);
  for (const d of directives) {
    const def = /^\s*#\s*define\s+\w+(?:\([^)]*\))?(.*)$/.exec(d);
    if (def) { for (const m of def[1]!.matchAll(/\b[A-Za-z_]\w*\b/g)) used.add(m[0]); }
  }
  let depth = 0;
  let segment = ""; // top-level text since the last `;` or `}` at depth 0
  let body = "";
  for (const ch of code) {
    if (depth === 0) {
      if (ch === "{") {
        // `<type> name(<parameters>) {` at file level is a function definition
        const head = segment.trimEnd();
        if (head.endsWith(")")) {
          const name = /([A-Za-z_]\w*)\s*$/.exec(head.slice(0, openParen(head)))?.[1];
          if (name !== undefined) (/\bstatic\b/.test(head) ? local : exported).add(name);
        }
        depth = 1;
        body = "";
        continue;
      }
      if (ch === ";") segment = "";
      else segment += ch;
      continue;
    }
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    if (depth === 0) {
      for (const m of body.matchAll(/\b[A-Za-z_]\w*\b/g)) used.add(m[0]);
      segment = "";
      continue;
    }
    body += ch;
  }
  return { exported, local, used, includes };
}

/** Index of the `(` matching the final `)` of `head` (or head.length when there is none). */
function openParen(head: string): number {
  if (!head.endsWith(")")) return head.length;
  let level = 0;
  for (let i = head.length - 1; i >= 0; i--) {
    if (head[i] === ")") level++;
    if (head[i] === "(" && --level === 0) return i;
  }
  return head.length;
}

const files = listFiles(DIR, [".c", ".h"]).filter((p) => dirname(p) === DIR);
const scans = new Map(files.map((p) => [basename(p), scan(p)]));

/** Who defines each non-static function. */
const definedIn = new Map<string, string>();
for (const [file, s] of scans) for (const fn of s.exported) definedIn.set(fn, file);

/** file -> (file it uses -> the functions it uses there). */
const edges = new Map<string, Map<string, string[]>>();
for (const [file, s] of scans) {
  const out = new Map<string, string[]>();
  for (const id of s.used) {
    const owner = definedIn.get(id);
    if (owner === undefined || owner === file || s.local.has(id)) continue;
    out.set(owner, [...(out.get(owner) ?? []), id].sort());
  }
  edges.set(file, out);
}

/** The cycles of a graph, each as a path that ends where it starts. */
function cycles(graph: ReadonlyMap<string, Iterable<string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    stack.push(n);
    for (const next of graph.get(n) ?? []) {
      if (state.get(next) === "open") found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n)) visit(n);
  return found;
}

function describe(path: string[]): string {
  return path.slice(0, -1).map((f, i) => {
    const to = path[i + 1]!;
    return `${f} -> ${to} (${edges.get(f)?.get(to)?.join(", ") ?? "#include"})`;
  }).join("; ");
}

Deno.test("rv64 layering: the scanner sees definitions, statics and uses", () => {
  assertEquals(definedIn.get("rv64_walk"), "mmu.c");
  assertEquals(definedIn.get("rv64_trap"), "trap.c");
  assertEquals(definedIn.get("rv64_paging_mode"), "shadow.c");
  assert(scans.get("shadow.c")!.local.has("shadow_translate"), "static functions are local");
  assert(!definedIn.has("rv64_pt_protected"), "a static inline in a header is no definition");
  assert(edges.get("cpu.c")!.get("mmu.c")!.includes("rv64_load_slow"), "calls in macro bodies");
  assert(edges.get("shadow.c")!.get("mmu.c")!.includes("rv64_walk"));
  assert(edges.get("api.c")!.has("cpu.c"));
});

Deno.test("rv64 layering: no call cycle between files", () => {
  const graph = new Map([...edges].map(([f, out]) => [f, [...out.keys()]]));
  assertEquals(cycles(graph).map(describe), []);
});

Deno.test("rv64 layering: every call goes to a lower layer (ffi/README.md)", () => {
  const wrong: string[] = [];
  for (const [file, out] of edges) {
    for (const [to, fns] of out) {
      const from = LAYERS[file], target = LAYERS[to];
      if (from === undefined || target === undefined) {
        wrong.push(`${file} -> ${to}: put ${from === undefined ? file : to} in LAYERS`);
      } else if (target >= from) {
        wrong.push(`${file} (layer ${from}) -> ${to} (layer ${target}): ${fns.join(", ")}`);
      }
    }
  }
  for (const file of scans.keys()) {
    if (file.endsWith(".c") && LAYERS[file] === undefined) wrong.push(`${file} is not in LAYERS`);
  }
  assertEquals(wrong, []);
});

Deno.test("rv64 layering: the interpreter loop never reaches the paging hooks", () => {
  // The hooks are for slow paths: exec_block (the threaded interpreter with the TLB-hit paths
  // inline) must not mention m->paging; its slow paths go through mmu.c and exec_system.
  const source = stripC(Deno.readTextFileSync(join(DIR, "cpu.c")));
  const start = source.indexOf("static int exec_block(");
  const end = source.indexOf("\nstatic int exec_system(", start);
  assert(start > 0 && end > start, "cpu.c has exec_block followed by exec_system");
  assert(!/->\s*paging\b/.test(source.slice(start, end)), "exec_block uses m->paging");
});

Deno.test("rv64 layering: no #include cycle", () => {
  const resolve = (from: string, name: string): string | undefined => {
    for (const dir of [dirname(from), DIR, COMMON]) {
      const p = join(dir, name);
      try {
        if (Deno.statSync(p).isFile) return p;
      } catch {
        // not here
      }
    }
    return undefined;
  };
  const graph = new Map<string, string[]>();
  const todo = [...files];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (graph.has(file)) continue;
    const targets = scan(file).includes.map((n) => resolve(file, n)).filter((p) => p !== undefined);
    graph.set(file, targets);
    todo.push(...targets);
  }
  assert(graph.get(join(DIR, "rv64.h"))!.includes(join(COMMON, "exits.h")));
  assertEquals(cycles(graph).map((c) => c.map((p) => basename(p)).join(" -> ")), []);
});
