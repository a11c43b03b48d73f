/**
 * The comparison chart: grouped bars per workload (one bar per strategy variant) on log scales,
 * one panel per measure (traps per operation, guest instructions per operation, host wall time
 * per operation). Built as a Vega-Lite spec, compiled to Vega and rendered to SVG headlessly
 * with `view.toSVG()`.
 *
 * @module
 */

import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { CellSummary } from "./types.ts";

/** One panel of the chart. */
export interface ChartMeasure {
  /** The panel title. */
  readonly title: string;
  /** Picks the value from a cell (undefined: no bar). */
  readonly value: (cell: CellSummary) => number | undefined;
}

/** The panels {@linkcode renderChart} draws by default. */
export const CHART_MEASURES: readonly ChartMeasure[] = [
  { title: "strategy traps per operation", value: (c) => c.perOp["paging.traps"] },
  { title: "guest instructions per operation", value: (c) => c.perOp["hostport.instructions"] },
  { title: "host wall µs per operation", value: (c) => c.wallUsPerOp },
];

/** One bar. */
export interface ChartRow {
  /** The workload (x axis). */
  readonly workload: string;
  /** The strategy variant (colour and offset: the series). */
  readonly strategy: string;
  /** The panel. */
  readonly measure: string;
  /** The value (positive: the scales are logarithmic). */
  readonly value: number;
}

/**
 * The bars of the chart. Values that are zero, negative or missing cannot be drawn on a log
 * scale and are left out (the chart's subtitle says so).
 *
 * @param cells The aggregated cells.
 * @param measures The panels.
 */
export function chartRows(
  cells: readonly CellSummary[],
  measures: readonly ChartMeasure[] = CHART_MEASURES,
): ChartRow[] {
  const rows: ChartRow[] = [];
  for (const m of measures) {
    for (const c of cells) {
      const value = m.value(c);
      if (value === undefined || !Number.isFinite(value) || value <= 0) continue;
      rows.push({ workload: c.workload, strategy: c.variant, measure: m.title, value });
    }
  }
  return rows;
}

/**
 * The Vega-Lite spec of the chart.
 *
 * @param cells The aggregated cells.
 * @param options `title` of the chart; `measures`: the panels.
 */
export function chartSpec(
  cells: readonly CellSummary[],
  options: { title?: string; measures?: readonly ChartMeasure[] } = {},
): vegaLite.TopLevelSpec {
  const measures = options.measures ?? CHART_MEASURES;
  const workloads = [...new Set(cells.map((c) => c.workload))];
  const strategies = [...new Set(cells.map((c) => c.variant))];
  const rows = chartRows(cells, measures);
  const width = Math.max(240, workloads.length * Math.max(1, strategies.length) * 18);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: options.title ?? "vmon: paging strategies compared",
      subtitle: "log scales; zero values are not drawn",
    },
    vconcat: measures.map((m) => {
      const values = rows.filter((r) => r.measure === m.title);
      const min = Math.min(...values.map((r) => r.value));
      // Bars grow from the bottom of the scale: start it at the power of ten just below the
      // smallest value so that the smallest bar is visible.
      const floor = Number.isFinite(min) ? 10 ** Math.floor(Math.log10(min * 0.99)) : 1;
      return {
        title: { text: m.title, anchor: "start", fontSize: 12 },
        data: { values: values as unknown as Record<string, unknown>[] },
        width,
        height: 160,
        mark: { type: "bar", tooltip: true },
        encoding: {
          x: {
            field: "workload",
            type: "nominal",
            sort: workloads,
            title: null,
            axis: { labelAngle: 0 },
          },
          xOffset: { field: "strategy", type: "nominal", sort: strategies },
          y: {
            field: "value",
            type: "quantitative",
            scale: { type: "log", domainMin: floor },
            stack: null,
            title: null,
          },
          color: {
            field: "strategy",
            type: "nominal",
            sort: strategies,
            title: "strategy",
            scale: { domain: strategies },
          },
        },
      };
    }),
    resolve: { scale: { color: "shared" } },
  };
}

/**
 * Renders the chart to an SVG document.
 *
 * @param cells The aggregated cells.
 * @param options `title` of the chart.
 * @returns The SVG text.
 *
 * @example
 * ```ts
 * import { renderChart } from "./chart.ts";
 *
 * const svg = await renderChart([{
 *   workload: "forkwait", variant: "shadow", strategy: "shadow", n: 8, ops: 7, op: "fork",
 *   repeats: 1, machineMsMedian: 900, perOp: { "paging.traps": 40, "hostport.instructions": 9000 },
 *   totals: {},
 *   deterministic: true,
 * }]);
 * if (!svg.startsWith("<svg") || !svg.includes("shadow")) throw new Error("no chart");
 * ```
 */
export async function renderChart(
  cells: readonly CellSummary[],
  options: { title?: string } = {},
): Promise<string> {
  const compiled = vegaLite.compile(chartSpec(cells, options)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
