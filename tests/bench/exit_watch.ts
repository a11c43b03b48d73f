/**
 * The cost of the watch record on the exit path (DESIGN.md, "Nothing held back, nothing
 * silent"): an rv64 guest stores to an MMIO register in a loop, and every exit goes from the C
 * hart through `ExitBus.dispatchExit` to a device handler, once with the watch record set (as in
 * every machine) and once without, alternating rounds in the same run. Prints one JSON line:
 * `nsPerExit` with the record, `referenceNsPerExit` without, `ratio` = their quotient (the
 * medians of the rounds).
 *
 * Usage: deno task bench:exit-watch [exits per round]
 *
 * @module
 */

import { ExitKind } from "../../core/api/mod.ts";
import { ExitBus } from "../../core/bus.ts";
import { WATCH } from "../../core/machine_protocol.ts";
import { Rv64Port } from "../../plugins/hostports/rv64/mod.ts";
import { addi, ECALL, li, R, sw } from "../fixtures/rv64_tiny.ts";

const EXITS = Number(Deno.args[0] ?? 1_000_000);
const ROUNDS = 11;
const DEVICE = 0x1000_0000;

/** `bne rs1, rs2, offset`. */
function bne(rs1: number, rs2: number, offset: number): number {
  const o = offset & 0x1fff;
  return ((((o >> 12) & 1) << 31) | (((o >> 5) & 0x3f) << 25) | (rs2 << 20) | (rs1 << 15) |
    (1 << 12) | (((o >> 1) & 0xf) << 8) | (((o >> 11) & 1) << 7) | 0x63) | 0;
}

/** t1 = n; loop: store to the device, t1 -= 1, until 0; then ecall. */
function program(n: number): Uint8Array {
  const words = [
    ...li(R.t0, DEVICE),
    ...li(R.t1, n),
    sw(R.t1, 0, R.t0),
    addi(R.t1, R.t1, -1),
    bne(R.t1, R.zero, -8),
    ECALL,
  ];
  const out = new Uint8Array(words.length * 4);
  const v = new DataView(out.buffer);
  words.forEach((w, i) => v.setUint32(4 * i, w >>> 0, true));
  return out;
}

/** Nanoseconds per exit of one round. */
function round(watched: boolean): number {
  using port = new Rv64Port({ harts: 1, slice: 10_000_000 });
  new Uint8Array(port.addMemoryRegion(0x8000_0000, 1 << 20, { readonly: false })).set(
    program(EXITS),
  );
  const hart = port.createVcpu(0);
  hart.setPc(0x8000_0000n);
  const bus = new ExitBus();
  let sum = 0;
  bus.forPlugin("sink").registerMmio(DEVICE, 0x1000, {
    read: () => 0,
    write: (_offset, _size, value) => void (sum += value),
  });
  if (watched) bus.setWatch(new Int32Array(new SharedArrayBuffer(WATCH.length * 4)));
  let exits = 0;
  const t0 = performance.now();
  for (;;) {
    const kind = hart.run();
    if (kind === ExitKind.Hypercall) break;
    if (kind === ExitKind.Mmio) exits++;
    bus.dispatchExit(hart);
  }
  const ns = (performance.now() - t0) * 1e6;
  if (exits !== EXITS || sum !== EXITS * (EXITS + 1) / 2) {
    throw new Error(`Bench guest misbehaved: ${exits} exits, sum ${sum}`);
  }
  return ns / exits;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
round(true); // warm up: build the library, compile the exit path
round(false);
const watched: number[] = [];
const reference: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  // Alternate which goes first, so that neither gains from the order.
  if (i % 2 === 0) {
    watched.push(round(true));
    reference.push(round(false));
  } else {
    reference.push(round(false));
    watched.push(round(true));
  }
}
const w = median(watched);
const r = median(reference);
console.log(JSON.stringify({
  bench: "exit_watch",
  hostport: "rv64",
  exitsPerRound: EXITS,
  rounds: ROUNDS,
  nsPerExit: Math.round(w),
  referenceNsPerExit: Math.round(r),
  ratio: Math.round((w / r) * 1000) / 1000,
  reference:
    "the same rv64 MMIO-exit loop through ExitBus.dispatchExit without the watch record, same run",
}));
