/**
 * Test data for the comparison's unit tests: recorded-run records built by hand. These are not
 * measurements; the numbers are chosen so that every expected aggregate is easy to compute.
 * Only tests import this file.
 *
 * @module
 */

import type { RunPhase, RunRecord, Variant, WorkloadRun } from "./types.ts";

/** A workload as `workloadRun` would return it. */
export function fixtureWorkload(
  name: string,
  n: number,
  options: { baseN?: number; opsPerN?: number; op?: string } = {},
): WorkloadRun {
  return {
    name,
    n,
    ...(options.baseN !== undefined ? { baseN: options.baseN } : {}),
    opsPerN: options.opsPerN ?? 1,
    op: options.op ?? "op",
    args: (x: number) => [String(x)],
  };
}

/** A variant with default options; with `batch`, a batch variant as `batchVariant` makes. */
export function fixtureVariant(id: string, batch?: number): Variant {
  const strategy = id.split("/")[0]!;
  return {
    id,
    strategy,
    ...(batch !== undefined ? { batch } : {}),
    options: batch !== undefined ? { paravirtual: true } : {},
  };
}

/**
 * The pv-guest's console lines for a run that submitted `updates` updates in `calls` calls, as
 * images/pv-guest/src/main.c prints them (the numbers are made up).
 */
export function fixturePvLines(
  fields: { batch: number; calls: number; applied: number; rejected: number },
): string[] {
  return [
    "pv-guest: batch=" + fields.batch + " mode=hypercall",
    "pv-guest: invalid sent=5 rejected=5",
    "pv-guest: random sent=256 applied=95 rejected=161",
    `pv-guest: calls=${fields.calls} applied=${fields.applied} rejected=${fields.rejected}`,
    "pv-guest: ok",
  ];
}

/** A successful run record with the given counters. */
export function fixtureRun(
  fields: {
    workload: string;
    variant: string;
    phase?: RunPhase;
    n: number;
    repeat?: number;
    counters: Record<string, number>;
    result?: string[];
    machineMs?: number;
    windowMs?: number;
    guestMs?: number;
    ops?: number;
    batch?: number;
    error?: string;
  },
): RunRecord {
  const result = fields.result ?? [`result: ${fields.workload} n=${fields.n} checksum=00ff`];
  return {
    workload: fields.workload,
    variant: fields.variant,
    strategy: fields.variant.split("/")[0]!,
    ...(fields.batch !== undefined ? { batch: fields.batch } : {}),
    phase: fields.phase ?? "measure",
    n: fields.n,
    repeat: fields.repeat ?? 0,
    command: `/bench/run.sh ${fields.workload} ${fields.n}`,
    status: fields.error === undefined ? 0 : 1,
    reason: "poweroff",
    failed: false,
    output: result,
    result,
    ...(fields.guestMs !== undefined
      ? { timeLine: `time: ${fields.workload} ${fields.guestMs} ms`, guestMs: fields.guestMs }
      : {}),
    endStatus: 0,
    ...(fields.windowMs !== undefined ? { windowMs: fields.windowMs } : {}),
    machineMs: fields.machineMs ?? 1000,
    ...(fields.ops !== undefined ? { ops: fields.ops } : {}),
    counters: fields.counters,
    exits: { mmio: 10 },
    log: [],
    ...(fields.error !== undefined ? { error: fields.error } : {}),
  };
}
