/**
 * Formatting of plugin listings (`vmon plugins`): one row per plugin with its options.
 *
 * @module
 */

import Table from "cli-table3";
import type { OptionSpec, OptionsSchema, PluginKind } from "../core/api/mod.ts";

/** The columns `vmon plugins` shows for one plugin. */
export interface PluginRow {
  /** The plugin's name. */
  readonly name: string;
  /** Its kind. */
  readonly kind: PluginKind;
  /** One line of description. */
  readonly description: string;
  /** Its options schema. */
  readonly options?: OptionsSchema;
}

/**
 * Table colours for a stream: cli-table3's default (red heads, grey borders) on a terminal, none
 * when the output is piped or `NO_COLOR` is set.
 *
 * @param stream Where the table goes (`Deno.stdout` or `Deno.stderr`).
 */
export function tableStyle(
  stream: { isTerminal(): boolean },
): { head?: string[]; border?: string[] } {
  let plain = true;
  try {
    plain = !stream.isTerminal() || Deno.env.get("NO_COLOR") !== undefined;
  } catch {
    plain = true;
  }
  return plain ? { head: [], border: [] } : {};
}

/** Kinds in listing order. */
export const KINDS: readonly PluginKind[] = ["hostport", "platform", "paging", "device"];

/** Formats one option as `name: type (default x) - description`. */
export function formatOption(name: string, spec: OptionSpec): string {
  const facts: string[] = [spec.type];
  if (spec.enum) facts.push(spec.enum.join("|"));
  if (spec.min !== undefined || spec.max !== undefined) {
    facts.push(`${spec.min ?? ""}..${spec.max ?? ""}`);
  }
  if (spec.required) facts.push("required");
  if (spec.default !== undefined) facts.push(`default ${String(spec.default)}`);
  return `${name} (${facts.join(", ")}): ${spec.description}`;
}

/**
 * Formats plugins as a table with kind, name, description and options, sorted by kind then name.
 *
 * @param rows The plugins.
 * @param options `width` is the terminal width used to wrap the description and option columns;
 *   `style` the colours (default none, see {@linkcode tableStyle}).
 * @returns The table text.
 *
 * @example
 * ```ts
 * import { formatPluginTable } from "./listing_format.ts";
 *
 * const text = formatPluginTable([{
 *   name: "counter",
 *   kind: "device",
 *   description: "Counts writes",
 *   options: { base: { type: "integer", description: "Port", default: 0x510 } },
 * }]);
 * if (!text.includes("base (integer, default 1296): Port")) throw new Error(text);
 * ```
 */
export function formatPluginTable(
  rows: readonly PluginRow[],
  options: { width?: number; style?: { head?: string[]; border?: string[] } } = {},
): string {
  const width = Math.max(options.width ?? 120, 80);
  const descWidth = Math.floor((width - 30) * 0.35);
  const optWidth = width - 30 - descWidth;
  const table = new Table({
    head: ["kind", "name", "description", "options"],
    colWidths: [10, 18, descWidth, optWidth],
    wordWrap: true,
    style: options.style ?? { head: [], border: [] },
  });
  const sorted = [...rows].sort((a, b) =>
    KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || a.name.localeCompare(b.name)
  );
  for (const row of sorted) {
    const opts = Object.entries(row.options ?? {}).map(([n, s]) => formatOption(n, s));
    table.push([row.kind, row.name, row.description, opts.length ? opts.join("\n") : "-"]);
  }
  return table.toString();
}
