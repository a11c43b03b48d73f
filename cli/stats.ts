/**
 * `--stats` output: the exit counters of a finished machine as tables on stderr, or one JSON
 * object on stdout.
 *
 * @module
 */

import Table from "cli-table3";
import type { MachineExit, MachineStats } from "../core/api/mod.ts";
import { tableStyle } from "./listing_format.ts";

function sortedEntries(record: Record<string, number>): Array<[string, number]> {
  return Object.entries(record).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** Drops zero counters, noting how many were hidden. */
function nonZero(record: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  let hidden = 0;
  for (const [name, value] of Object.entries(record)) {
    if (value !== 0) out[name] = value;
    else hidden++;
  }
  if (hidden > 0) out[`(${hidden} zero counters hidden)`] = 0;
  return out;
}

function countTable(title: string, record: Record<string, number>): string {
  const table = new Table({
    head: [title, "count"],
    colAligns: ["left", "right"],
    style: tableStyle(Deno.stderr),
  });
  const entries = sortedEntries(record);
  if (entries.length === 0) table.push(["(none)", ""]);
  for (const [name, value] of entries) {
    table.push([name, name.startsWith("(") ? "" : value.toLocaleString("en-US")]);
  }
  return table.toString();
}

/**
 * Formats a machine's statistics as text tables: exits by kind, exits by plugin, plugin metrics,
 * host port counters (zero counters hidden; `--stats=json` has them all) and wall time.
 *
 * @param stats The counters from {@linkcode MachineExit.stats}.
 * @returns The tables, separated by blank lines.
 *
 * @example
 * ```ts
 * import { formatStatsTable } from "./stats.ts";
 *
 * const text = formatStatsTable({
 *   exits: { io: 3, hlt: 1 },
 *   plugins: { uart16550: 3 },
 *   metrics: {},
 *   hostport: {},
 *   wallMs: 12.5,
 * });
 * if (!text.includes("uart16550")) throw new Error("plugin row missing");
 * ```
 */
export function formatStatsTable(stats: MachineStats): string {
  const parts = [
    countTable("exit kind", stats.exits),
    countTable("plugin (exits handled)", stats.plugins),
  ];
  const metricRows: Record<string, number> = {};
  for (const [plugin, counters] of Object.entries(stats.metrics)) {
    for (const [name, value] of Object.entries(counters)) metricRows[`${plugin}: ${name}`] = value;
  }
  if (Object.keys(metricRows).length > 0) {
    parts.push(countTable("plugin metric", nonZero(metricRows)));
  }
  if (Object.keys(stats.hostport).length > 0) {
    parts.push(countTable("host port counter", nonZero(stats.hostport)));
  }
  parts.push(`wall time: ${stats.wallMs.toFixed(1)} ms`);
  return parts.join("\n");
}

/**
 * The JSON object `--stats=json` prints on stdout after the run: status, reason, failed and the
 * counters.
 *
 * @param exit How the machine ended.
 * @returns One line of JSON.
 */
export function formatStatsJson(exit: MachineExit): string {
  return JSON.stringify({
    status: exit.status,
    reason: exit.reason,
    failed: exit.failed,
    stats: exit.stats,
  });
}
