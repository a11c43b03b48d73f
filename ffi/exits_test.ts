// The exit codes shared by C and TypeScript are written once in C (ffi/common/exits.h) and once in
// TypeScript (core/api/): this test parses the header and fails unless both agree exactly, so a
// change to one side alone fails the suite. It also checks that no backend defines exit kinds of
// its own, and the few rv64 constants that symbols.ts repeats from rv64.h.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { listFiles, REPO_ROOT } from "../core/cache.ts";
import { ExitKind, PagingTrapCode, SystemEventType } from "../core/api/mod.ts";
import { EXIT_U64 } from "./kvm/symbols.ts";
import {
  COUNTER_NAMES,
  PAGING_COUNTER_NAMES,
  PagingExitCode,
  PagingMode,
  QUEUE_SLOTS,
} from "./rv64/symbols.ts";

const FFI = join(REPO_ROOT, "ffi");

/** C source without comments and string literals (kept the same length on each line). */
function stripC(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, " "))
    .replace(/\/\/[^\n]*/g, "")
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '""');
}

/**
 * One enum of a C file: its tag (or undefined) and its enumerators with their values; `parsed`
 * is false when an enumerator is not `NAME` or `NAME = <integer>` (macros, expressions).
 */
interface CEnum {
  readonly tag: string | undefined;
  readonly values: ReadonlyMap<string, number>;
  readonly parsed: boolean;
}

/** The enums of a C file. */
function enums(source: string): CEnum[] {
  const out: CEnum[] = [];
  for (const m of stripC(source).matchAll(/\benum\s+(\w+)?\s*\{([^}]*)\}/g)) {
    const values = new Map<string, number>();
    let next = 0, parsed = true;
    for (const item of m[2]!.split(",").map((s) => s.trim()).filter((s) => s !== "")) {
      const e = /^(\w+)(?:\s*=\s*(0x[0-9a-fA-F]+|\d+))?$/.exec(item);
      if (e === null) {
        parsed = false;
        break;
      }
      const value = e[2] === undefined ? next : Number(e[2]);
      values.set(e[1]!, value);
      next = value + 1;
    }
    out.push({ tag: m[1], values, parsed });
  }
  return out;
}

/** `#define NAME <integer>` of a C file. */
function defines(source: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of stripC(source).matchAll(/^#define\s+(\w+)\s+(0x[0-9a-fA-F]+|\d+)\s*$/gm)) {
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * The naming rule of exits.h: the prefix, then the TypeScript key in upper snake case (a capital
 * after a lower-case letter or digit starts a new word): `FailEntry` -> `VMON_EXIT_FAIL_ENTRY`.
 */
function cName(prefix: string, key: string): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

function mirror(table: Readonly<Record<string, number>>, prefix: string): Map<string, number> {
  return new Map(Object.entries(table).map(([k, v]) => [cName(prefix, k), v]));
}

function sorted(map: ReadonlyMap<string, number>): [string, number][] {
  return [...map].sort((a, b) => a[0].localeCompare(b[0]));
}

const EXITS_H = Deno.readTextFileSync(join(FFI, "common", "exits.h"));

function taggedEnum(tag: string): ReadonlyMap<string, number> {
  const found = enums(EXITS_H).filter((e) => e.tag === tag);
  assertEquals(found.length, 1, `ffi/common/exits.h must define enum ${tag} once`);
  assert(found[0]!.parsed, `enum ${tag}: every enumerator is NAME = <integer>`);
  return found[0]!.values;
}

Deno.test("exits.h: the naming rule", () => {
  assertEquals(cName("VMON_EXIT_", "Io"), "VMON_EXIT_IO");
  assertEquals(cName("VMON_EXIT_", "FailEntry"), "VMON_EXIT_FAIL_ENTRY");
  assertEquals(cName("VMON_PAGING_", "PtWrite"), "VMON_PAGING_PT_WRITE");
  assertEquals(cName("PMODE_", "queued"), "PMODE_QUEUED");
});

Deno.test("exits.h: enum vmon_exit_kind is ExitKind", () => {
  assertEquals(sorted(taggedEnum("vmon_exit_kind")), sorted(mirror(ExitKind, "VMON_EXIT_")));
});

Deno.test("exits.h: enum vmon_system_event is SystemEventType", () => {
  assertEquals(
    sorted(taggedEnum("vmon_system_event")),
    sorted(mirror(SystemEventType, "VMON_SYSTEM_EVENT_")),
  );
});

Deno.test("exits.h: enum vmon_paging_trap is PagingTrapCode (rv64's PagingExitCode)", () => {
  assertEquals(
    sorted(taggedEnum("vmon_paging_trap")),
    sorted(mirror(PagingTrapCode, "VMON_PAGING_")),
  );
  assertEquals(PagingExitCode, PagingTrapCode);
});

Deno.test("exits.h: the C-only values stay outside the mirrored range", () => {
  const d = defines(EXITS_H);
  const kinds = Object.values(ExitKind);
  assertEquals(d.get("VMON_EXIT_NONE"), 0);
  assert(!kinds.includes(0 as never), "0 is VMON_EXIT_NONE, never an ExitKind");
  assert(Math.max(...kinds) < d.get("VMON_EXIT_KINDS")!, "every kind fits the count arrays");
  // The KVM exit record's per-kind counts array has VMON_EXIT_KINDS words (symbols.ts layout).
  assertEquals(EXIT_U64.runs - EXIT_U64.counts, d.get("VMON_EXIT_KINDS"));
});

Deno.test("exits.h: no backend defines exit kinds, system events or paging traps of its own", () => {
  const suffixes = [
    ...Object.keys(ExitKind).map((k) => cName("EXIT_", k)),
    ...Object.keys(SystemEventType).map((k) => cName("SYSTEM_EVENT_", k)),
    ...Object.keys(PagingTrapCode).map((k) => cName("PAGING_", k)),
  ];
  const files = listFiles(FFI, [".c", ".h"]).filter((p) => !p.endsWith("/common/exits.h"));
  assert(files.some((p) => p.endsWith("/rv64/rv64.h")) && files.some((p) => p.endsWith(".c")));
  const own: string[] = [];
  for (const file of files) {
    const text = stripC(Deno.readTextFileSync(file));
    for (const s of suffixes) {
      const re = new RegExp(`(?:#define\\s+\\w*\\b${s}\\b|\\b\\w*${s}\\s*=[^=])`);
      if (re.test(text)) own.push(`${file.slice(REPO_ROOT.length + 1)}: ${s}`);
    }
  }
  assertEquals(own, [], "define them in ffi/common/exits.h only");
  for (const header of ["kvm/kvm_internal.h", "rv64/rv64.h"]) {
    const text = Deno.readTextFileSync(join(FFI, header));
    assert(text.includes('#include "exits.h"'), `ffi/${header} must include exits.h`);
  }
});

Deno.test("rv64.h: the constants symbols.ts repeats", () => {
  const source = Deno.readTextFileSync(join(FFI, "rv64", "rv64.h"));
  const all = enums(source).filter((e) => e.parsed);
  const pmode = all.find((e) => [...e.values.keys()].some((k) => k.startsWith("PMODE_")));
  assert(pmode, "rv64.h defines the PMODE_* enum");
  assertEquals(sorted(pmode.values), sorted(mirror(PagingMode, "PMODE_")));
  assertEquals(defines(source).get("PQ_SLOTS"), QUEUE_SLOTS);
  const count = (name: string) => all.find((e) => e.values.has(name))?.values.get(name);
  assertEquals(count("CNT_COUNT"), COUNTER_NAMES.length, "CNT_* against COUNTER_NAMES");
  assertEquals(count("PC_COUNT"), PAGING_COUNTER_NAMES.length, "PC_* against PAGING_COUNTER_NAMES");
});
