/**
 * The comparison as text tables (cli-table3): one table per workload, one column per strategy
 * variant, one row per measure: host wall time, guest time and every counter per operation.
 *
 * @module
 */

import Table from "cli-table3";
import { costFootnote, type CostProfile } from "./cost_model.ts";
import { counterLabel, KNOWN_COUNTERS, orderCounterKeys } from "./counters.ts";
import { counterKey } from "./counters.ts";
import { variantsFor } from "./pv.ts";
import type { CellSummary, Variant, WorkloadRun } from "./types.ts";

/** The row of the `pv-update` table that shows traps falling as 1/batch. */
export const TRAPS_TIMES_BATCH = "traps × batch size";

/**
 * Formats a per-operation value for a table: whole numbers from 100 up (with thousands
 * separators), then 1 or 2 decimals, and 3 significant digits below 1.
 *
 * @param value The value.
 *
 * @example
 * ```ts
 * import { formatValue } from "./table.ts";
 *
 * const got = [0, 0.01234, 1.5, 12.34, 123456.7].map(formatValue).join(" ");
 * if (got !== "0 0.0123 1.50 12.3 123,457") throw new Error(got);
 * ```
 */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return "-";
  if (value === 0) return "0";
  const a = Math.abs(value);
  if (a >= 100) return Math.round(value).toLocaleString("en-US");
  if (a >= 10) return value.toFixed(1);
  if (a >= 1) return value.toFixed(2);
  return Number(value.toPrecision(3)).toString();
}

/** Options of {@linkcode formatTables}. */
export interface TableOptions {
  /** cli-table3 style (`{ head: [], border: [] }` for plain output). */
  readonly style?: { head?: string[]; border?: string[] };
  /**
   * The profile the cells were projected on (`projectCells`): its costs and their sources are
   * printed as a footnote after the tables.
   */
  readonly costModel?: CostProfile;
}

/** Fewest traps per operation for which the table shows host µs per trap over wired. */
export const MIN_TRAPS_FOR_OVERHEAD = 0.5;

/**
 * Host microseconds per trap a strategy adds over `wired`: its wall time per operation minus
 * wired's, over its traps per operation; undefined below {@linkcode MIN_TRAPS_FOR_OVERHEAD}
 * traps per operation (the difference would be noise) or without both wall times.
 *
 * @param cell The strategy's cell.
 * @param wired The `wired` cell of the same workload.
 */
export function overheadPerTrap(
  cell: CellSummary,
  wired: CellSummary | undefined,
): number | undefined {
  const traps = cell.perOp["paging.traps"] ?? 0;
  if (wired === undefined || cell === wired || traps < MIN_TRAPS_FOR_OVERHEAD) return undefined;
  if (cell.wallUsPerOp === undefined || wired.wallUsPerOp === undefined) return undefined;
  return (cell.wallUsPerOp - wired.wallUsPerOp) / traps;
}

const KNOWN_KEYS = new Set(KNOWN_COUNTERS.map((c) => counterKey(c.source, c.name)));

/**
 * Renders one table per workload. Known counters always have a row; any other counter a
 * strategy reports has a row when it is non-zero somewhere (other host port counters are only in
 * results.json); `-` marks a counter a strategy does
 * not report. Cells without a successful run show `failed`; a column whose counters differed
 * between repeats is marked in the `deterministic` row. Each workload has the columns of
 * {@linkcode variantsFor}: `pv-update` those of `--batch`, with a row {@linkcode TRAPS_TIMES_BATCH}
 * (about constant when traps per update fall as 1/batch).
 *
 * @param cells The aggregated cells.
 * @param matrix The workloads and variants (the order of tables and columns).
 * @param options Table style.
 * @returns The tables, separated by blank lines.
 */
export function formatTables(
  cells: readonly CellSummary[],
  matrix: { readonly workloads: readonly WorkloadRun[]; readonly variants: readonly Variant[] },
  options: TableOptions = {},
): string {
  const parts: string[] = [];
  for (const w of matrix.workloads) {
    const variants = variantsFor(w, matrix.variants);
    if (variants.length === 0) continue;
    const row = variants.map((v) => cells.find((c) => c.workload === w.name && c.variant === v.id));
    const present = row.filter((c): c is CellSummary => c !== undefined);
    const base = present[0]?.baseN;
    const title = w.kind === "pv"
      ? `${w.name} (pv-guest, N=${w.n}${
        present[0] !== undefined ? `, ${present[0].ops} updates per run` : ""
      }): per ${w.op}`
      : `${w.name} (N=${w.n}${base !== undefined ? `, baseline N=${base}` : ""}): per ${w.op}`;
    const table = new Table({
      head: [title, ...variants.map((v) => v.id)],
      colAligns: ["left", ...variants.map(() => "right" as const)],
      ...(options.style ? { style: options.style } : {}),
    });
    const line = (label: string, value: (c: CellSummary) => string) => {
      table.push([label, ...row.map((c) => c === undefined ? "failed" : value(c))]);
    };
    line("host wall µs (median)", (c) => formatValue(c.wallUsPerOp ?? NaN));
    line("guest clock µs", (c) => formatValue(c.guestUsPerOp ?? NaN));
    // Host time per trap: in the strategy's handlers by cause (its own implementation), and the
    // whole run's over wired (the exit round trips included).
    const causes = [...new Set(present.flatMap((c) => Object.keys(c.hostUsPerTrap ?? {})))]
      .sort((a, b) => a === "all" ? -1 : b === "all" ? 1 : a.localeCompare(b));
    for (const cause of causes) {
      line(
        cause === "all" ? "handler µs per trap" : `handler µs per trap: ${cause}`,
        (c) => formatValue(c.hostUsPerTrap?.[cause] ?? NaN),
      );
    }
    const wired = present.find((c) => c.variant === "wired");
    if (wired !== undefined && present.some((c) => overheadPerTrap(c, wired) !== undefined)) {
      line("host µs per trap over wired", (c) => formatValue(overheadPerTrap(c, wired) ?? NaN));
    }
    if (present.some((c) => c.projected !== undefined)) {
      const name = present.find((c) => c.projected !== undefined)!.projected!.profile;
      line(`projected µs (${name})`, (c) => formatValue(c.projected?.us ?? NaN));
      line("projected vs wired", (c) => {
        const r = c.projected?.vsWired;
        return r === undefined ? "-" : `${formatValue(r)}×`;
      });
    }
    const keys = orderCounterKeys(new Set(present.flatMap((c) => Object.keys(c.perOp))));
    for (const key of keys) {
      const show = KNOWN_KEYS.has(key) ||
        (key.startsWith("paging.") && present.some((c) => (c.perOp[key] ?? 0) !== 0));
      if (!show) continue;
      line(counterLabel(key), (c) => key in c.perOp ? formatValue(c.perOp[key]!) : "-");
    }
    if (w.kind === "pv") {
      // Traps per update times the batch size: about 1 at every size when traps fall as 1/batch.
      line(
        TRAPS_TIMES_BATCH,
        (c) =>
          c.batch !== undefined ? formatValue((c.perOp["paging.traps"] ?? NaN) * c.batch) : "-",
      );
    }
    line("repeats", (c) => String(c.repeats));
    line("deterministic", (c) => c.deterministic ? "yes" : "NO");
    parts.push(table.toString());
  }
  if (options.costModel !== undefined) parts.push(costFootnote(options.costModel).join("\n"));
  return parts.join("\n\n");
}
