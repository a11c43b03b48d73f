/**
 * Kernel image parsing and boot memory layout for RISC-V: the Linux `Image` format
 * (Documentation/riscv/boot-image-header.rst) and ELF64 RISC-V executables. Every field read
 * from a file is checked against the file and against RAM; a bad file throws a
 * {@linkcode VmonError}, never a `RangeError`.
 *
 * @example Parse a minimal Image
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { parseKernel } from "./loader.ts";
 *
 * const image = new Uint8Array(4096);
 * const v = new DataView(image.buffer);
 * v.setBigUint64(8, 0x200000n, true); // text_offset
 * v.setBigUint64(16, 4096n, true); // image_size
 * image.set(new TextEncoder().encode("RISCV\0\0\0RSC\x05"), 0x30);
 * const k = parseKernel(image, { name: "Image", ramBase: 0x80000000, ramSize: 64 << 20 });
 * strictEqual(k.entry, 0x80200000);
 * ```
 *
 * @module
 */

import { hex, VmonError } from "../../../mod.ts";

/** One piece of the kernel to copy into RAM. */
export interface LoadSegment {
  /** Guest physical address of the first byte. */
  readonly gpa: number;
  /** Bytes copied from the file. */
  readonly data: Uint8Array;
  /** Bytes the segment occupies in RAM (`data` then zeros). */
  readonly memSize: number;
}

/** A parsed kernel, ready to copy into RAM. */
export interface KernelImage {
  /** `image` for a Linux Image, `elf` for an ELF executable. */
  readonly format: "image" | "elf";
  /** Where the boot hart starts. */
  readonly entry: number;
  /** The pieces to copy. */
  readonly segments: readonly LoadSegment[];
  /** Lowest guest physical address the kernel occupies. */
  readonly start: number;
  /** One past the highest guest physical address the kernel occupies. */
  readonly end: number;
}

/** Where RAM is, and the file's name for messages. */
export interface RamInfo {
  /** The file name, for messages. */
  readonly name: string;
  /** Guest physical address of RAM. */
  readonly ramBase: number;
  /** RAM size in bytes. */
  readonly ramSize: number;
}

const IMAGE_MAGIC = [0x52, 0x49, 0x53, 0x43, 0x56, 0, 0, 0]; // "RISCV\0\0\0"
const IMAGE_MAGIC2 = [0x52, 0x53, 0x43, 0x05]; // "RSC\x05"
const IMAGE_HEADER_SIZE = 64;
const EM_RISCV = 243;
const ET_EXEC = 2;
const PT_LOAD = 1;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const MACHINES: Record<number, string> = {
  3: "x86",
  40: "ARM",
  62: "x86-64",
  183: "AArch64",
  8: "MIPS",
  20: "PowerPC",
  21: "PowerPC64",
  22: "S/390",
  258: "LoongArch",
};

function matches(bytes: Uint8Array, at: number, magic: readonly number[]): boolean {
  return bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);
}

/**
 * Parses a kernel file: a RISC-V Linux `Image` or an ELF64 RISC-V executable, and checks that it
 * fits in RAM.
 *
 * @param bytes The file contents.
 * @param ram Where RAM is and the file's name (for messages).
 * @throws {VmonError} `Cannot load kernel image "x": ...` when the file is neither, is for
 * another machine, or does not fit.
 */
export function parseKernel(bytes: Uint8Array, ram: RamInfo): KernelImage {
  if (matches(bytes, 0, [0x7f, 0x45, 0x4c, 0x46])) return parseElf(bytes, ram);
  if (matches(bytes, 0x30, IMAGE_MAGIC)) return parseImage(bytes, ram);
  const fail = (why: string): never => {
    throw new VmonError(`Cannot load kernel image "${ram.name}": ${why}`);
  };
  if (matches(bytes, 0, [0x1f, 0x8b])) {
    fail("it is gzip-compressed (Image.gz); decompress it first");
  }
  if (matches(bytes, 0x38, [0x41, 0x52, 0x4d, 0x64])) fail("it is an ARM64 Image, not RISC-V");
  if (matches(bytes, 0x202, [0x48, 0x64, 0x72, 0x53])) fail("it is an x86 bzImage, not RISC-V");
  return fail("not a RISC-V Linux Image or ELF file");
}

function checkFits(ram: RamInfo, start: number, size: number, what: string): void {
  const ramEnd = ram.ramBase + ram.ramSize;
  if (start < ram.ramBase || start + size > ramEnd) {
    throw new VmonError(
      `Cannot load kernel image "${ram.name}": ${what} ${hex(start)}-${
        hex(start + size)
      } does not fit in RAM ${hex(ram.ramBase)}-${hex(ramEnd)}`,
    );
  }
}

function parseImage(bytes: Uint8Array, ram: RamInfo): KernelImage {
  const place = parseImageHeader(bytes, { ...ram, fileSize: bytes.length });
  return {
    format: "image",
    entry: place.start,
    segments: [{ gpa: place.start, data: bytes, memSize: place.memSize }],
    start: place.start,
    end: place.start + place.memSize,
  };
}

/** Where a Linux Image goes in RAM: {@linkcode parseImageHeader}'s answer. */
export interface ImagePlace {
  /** Guest physical address of the file's first byte, and the entry point. */
  readonly start: number;
  /** Bytes the image occupies in RAM (the file, then zeros up to `image_size`). */
  readonly memSize: number;
}

/**
 * True when `header` (a file's first bytes) starts a RISC-V Linux Image: its "RISCV" magic.
 *
 * @param header At least the file's first 64 bytes.
 */
export function isImageHeader(header: Uint8Array): boolean {
  return header.length >= IMAGE_HEADER_SIZE && matches(header, 0x30, IMAGE_MAGIC);
}

/**
 * Checks a RISC-V Linux Image from its header alone and says where it goes, so that a loader can
 * read the file straight into guest RAM there instead of through a copy. The checks and messages
 * are {@linkcode parseKernel}'s for an Image; call it only when {@linkcode isImageHeader} holds.
 *
 * @param header At least the file's first 64 bytes (more is ignored).
 * @param ram Where RAM is, the file's name and the file's size in bytes.
 * @returns The load address and the size the image occupies in RAM.
 * @throws {VmonError} `Cannot load kernel image "x": ...` for an Image that cannot load.
 */
export function parseImageHeader(
  header: Uint8Array,
  ram: RamInfo & { readonly fileSize: number },
): ImagePlace {
  const fail = (why: string): never => {
    throw new VmonError(`Cannot load kernel image "${ram.name}": ${why}`);
  };
  const bytes = header;
  const fileSize = ram.fileSize;
  if (bytes.length < IMAGE_HEADER_SIZE || fileSize < IMAGE_HEADER_SIZE) {
    fail("the Image header is truncated");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!matches(bytes, 0x38, IMAGE_MAGIC2)) fail(`the Image header lacks the "RSC\\x05" magic`);
  const textOffset = v.getBigUint64(8, true);
  const imageSize = v.getBigUint64(16, true);
  const flags = v.getBigUint64(24, true);
  if ((flags & 1n) !== 0n) fail("it is a big-endian Image");
  if (textOffset >= BigInt(ram.ramSize) || (textOffset & 0xfffn) !== 0n) {
    fail(`text_offset ${hex(textOffset)} is not a page-aligned offset inside RAM`);
  }
  const size = imageSize === 0n ? BigInt(fileSize) : imageSize;
  if (size > MAX_SAFE || size < BigInt(fileSize)) {
    fail(`image_size ${hex(imageSize)} is smaller than the file (${fileSize} bytes)`);
  }
  const start = ram.ramBase + Number(textOffset);
  if (start + Number(size) > ram.ramBase + ram.ramSize) {
    fail(
      `it needs ${Number(size)} bytes at ${hex(start)} but RAM ends at ${
        hex(ram.ramBase + ram.ramSize)
      } (image larger than RAM)`,
    );
  }
  return { start, memSize: Number(size) };
}

function parseElf(bytes: Uint8Array, ram: RamInfo): KernelImage {
  const fail = (why: string): never => {
    throw new VmonError(`Cannot load kernel image "${ram.name}": ${why}`);
  };
  if (bytes.length < 64) fail("the ELF header is truncated");
  if (bytes[4] !== 2) fail("it is a 32-bit ELF file; an ELF64 RISC-V executable is needed");
  if (bytes[5] !== 1) fail("it is a big-endian ELF file");
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = v.getUint16(16, true);
  const machine = v.getUint16(18, true);
  if (machine !== EM_RISCV) {
    fail(`ELF machine ${machine} (${MACHINES[machine] ?? "unknown"}) is not RISC-V`);
  }
  if (type !== ET_EXEC) fail(`ELF type ${type} is not an executable (ET_EXEC)`);
  const entry = v.getBigUint64(24, true);
  const phoff = v.getBigUint64(32, true);
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phentsize < 56) fail(`ELF program header size ${phentsize} is too small`);
  if (phnum === 0) fail("the ELF file has no program headers");
  if (phoff + BigInt(phentsize) * BigInt(phnum) > BigInt(bytes.length)) {
    fail("the ELF program headers lie outside the file");
  }
  const segments: LoadSegment[] = [];
  let lo = Infinity;
  let hi = 0;
  for (let i = 0; i < phnum; i++) {
    const at = Number(phoff) + i * phentsize;
    if (v.getUint32(at, true) !== PT_LOAD) continue;
    const offset = v.getBigUint64(at + 8, true);
    const paddr = v.getBigUint64(at + 24, true);
    const filesz = v.getBigUint64(at + 32, true);
    const memsz = v.getBigUint64(at + 40, true);
    if (memsz === 0n) continue;
    if (filesz > memsz) fail(`ELF segment ${i} has p_filesz larger than p_memsz`);
    if (offset + filesz > BigInt(bytes.length)) fail(`ELF segment ${i} lies outside the file`);
    if (paddr + memsz > MAX_SAFE) fail(`ELF segment ${i} address ${hex(paddr)} is out of range`);
    const gpa = Number(paddr);
    checkFits(ram, gpa, Number(memsz), `ELF segment ${i} at`);
    for (const s of segments) {
      if (gpa < s.gpa + s.memSize && s.gpa < gpa + Number(memsz)) {
        fail(`ELF segment ${i} overlaps another segment`);
      }
    }
    segments.push({
      gpa,
      data: bytes.subarray(Number(offset), Number(offset + filesz)),
      memSize: Number(memsz),
    });
    lo = Math.min(lo, gpa);
    hi = Math.max(hi, gpa + Number(memsz));
  }
  if (segments.length === 0) fail("the ELF file has no loadable segments");
  if (entry > MAX_SAFE || !segments.some((s) => entry >= s.gpa && entry < s.gpa + s.memSize)) {
    fail(`ELF entry point ${hex(entry)} is not inside a loaded segment`);
  }
  return { format: "elf", entry: Number(entry), segments, start: lo, end: hi };
}

/** The addresses chosen for the initrd and the device tree. */
export interface BootLayout {
  /** Guest physical address of the device tree blob. */
  readonly dtb: number;
  /** Initrd start and end (exclusive), if there is one. */
  readonly initrd?: { readonly start: number; readonly end: number };
}

/**
 * Chooses where the device tree and the initrd go: the DTB at the top of RAM (4 KiB aligned),
 * the initrd just below it (4 KiB aligned), both above the kernel.
 *
 * @param kernel The parsed kernel.
 * @param sizes `dtbSize` and `initrdSize` (0 for none), RAM and names for messages.
 * @throws {VmonError} When the device tree or the initrd does not fit above the kernel.
 */
export function planLayout(
  kernel: KernelImage,
  sizes: RamInfo & { readonly dtbSize: number; readonly initrdSize: number; initrdName?: string },
): BootLayout {
  const ramEnd = sizes.ramBase + sizes.ramSize;
  const dtb = Math.floor((ramEnd - sizes.dtbSize) / 4096) * 4096;
  if (dtb < kernel.end) {
    throw new VmonError(
      `Cannot boot "${sizes.name}": no room for the ${sizes.dtbSize}-byte device tree above the kernel (RAM too small)`,
    );
  }
  if (sizes.initrdSize <= 0) return { dtb };
  const start = Math.floor((dtb - sizes.initrdSize) / 4096) * 4096;
  if (start < kernel.end) {
    throw new VmonError(
      `Cannot load initrd "${
        sizes.initrdName ?? "initrd"
      }": ${sizes.initrdSize} bytes do not fit between the kernel end ${
        hex(kernel.end)
      } and the device tree at ${hex(dtb)}`,
    );
  }
  return { dtb, initrd: { start, end: start + sizes.initrdSize } };
}
