/**
 * The columns of the comparison: paging strategies from `--strategies`, and for `--batch` one
 * extra `queued` variant per batch size in its paravirtual mode.
 *
 * @module
 */

import type { OptionsSchema } from "../api.ts";
import { VmonError } from "../errors.ts";
import type { Variant } from "./types.ts";

/** The strategy `--batch` applies to. */
export const QUEUED = "queued";

/** The option of the queued strategy that sets the paravirtual batch size. */
export const BATCH_OPTION = "batch";

/** The option of the queued strategy that selects its mode (writable page tables or paravirtual). */
export const MODE_OPTION = "mode";

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

/** The paravirtual mode's value in the queued strategy's `mode` enum, if it has one. */
function paravirtualMode(schema: OptionsSchema): string | undefined {
  const spec = schema[MODE_OPTION];
  return spec?.enum?.find((v) => /^(paravirtual|pv|hypercall)$/i.test(v));
}

/**
 * Resolves `--strategies` and `--batch` into the comparison's variants.
 *
 * @param names Comma-separated strategy names, or undefined for every available one.
 * @param options `available`: the paging plugins that exist (name and options schema);
 *   `batch`: the `--batch` text.
 * @returns The variants: each strategy with default options, then `queued/b<N>` per batch size.
 * @throws {VmonError} One line naming an unknown strategy and listing the available ones, or
 *   explaining why `--batch` cannot apply.
 *
 * @example
 * ```ts
 * import { resolveVariants } from "./strategies.ts";
 *
 * const available = [
 *   { name: "wired" },
 *   { name: "queued", options: { batch: { type: "integer" as const, description: "b" } } },
 * ];
 * const v = resolveVariants("wired,queued", { available, batch: "8" });
 * if (v.map((x) => x.id).join() !== "wired,queued,queued/b8") throw new Error("bad");
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
    if (!wanted.includes(QUEUED)) {
      throw new VmonError(
        `Invalid --batch "${options.batch}": it sets the ${QUEUED} strategy's batch size, and --strategies does not include ${QUEUED}`,
      );
    }
    const schema = available.find((s) => s.name === QUEUED)?.options ?? {};
    const spec = schema[BATCH_OPTION];
    if (spec === undefined) {
      const names = Object.keys(schema);
      throw new VmonError(
        `Cannot use --batch: the ${QUEUED} strategy has no "${BATCH_OPTION}" option (its options: ${
          names.length > 0 ? names.join(", ") : "none"
        })`,
      );
    }
    const mode = paravirtualMode(schema);
    for (const b of batches) {
      if ((spec.min !== undefined && b < spec.min) || (spec.max !== undefined && b > spec.max)) {
        throw new VmonError(
          `Invalid --batch "${options.batch}": ${b} is outside the ${QUEUED} strategy's range ${
            spec.min ?? 1
          }..${spec.max ?? "unbounded"}`,
        );
      }
      out.push({
        id: `${QUEUED}/b${b}`,
        strategy: QUEUED,
        batch: b,
        options: { ...(mode !== undefined ? { [MODE_OPTION]: mode } : {}), [BATCH_OPTION]: b },
      });
    }
  }
  return out;
}
