/**
 * The columns of the comparison: paging strategies from `--strategies`, and for `--batch` one
 * extra `queued` variant per batch size (`queued/b<N>`), which runs the `pv-guest` image with
 * `pv.batch=<N>` (core/compare/pv.ts): the batch size is the guest's choice, not an option of the
 * strategy.
 *
 * @module
 */

import type { OptionsSchema } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import { PV_GUEST_MAX_BATCH } from "./pv.ts";
import type { Variant } from "./types.ts";

/** The strategy `--batch` applies to. */
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

function splitList(text: string): string[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

function parseBatches(text: string): number[] {
  const out: number[] = [];
  for (const item of splitList(text)) {
    const n = /^\d+$/.test(item) ? Number(item) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) {
      throw new VmonError(
        `Invalid --batch "${text}": "${item}" is not a whole number of at least 1`,
      );
    }
    if (!out.includes(n)) out.push(n);
  }
  if (out.length === 0) throw new VmonError(`Invalid --batch "${text}": the list is empty`);
  return out;
}

/**
 * Resolves `--strategies` and `--batch` into the comparison's variants.
 *
 * @param names Comma-separated strategy names, or undefined for every available one.
 * @param options `available`: the paging plugins that exist (name and options schema);
 *   `batch`: the `--batch` text.
 * @returns The variants: each strategy with default options, then `queued/b<N>` per batch size
 *   (with `paravirtual: true` when the plugin has that option). The batch variants run only the
 *   `pv-update` workload, whatever `--strategies` says, so `queued` need not be listed there; it
 *   must be available.
 * @throws {VmonError} One line naming an unknown strategy and listing the available ones, or
 *   explaining why `--batch` cannot apply (no queued strategy, a size above what one call takes).
 *
 * @example
 * ```ts
 * import { resolveVariants } from "./strategies.ts";
 *
 * const available = [
 *   { name: "wired" },
 *   { name: "queued", options: { paravirtual: { type: "boolean" as const, description: "pv" } } },
 * ];
 * const v = resolveVariants("wired,queued", { available, batch: "8,1" });
 * if (v.map((x) => x.id).join() !== "wired,queued,queued/b8,queued/b1") throw new Error("bad");
 * if (v[2]?.batch !== 8 || v[2].options.paravirtual !== true) throw new Error("bad options");
 * ```
 */
export function resolveVariants(
  names: string | undefined,
  options: { readonly available: readonly StrategyInfo[]; readonly batch?: string },
): Variant[] {
  const available = [...options.available].sort((a, b) => {
    const ia = ORDER.indexOf(a.name), ib = ORDER.indexOf(b.name);
    return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib) ||
      a.name.localeCompare(b.name);
  });
  const known = available.map((s) => s.name).join(", ") || "none";
  const wanted = names === undefined ? available.map((s) => s.name) : splitList(names);
  if (wanted.length === 0) {
    throw new VmonError(`Invalid --strategies "${names ?? ""}": the list is empty`);
  }
  const out: Variant[] = [];
  for (const name of wanted) {
    if (!available.some((s) => s.name === name)) {
      throw new VmonError(`Unknown paging strategy "${name}": available strategies are ${known}`);
    }
    if (out.some((v) => v.id === name)) {
      throw new VmonError(`Invalid --strategies "${names}": "${name}" is given twice`);
    }
    out.push({ id: name, strategy: name, options: {} });
  }
  if (options.batch !== undefined) {
    const batches = parseBatches(options.batch);
    const queued = available.find((s) => s.name === QUEUED);
    if (queued === undefined) {
      throw new VmonError(
        `Cannot use --batch: it runs the pv-guest under the ${QUEUED} strategy, which is not available (available strategies are ${known})`,
      );
    }
    const schema = queued.options ?? {};
    const cap = schema[MAX_BATCH_OPTION]?.default;
    const limit = Math.min(PV_GUEST_MAX_BATCH, typeof cap === "number" ? cap : Infinity);
    for (const b of batches) {
      if (b > limit) {
        throw new VmonError(
          `Invalid --batch "${options.batch}": ${b} is above ${limit}, the most ${
            limit === PV_GUEST_MAX_BATCH
              ? "the pv-guest submits in one call"
              : `the ${QUEUED} strategy accepts in one call ("${MAX_BATCH_OPTION}")`
          }`,
        );
      }
      out.push({
        id: `${QUEUED}/b${b}`,
        strategy: QUEUED,
        batch: b,
        options: schema[PARAVIRTUAL_OPTION] !== undefined ? { [PARAVIRTUAL_OPTION]: true } : {},
      });
    }
  }
  return out;
}
