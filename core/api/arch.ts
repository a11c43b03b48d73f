/**
 * Architecture-specific vCPU and host port views (platforms narrow `Vcpu` to these after checking `arch`).
 *
 * @module
 */

import type { HostPortInstance, Vcpu } from "./hostport.ts";

/** An x86 segment register, shaped like KVM's `struct kvm_segment`. */
export interface X86Segment {
  /** Base address. */
  base: bigint;
  /** Limit (bytes, or pages with `g`). */
  limit: number;
  /** Selector. */
  selector: number;
  /** Descriptor type field. */
  type: number;
  /** Present bit. */
  present: boolean;
  /** Descriptor privilege level. */
  dpl: number;
  /** Default operation size (D/B). */
  db: boolean;
  /** Code/data (true) or system (false) descriptor. */
  s: boolean;
  /** 64-bit code segment. */
  l: boolean;
  /** Granularity. */
  g: boolean;
  /** Available bit. */
  avl: boolean;
  /** Unusable segment. */
  unusable: boolean;
}

/** An x86 descriptor table register (GDTR/IDTR). */
export interface X86DescriptorTable {
  /** Base address. */
  base: bigint;
  /** Limit in bytes minus one. */
  limit: number;
}

/** x86 special registers, shaped like KVM's `struct kvm_sregs`. */
export interface X86SpecialRegisters {
  /** Segment registers. */
  cs: X86Segment;
  /** Segment registers. */
  ds: X86Segment;
  /** Segment registers. */
  es: X86Segment;
  /** Segment registers. */
  fs: X86Segment;
  /** Segment registers. */
  gs: X86Segment;
  /** Segment registers. */
  ss: X86Segment;
  /** Task register. */
  tr: X86Segment;
  /** LDT register. */
  ldt: X86Segment;
  /** GDTR. */
  gdt: X86DescriptorTable;
  /** IDTR. */
  idt: X86DescriptorTable;
  /** Control registers. */
  cr0: bigint;
  /** Control registers. */
  cr2: bigint;
  /** Control registers. */
  cr3: bigint;
  /** Control registers. */
  cr4: bigint;
  /** Control registers. */
  cr8: bigint;
  /** Extended feature enable register. */
  efer: bigint;
  /** APIC base MSR. */
  apicBase: bigint;
}

/** An x86-64 vCPU (kvm host port). */
export interface X86Vcpu extends Vcpu {
  /** Reads the special registers. */
  getSpecialRegisters(): X86SpecialRegisters;
  /** Writes the special registers. */
  setSpecialRegisters(sregs: X86SpecialRegisters): void;
  /** Reads guest memory bytes at a guest virtual address through the vCPU's page tables. */
  readVirtual?(gva: bigint, len: number): Uint8Array | undefined;
}

/** An x86-64 host port: adds interrupt injection. */
export interface X86HostPort extends HostPortInstance {
  /** Creates the in-kernel interrupt controller (PIC/IOAPIC); returns false if unsupported. */
  createIrqchip(): boolean;
  /** Sets the level of interrupt line `gsi` (needs `createIrqchip`). */
  setIrqLine(gsi: number, level: boolean): void;
}

/** RISC-V privilege levels. */
export type Rv64Privilege = "user" | "supervisor" | "machine";

/** RISC-V interrupt-pending bits the monitor drives. */
export type Rv64InterruptBit = "ssip" | "stip" | "seip";

/** A RISC-V hart (rv64 host port). */
export interface Rv64Hart extends Vcpu {
  /** Sets the program counter. */
  setPc(pc: bigint): void;
  /** Sets the privilege level the hart runs at. */
  setPrivilege(level: Rv64Privilege): void;
  /** Reads a CSR by number. */
  getCsr(csr: number): bigint;
  /** Writes a CSR by number. */
  setCsr(csr: number, value: bigint): void;
  /** Sets the supervisor timer deadline in `time` ticks (SBI set_timer); clears STIP. */
  setTimer(deadline: bigint): void;
  /** Sets or clears a pending interrupt bit (SSIP for IPIs, SEIP from the PLIC). */
  setInterrupt(bit: Rv64InterruptBit, level: boolean): void;
  /** Flushes the hart's TLB (all, or one address space / one page). */
  flushTlb(asid?: number, va?: bigint): void;
  /** Starts or stops the hart (SBI HSM). A stopped hart is never runnable. */
  setStarted(started: boolean): void;
  /** Whether the hart is started. */
  readonly started: boolean;
  /** Retired instructions. */
  readonly instret: bigint;
}

/** A RISC-V host port. */
export interface Rv64HostPort extends HostPortInstance {
  /** Frequency of the `time` CSR in Hz (the devicetree's timebase-frequency). */
  readonly timebaseHz: number;
  /** The current value of the `time` CSR. */
  time(): bigint;
}
