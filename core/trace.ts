/**
 * `--trace`: one compact line per event on stderr, by category. Disabled categories cost one
 * boolean check at the call site (`if (tracer.io) tracer.line(...)`).
 *
 * @module
 */

import type { ExitKindCode, ExitRecord } from "./api/mod.ts";
import { ExitKind } from "./api/mod.ts";
import { hex, VmonError } from "./errors.ts";

/** The trace categories (`all` enables every one): the one list, the CLI's included. */
export const TRACE_CATEGORIES = ["exits", "io", "mmio", "sbi", "plugins"] as const;

/** One trace category. */
export type TraceCategory = typeof TRACE_CATEGORIES[number];

/** Every word a trace spec accepts: the categories, then `all`. */
export const TRACE_WORDS: readonly string[] = [...TRACE_CATEGORIES, "all"];

/** Exit kind names as used in stats and traces, indexed by {@linkcode ExitKind} code. */
export const EXIT_KIND_NAMES: Readonly<Record<ExitKindCode, string>> = {
  [ExitKind.Io]: "io",
  [ExitKind.Mmio]: "mmio",
  [ExitKind.Halt]: "hlt",
  [ExitKind.Shutdown]: "shutdown",
  [ExitKind.FailEntry]: "fail_entry",
  [ExitKind.InternalError]: "internal_error",
  [ExitKind.SystemEvent]: "system_event",
  [ExitKind.Hypercall]: "hypercall",
  [ExitKind.Interrupted]: "interrupted",
  [ExitKind.Debug]: "debug",
  [ExitKind.Paging]: "paging",
  [ExitKind.Unknown]: "unknown",
};

/** The name of an exit kind code (`io`, `hlt`, ...), or `kind<n>` for codes vmon does not know. */
export function exitKindName(kind: number): string {
  return EXIT_KIND_NAMES[kind as ExitKindCode] ?? `kind${kind}`;
}

/**
 * Parses `--trace` values: category names separated by commas (or given as several strings),
 * `all` for every category; case and spaces around names do not matter, empty names are
 * skipped. An empty list enables nothing. The CLI's `--trace` check is this function.
 *
 * @param spec `"io,mmio"`, `["io", "sbi"]` or `"all"`.
 * @param options `what` names the spec in the error (default `trace spec`; the CLI passes
 * `--trace`).
 * @returns The enabled categories, in the order first named (`all`: in list order).
 * @throws {VmonError} For an unknown category:
 * `Invalid <what> "<spec>": unknown category "<name>" (known: <TRACE_WORDS>)`.
 *
 * @example
 * ```ts
 * import { parseTraceSpec } from "./trace.ts";
 * const cats = parseTraceSpec("io, sbi");
 * if (!cats.has("io") || cats.has("mmio")) throw new Error("bad parse");
 * ```
 */
export function parseTraceSpec(
  spec: string | readonly string[],
  options: { what?: string } = {},
): Set<TraceCategory> {
  const out = new Set<TraceCategory>();
  const names = (typeof spec === "string" ? [spec] : spec).flatMap((s) => s.split(","))
    .map((s) => s.trim()).filter((s) => s !== "");
  for (const name of names) {
    const w = name.toLowerCase();
    if (w === "all") {
      for (const c of TRACE_CATEGORIES) out.add(c);
    } else if ((TRACE_CATEGORIES as readonly string[]).includes(w)) {
      out.add(w as TraceCategory);
    } else {
      const text = typeof spec === "string" ? spec : spec.join(",");
      throw new VmonError(
        `Invalid ${options.what ?? "trace spec"} "${text}": unknown category "${name}" (known: ${
          TRACE_WORDS.join(", ")
        })`,
      );
    }
  }
  return out;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  const bytes = encoder.encode(line + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
}

/**
 * The tracer. Each category is a plain boolean field so the exit path checks it before building
 * any string; `line` is only called when the category is on.
 *
 * @example
 * ```ts
 * import { Tracer } from "./trace.ts";
 * const lines: string[] = [];
 * const t = new Tracer("io", { write: (l) => lines.push(l) });
 * if (t.io) t.line(0, "io out 0x3f8 size 1 = 0x48 -> uart16550");
 * if (t.mmio) t.line(0, "never built");
 * if (lines[0] !== "[vcpu0] io out 0x3f8 size 1 = 0x48 -> uart16550") throw new Error(lines[0]);
 * ```
 */
export class Tracer {
  /** Every exit, one line each (kind, pc, detail). */
  readonly exits: boolean;
  /** Port I/O accesses and who handled them. */
  readonly io: boolean;
  /** MMIO accesses and who handled them. */
  readonly mmio: boolean;
  /** Hypercalls and SBI calls with their results. */
  readonly sbi: boolean;
  /** Plugin debug messages (`Logger.debug`). */
  readonly plugins: boolean;
  /** True when any category is on. */
  readonly enabled: boolean;
  #write: (line: string) => void;

  /**
   * Creates a tracer with the categories named in `spec` enabled.
   *
   * @param spec The `--trace` value(s); see {@linkcode parseTraceSpec}.
   * @param options `write` receives each line (default: stderr).
   */
  constructor(
    spec: string | readonly string[] = [],
    options: { write?: (line: string) => void } = {},
  ) {
    const cats = parseTraceSpec(spec);
    this.exits = cats.has("exits");
    this.io = cats.has("io");
    this.mmio = cats.has("mmio");
    this.sbi = cats.has("sbi");
    this.plugins = cats.has("plugins");
    this.enabled = cats.size > 0;
    this.#write = options.write ?? writeStderr;
  }

  /** The enabled categories. */
  get categories(): TraceCategory[] {
    return TRACE_CATEGORIES.filter((c) => this[c]);
  }

  /** Prints `[vcpu<n>] <text>`. Callers check the category first. */
  line(vcpu: number, text: string): void {
    this.#write(`[vcpu${vcpu}] ${text}`);
  }

  /** Prints `[<plugin>] <text>` for plugin messages (category `plugins`). */
  plugin(name: string, text: string): void {
    this.#write(`[${name}] ${text}`);
  }

  /** Prints one exit (category `exits`): `[vcpu0] exit hlt pc=0x1000`. */
  exit(vcpu: number, exit: ExitRecord): void {
    let text = `exit ${exitKindName(exit.kind)}`;
    switch (exit.kind) {
      case ExitKind.Io:
      case ExitKind.Mmio:
        text += ` ${exit.isWrite ? "write" : "read"} ${hex(exit.address)} size ${exit.size}`;
        if (exit.kind === ExitKind.Io && exit.count > 1) text += ` count ${exit.count}`;
        break;
      case ExitKind.Hypercall:
        text += ` nr ${hex(exit.nr)} fid ${exit.fid}`;
        break;
      case ExitKind.InternalError:
      case ExitKind.FailEntry:
      case ExitKind.SystemEvent:
        text += ` code ${exit.code}`;
        break;
    }
    text += ` pc=${hex(exit.pc)}`;
    if (exit.detail !== "" && exit.kind !== ExitKind.Io && exit.kind !== ExitKind.Mmio) {
      text += ` ${exit.detail}`;
    }
    this.#write(`[vcpu${vcpu}] ${text}`);
  }
}

/** A tracer with every category off (the default: zero cost). */
export const NO_TRACE: Tracer = new Tracer([]);
