/**
 * Test data for the comparison's unit tests: recorded-run records built by hand. These are not
 * measurements; the numbers are chosen so that every expected aggregate is easy to compute.
 * Only tests import this file.
 *
 * @module
 */

import type { RunPhase, RunRecord, Variant, WorkloadRun } from "./types.ts";

/** A workload as `resolveWorkloads` would return it. */
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

/** A variant with default options. */
export function fixtureVariant(id: string, batch?: number): Variant {
  const strategy = id.split("/")[0]!;
  return {
    id,
    strategy,
    ...(batch !== undefined ? { batch } : {}),
    options: batch !== undefined ? { batch } : {},
  };
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
    error?: string;
  },
): RunRecord {
  const result = fields.result ?? [`result: ${fields.workload} n=${fields.n} checksum=00ff`];
  return {
    workload: fields.workload,
    variant: fields.variant,
    strategy: fields.variant.split("/")[0]!,
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
    counters: fields.counters,
    exits: { mmio: 10 },
    log: [],
    ...(fields.error !== undefined ? { error: fields.error } : {}),
  };
}
