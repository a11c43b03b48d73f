/**
 * The columns of the comparison: paging strategies with default options, and `queued` variants
 * with a paravirtual batch size (`queued/b<N>`), which run the `pv-guest` image with
 * `pv.batch=<N>` (lab/pv.ts): the batch size is the guest's choice, not an option of the
 * strategy.
 *
 * @module
 */

import type { OptionsSchema } from "../core/api/mod.ts";
import { listBuiltinPlugins } from "../core/loader.ts";
import { PV_GUEST_MAX_BATCH } from "./pv.ts";
import type { Variant } from "./types.ts";

/** The strategy batch variants run under. */
export const QUEUED = "queued";

/** The option of the queued strategy that offers the paravirtual update call. */
export const PARAVIRTUAL_OPTION = "paravirtual";

/** The option of the queued strategy that caps the updates of one call. */
export const MAX_BATCH_OPTION = "max-batch";

/** Display order of the built-in strategies; others follow by name. */
const ORDER = ["wired", "shadow", QUEUED];

/** A paging plugin that can be compared. */
export interface StrategyInfo {
  /** Its name. */
  readonly name: string;
  /** Its options schema. */
  readonly options?: OptionsSchema;
}

/**
 * Strategies in display order: wired, shadow, queued, then any other by name.
 *
 * @param strategies The strategies, in any order.
 * @returns A sorted copy.
 *
 * @example
 * ```ts
 * import { sortStrategies } from "./strategies.ts";
 *
 * const got = sortStrategies([{ name: "zz" }, { name: "queued" }, { name: "wired" }]);
 * if (got.map((s) => s.name).join() !== "wired,queued,zz") throw new Error();
 * ```
 */
export function sortStrategies(strategies: readonly StrategyInfo[]): StrategyInfo[] {
  return [...strategies].sort((a, b) => {
    const ia = ORDER.indexOf(a.name), ib = ORDER.indexOf(b.name);
    return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib) ||
      a.name.localeCompare(b.name);
  });
}

/** The built-in paging plugins that load, with their options schemas, in display order. */
export async function availableStrategies(): Promise<StrategyInfo[]> {
  const plugins = await listBuiltinPlugins({ kind: "paging" });
  return sortStrategies(
    plugins.filter((p) => p.error === undefined).map((p) => ({
      name: p.name,
      ...(p.options !== undefined ? { options: p.options } : {}),
    })),
  );
}

/**
 * A column running a strategy with its default options.
 *
 * @param name The paging plugin.
 */
export function strategyVariant(name: string): Variant {
  return { id: name, strategy: name, options: {} };
}

/**
 * The largest batch a `queued/b<N>` variant can use: what the pv-guest submits in one call
 * ({@linkcode PV_GUEST_MAX_BATCH}) or, when smaller, the default of the strategy's
 * {@linkcode MAX_BATCH_OPTION}.
 *
 * @param queued The queued strategy.
 */
export function maxBatch(queued: StrategyInfo): number {
  const cap = queued.options?.[MAX_BATCH_OPTION]?.default;
  return Math.min(PV_GUEST_MAX_BATCH, typeof cap === "number" ? cap : Infinity);
}

/**
 * A `queued/b<N>` column: the pv-guest submitting batches of `batch` updates to the queued
 * strategy, with `paravirtual: true` when the plugin has that option. It runs only the
 * `pv-update` workload (`variantsFor` in pv.ts).
 *
 * @param queued The queued strategy (its options schema decides the options).
 * @param batch The batch size, from 1 to {@linkcode maxBatch}.
 *
 * @example
 * ```ts
 * import { batchVariant } from "./strategies.ts";
 *
 * const queued = {
 *   name: "queued",
 *   options: { paravirtual: { type: "boolean" as const, description: "pv" } },
 * };
 * const v = batchVariant(queued, 8);
 * if (v.id !== "queued/b8" || v.batch !== 8 || v.options.paravirtual !== true) throw new Error();
 * ```
 */
export function batchVariant(queued: StrategyInfo, batch: number): Variant {
  return {
    id: `${QUEUED}/b${batch}`,
    strategy: QUEUED,
    batch,
    options: queued.options?.[PARAVIRTUAL_OPTION] !== undefined
      ? { [PARAVIRTUAL_OPTION]: true }
      : {},
  };
}
