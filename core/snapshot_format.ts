/**
 * The snapshot file format (docs/DESIGN.md, "Snapshots"): a fixed header, then a body of
 * tagged sections. Everything read from a file is hostile: every length is checked against what
 * is left, every JSON value against the shape expected, and a bad file is refused with one
 * `VmonError` line (`Cannot restore snapshot "x": the file is truncated`), never a crash.
 *
 * Header (64 bytes, little-endian): magic `VMONSNAP`, format version (u32), header size (u32),
 * body length (u64), CRC-32 of the body (u32), CRC-32 of the 28 header bytes before it (u32),
 * flags (u32, 0), zeros. Section: tag (4 ASCII bytes), flags (u32, bit 0: payload deflated with
 * fflate), stored length (u64), raw length (u64), payload. A RAM section holds one region: its
 * address and size, a bitmap of the 4 KiB pages present, and those pages in order; pages that
 * are all zero are left out (a restored machine's RAM starts zeroed).
 *
 * The checksums and compression come from core/snapshot_codec.ts, loaded on first need: await
 * `loadSnapshotCodec()` before encoding or decoding a file (values alone need nothing).
 *
 * @module
 */

import { snapshotCodec } from "./snapshot_codec.ts";
import type { SnapshotValue } from "./api/mod.ts";
import { VmonError } from "./errors.ts";

/** The file's first eight bytes. */
export const SNAPSHOT_MAGIC = "VMONSNAP";
/** The format version this build writes and reads. */
export const SNAPSHOT_FORMAT_VERSION = 1;
/** Bytes of the header. */
export const HEADER_SIZE = 64;
/** Bytes of a section's header (tag, flags, stored and raw lengths). */
export const SECTION_HEADER_SIZE = 24;
/** The page size of RAM sections. */
export const SNAPSHOT_PAGE = 4096;
/** Section flag: the payload is deflated. */
const SECTION_DEFLATED = 1;
/** Largest raw payload accepted when inflating (guards against a hostile length). */
const MAX_RAW = 2 ** 40;

/** One section of a snapshot body. */
export interface SnapshotSection {
  /** Four ASCII characters: `META`, `CORE`, `PLUG`, `RAM `. */
  readonly tag: string;
  /** The payload, inflated. */
  readonly payload: Uint8Array;
}

/** One RAM region in a snapshot. */
export interface RamImage {
  /** Guest physical address. */
  readonly gpa: number;
  /** Size in bytes (a multiple of 4 KiB). */
  readonly size: number;
  /** One bit per page (bit i of byte i >> 3): the page is present in `pages`. */
  readonly bitmap: Uint8Array;
  /** The present pages, in order, `SNAPSHOT_PAGE` bytes each. */
  readonly pages: Uint8Array;
}

/** Options of {@linkcode encodeSnapshot}. */
export interface EncodeOptions {
  /** Deflate every section (fflate, level 1): smaller files, slower save and restore. */
  readonly compress?: boolean;
}

function fail(name: string, why: string): never {
  throw new VmonError(`Cannot restore snapshot "${name}": ${why}`);
}

/**
 * Encodes sections into a snapshot file.
 *
 * @param sections The sections, in order.
 * @param options Compression.
 * @returns The whole file.
 */
export function encodeSnapshot(
  sections: readonly SnapshotSection[],
  options: EncodeOptions = {},
): Uint8Array {
  const stored = sections.map((s) => {
    if (!/^[\x20-\x7e]{4}$/.test(s.tag)) throw new Error(`bad section tag "${s.tag}"`);
    const data = options.compress ? snapshotCodec().deflate(s.payload) : s.payload;
    return { tag: s.tag, data, raw: s.payload.length, flags: options.compress ? 1 : 0 };
  });
  const bodyLength = stored.reduce((n, s) => n + SECTION_HEADER_SIZE + s.data.length, 0);
  const out = new Uint8Array(HEADER_SIZE + bodyLength);
  const dv = new DataView(out.buffer);
  let at = HEADER_SIZE;
  for (const s of stored) {
    for (let i = 0; i < 4; i++) out[at + i] = s.tag.charCodeAt(i);
    dv.setUint32(at + 4, s.flags, true);
    dv.setBigUint64(at + 8, BigInt(s.data.length), true);
    dv.setBigUint64(at + 16, BigInt(s.raw), true);
    out.set(s.data, at + SECTION_HEADER_SIZE);
    at += SECTION_HEADER_SIZE + s.data.length;
  }
  for (let i = 0; i < 8; i++) out[i] = SNAPSHOT_MAGIC.charCodeAt(i);
  dv.setUint32(8, SNAPSHOT_FORMAT_VERSION, true);
  dv.setUint32(12, HEADER_SIZE, true);
  dv.setBigUint64(16, BigInt(bodyLength), true);
  dv.setUint32(24, snapshotCodec().crc32(out.subarray(HEADER_SIZE)) >>> 0, true);
  dv.setUint32(28, snapshotCodec().crc32(out.subarray(0, 28)) >>> 0, true);
  return out;
}

/**
 * The checks of a snapshot file's header, alone: magic, the header's checksum, format version,
 * header size and the body's length against the file's. Returns the body's expected CRC-32.
 */
function checkHeader(head: Uint8Array, fileSize: number, name: string): number {
  for (let i = 0; i < 8; i++) {
    if (head[i] !== SNAPSHOT_MAGIC.charCodeAt(i)) fail(name, "not a vmon snapshot file");
  }
  const dv = new DataView(head.buffer, head.byteOffset, HEADER_SIZE);
  if ((snapshotCodec().crc32(head.subarray(0, 28)) >>> 0) !== dv.getUint32(28, true)) {
    fail(name, "the header is corrupted (checksum mismatch)");
  }
  const version = dv.getUint32(8, true);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    fail(
      name,
      `format version ${version} is not supported (this vmon reads version ${SNAPSHOT_FORMAT_VERSION})`,
    );
  }
  const headerSize = dv.getUint32(12, true);
  if (headerSize !== HEADER_SIZE) fail(name, `unexpected header size ${headerSize}`);
  const bodyLength = dv.getBigUint64(16, true);
  const have = BigInt(fileSize - HEADER_SIZE);
  if (bodyLength > have) fail(name, `the file is truncated (${have} of ${bodyLength} body bytes)`);
  if (bodyLength < have) fail(name, "the file has trailing bytes after its body");
  return dv.getUint32(24, true);
}

/**
 * Checks a snapshot file (magic, version, lengths, both checksums) and splits it into sections,
 * inflating compressed ones. Refuses a bad file with one line.
 *
 * @param bytes The whole file.
 * @param options `name`: the file's name for messages.
 */
export function decodeSnapshot(
  bytes: Uint8Array,
  options: { readonly name: string },
): SnapshotSection[] {
  const name = options.name;
  for (let i = 0; i < Math.min(8, bytes.length); i++) {
    if (bytes[i] !== SNAPSHOT_MAGIC.charCodeAt(i)) fail(name, "not a vmon snapshot file");
  }
  if (bytes.length < 8) fail(name, "the file is truncated (no header)");
  if (bytes.length < HEADER_SIZE) fail(name, "the file is truncated (short header)");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodyCrc = checkHeader(bytes.subarray(0, HEADER_SIZE), bytes.length, name);
  const body = bytes.subarray(HEADER_SIZE);
  if ((snapshotCodec().crc32(body) >>> 0) !== bodyCrc) {
    fail(name, "the file is corrupted (body checksum mismatch)");
  }
  const sections: SnapshotSection[] = [];
  let at = 0;
  while (at < body.length) {
    if (body.length - at < SECTION_HEADER_SIZE) fail(name, "a section header is truncated");
    const tag = String.fromCharCode(...body.subarray(at, at + 4));
    if (!/^[\x20-\x7e]{4}$/.test(tag)) fail(name, "a section has an invalid tag");
    const flags = dv.getUint32(HEADER_SIZE + at + 4, true);
    const stored = dv.getBigUint64(HEADER_SIZE + at + 8, true);
    const raw = dv.getBigUint64(HEADER_SIZE + at + 16, true);
    at += SECTION_HEADER_SIZE;
    if (stored > BigInt(body.length - at)) fail(name, `section "${tag}" is truncated`);
    const data = body.subarray(at, at + Number(stored));
    at += Number(stored);
    if (flags & ~SECTION_DEFLATED) fail(name, `section "${tag}" has unknown flags ${flags}`);
    let payload = data;
    if (flags & SECTION_DEFLATED) {
      if (raw > BigInt(MAX_RAW)) fail(name, `section "${tag}" is too large`);
      try {
        payload = snapshotCodec().inflate(data, new Uint8Array(Number(raw)));
      } catch {
        fail(name, `section "${tag}" does not inflate`);
      }
    }
    if (BigInt(payload.length) !== raw) fail(name, `section "${tag}" has the wrong length`);
    sections.push({ tag, payload });
  }
  return sections;
}

// --- values ------------------------------------------------------------------------------------

/**
 * Encodes a {@linkcode SnapshotValue} as JSON text: bytes as `{"$b": base64}`, bigints as
 * `{"$n": "digits"}`, and an object with a key starting with `$` wrapped as `{"$o": {...}}`.
 *
 * @param value The value.
 * @returns UTF-8 JSON.
 */
export function encodeValue(value: SnapshotValue): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(toJson(value, "state")));
}

function toJson(v: SnapshotValue, path: string): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`Cannot save ${path}: ${v} is not a finite number`);
    return v;
  }
  if (typeof v === "bigint") return { $n: v.toString() };
  if (v instanceof Uint8Array) {
    return { $b: v.toBase64() };
  }
  if (Array.isArray(v)) return v.map((x, i) => toJson(x, `${path}[${i}]`));
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    let dollar = false;
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      if (k.startsWith("$")) dollar = true;
      out[k] = toJson(x as SnapshotValue, `${path}.${k}`);
    }
    return dollar ? { $o: out } : out;
  }
  throw new Error(`Cannot save ${path}: a ${typeof v} is not a snapshot value`);
}

/**
 * Decodes what {@linkcode encodeValue} wrote. Refuses malformed text with one line.
 *
 * @param bytes UTF-8 JSON.
 * @param options `name`: the file's name; `what`: the section, for messages.
 */
export function decodeValue(
  bytes: Uint8Array,
  options: { readonly name: string; readonly what: string },
): SnapshotValue {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    fail(options.name, `${options.what} is not valid JSON`);
  }
  return fromJson(json, options, 0);
}

function fromJson(
  v: unknown,
  options: { readonly name: string; readonly what: string },
  depth: number,
): SnapshotValue {
  if (depth > 64) fail(options.name, `${options.what} is nested too deeply`);
  if (v === null || typeof v === "boolean" || typeof v === "string" || typeof v === "number") {
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => fromJson(x, options, depth + 1));
  if (typeof v === "object") {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === "$b") {
      if (typeof o.$b !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(o.$b)) {
        fail(options.name, `${options.what} holds malformed bytes`);
      }
      try {
        return Uint8Array.fromBase64(o.$b);
      } catch {
        fail(options.name, `${options.what} holds malformed bytes`);
      }
    }
    if (keys.length === 1 && keys[0] === "$n") {
      if (typeof o.$n !== "string" || !/^-?\d{1,40}$/.test(o.$n)) {
        fail(options.name, `${options.what} holds a malformed integer`);
      }
      return BigInt(o.$n);
    }
    let src = o;
    if (keys.length === 1 && keys[0] === "$o") {
      if (typeof o.$o !== "object" || o.$o === null || Array.isArray(o.$o)) {
        fail(options.name, `${options.what} holds a malformed object`);
      }
      src = o.$o as Record<string, unknown>;
    } else if (keys.some((k) => k.startsWith("$"))) {
      fail(options.name, `${options.what} holds an unknown tag`);
    }
    const out: Record<string, SnapshotValue> = {};
    for (const [k, x] of Object.entries(src)) out[k] = fromJson(x, options, depth + 1);
    return out;
  }
  fail(options.name, `${options.what} holds an unexpected value`);
}

// --- RAM ---------------------------------------------------------------------------------------

const RAM_HEADER = 24;

/**
 * Encodes a RAM region, leaving out its all-zero pages.
 *
 * @param gpa Guest physical address.
 * @param ram The region's bytes (a multiple of 4 KiB).
 * @returns The section payload.
 */
export function encodeRam(gpa: number, ram: Uint8Array): Uint8Array {
  const pages = Math.floor(ram.length / SNAPSHOT_PAGE);
  if (pages * SNAPSHOT_PAGE !== ram.length) {
    throw new Error("a RAM region must be whole 4 KiB pages");
  }
  // A u32 view when aligned (the usual case: RAM is page-aligned host memory), else bytes.
  const words = ram.byteOffset % 4 === 0
    ? new Uint32Array(ram.buffer, ram.byteOffset, ram.length / 4)
    : ram;
  const per = words.length / pages;
  const bitmap = new Uint8Array(Math.ceil(pages / 8));
  let present = 0;
  for (let p = 0, i = 0; p < pages; p++) {
    const end = i + per;
    for (; i < end; i++) {
      if (words[i] !== 0) {
        bitmap[p >> 3]! |= 1 << (p & 7);
        present++;
        break;
      }
    }
    i = end;
  }
  const out = new Uint8Array(RAM_HEADER + bitmap.length + present * SNAPSHOT_PAGE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(gpa), true);
  dv.setBigUint64(8, BigInt(ram.length), true);
  dv.setUint32(16, SNAPSHOT_PAGE, true);
  dv.setUint32(20, present, true);
  out.set(bitmap, RAM_HEADER);
  let at = RAM_HEADER + bitmap.length;
  // Runs of present pages are copied at once.
  for (let p = 0; p < pages;) {
    if (!(bitmap[p >> 3]! & (1 << (p & 7)))) {
      p++;
      continue;
    }
    let q = p + 1;
    while (q < pages && bitmap[q >> 3]! & (1 << (q & 7))) q++;
    out.set(ram.subarray(p * SNAPSHOT_PAGE, q * SNAPSHOT_PAGE), at);
    at += (q - p) * SNAPSHOT_PAGE;
    p = q;
  }
  return out;
}

/**
 * Decodes a RAM section, checking that its bitmap and pages agree.
 *
 * @param payload The section payload.
 * @param options `name`: the file's name, for messages.
 */
export function decodeRam(payload: Uint8Array, options: { readonly name: string }): RamImage {
  if (payload.length < RAM_HEADER) fail(options.name, "a RAM section is truncated");
  const head = checkRamHeader(payload.subarray(0, RAM_HEADER), {
    name: options.name,
    bitmap: (n) => payload.subarray(RAM_HEADER, RAM_HEADER + n),
    length: payload.length,
  });
  return { ...head, pages: payload.subarray(RAM_HEADER + head.bitmap.length) };
}

/** Checks a RAM section's header and bitmap against the section's length. */
function checkRamHeader(
  header: Uint8Array,
  options: {
    readonly name: string;
    readonly bitmap: (bytes: number) => Uint8Array;
    readonly length: number;
  },
): Omit<RamImage, "pages"> {
  const name = options.name;
  const dv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const gpa = dv.getBigUint64(0, true);
  const size = dv.getBigUint64(8, true);
  const page = dv.getUint32(16, true);
  const present = dv.getUint32(20, true);
  if (page !== SNAPSHOT_PAGE) fail(name, `a RAM section has page size ${page}`);
  if (gpa > BigInt(Number.MAX_SAFE_INTEGER) || size > 2n ** 40n || size % 4096n !== 0n) {
    fail(name, "a RAM section has an impossible address or size");
  }
  const pages = Number(size) / SNAPSHOT_PAGE;
  const mapBytes = Math.ceil(pages / 8);
  if (options.length !== RAM_HEADER + mapBytes + present * SNAPSHOT_PAGE) {
    fail(name, "a RAM section's length does not match its page count");
  }
  const bitmap = options.bitmap(mapBytes);
  let count = 0;
  for (let i = 0; i < bitmap.length; i++) {
    let b = bitmap[i]!;
    if (i === bitmap.length - 1 && pages % 8 !== 0 && b >> (pages % 8)) {
      fail(name, "a RAM section's bitmap marks pages beyond the region");
    }
    while (b) {
      count += b & 1;
      b >>= 1;
    }
  }
  if (count !== present) fail(name, "a RAM section's bitmap does not match its page count");
  return { gpa: Number(gpa), size: Number(size), bitmap };
}

/**
 * Copies a decoded RAM image into a region's bytes (which must be zero where pages are absent:
 * a freshly created region).
 *
 * @param image The decoded image.
 * @param ram The region's bytes, `image.size` long.
 */
export function loadRam(image: RamImage, ram: Uint8Array): void {
  const pages = image.size / SNAPSHOT_PAGE;
  const bitmap = image.bitmap;
  let at = 0;
  for (let p = 0; p < pages;) {
    if (!(bitmap[p >> 3]! & (1 << (p & 7)))) {
      p++;
      continue;
    }
    let q = p + 1;
    while (q < pages && bitmap[q >> 3]! & (1 << (q & 7))) q++;
    const n = (q - p) * SNAPSHOT_PAGE;
    ram.set(image.pages.subarray(at, at + n), p * SNAPSHOT_PAGE);
    at += n;
    p = q;
  }
}

// --- reading a file in two phases ----------------------------------------------------------------

/**
 * A snapshot file read in two phases, so that RAM pages go from the file straight into guest
 * RAM (no copy of the file in host memory, which costs a page fault per 4 KiB twice over):
 * {@linkcode SnapshotFileReader.open} checks the header and reads every section but the RAM
 * pages (RAM sections come last in files vmon writes); {@linkcode SnapshotFileReader.loadRam}
 * then reads the pages into the regions and checks the body's CRC-32 over everything read. A
 * file with deflated sections is read whole instead.
 */
export class SnapshotFileReader {
  /** The non-RAM sections, in file order. */
  readonly sections: readonly SnapshotSection[];
  /** The RAM regions (pages not read yet: `pages` is empty until `loadRam`). */
  readonly ram: readonly RamImage[];
  #file: Deno.FsFile | undefined;
  #name: string;
  #crc: number;
  #expected: number;
  #ramAt: number;
  #whole: RamImage[] | undefined;

  private constructor(
    init: {
      sections: SnapshotSection[];
      ram: RamImage[];
      file?: Deno.FsFile;
      name: string;
      crc: number;
      expected: number;
      ramAt: number;
      whole?: RamImage[];
    },
  ) {
    this.sections = init.sections;
    this.ram = init.ram;
    this.#file = init.file;
    this.#name = init.name;
    this.#crc = init.crc;
    this.#expected = init.expected;
    this.#ramAt = init.ramAt;
    this.#whole = init.whole;
  }

  /**
   * Opens `path` and reads everything but the RAM pages. Refuses a bad file with one line.
   *
   * @param path The file.
   */
  static open(path: string): SnapshotFileReader {
    const name = path;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (err) {
      const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
      throw new VmonError(`Cannot restore snapshot "${path}": ${why}`);
    }
    try {
      return SnapshotFileReader.#read(file, name);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  static #read(file: Deno.FsFile, name: string): SnapshotFileReader {
    const size = file.statSync().size;
    const readAt = (at: number, n: number): Uint8Array => {
      const buf = new Uint8Array(n);
      file.seekSync(at, Deno.SeekMode.Start);
      let o = 0;
      while (o < n) {
        const k = file.readSync(buf.subarray(o));
        if (k === null) fail(name, "the file is truncated");
        o += k!;
      }
      return buf;
    };
    const head = readAt(0, Math.min(HEADER_SIZE, size));
    if (size < HEADER_SIZE) {
      decodeSnapshot(head, { name }); // the right message for a short file
      fail(name, "the file is truncated (short header)");
    }
    const expected = checkHeader(head, size, name);
    const sections: SnapshotSection[] = [];
    const ram: RamImage[] = [];
    let crc = 0;
    let at = HEADER_SIZE;
    let ramAt = -1;
    while (at < size) {
      if (size - at < SECTION_HEADER_SIZE) fail(name, "a section header is truncated");
      const sh = readAt(at, SECTION_HEADER_SIZE);
      const sdv = new DataView(sh.buffer);
      const tag = String.fromCharCode(...sh.subarray(0, 4));
      const flags = sdv.getUint32(4, true);
      const stored = sdv.getBigUint64(8, true);
      if (stored > BigInt(size - at - SECTION_HEADER_SIZE)) {
        fail(name, `section "${tag}" is truncated`);
      }
      if (flags !== 0) {
        // Deflated sections: read the whole file the simple way.
        file.close();
        const whole = Deno.readFileSync(name);
        const all = decodeSnapshot(whole, { name });
        const images = all.filter((s) => s.tag === "RAM ").map((s) =>
          decodeRam(s.payload, { name })
        );
        return new SnapshotFileReader({
          sections: all.filter((s) => s.tag !== "RAM "),
          ram: images,
          name,
          crc: 0,
          expected: 0,
          ramAt: -1,
          whole: images,
        });
      }
      const n = Number(stored);
      if (tag === "RAM ") {
        if (ramAt < 0) ramAt = at;
        if (n < RAM_HEADER) fail(name, "a RAM section is truncated");
        const rh = readAt(at + SECTION_HEADER_SIZE, RAM_HEADER);
        const image = checkRamHeader(rh, {
          name,
          bitmap: (bytes) => readAt(at + SECTION_HEADER_SIZE + RAM_HEADER, bytes),
          length: n,
        });
        if (sdv.getBigUint64(16, true) !== stored) {
          fail(name, `section "${tag}" has the wrong length`);
        }
        ram.push({
          gpa: image.gpa,
          size: image.size,
          bitmap: image.bitmap,
          pages: new Uint8Array(0),
        });
      } else {
        if (ramAt >= 0) fail(name, `section "${tag}" follows the RAM sections`);
        const payload = readAt(at + SECTION_HEADER_SIZE, n);
        if (sdv.getBigUint64(16, true) !== stored) {
          fail(name, `section "${tag}" has the wrong length`);
        }
        crc = snapshotCodec().crc32(sh, crc) >>> 0;
        crc = snapshotCodec().crc32(payload, crc) >>> 0;
        sections.push({ tag, payload });
      }
      at += SECTION_HEADER_SIZE + n;
    }
    return new SnapshotFileReader({ sections, ram, file, name, crc, expected, ramAt });
  }

  /**
   * Reads the RAM pages into `regions` (one `Uint8Array` per RAM image, `size` bytes each, zero
   * where pages are absent: fresh regions), then checks the body's CRC-32 and closes the file.
   * Refuses a file whose RAM does not match its checksum with one line.
   *
   * @param regions The destination of each RAM image, in order.
   */
  loadRam(regions: readonly Uint8Array[]): void {
    if (this.#whole !== undefined) {
      this.#whole.forEach((image, i) => loadRam(image, regions[i]!));
      return;
    }
    const file = this.#file;
    if (file === undefined) throw new Error("the snapshot's RAM was read already");
    const name = this.#name;
    try {
      let crc = this.#crc;
      const read = (buf: Uint8Array): void => {
        let o = 0;
        while (o < buf.length) {
          const k = file.readSync(buf.subarray(o));
          if (k === null) fail(name, "the file is truncated");
          o += k!;
        }
        crc = snapshotCodec().crc32(buf, crc) >>> 0;
      };
      if (this.ram.length > 0) file.seekSync(this.#ramAt, Deno.SeekMode.Start);
      this.ram.forEach((image, i) => {
        const dst = regions[i]!;
        if (dst.length !== image.size) throw new Error("RAM region size mismatch");
        const mapBytes = image.bitmap.length;
        read(new Uint8Array(SECTION_HEADER_SIZE + RAM_HEADER + mapBytes));
        const pages = image.size / SNAPSHOT_PAGE;
        const bitmap = image.bitmap;
        for (let p = 0; p < pages;) {
          if (!(bitmap[p >> 3]! & (1 << (p & 7)))) {
            p++;
            continue;
          }
          let q = p + 1;
          while (q < pages && bitmap[q >> 3]! & (1 << (q & 7))) q++;
          read(dst.subarray(p * SNAPSHOT_PAGE, q * SNAPSHOT_PAGE));
          p = q;
        }
      });
      if (crc !== this.#expected) fail(name, "the file is corrupted (body checksum mismatch)");
    } finally {
      this.close();
    }
  }

  /** Closes the file. Idempotent. */
  close(): void {
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = undefined;
  }
}
