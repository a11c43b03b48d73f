/**
 * A writer (and a small reader, for checks) of the "newc" cpio format the Linux kernel unpacks
 * as an initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
 *
 * @example
 * ```ts
 * import { CpioWriter, readCpio } from "./cpio.ts";
 * const w = new CpioWriter();
 * w.file("bin/hello", new TextEncoder().encode("hi\n"), { mode: 0o755 });
 * w.symlink("bin/hi", "hello");
 * const names = readCpio(w.finish()).map((e) => e.name);
 * if (names.join() !== "bin,bin/hello,bin/hi") throw new Error(names.join());
 * ```
 *
 * @module
 */

import { VmonError } from "../../core/errors.ts";

/** File type bits of a cpio mode. */
export const S_IFMT = 0o170000;
/** Directory. */
export const S_IFDIR = 0o040000;
/** Regular file. */
export const S_IFREG = 0o100000;
/** Symbolic link. */
export const S_IFLNK = 0o120000;
/** Character device. */
export const S_IFCHR = 0o020000;
/** Block device. */
export const S_IFBLK = 0o060000;

const MAGIC = "070701";
const TRAILER = "TRAILER!!!";

const align4 = (n: number): number => Math.ceil(n / 4) * 4;

/** One archive member. */
export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  name: string;
  /** Type and permission bits. */
  mode: number;
  /** Owner. */
  uid: number;
  /** Group. */
  gid: number;
  /** Modification time (seconds since the epoch). */
  mtime: number;
  /** For device nodes: major number. */
  rdevMajor: number;
  /** For device nodes: minor number. */
  rdevMinor: number;
  /** File contents, or the target of a symbolic link. */
  data: Uint8Array;
}

/** Options common to every added member. */
export interface MemberOptions {
  /** Permission bits (defaults: 0o755 directories, 0o644 files, 0o777 links, 0o600 nodes). */
  mode?: number;
  /** Owner (default 0). */
  uid?: number;
  /** Group (default 0). */
  gid?: number;
}

function normalize(path: string): string {
  const name = path.replace(/^\/+/, "").replace(/\/+$/, "");
  if (name === "" || name.split("/").some((p) => p === "" || p === "." || p === "..")) {
    throw new VmonError(`Cannot add "${path}" to the cpio archive: not a clean relative path`);
  }
  return name;
}

/**
 * Builds a newc cpio archive in memory. Parent directories are added automatically (mode
 * 0o755) before their first member; a path may be added once. All members get the same
 * `mtime` (default 0) so that archives are reproducible.
 */
export class CpioWriter {
  #entries: CpioEntry[] = [];
  #names = new Set<string>();
  #mtime: number;

  /** @param options `mtime` given to every member (default 0). */
  constructor(options: { mtime?: number } = {}) {
    this.#mtime = options.mtime ?? 0;
  }

  #add(
    path: string,
    type: number,
    data: Uint8Array,
    perm: number,
    options: MemberOptions,
    rdev: [number, number] = [0, 0],
  ): void {
    const name = normalize(path);
    if (this.#names.has(name)) {
      throw new VmonError(`Cannot add "${name}" to the cpio archive: already present`);
    }
    const parts = name.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (!this.#names.has(parent)) this.dir(parent);
    }
    this.#names.add(name);
    this.#entries.push({
      name,
      mode: type | ((options.mode ?? perm) & 0o7777),
      uid: options.uid ?? 0,
      gid: options.gid ?? 0,
      mtime: this.#mtime,
      rdevMajor: rdev[0],
      rdevMinor: rdev[1],
      data,
    });
  }

  /** Adds a directory (a no-op if it was already added as a parent). */
  dir(path: string, options: MemberOptions = {}): this {
    if (!this.#names.has(normalize(path))) {
      this.#add(path, S_IFDIR, new Uint8Array(), 0o755, options);
    }
    return this;
  }

  /** Adds a regular file. */
  file(path: string, data: Uint8Array, options: MemberOptions = {}): this {
    this.#add(path, S_IFREG, data, 0o644, options);
    return this;
  }

  /** Adds a symbolic link to `target`. */
  symlink(path: string, target: string, options: MemberOptions = {}): this {
    this.#add(path, S_IFLNK, new TextEncoder().encode(target), 0o777, options);
    return this;
  }

  /** Adds a character (`"c"`) or block (`"b"`) device node. */
  node(
    path: string,
    device: { type: "c" | "b"; major: number; minor: number },
    options: MemberOptions = {},
  ): this {
    const type = device.type === "c" ? S_IFCHR : S_IFBLK;
    this.#add(path, type, new Uint8Array(), 0o600, options, [device.major, device.minor]);
    return this;
  }

  /** Returns the archive bytes, ending with the `TRAILER!!!` member. */
  finish(): Uint8Array {
    const chunks: Uint8Array[] = [];
    let size = 0;
    const push = (b: Uint8Array) => {
      chunks.push(b);
      size += b.length;
      const pad = (4 - (size % 4)) % 4;
      if (pad) {
        chunks.push(new Uint8Array(pad));
        size += pad;
      }
    };
    const enc = new TextEncoder();
    const all: CpioEntry[] = [
      ...this.#entries,
      {
        name: TRAILER,
        mode: 0,
        uid: 0,
        gid: 0,
        mtime: 0,
        rdevMajor: 0,
        rdevMinor: 0,
        data: new Uint8Array(),
      },
    ];
    all.forEach((e, i) => {
      const name = enc.encode(e.name);
      const fields = [
        e.name === TRAILER ? 0 : i + 1, // inode: unique per member, no hard links
        e.mode,
        e.uid,
        e.gid,
        (e.mode & S_IFMT) === S_IFDIR ? 2 : 1, // nlink
        e.mtime,
        e.data.length,
        0, // devmajor
        0, // devminor
        e.rdevMajor,
        e.rdevMinor,
        name.length + 1,
        0, // check
      ];
      for (const f of fields) {
        if (!Number.isInteger(f) || f < 0 || f > 0xffffffff) {
          throw new VmonError(`Cannot write cpio member "${e.name}": field ${f} out of range`);
        }
      }
      const header = MAGIC + fields.map((f) => f.toString(16).padStart(8, "0")).join("");
      const head = new Uint8Array(110 + name.length + 1);
      head.set(enc.encode(header));
      head.set(name, 110);
      push(head);
      if (e.data.length) push(e.data);
    });
    const out = new Uint8Array(size);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** Parses a newc cpio archive (without the trailer member); throws on malformed input. */
export function readCpio(bytes: Uint8Array): CpioEntry[] {
  const dec = new TextDecoder();
  const out: CpioEntry[] = [];
  let off = 0;
  const bad = (why: string) => new VmonError(`Cannot read cpio archive at offset ${off}: ${why}`);
  for (;;) {
    if (off + 110 > bytes.length) throw bad("truncated header");
    const header = dec.decode(bytes.subarray(off, off + 110));
    if (!header.startsWith(MAGIC)) throw bad("bad magic");
    const f: number[] = [];
    for (let i = 0; i < 13; i++) {
      const hexText = header.slice(6 + i * 8, 14 + i * 8);
      if (!/^[0-9a-fA-F]{8}$/.test(hexText)) throw bad("bad header field");
      f.push(parseInt(hexText, 16));
    }
    const [, mode, uid, gid, , mtime, filesize, , , rdevMajor, rdevMinor, namesize] = f as [
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    if (namesize < 1 || off + 110 + namesize > bytes.length) throw bad("bad name size");
    const name = dec.decode(bytes.subarray(off + 110, off + 110 + namesize - 1));
    off = align4(off + 110 + namesize);
    if (name === TRAILER) return out;
    if (off + filesize > bytes.length) throw bad("truncated data");
    const data = bytes.slice(off, off + filesize);
    off = align4(off + filesize);
    out.push({ name, mode, uid, gid, mtime, rdevMajor, rdevMinor, data });
  }
}
