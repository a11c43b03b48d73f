/**
 * Host ports: vCPUs, capabilities and the VM a host port plugin returns.
 *
 * @module
 */

import type { HypercallResult } from "./bus.ts";
import type { ExitKindCode, ExitRecord } from "./exits.ts";
import type { HostPacketEndpoint, PacketBackendSpec } from "./net.ts";
import type { PagingCapabilities, PagingMechanisms } from "./paging.ts";
import type { GuestArch, PluginHost, PluginInstance } from "./services.ts";

/** Register values by name: `rax`..`r15`, `rip`, `rflags` on x86; `x0`..`x31`, `pc` on RISC-V. */
export type RegisterSet = Record<string, bigint>;

/** A virtual CPU, owned by core's scheduler and driven by its `run()`. */
export interface Vcpu {
  /** The vCPU index, from 0. */
  readonly id: number;
  /** The exit record `run()` fills. */
  readonly exit: ExitRecord;
  /**
   * Runs guest code until an exit or until the time slice (kvm) or instruction budget (rv64)
   * set by `setSlice` ends. Returns `exit.kind`.
   */
  run(): ExitKindCode;
  /** Sets the slice: microseconds of host time (kvm) or instructions (rv64). 0 means unbounded. */
  setSlice(amount: number): void;
  /** Completes a hypercall: writes the result registers before the next `run()`. */
  completeHypercall(result: HypercallResult): void;
  /** Reads general registers. */
  getRegisters(): RegisterSet;
  /** Writes some general registers; others keep their values. */
  setRegisters(regs: RegisterSet): void;
  /**
   * True when the vCPU has work: not halted, or halted with an interrupt now pending. The
   * scheduler skips vCPUs for which this is false.
   */
  runnable(): boolean;
  /** Host monotonic ms at which a halted vCPU's timer fires, or Infinity. */
  wakeDeadline(): number;
  /**
   * Optional: what could end this vCPU's wait, for core's stuck-guest check (DESIGN.md, "vCPU
   * scheduling and threads"). `undefined`, or a port without the method, means the port cannot
   * tell, and the machine is then never reported stuck.
   */
  wakeSources?(): VcpuWakeSources | undefined;
  /** Releases the vCPU. */
  dispose(): void;
}

/** What could end a vCPU's wait, as its host port sees it (see {@linkcode Vcpu.wakeSources}). */
export interface VcpuWakeSources {
  /**
   * `running`: it executes, or an interrupt it accepts is pending; `halted`: it waits in WFI or
   * HLT; `stopped`: it was never started or was stopped (only another vCPU can start it).
   */
  readonly state: "running" | "halted" | "stopped";
  /** Where it waits (pc or rip). */
  readonly pc: bigint;
  /** A timer of its own is armed and the timer's interrupt is enabled: the clock will wake it. */
  readonly timer: boolean;
  /**
   * Device (external) interrupts are enabled at the vCPU; whether one can still arrive is the
   * platform's to say (`PlatformInstance.canInterrupt`).
   */
  readonly external: boolean;
}

/** What a host port measures and supports. */
export interface HostPortCapabilities {
  /** Counts exits per kind (always true: core counts them). */
  readonly exitCounts: boolean;
  /** Can report retired guest instructions. */
  readonly instructionCounts: boolean;
  /** Can report TLB statistics. */
  readonly tlbStats: boolean;
  /**
   * The paging mechanism contract version the port implements and the mechanisms its `paging`
   * object offers (`{ version: PAGING_MECHANISMS_VERSION, mechanisms: [] }` when it has none).
   */
  readonly paging: PagingCapabilities;
}

/** What a host port plugin's `setup` returns: the VM. */
export interface HostPortInstance extends PluginInstance {
  /** Guest architecture. */
  readonly arch: GuestArch;
  /** Capabilities. */
  readonly capabilities: HostPortCapabilities;
  /**
   * Allocates a RAM region at `gpa` (host memory allocated once in C) and returns it zero-copy.
   * Core calls this; platforms ask core through `PlatformHost.addRam`.
   */
  addMemoryRegion(gpa: number, size: number, options: { readonly readonly: boolean }): ArrayBuffer;
  /** Creates vCPU `id`. Core calls this once per vCPU, after the platform's setup. */
  createVcpu(id: number): Vcpu;
  /** Wakes a halted vCPU (an interrupt was raised for it from the monitor). */
  kick(vcpu: number): void;
  /** Port-specific counters for `--stats` (instructions, TLB fills, ...). */
  stats(): Record<string, number>;
  /**
   * Optional hint: the monitor is about to write `[gpa, gpa + size)` of RAM in bulk (a snapshot
   * restore, docs/DESIGN.md "Snapshots"), so the port may back it with large pages first.
   */
  hintBulkWrite?(gpa: number, size: number): void;
  /**
   * Opens a packet backend (`ffi/net`) whose thread can end this port's running vCPU slice when
   * packets arrive. Core calls this for `DeviceHost.net.open`; a port without it has no network.
   */
  openPacketEndpoint?(spec: PacketBackendSpec): HostPacketEndpoint;
  /**
   * The paging mechanisms listed in `capabilities.paging.mechanisms` (write protection, paging
   * exits, shadow tables, the page queue, ...): the methods of those mechanisms, when the port
   * has any (the rv64 port has them all). Strategies reach them through
   * `requirePagingMechanisms`.
   */
  readonly paging?: Partial<PagingMechanisms>;
}

/** What a host port plugin's `setup` receives. */
export type HostPortHost = PluginHost;
