/**
 * The vCPU scheduler: time-slices N vCPUs on the machine worker's one thread, hands every exit
 * to the exit bus (`ExitBus.dispatchExit`), parks halted vCPUs until an interrupt or their timer, and yields to the
 * worker's event loop between slices so timers and posted messages (console input, stop) run.
 *
 * @module
 */

import type { Vcpu } from "./api/mod.ts";
import type { ExitBus, RunOutcome } from "./bus.ts";
import { hex } from "./errors.ts";

export type { RunOutcome };

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  /** The exit bus, which routes every exit (its routes set by the machine). */
  bus: ExitBus;
  /** Slice length handed to every `Vcpu.setSlice` (host-port units); the port's default if unset. */
  slice?: number;
  /** Called between slices (flush console output, ...). */
  onYield?: () => void;
  /**
   * Called after every slice and before the loop sleeps, on this thread: host input that must
   * reach the guest promptly (packet endpoints, `core/net.ts`) is handed to devices here.
   */
  poll?: () => void;
  /**
   * The platform's answer to "can a device interrupt still reach vCPU n?" for the stuck-guest
   * check (`PlatformInstance.canInterrupt`); without it, one always can.
   */
  canInterrupt?: (vcpu: number) => boolean;
}

/** Exit status of a machine found stuck (every vCPU waits and nothing can wake it). */
export const STUCK_STATUS = 1;

/** Milliseconds of running after which the loop yields to the event loop. */
const YIELD_MS = 10;

/** Resolves on the next macrotask without timer clamping. */
function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = () => {
      ch.port1.close();
      resolve();
    };
    ch.port2.postMessage(null);
  });
}

/**
 * Runs vCPUs until a plugin or the guest ends the machine.
 *
 * @example
 * ```ts ignore
 * const sched = new Scheduler(vcpus, { bus });
 * const outcome = await sched.run();
 * ```
 */
export class Scheduler {
  #vcpus: readonly Vcpu[];
  #bus: ExitBus;
  #onYield: () => void;
  #poll: () => void;
  #canInterrupt: ((vcpu: number) => boolean) | undefined;
  #outcome: RunOutcome | undefined;
  #wake: (() => void) | undefined;
  #wakeTimer: number | undefined;
  /** Set when a vCPU's exit woke another vCPU: the running slice ends after that exit. */
  #preempt = false;
  #paused: { promise: Promise<void>; resolve: () => void } | undefined;

  /**
   * @param vcpus The vCPUs, in id order.
   * @param options The bus and the plugins that take part in exit handling.
   */
  constructor(vcpus: readonly Vcpu[], options: SchedulerOptions) {
    this.#vcpus = vcpus;
    this.#bus = options.bus;
    this.#onYield = options.onYield ?? (() => {});
    this.#poll = options.poll ?? (() => {});
    this.#canInterrupt = options.canInterrupt;
    if (options.slice !== undefined) {
      for (const v of vcpus) v.setSlice(options.slice);
    }
  }

  /** True once the machine has been asked to end. */
  get done(): boolean {
    return this.#outcome !== undefined;
  }

  /** True while paused. */
  get paused(): boolean {
    return this.#paused !== undefined;
  }

  /** Stops running vCPUs after the current exit until `resume()`. Idempotent. */
  pause(): void {
    if (this.#paused !== undefined) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => resolve = r);
    this.#paused = { promise, resolve };
    this.#preempt = true;
    this.wake();
  }

  /** Lets a paused machine run again. Idempotent. */
  resume(): void {
    const p = this.#paused;
    this.#paused = undefined;
    p?.resolve();
  }

  /** Ends the run after the current exit. The first request wins. */
  requestExit(outcome: RunOutcome): void {
    if (this.#outcome === undefined) this.#outcome = outcome;
    this.resume();
    this.wake();
  }

  /**
   * Wakes the loop if it sleeps because every vCPU is halted, and ends the running slice after
   * the current exit, so that a vCPU woken by another (an IPI) runs soon instead of after the
   * sender's whole slice.
   */
  wake(): void {
    this.#preempt = true;
    const w = this.#wake;
    if (w !== undefined) {
      this.#wake = undefined;
      if (this.#wakeTimer !== undefined) clearTimeout(this.#wakeTimer);
      this.#wakeTimer = undefined;
      w();
    }
  }

  /** Runs until the machine ends; returns how it ended. */
  async run(): Promise<RunOutcome> {
    const vcpus = this.#vcpus;
    let lastYield = performance.now();
    while (this.#outcome === undefined) {
      if (this.#paused !== undefined) {
        this.#onYield();
        await this.#paused.promise;
        lastYield = performance.now();
        continue;
      }
      let ran = false;
      this.#poll();
      const now = performance.now();
      for (
        let i = 0;
        i < vcpus.length && this.#outcome === undefined && this.#paused === undefined;
        i++
      ) {
        const v = vcpus[i]!;
        // A halted vCPU whose timer is due runs too: its port raises the interrupt in run().
        if (!v.runnable() && v.wakeDeadline() > now) continue;
        ran = true;
        this.#runSlice(v, lastYield);
        this.#poll();
      }
      if (this.#outcome !== undefined) break;
      if (!ran) {
        await this.#sleep();
        lastYield = performance.now();
      } else if (performance.now() - lastYield >= YIELD_MS) {
        this.#onYield();
        await nextTask();
        lastYield = performance.now();
      }
    }
    this.#onYield();
    return this.#outcome!;
  }

  /**
   * The stuck-guest check (DESIGN.md, "vCPU scheduling and threads"): every vCPU waits (halted
   * in WFI/HLT, or stopped), none has an interrupt it accepts pending, none has a timer of its
   * own armed with the timer's interrupt enabled, and none accepts device interrupts that the
   * platform can still deliver to it. IPIs and hart starts come only from vCPUs, which all wait;
   * input, device timers and I/O in flight reach a guest only as device interrupts. Returns the
   * description of each vCPU, or undefined when something can wake the guest or a host port
   * cannot tell.
   */
  stuck(): string | undefined {
    const parts: string[] = [];
    for (const v of this.#vcpus) {
      if (v.wakeSources === undefined || v.runnable()) return undefined;
      const w = v.wakeSources();
      if (w === undefined || w.state === "running" || w.timer) return undefined;
      if (w.external && (this.#canInterrupt?.(v.id) ?? true)) return undefined;
      parts.push(
        w.state === "stopped" ? `vCPU ${v.id} stopped` : `vCPU ${v.id} waits at pc ${hex(w.pc)}`,
      );
    }
    return parts.length === 0 ? undefined : parts.join(", ");
  }

  /** Parks the loop until a wake(), the earliest vCPU deadline, or a short poll interval. */
  async #sleep(): Promise<void> {
    const stuck = this.stuck();
    if (stuck !== undefined) {
      this.requestExit({
        status: STUCK_STATUS,
        reason:
          `The guest is stuck: every vCPU waits and no interrupt can wake it (no timer armed, no device interrupt it accepts can arrive): ${stuck}`,
        failed: true,
      });
      return;
    }
    this.#onYield();
    let deadline = Infinity;
    for (const v of this.#vcpus) deadline = Math.min(deadline, v.wakeDeadline());
    const delay = Math.max(0, Math.min(deadline - performance.now(), 1000));
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      this.#wakeTimer = setTimeout(() => {
        this.#wakeTimer = undefined;
        this.wake();
      }, delay) as unknown as number;
    });
  }

  /**
   * Runs one vCPU until its slice ends, it halts, or the machine ends. Each exit goes to the bus
   * (`ExitBus.dispatchExit`), which routes every kind.
   */
  #runSlice(v: Vcpu, sliceStart: number): void {
    const bus = this.#bus;
    let n = 0;
    for (;;) {
      v.run();
      if (!bus.dispatchExit(v) || this.#outcome !== undefined) return;
      if (this.#preempt) {
        this.#preempt = false;
        if (this.#vcpus.length > 1 || this.#paused !== undefined) return;
      }
      // A vCPU that exits constantly (port I/O loops) must still share the thread.
      if ((++n & 1023) === 0 && performance.now() - sliceStart >= YIELD_MS) return;
    }
  }
}
