/**
 * The x86-64-direct platform's memory layout and the encoders for what it places there: the GDT,
 * the IDT, the exception stubs, the per-vCPU TSS and identity page tables. Everything here is a
 * pure function of its inputs, so the encodings are unit-tested byte by byte.
 *
 * Guest physical layout (the first 2 MiB belong to the platform and are mapped supervisor-only):
 *
 * | Address             | Contents                                                   |
 * | ------------------- | ---------------------------------------------------------- |
 * | `0x1000`            | GDT: null, ring-0 code/data, ring-3 data/code, one TSS per vCPU |
 * | `0x2000`            | IDT: 256 interrupt gates, all on IST 1                     |
 * | `0x3000`            | 256 exception stubs of 16 bytes                            |
 * | `0x4000`            | the common exception handler (reports to the fault port)   |
 * | `0x6000`            | one 104-byte TSS per vCPU, 128 bytes apart                 |
 * | `0x8000-0xa000`     | the I/O permission bitmap all TSSs share (all ports open)  |
 * | `0xb000`, `0xc000`  | PML4, PDPT                                                 |
 * | `0x10000-0x7ffff`   | page directories, one per GiB mapped (2 MiB pages)         |
 * | `0x80000-0xfffff`   | ring-0 exception stacks, 8 KiB per vCPU                    |
 * | `0x200000-`         | the guest image, then the command line, then free RAM      |
 * | top of RAM          | guest stacks, 64 KiB per vCPU (vCPU 0 highest)             |
 *
 * @module
 */

import type { X86Segment } from "../../../mod.ts";

/** Guest physical addresses and sizes of the platform's structures. */
export const LAYOUT = {
  /** The GDT. */
  gdt: 0x1000,
  /** The IDT (256 gates of 16 bytes). */
  idt: 0x2000,
  /** Exception stubs, 16 bytes per vector. */
  stubs: 0x3000,
  /** The common exception handler. */
  handler: 0x4000,
  /** TSSs, `tssStride` bytes apart. */
  tss: 0x6000,
  /** Distance between two vCPUs' TSSs. */
  tssStride: 128,
  /** The I/O permission bitmap (8 KiB of zeros and a final 0xff byte), shared by all TSSs. */
  ioBitmap: 0x8000,
  /** The PML4. */
  pml4: 0xb000,
  /** The single PDPT. */
  pdpt: 0xc000,
  /** First page directory. */
  pd: 0x10000,
  /** End of the page directory area. */
  pdEnd: 0x80000,
  /** Ring-0 exception stacks (vCPU i's stack top is `exceptionStacks + (i+1) * size`). */
  exceptionStacks: 0x80000,
  /** Bytes of ring-0 stack per vCPU. */
  exceptionStackSize: 0x2000,
  /** The first address the guest image may use; below is supervisor-only. */
  imageStart: 0x200000,
  /** Bytes of guest stack per vCPU, at the top of RAM. */
  guestStackSize: 0x10000,
} as const;

/** The most vCPUs the layout has room for. */
export const MAX_VCPUS = 64;

/** The most RAM (bytes) the page directory area can map. */
export const MAX_MAPPED = ((LAYOUT.pdEnd - LAYOUT.pd) / 0x1000) * 2 ** 30;

/**
 * The fault-report ports: the exception handler writes the error code (+4), RIP (+8 low, +12
 * high), CR2 (+16 low, +20 high) and the faulting CS (+24), then the vector (+0), which commits.
 */
export const FAULT_PORT = 0x5e0;

/** Number of fault-report ports. */
export const FAULT_PORT_SIZE = 0x20;

/** GDT selectors (ring-3 ones include RPL 3). */
export const SELECTORS = {
  /** Ring-0 64-bit code. */
  kernelCode: 0x08,
  /** Ring-0 data. */
  kernelData: 0x10,
  /** Ring-3 data. */
  userData: 0x1b,
  /** Ring-3 64-bit code. */
  userCode: 0x23,
  /** The first TSS; vCPU i uses `tss + 16 * i`. */
  tss: 0x28,
} as const;

/** Exception vectors for which the CPU pushes an error code. */
export const ERROR_CODE_VECTORS: ReadonlySet<number> = new Set([
  8,
  10,
  11,
  12,
  13,
  14,
  17,
  21,
  29,
  30,
]);

/** Short names of the architectural exceptions. */
export const EXCEPTION_NAMES: readonly string[] = [
  "#DE divide error",
  "#DB debug",
  "NMI",
  "#BP breakpoint",
  "#OF overflow",
  "#BR bound range exceeded",
  "#UD invalid opcode",
  "#NM device not available",
  "#DF double fault",
  "coprocessor segment overrun",
  "#TS invalid TSS",
  "#NP segment not present",
  "#SS stack-segment fault",
  "#GP general protection fault",
  "#PF page fault",
  "reserved vector 15",
  "#MF x87 floating-point error",
  "#AC alignment check",
  "#MC machine check",
  "#XM SIMD floating-point error",
  "#VE virtualization exception",
  "#CP control protection",
];

/** Fields of an 8-byte code or data segment descriptor. */
export interface SegmentDescriptor {
  /** Base address (low 32 bits used). */
  readonly base: number;
  /** 20-bit limit. */
  readonly limit: number;
  /** The access byte: present, DPL, S and type. */
  readonly access: number;
  /** The flags nibble: G, D/B, L, AVL. */
  readonly flags: number;
}

/**
 * Encodes an 8-byte GDT descriptor.
 *
 * @example
 * ```ts
 * import { encodeSegmentDescriptor } from "./layout.ts";
 *
 * // The classic flat 64-bit ring-0 code segment.
 * const d = encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0x9b, flags: 0xa });
 * if (d !== 0x00af9b000000ffffn) throw new Error("bad encoding");
 * ```
 */
export function encodeSegmentDescriptor(d: SegmentDescriptor): bigint {
  const base = BigInt(d.base >>> 0);
  const limit = BigInt(d.limit & 0xfffff);
  return (limit & 0xffffn) | ((base & 0xffffffn) << 16n) | (BigInt(d.access & 0xff) << 40n) |
    ((limit >> 16n) << 48n) | (BigInt(d.flags & 0xf) << 52n) | ((base >> 24n) << 56n);
}

/**
 * Encodes a 16-byte 64-bit TSS descriptor (type 0xb, busy: the platform loads TR directly).
 * Returns the low and high quadwords.
 */
export function encodeTssDescriptor(base: number, limit: number): [bigint, bigint] {
  const b = BigInt(base);
  const low = encodeSegmentDescriptor({
    base: Number(b & 0xffffffffn),
    limit,
    access: 0x8b,
    flags: 0,
  });
  return [low, b >> 32n];
}

/**
 * Encodes a 16-byte 64-bit interrupt gate (type 0xe, present, DPL 0). Returns the low and high
 * quadwords.
 *
 * @param handler The handler's address.
 * @param options `selector` (default the ring-0 code selector), `ist` (0-7, default 1).
 */
export function encodeInterruptGate(
  handler: number,
  options: { selector?: number; ist?: number } = {},
): [bigint, bigint] {
  const h = BigInt(handler);
  const selector = BigInt(options.selector ?? SELECTORS.kernelCode);
  const ist = BigInt((options.ist ?? 1) & 7);
  const low = (h & 0xffffn) | (selector << 16n) | (ist << 32n) | (0x8en << 40n) |
    (((h >> 16n) & 0xffffn) << 48n);
  return [low, h >> 32n];
}

/** Size of the I/O permission bitmap: one bit per port. */
const IO_BITMAP_SIZE = 0x2000;

/** The TSS limit of vCPU `id`: its I/O bitmap offset plus the bitmap and the final 0xff byte. */
export function tssLimit(id: number): number {
  return LAYOUT.ioBitmap - tssAddress(id) + IO_BITMAP_SIZE;
}

/**
 * The shared I/O permission bitmap: every port allowed (zero bits), then the 0xff byte the CPU
 * needs after the last one. Ring-3 port I/O goes through it; nested KVM (PVM) ignores IOPL.
 */
export function buildIoBitmap(): Uint8Array {
  const out = new Uint8Array(IO_BITMAP_SIZE + 1);
  out[IO_BITMAP_SIZE] = 0xff;
  return out;
}

/** Builds the GDT for `cpus` vCPUs (one TSS descriptor each). */
export function buildGdt(cpus: number): Uint8Array {
  const out = new Uint8Array(SELECTORS.tss + 16 * cpus);
  const view = new DataView(out.buffer);
  const entries = [
    0n,
    encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0x9b, flags: 0xa }), // 0x08
    encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0x93, flags: 0xc }), // 0x10
    encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0xf3, flags: 0xc }), // 0x18
    encodeSegmentDescriptor({ base: 0, limit: 0xfffff, access: 0xfb, flags: 0xa }), // 0x20
  ];
  entries.forEach((e, i) => view.setBigUint64(i * 8, e, true));
  for (let i = 0; i < cpus; i++) {
    const [low, high] = encodeTssDescriptor(tssAddress(i), tssLimit(i));
    view.setBigUint64(SELECTORS.tss + 16 * i, low, true);
    view.setBigUint64(SELECTORS.tss + 16 * i + 8, high, true);
  }
  return out;
}

/** Guest physical address of vCPU `id`'s TSS. */
export function tssAddress(id: number): number {
  return LAYOUT.tss + id * LAYOUT.tssStride;
}

/** Top of vCPU `id`'s ring-0 exception stack. */
export function exceptionStackTop(id: number): number {
  return LAYOUT.exceptionStacks + (id + 1) * LAYOUT.exceptionStackSize;
}

/**
 * Builds vCPU `id`'s 104-byte 64-bit TSS: RSP0 and IST1 are its exception stack top, and the
 * I/O map base points at the shared bitmap at `LAYOUT.ioBitmap`.
 */
export function buildTss(id: number): Uint8Array {
  const out = new Uint8Array(104);
  const view = new DataView(out.buffer);
  const stackTop = BigInt(exceptionStackTop(id));
  view.setBigUint64(4, stackTop, true); // RSP0
  view.setBigUint64(36, stackTop, true); // IST1
  view.setUint16(102, LAYOUT.ioBitmap - tssAddress(id), true); // I/O map base
  return out;
}

/** Builds the 256-gate IDT pointing at the stubs at `LAYOUT.stubs`. */
export function buildIdt(): Uint8Array {
  const out = new Uint8Array(256 * 16);
  const view = new DataView(out.buffer);
  for (let v = 0; v < 256; v++) {
    const [low, high] = encodeInterruptGate(LAYOUT.stubs + 16 * v);
    view.setBigUint64(v * 16, low, true);
    view.setBigUint64(v * 16 + 8, high, true);
  }
  return out;
}

/**
 * Builds the 256 exception stubs (placed at `LAYOUT.stubs`): each pushes a zero error code when
 * the CPU does not push one, pushes its vector and jumps to the common handler.
 */
export function buildStubs(): Uint8Array {
  const out = new Uint8Array(256 * 16).fill(0x90);
  for (let v = 0; v < 256; v++) {
    const at = v * 16;
    let p = at;
    if (!ERROR_CODE_VECTORS.has(v)) {
      out[p++] = 0x6a; // push imm8 0
      out[p++] = 0x00;
    }
    out[p++] = 0x68; // push imm32 vector
    new DataView(out.buffer).setUint32(p, v, true);
    p += 4;
    out[p++] = 0xe9; // jmp rel32 handler
    const rel = LAYOUT.handler - (LAYOUT.stubs + p + 4);
    new DataView(out.buffer).setInt32(p, rel, true);
  }
  return out;
}

/**
 * Builds the common exception handler (placed at `LAYOUT.handler`). With the stack holding the
 * vector, the error code and the CPU's interrupt frame, it writes the error code, RIP, CR2 and CS
 * to the fault ports, then the vector (which commits the report), and halts with interrupts off.
 */
export function buildHandler(): Uint8Array {
  const code: number[] = [];
  const movDx = (port: number) => code.push(0x66, 0xba, port & 0xff, port >> 8);
  const loadStack = (disp: number) =>
    disp === 0 ? code.push(0x8b, 0x04, 0x24) : code.push(0x8b, 0x44, 0x24, disp);
  const outDx = () => code.push(0xef);
  movDx(FAULT_PORT + 4);
  loadStack(8); // error code
  outDx();
  movDx(FAULT_PORT + 8);
  loadStack(16); // RIP low
  outDx();
  movDx(FAULT_PORT + 12);
  loadStack(20); // RIP high
  outDx();
  code.push(0x0f, 0x20, 0xd0); // mov rax, cr2
  movDx(FAULT_PORT + 16);
  outDx();
  code.push(0x48, 0xc1, 0xe8, 0x20); // shr rax, 32
  movDx(FAULT_PORT + 20);
  outDx();
  movDx(FAULT_PORT + 24);
  loadStack(24); // CS
  outDx();
  movDx(FAULT_PORT);
  loadStack(0); // vector: commits
  outDx();
  code.push(0xfa, 0xf4, 0xeb, 0xfc); // 1: cli; hlt; jmp 1b
  return Uint8Array.from(code);
}

/** One block of bytes to place in guest memory. */
export interface Placement {
  /** Guest physical address. */
  readonly gpa: number;
  /** The bytes. */
  readonly bytes: Uint8Array;
}

/**
 * Builds identity page tables with 2 MiB pages covering `[0, mapEnd)` (rounded up to 1 GiB):
 * a PML4 at `LAYOUT.pml4`, a PDPT at `LAYOUT.pdpt` and one page directory per GiB from
 * `LAYOUT.pd`. Pages below `LAYOUT.imageStart` are supervisor-only; the rest are user-accessible
 * so ring-3 guests can use them. All are writable and executable.
 *
 * @throws {RangeError} If `mapEnd` exceeds {@linkcode MAX_MAPPED}.
 */
export function buildPageTables(mapEnd: number): Placement[] {
  const gib = Math.ceil(mapEnd / 2 ** 30);
  if (gib * 2 ** 30 > MAX_MAPPED) {
    throw new RangeError(`Cannot map ${mapEnd} bytes: at most ${MAX_MAPPED}`);
  }
  const P = 1n, RW = 2n, US = 4n, A = 0x20n, D = 0x40n, PS = 0x80n;
  const pml4 = new Uint8Array(4096);
  new DataView(pml4.buffer).setBigUint64(0, BigInt(LAYOUT.pdpt) | P | RW | US | A, true);
  const pdpt = new Uint8Array(4096);
  const pdptView = new DataView(pdpt.buffer);
  const pds = new Uint8Array(4096 * gib);
  const pdView = new DataView(pds.buffer);
  for (let g = 0; g < gib; g++) {
    pdptView.setBigUint64(g * 8, BigInt(LAYOUT.pd + g * 4096) | P | RW | US | A, true);
    for (let e = 0; e < 512; e++) {
      const addr = g * 2 ** 30 + e * 2 ** 21;
      const user = addr >= LAYOUT.imageStart ? US : 0n;
      pdView.setBigUint64((g * 512 + e) * 8, BigInt(addr) | P | RW | user | A | D | PS, true);
    }
  }
  return [
    { gpa: LAYOUT.pml4, bytes: pml4 },
    { gpa: LAYOUT.pdpt, bytes: pdpt },
    { gpa: LAYOUT.pd, bytes: pds },
  ];
}

/** A flat 64-bit code segment register for ring `ring` (0 or 3). */
export function codeSegment(ring: 0 | 3): X86Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector: ring === 0 ? SELECTORS.kernelCode : SELECTORS.userCode,
    type: 11,
    present: true,
    dpl: ring,
    db: false,
    s: true,
    l: true,
    g: true,
    avl: false,
    unusable: false,
  };
}

/** A flat data segment register for ring `ring` (0 or 3). */
export function dataSegment(ring: 0 | 3): X86Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector: ring === 0 ? SELECTORS.kernelData : SELECTORS.userData,
    type: 3,
    present: true,
    dpl: ring,
    db: true,
    s: true,
    l: false,
    g: true,
    avl: false,
    unusable: false,
  };
}

/** The task register for vCPU `id` (a busy 64-bit TSS). */
export function taskSegment(id: number): X86Segment {
  return {
    base: BigInt(tssAddress(id)),
    limit: tssLimit(id),
    selector: SELECTORS.tss + 16 * id,
    type: 11,
    present: true,
    dpl: 0,
    db: false,
    s: false,
    l: false,
    g: false,
    avl: false,
    unusable: false,
  };
}

/** An unusable LDT register. */
export function nullLdt(): X86Segment {
  return {
    base: 0n,
    limit: 0xffff,
    selector: 0,
    type: 2,
    present: false,
    dpl: 0,
    db: false,
    s: false,
    l: false,
    g: false,
    avl: false,
    unusable: true,
  };
}

/** CR0: PE, MP, ET, NE, WP, PG. */
export const CR0 = 0x80010033n;
/** CR4: PAE. */
export const CR4 = 0x20n;
/** EFER: LME, LMA. */
export const EFER = 0x500n;
/**
 * RFLAGS at entry: reserved bit 1, IOPL 3 (port I/O allowed in ring 3 on hardware KVM; nested
 * PVM ignores IOPL and uses the TSS I/O bitmap), interrupts off.
 */
export const RFLAGS = 0x3002n;
