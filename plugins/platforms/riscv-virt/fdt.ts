/**
 * A small flattened device tree (FDT, "DTB") writer and reader, following the Devicetree
 * Specification v0.4, chapter 5: a 40-byte header, the memory reservation block, the structure
 * block (FDT_BEGIN_NODE / FDT_PROP / FDT_END_NODE / FDT_END tokens) and the strings block, all
 * big-endian.
 *
 * @example Build and encode a tree
 * ```ts
 * import { strictEqual } from "node:assert/strict";
 * import { decodeFdt, encodeFdt, FdtNode } from "./fdt.ts";
 *
 * const root = new FdtNode("");
 * root.u32("#address-cells", 2).string("model", "example");
 * root.child("chosen").string("bootargs", "console=ttyS0");
 * const blob = encodeFdt(root);
 * strictEqual(decodeFdt(blob).find("/chosen")?.getString("bootargs"), "console=ttyS0");
 * ```
 *
 * @module
 */

import { VmonError } from "../../../mod.ts";

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_NOP = 4;
const FDT_END = 9;
const HEADER_SIZE = 40;
const VERSION = 17;
const LAST_COMP_VERSION = 16;

const NODE_NAME_RE = /^[A-Za-z0-9,._+-]{1,31}(@[A-Za-z0-9,._+-]+)?$/;
const PROP_NAME_RE = /^[A-Za-z0-9,._+?#-]{1,31}$/;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

/** One memory reservation block entry. */
export interface FdtReservation {
  /** Physical address of the reserved range. */
  readonly address: bigint;
  /** Size of the reserved range in bytes. */
  readonly size: bigint;
}

/**
 * A devicetree node: a name, properties in insertion order (raw big-endian bytes) and child
 * nodes. Setters return the node so that calls chain.
 */
export class FdtNode {
  /** The node name, with its unit address (`serial@10000000`); empty for the root. */
  readonly name: string;
  #props = new Map<string, Uint8Array>();
  #children: FdtNode[] = [];

  /**
   * @param name The node name; empty for the root node.
   * @throws {VmonError} When the name is not a valid devicetree node name.
   */
  constructor(name: string) {
    if (name !== "" && !NODE_NAME_RE.test(name)) {
      throw new VmonError(`Invalid devicetree node name "${name}": use letters, digits and ,._+-`);
    }
    this.name = name;
  }

  /** The properties, in insertion order. */
  get properties(): ReadonlyMap<string, Uint8Array> {
    return this.#props;
  }

  /** The child nodes, in insertion order. */
  get children(): readonly FdtNode[] {
    return this.#children;
  }

  /**
   * Adds a child node and returns it.
   *
   * @throws {VmonError} When a child of that name exists already.
   */
  child(name: string): FdtNode;
  /** Returns the child called `name` if it exists (lookup only). */
  child(name: string, options: { readonly lookup: true }): FdtNode | undefined;
  child(name: string, options?: { readonly lookup: true }): FdtNode | undefined {
    const found = this.#children.find((c) => c.name === name);
    if (options?.lookup) return found;
    if (found) {
      throw new VmonError(
        `Cannot add devicetree node "${name}" under "${this.name || "/"}": it exists already`,
      );
    }
    const node = new FdtNode(name);
    this.#children.push(node);
    return node;
  }

  /** Sets a property to raw bytes. */
  bytes(name: string, value: Uint8Array): this {
    if (!PROP_NAME_RE.test(name)) {
      throw new VmonError(
        `Invalid devicetree property name "${name}": use up to 31 letters, digits and ,._+?#-`,
      );
    }
    this.#props.set(name, value);
    return this;
  }

  /** Sets an empty (boolean) property such as `interrupt-controller`. */
  empty(name: string): this {
    return this.bytes(name, new Uint8Array(0));
  }

  /** Sets a property to one or more 32-bit cells. */
  u32(name: string, values: number | readonly number[]): this {
    const list = typeof values === "number" ? [values] : values;
    const out = new Uint8Array(list.length * 4);
    const view = new DataView(out.buffer);
    list.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new VmonError(`Invalid devicetree cell for "${name}": ${v} is not a u32`);
      }
      view.setUint32(i * 4, v);
    });
    return this.bytes(name, out);
  }

  /** Sets a property to one or more 64-bit values (two cells each). */
  u64(name: string, values: bigint | number | readonly (bigint | number)[]): this {
    const list = Array.isArray(values) ? values : [values as bigint | number];
    const out = new Uint8Array(list.length * 8);
    const view = new DataView(out.buffer);
    list.forEach((v, i) => {
      const b = BigInt(v);
      if (b < 0n || b > 0xffffffffffffffffn) {
        throw new VmonError(`Invalid devicetree value for "${name}": ${v} is not a u64`);
      }
      view.setBigUint64(i * 8, b);
    });
    return this.bytes(name, out);
  }

  /** Sets a NUL-terminated string property. */
  string(name: string, value: string): this {
    return this.strings(name, [value]);
  }

  /** Sets a string-list property (each string NUL-terminated). */
  strings(name: string, values: readonly string[]): this {
    const parts = values.map((s) => {
      if (s.includes("\0")) {
        throw new VmonError(`Invalid devicetree string for "${name}": contains a NUL byte`);
      }
      return encoder.encode(s + "\0");
    });
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return this.bytes(name, out);
  }

  /** The raw value of property `name`, if set. */
  get(name: string): Uint8Array | undefined {
    return this.#props.get(name);
  }

  /** Property `name` read as big-endian u32 cells, if set. */
  getU32(name: string): number[] | undefined {
    const v = this.#props.get(name);
    if (!v) return undefined;
    const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
    const out: number[] = [];
    for (let i = 0; i + 4 <= v.length; i += 4) out.push(view.getUint32(i));
    return out;
  }

  /** Property `name` read as a string list, if set. */
  getStrings(name: string): string[] | undefined {
    const v = this.#props.get(name);
    if (!v) return undefined;
    const text = decoder.decode(v);
    return (text.endsWith("\0") ? text.slice(0, -1) : text).split("\0");
  }

  /** Property `name` read as one string, if set. */
  getString(name: string): string | undefined {
    return this.getStrings(name)?.[0];
  }

  /** Finds a node by absolute path (`/soc/serial@10000000`) below this one. */
  find(path: string): FdtNode | undefined {
    return path.split("/").filter((p) => p !== "").reduce<FdtNode | undefined>(
      (node, part) => node?.child(part, { lookup: true }),
      this,
    );
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/**
 * Encodes a tree as a flattened devicetree blob (version 17).
 *
 * @param root The root node (name "").
 * @param options `reservations` for the memory reservation block; `bootCpuId` for the header.
 * @returns The DTB bytes; its length is a multiple of 8.
 */
export function encodeFdt(
  root: FdtNode,
  options: { readonly reservations?: readonly FdtReservation[]; readonly bootCpuId?: number } = {},
): Uint8Array {
  if (root.name !== "") throw new VmonError(`Cannot encode devicetree: the root node has a name`);
  // Strings block: property names, deduplicated.
  const stringOffsets = new Map<string, number>();
  const stringChunks: Uint8Array[] = [];
  let stringsSize = 0;
  const nameOffset = (name: string): number => {
    let off = stringOffsets.get(name);
    if (off === undefined) {
      off = stringsSize;
      const b = encoder.encode(name + "\0");
      stringChunks.push(b);
      stringsSize += b.length;
      stringOffsets.set(name, off);
    }
    return off;
  };

  // Structure block: measure first, then write.
  const measure = (node: FdtNode): number => {
    let n = 4 + align4(encoder.encode(node.name).length + 1);
    for (const [, value] of node.properties) n += 12 + align4(value.length);
    for (const c of node.children) n += measure(c);
    return n + 4;
  };
  const structSize = measure(root) + 4;
  const struct = new Uint8Array(structSize);
  const sv = new DataView(struct.buffer);
  let at = 0;
  const emit = (node: FdtNode): void => {
    sv.setUint32(at, FDT_BEGIN_NODE);
    const nameBytes = encoder.encode(node.name);
    struct.set(nameBytes, at + 4);
    at += 4 + align4(nameBytes.length + 1);
    for (const [name, value] of node.properties) {
      sv.setUint32(at, FDT_PROP);
      sv.setUint32(at + 4, value.length);
      sv.setUint32(at + 8, nameOffset(name));
      struct.set(value, at + 12);
      at += 12 + align4(value.length);
    }
    for (const c of node.children) emit(c);
    sv.setUint32(at, FDT_END_NODE);
    at += 4;
  };
  emit(root);
  sv.setUint32(at, FDT_END);
  at += 4;
  if (at !== structSize) throw new Error(`FDT structure size mismatch: ${at} != ${structSize}`);

  const reservations = options.reservations ?? [];
  const rsvOffset = HEADER_SIZE; // 40 is a multiple of 8
  const rsvSize = (reservations.length + 1) * 16;
  const structOffset = rsvOffset + rsvSize;
  const stringsOffset = structOffset + structSize;
  const total = (stringsOffset + stringsSize + 7) & ~7;

  const blob = new Uint8Array(total);
  const v = new DataView(blob.buffer);
  v.setUint32(0, FDT_MAGIC);
  v.setUint32(4, total);
  v.setUint32(8, structOffset);
  v.setUint32(12, stringsOffset);
  v.setUint32(16, rsvOffset);
  v.setUint32(20, VERSION);
  v.setUint32(24, LAST_COMP_VERSION);
  v.setUint32(28, options.bootCpuId ?? 0);
  v.setUint32(32, stringsSize);
  v.setUint32(36, structSize);
  reservations.forEach((r, i) => {
    v.setBigUint64(rsvOffset + i * 16, r.address);
    v.setBigUint64(rsvOffset + i * 16 + 8, r.size);
  });
  blob.set(struct, structOffset);
  let so = stringsOffset;
  for (const c of stringChunks) {
    blob.set(c, so);
    so += c.length;
  }
  return blob;
}

/**
 * Decodes a flattened devicetree blob into a tree (for tests and tools). Every offset in the
 * blob is checked; a malformed blob throws a {@linkcode VmonError}.
 *
 * @param blob The DTB bytes.
 */
export function decodeFdt(blob: Uint8Array): FdtNode {
  const bad = (why: string): never => {
    throw new VmonError(`Cannot decode devicetree blob: ${why}`);
  };
  if (blob.length < HEADER_SIZE) bad("shorter than the header");
  const v = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (v.getUint32(0) !== FDT_MAGIC) bad("bad magic");
  const total = v.getUint32(4);
  const structOff = v.getUint32(8);
  const stringsOff = v.getUint32(12);
  const stringsSize = v.getUint32(32);
  const structSize = v.getUint32(36);
  if (total > blob.length) bad(`totalsize ${total} exceeds the ${blob.length} bytes given`);
  if (structOff + structSize > total || stringsOff + stringsSize > total) {
    bad("a block lies outside totalsize");
  }
  const readCString = (start: number, end: number): [string, number] => {
    let i = start;
    while (i < end && blob[i] !== 0) i++;
    if (i >= end) bad(`unterminated string at offset ${start}`);
    return [decoder.decode(blob.subarray(start, i)), i + 1];
  };
  const structEnd = structOff + structSize;
  let at = structOff;
  const token = (): number => {
    if (at + 4 > structEnd) bad("structure block ends early");
    const t = v.getUint32(at);
    at += 4;
    return t;
  };
  let t = token();
  while (t === FDT_NOP) t = token();
  if (t !== FDT_BEGIN_NODE) bad("structure block does not start with a node");
  const parseNode = (depth: number, parent: FdtNode | undefined): FdtNode => {
    if (depth > 64) bad("nodes nested too deeply");
    const [name, next] = readCString(at, structEnd);
    at = structOff + align4(next - structOff);
    const node = parent ? parent.child(name) : new FdtNode(name);
    for (;;) {
      const tok = token();
      if (tok === FDT_NOP) continue;
      if (tok === FDT_PROP) {
        if (at + 8 > structEnd) bad("property header ends early");
        const len = v.getUint32(at);
        const nameoff = v.getUint32(at + 4);
        at += 8;
        if (at + len > structEnd) bad("property value runs past the structure block");
        if (nameoff >= stringsSize) bad(`property name offset ${nameoff} is out of range`);
        const [pname] = readCString(stringsOff + nameoff, stringsOff + stringsSize);
        node.bytes(pname, blob.slice(at, at + len));
        at = structOff + align4(at + len - structOff);
      } else if (tok === FDT_BEGIN_NODE) {
        parseNode(depth + 1, node);
      } else if (tok === FDT_END_NODE) {
        return node;
      } else {
        bad(`unexpected token ${tok}`);
      }
    }
  };
  const root = parseNode(0, undefined);
  let end = token();
  while (end === FDT_NOP) end = token();
  if (end !== FDT_END) bad("missing FDT_END");
  return root;
}
