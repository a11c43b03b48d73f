/**
 * The comparison chart: one row of small panels per measure (traps per operation, guest
 * instructions per operation, host wall time per operation, and with `--cost-model` the time
 * projected on hardware relative to wired), one panel per workload, one bar per
 * strategy variant with its value printed above it. Every panel has its own linear y axis that
 * starts at zero, so the length of a bar is its value and a 1.8% difference looks like 1.8%; the
 * printed values carry the exact numbers (as in the text table). Built as a Vega-Lite spec,
 * compiled to Vega and rendered to SVG headlessly with `view.toSVG()`.
 *
 * @module
 */

import * as vega from "vega";
import * as vegaLite from "vega-lite";
import { formatValue } from "./table.ts";
import type { CellSummary } from "./types.ts";

/** One row of panels of the chart. */
export interface ChartMeasure {
  /** The row title. */
  readonly title: string;
  /** Picks the value from a cell (undefined: no bar). */
  readonly value: (cell: CellSummary) => number | undefined;
}

/** The rows {@linkcode renderChart} draws by default. */
export const CHART_MEASURES: readonly ChartMeasure[] = [
  { title: "strategy traps per operation", value: (c) => c.perOp["paging.traps"] },
  { title: "guest instructions per operation", value: (c) => c.perOp["hostport.instructions"] },
  { title: "host wall µs per operation", value: (c) => c.wallUsPerOp },
  {
    title: "projected time on hardware relative to wired (--cost-model)",
    value: (c) => c.projected?.vsWired,
  },
];

/** One bar. */
export interface ChartRow {
  /** The workload (the panel). */
  readonly workload: string;
  /** The strategy variant (x position and colour: the series). */
  readonly strategy: string;
  /** The row of panels. */
  readonly measure: string;
  /** The value (any finite number; the axis is linear from zero). */
  readonly value: number;
  /** The value as the chart prints it above the bar (as the text table formats it). */
  readonly label: string;
}

/** Headroom above the tallest bar, for its printed value. */
const HEADROOM = 1.18;

/**
 * The bars of the chart: one per cell and measure with a finite value (zero included: it is
 * drawn as an empty bar labelled 0). Missing values (a strategy that does not report a counter)
 * have no bar.
 *
 * @param cells The aggregated cells.
 * @param measures The rows of panels.
 */
export function chartRows(
  cells: readonly CellSummary[],
  measures: readonly ChartMeasure[] = CHART_MEASURES,
): ChartRow[] {
  const rows: ChartRow[] = [];
  for (const m of measures) {
    for (const c of cells) {
      const value = m.value(c);
      if (value === undefined || !Number.isFinite(value)) continue;
      rows.push({
        workload: c.workload,
        strategy: c.variant,
        measure: m.title,
        value,
        label: formatValue(value),
      });
    }
  }
  return rows;
}

/**
 * The y domain of one panel: from zero (or the smallest negative value) to a little above the
 * largest value, so that bars start at zero and the printed values fit.
 *
 * @param values The panel's values.
 * @returns `[min, max]` with `min <= 0 < max`.
 *
 * @example
 * ```ts
 * import { panelDomain } from "./chart.ts";
 *
 * const [low, high] = panelDomain([164_601, 167_562]);
 * if (low !== 0 || high < 167_562) throw new Error("the axis must start at zero");
 * ```
 */
export function panelDomain(values: readonly number[]): [number, number] {
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const high = max > 0 ? max * HEADROOM : min < 0 ? 0 : 1;
  return [min < 0 ? min * HEADROOM : 0, high];
}

/**
 * The Vega-Lite spec of the chart: a row per measure, a panel per workload (with its own linear,
 * zero-based y axis whose domain is {@linkcode panelDomain}), a bar per variant with its value
 * printed above it.
 *
 * @param cells The aggregated cells.
 * @param options `title` of the chart; `measures`: the rows of panels.
 */
export function chartSpec(
  cells: readonly CellSummary[],
  options: { title?: string; measures?: readonly ChartMeasure[] } = {},
): vegaLite.TopLevelSpec {
  const measures = options.measures ?? CHART_MEASURES;
  const workloads = [...new Set(cells.map((c) => c.workload))];
  const strategies = [...new Set(cells.map((c) => c.variant))];
  const rows = chartRows(cells, measures);
  const panel = (measure: string, workload: string) => {
    const values = rows.filter((r) => r.measure === measure && r.workload === workload);
    const variants = strategies.filter((s) => values.some((r) => r.strategy === s));
    return {
      title: { text: workload, fontSize: 11, fontWeight: "normal" as const },
      data: { values: values as unknown as Record<string, unknown>[] },
      width: Math.max(70, variants.length * 48),
      height: 120,
      encoding: {
        x: {
          field: "strategy",
          type: "nominal" as const,
          sort: variants,
          title: null,
          axis: { labelAngle: -30 },
        },
        y: {
          field: "value",
          type: "quantitative" as const,
          scale: {
            type: "linear" as const,
            domain: panelDomain(values.map((r) => r.value)),
            zero: true,
            nice: false,
          },
          stack: null,
          title: null,
          axis: { format: ",.6~g", tickCount: 4 },
        },
      },
      layer: [
        {
          mark: { type: "bar" as const, tooltip: true },
          encoding: {
            color: {
              field: "strategy",
              type: "nominal" as const,
              sort: strategies,
              title: "strategy",
              scale: { domain: strategies },
            },
          },
        },
        {
          mark: { type: "text" as const, baseline: "bottom" as const, dy: -2, fontSize: 9 },
          encoding: { text: { field: "label", type: "nominal" as const } },
        },
      ],
    };
  };
  if (rows.length === 0) {
    return {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: options.title ?? "vmon: paging strategies compared",
      data: { values: [{ text: "no results to draw" }] },
      mark: { type: "text", align: "left" },
      encoding: { text: { field: "text", type: "nominal" } },
    };
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: options.title ?? "vmon: paging strategies compared",
      subtitle: "linear axes from zero, one per panel; the printed values are exact",
    },
    vconcat: measures.filter((m) => rows.some((r) => r.measure === m.title)).map((m) => ({
      title: { text: m.title, anchor: "start" as const, fontSize: 12 },
      hconcat: workloads
        .filter((w) => rows.some((r) => r.measure === m.title && r.workload === w))
        .map((w) => panel(m.title, w)),
    })),
    resolve: { scale: { color: "shared", y: "independent", x: "independent" } },
  } as vegaLite.TopLevelSpec;
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
  const view = await chartView(cells, options);
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * The chart as a headless Vega view, evaluated (its scales hold their final domains): for tests
 * and tools that inspect the chart. Call `finalize()` when done.
 *
 * @param cells The aggregated cells.
 * @param options `title` of the chart.
 */
export async function chartView(
  cells: readonly CellSummary[],
  options: { title?: string } = {},
): Promise<vega.View> {
  const compiled = vegaLite.compile(chartSpec(cells, options)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  await view.runAsync();
  return view;
}
