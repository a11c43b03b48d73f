/**
 * Metrics and machine statistics: the per-plugin counters behind `PluginHost.metrics`, and the
 * assembly of {@linkcode MachineStats} from the exit bus, the metrics, the paging strategy and
 * the host port.
 *
 * @module
 */

import type { Counter, MachineStats, Metrics } from "./api/mod.ts";
import type { BusCounters } from "./bus.ts";
import { VmonError } from "./errors.ts";

/** A monotonically increasing counter. */
class PluginCounter implements Counter {
  #value = 0;
  readonly #label: string;
  readonly description: string;

  constructor(label: string, description: string) {
    this.#label = label;
    this.description = description;
  }

  add(n = 1): void {
    if (!(n >= 0) || !Number.isFinite(n)) {
      throw new VmonError(`Cannot add ${n} to counter ${this.#label}: counters only increase`);
    }
    this.#value += n;
  }

  get value(): number {
    return this.#value;
  }

  /** Sets the value (a restored snapshot's). */
  load(value: number): void {
    this.#value = value;
  }
}

/**
 * All plugins' counters. Each plugin gets its own namespace through `forPlugin`; asking twice
 * for a counter name returns the same counter.
 *
 * @example
 * ```ts
 * import { MetricsRegistry } from "./stats.ts";
 * const reg = new MetricsRegistry();
 * const rx = reg.forPlugin("uart16550").counter("rx-bytes", "Bytes received");
 * rx.add(3);
 * rx.add();
 * if (reg.snapshot()["uart16550"]?.["rx-bytes"] !== 4) throw new Error("not counted");
 * ```
 */
export class MetricsRegistry {
  #plugins = new Map<string, Map<string, PluginCounter>>();

  /**
   * The `Metrics` object for plugin `name`.
   *
   * @param name The plugin's name.
   */
  forPlugin(name: string): Metrics {
    let counters = this.#plugins.get(name);
    if (counters === undefined) {
      counters = new Map();
      this.#plugins.set(name, counters);
    }
    const own = counters;
    return {
      counter(counterName: string, description = ""): Counter {
        if (typeof counterName !== "string" || counterName === "") {
          throw new VmonError(`Cannot create a counter for plugin "${name}": the name is empty`);
        }
        let c = own.get(counterName);
        if (c === undefined) {
          c = new PluginCounter(`"${counterName}" of plugin "${name}"`, description);
          own.set(counterName, c);
        }
        return c;
      },
    };
  }

  /** Counter values: plugin name to counter name to value (plugins without counters omitted). */
  snapshot(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [plugin, counters] of this.#plugins) {
      if (counters.size === 0) continue;
      const values: Record<string, number> = {};
      for (const [name, c] of counters) values[name] = c.value;
      out[plugin] = values;
    }
    return out;
  }

  /**
   * Sets the counters to saved values (from {@linkcode MetricsRegistry.snapshot}), creating the
   * ones missing: a machine restored from a snapshot goes on counting from the saved values.
   */
  restore(values: Readonly<Record<string, Readonly<Record<string, number>>>>): void {
    for (const [plugin, counters] of Object.entries(values)) {
      const m = this.forPlugin(plugin);
      for (const [name, v] of Object.entries(counters)) {
        (m.counter(name) as PluginCounter).load(v);
      }
    }
  }

  /** Counter descriptions: plugin name to counter name to its description. */
  descriptions(): Record<string, Record<string, string>> {
    const out: Record<string, Record<string, string>> = {};
    for (const [plugin, counters] of this.#plugins) {
      if (counters.size === 0) continue;
      out[plugin] = Object.fromEntries([...counters].map(([n, c]) => [n, c.description]));
    }
    return out;
  }
}

/** The metrics key under which the exit bus's unclaimed and error counts are reported. */
export const BUS_METRICS_KEY = "exit-bus";

/** The inputs of {@linkcode buildMachineStats}. */
export interface MachineStatsParts {
  /** The exit bus counters (`ExitBus.counters()`). */
  readonly bus: BusCounters;
  /** The plugins' metrics. */
  readonly metrics?: MetricsRegistry;
  /** The paging strategy: its plugin name and `stats()`; merged into that plugin's metrics. */
  readonly paging?: { readonly name: string; readonly stats: Record<string, number> };
  /** The host port's `stats()`. */
  readonly hostport?: Record<string, number>;
  /** Wall time the machine ran, in milliseconds. */
  readonly wallMs: number;
}

/**
 * Assembles the {@linkcode MachineStats} of a machine. Bus details (unclaimed accesses by space
 * and hypercall number, handler errors by plugin) appear under metrics key `exit-bus`.
 *
 * @param parts The counters to assemble.
 * @returns A plain, JSON-serializable object.
 */
export function buildMachineStats(parts: MachineStatsParts): MachineStats {
  const metrics = parts.metrics?.snapshot() ?? {};
  if (parts.paging !== undefined) {
    metrics[parts.paging.name] = { ...metrics[parts.paging.name], ...parts.paging.stats };
  }
  const busDetail: Record<string, number> = {};
  for (const [k, v] of Object.entries(parts.bus.unclaimed)) busDetail[`unclaimed ${k}`] = v;
  for (const [k, v] of Object.entries(parts.bus.errors)) busDetail[`errors ${k}`] = v;
  if (Object.keys(busDetail).length > 0) metrics[BUS_METRICS_KEY] = busDetail;
  return {
    exits: { ...parts.bus.exits },
    plugins: { ...parts.bus.plugins },
    metrics,
    hostport: { ...parts.hostport },
    wallMs: parts.wallMs,
  };
}
