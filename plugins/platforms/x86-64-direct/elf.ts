/**
 * A strict ELF64 x86-64 executable parser for the x86-64-direct platform. Every field is checked
 * against the file size before use, so truncated or garbage input gives a {@linkcode VmonError},
 * never an exception from a typed array.
 *
 * @module
 */

import { hex, VmonError } from "../../../mod.ts";

/** One loadable segment (`PT_LOAD`) of an ELF file. */
export interface ElfSegment {
  /** Physical load address (`p_paddr`; the platform identity-maps memory). */
  readonly paddr: number;
  /** Byte offset of the segment's data in the file. */
  readonly offset: number;
  /** Bytes taken from the file. */
  readonly fileSize: number;
  /** Bytes in memory (the rest after `fileSize` is zeroed). */
  readonly memSize: number;
  /** `p_flags`: 1 execute, 2 write, 4 read. */
  readonly flags: number;
}

/** A parsed ELF64 x86-64 executable. */
export interface ElfImage {
  /** Entry point address. */
  readonly entry: number;
  /** Loadable segments, in file order. */
  readonly segments: readonly ElfSegment[];
}

const EM_X86_64 = 62;
const ET_EXEC = 2;
const PT_LOAD = 1;
const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const MAX_SEGMENTS = 64;
/** Addresses above this are refused (beyond any RAM the platform can map). */
const MAX_ADDRESS = 2 ** 47;

const MACHINES: Record<number, string> = {
  3: "i386",
  40: "ARM",
  183: "AArch64",
  243: "RISC-V",
};

/**
 * Parses an ELF64 little-endian x86-64 executable (`ET_EXEC`).
 *
 * @param bytes The whole file.
 * @param options `name`: the file name, for messages.
 * @returns The entry point and the loadable segments.
 * @throws {VmonError} `Cannot load kernel image "x": ...` for anything malformed: not an ELF, not
 *   64-bit, wrong byte order or machine, not an executable, headers or segments outside the file,
 *   file size larger than memory size, virtual and physical addresses that differ, overlapping
 *   segments, no loadable segment, an entry point outside every
 *   executable segment.
 *
 * @example
 * ```ts
 * import { parseElf64 } from "./elf.ts";
 *
 * try {
 *   parseElf64(new TextEncoder().encode("#!/bin/sh\n"), { name: "script.sh" });
 * } catch (e) {
 *   if (!String(e).includes("not an ELF file")) throw e;
 * }
 * ```
 */
export function parseElf64(bytes: Uint8Array, options: { name?: string } = {}): ElfImage {
  const fail = (why: string): never => {
    throw new VmonError(`Cannot load kernel image "${options.name ?? "(memory)"}": ${why}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (off: number): number => {
    const v = view.getBigUint64(off, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
    return Number(v);
  };

  if (
    bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c ||
    bytes[3] !== 0x46
  ) {
    fail("not an ELF file");
  }
  if (bytes.length < EHDR_SIZE) fail(`truncated ELF header (${bytes.length} bytes)`);
  if (bytes[4] !== 2) fail("not a 64-bit ELF file (ELFCLASS64 expected)");
  if (bytes[5] !== 1) fail("not a little-endian ELF file");
  if (bytes[6] !== 1) fail(`unsupported ELF version ${bytes[6]}`);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) {
    fail(`built for ${MACHINES[machine] ?? `machine ${machine}`}, not x86-64`);
  }
  const type = view.getUint16(16, true);
  if (type !== ET_EXEC) {
    fail(
      type === 3
        ? "position-independent executables (ET_DYN) are not supported; link with -static -no-pie"
        : `not an executable (ELF type ${type})`,
    );
  }
  const entry = u64(24);
  const phoff = u64(32);
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phnum === 0) fail("no program headers");
  if (phnum > MAX_SEGMENTS) fail(`too many program headers (${phnum}, at most ${MAX_SEGMENTS})`);
  if (phentsize < PHDR_SIZE) fail(`program header size ${phentsize} is smaller than ${PHDR_SIZE}`);
  if (phoff > bytes.length || phnum * phentsize > bytes.length - phoff) {
    fail("program headers lie outside the file");
  }

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (view.getUint32(ph, true) !== PT_LOAD) continue;
    const flags = view.getUint32(ph + 4, true);
    const offset = u64(ph + 8);
    const vaddr = view.getBigUint64(ph + 16, true);
    const paddr = u64(ph + 24);
    const fileSize = u64(ph + 32);
    const memSize = u64(ph + 40);
    if (memSize === 0) continue;
    if (fileSize > memSize) {
      fail(`segment ${i} has file size ${hex(fileSize)} larger than memory size ${hex(memSize)}`);
    }
    if (offset > bytes.length || fileSize > bytes.length - offset) {
      fail(
        `segment ${i} data (offset ${hex(offset)}, ${hex(fileSize)} bytes) lies outside the file`,
      );
    }
    if (paddr >= MAX_ADDRESS || memSize >= MAX_ADDRESS - paddr) {
      fail(`segment ${i} at ${hex(paddr)} (${hex(memSize)} bytes) is beyond addressable memory`);
    }
    if (vaddr !== view.getBigUint64(ph + 24, true)) {
      fail(
        `segment ${i} has virtual address ${hex(vaddr)} but physical address ${
          hex(view.getBigUint64(ph + 24, true))
        }; this platform maps memory one to one`,
      );
    }
    for (const other of segments) {
      if (paddr < other.paddr + other.memSize && other.paddr < paddr + memSize) {
        fail(`segment ${i} at ${hex(paddr)} overlaps the segment at ${hex(other.paddr)}`);
      }
    }
    segments.push({ paddr, offset, fileSize, memSize, flags });
  }
  if (segments.length === 0) fail("no loadable segments");
  const inExec = segments.some((s) =>
    (s.flags & 1) !== 0 && entry >= s.paddr && entry < s.paddr + s.memSize
  );
  if (!inExec) fail(`entry point ${hex(entry)} is not inside an executable segment`);
  return { entry, segments };
}
