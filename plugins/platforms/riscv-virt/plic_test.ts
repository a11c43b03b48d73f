import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { VmonError } from "../../../core/errors.ts";
import { Plic } from "./plic.ts";

const PRIORITY = (id: number) => 4 * id;
const PENDING = 0x1000;
const ENABLE = (ctx: number) => 0x2000 + 0x80 * ctx;
const THRESHOLD = (ctx: number) => 0x200000 + 0x1000 * ctx;
const CLAIM = (ctx: number) => 0x200004 + 0x1000 * ctx;

function makePlic(harts = 2, sources = 63) {
  const outputs: [number, boolean][] = [];
  const bad: string[] = [];
  const plic = new Plic(harts, {
    sources,
    onOutput: (c, level) => outputs.push([c, level]),
    onBadAccess: (m) => bad.push(m),
  });
  return { plic, outputs, bad };
}

Deno.test("plic: claim returns the highest priority, ties to the lowest id", () => {
  const { plic } = makePlic();
  const S0 = 1;
  for (const [id, prio] of [[3, 2], [5, 6], [7, 6], [40, 1]] as const) {
    plic.write(PRIORITY(id), 4, prio);
  }
  plic.write(ENABLE(S0), 4, (1 << 3) | (1 << 5) | (1 << 7));
  plic.write(ENABLE(S0) + 4, 4, 1 << (40 - 32));
  for (const id of [3, 5, 7, 40]) plic.pulse(id);
  deepStrictEqual(
    [plic.read(PENDING, 4), plic.read(PENDING + 4, 4)],
    [(1 << 3) | (1 << 5) | (1 << 7), 1 << 8],
  );
  strictEqual(plic.read(CLAIM(S0), 4), 5);
  strictEqual(plic.read(CLAIM(S0), 4), 7);
  strictEqual(plic.read(CLAIM(S0), 4), 3);
  strictEqual(plic.read(CLAIM(S0), 4), 40);
  strictEqual(plic.read(CLAIM(S0), 4), 0);
  strictEqual(plic.read(PENDING, 4), 0);
  strictEqual(plic.claims, 4);
});

Deno.test("plic: threshold masks priorities at or below it", () => {
  const { plic, outputs } = makePlic();
  plic.write(PRIORITY(2), 4, 3);
  plic.write(ENABLE(1), 4, 1 << 2);
  plic.write(THRESHOLD(1), 4, 3);
  strictEqual(plic.read(THRESHOLD(1), 4), 3);
  plic.setLevel(2, true);
  strictEqual(plic.output(1), false);
  strictEqual(plic.read(CLAIM(1), 4), 0);
  plic.write(THRESHOLD(1), 4, 2);
  deepStrictEqual(outputs, [[1, true]]);
  plic.write(THRESHOLD(1), 4, 7);
  deepStrictEqual(outputs, [[1, true], [1, false]]);
  plic.write(THRESHOLD(1), 4, 99); // WARL: clamped to the largest priority
  strictEqual(plic.read(THRESHOLD(1), 4), 7);
  plic.write(PRIORITY(2), 4, 0xffffffff);
  strictEqual(plic.read(PRIORITY(2), 4), 7);
});

Deno.test("plic: priority 0 never interrupts; enables are per context", () => {
  const { plic, outputs } = makePlic(2);
  plic.write(ENABLE(3), 4, 1 << 4); // hart 1, S
  plic.setLevel(4, true);
  strictEqual(plic.isPending(4), true);
  deepStrictEqual(outputs, []);
  plic.write(PRIORITY(4), 4, 1);
  deepStrictEqual(outputs, [[3, true]]);
  strictEqual(plic.read(CLAIM(1), 4), 0); // hart 0 S has it disabled
  strictEqual(plic.read(CLAIM(3), 4), 4);
});

Deno.test("plic: level sources re-pend at completion while the line stays high", () => {
  const { plic, outputs } = makePlic(1);
  plic.write(PRIORITY(9), 4, 1);
  plic.write(ENABLE(1), 4, 1 << 9);
  plic.setLevel(9, true);
  strictEqual(plic.read(CLAIM(1), 4), 9);
  strictEqual(plic.output(1), false);
  plic.setLevel(9, true); // still high, in flight: no new request
  strictEqual(plic.isPending(9), false);
  plic.write(CLAIM(1), 4, 9); // complete
  strictEqual(plic.isPending(9), true);
  strictEqual(plic.output(1), true);
  strictEqual(plic.read(CLAIM(1), 4), 9);
  plic.setLevel(9, false);
  plic.write(CLAIM(1), 4, 9);
  strictEqual(plic.isPending(9), false);
  strictEqual(plic.output(1), false);
  deepStrictEqual(outputs, [[1, true], [1, false], [1, true], [1, false]]);
  // A level that drops before the claim withdraws the request.
  plic.setLevel(9, true);
  plic.setLevel(9, false);
  strictEqual(plic.read(CLAIM(1), 4), 0);
});

Deno.test("plic: an edge during service is delivered after completion", () => {
  const { plic } = makePlic(1);
  plic.write(PRIORITY(1), 4, 1);
  plic.write(ENABLE(1), 4, 1 << 1);
  plic.pulse(1);
  strictEqual(plic.read(CLAIM(1), 4), 1);
  plic.pulse(1);
  strictEqual(plic.isPending(1), false);
  plic.write(CLAIM(1), 4, 1);
  strictEqual(plic.read(CLAIM(1), 4), 1);
  plic.write(CLAIM(1), 4, 1);
  strictEqual(plic.read(CLAIM(1), 4), 0);
});

Deno.test("plic: completion of a source not enabled for the context is ignored", () => {
  const { plic } = makePlic(1);
  plic.write(PRIORITY(6), 4, 1);
  plic.write(ENABLE(1), 4, 1 << 6);
  plic.setLevel(6, true);
  strictEqual(plic.read(CLAIM(1), 4), 6);
  plic.write(CLAIM(0), 4, 6); // M context: not enabled there
  plic.write(CLAIM(1), 4, 0); // source 0
  plic.write(CLAIM(1), 4, 1000); // out of range
  strictEqual(plic.read(CLAIM(1), 4), 0); // still in flight
  plic.write(CLAIM(1), 4, 6);
  strictEqual(plic.read(CLAIM(1), 4), 6);
});

Deno.test("plic: reserved bits, odd accesses and bad sources", () => {
  const { plic, bad } = makePlic(1, 40);
  plic.write(ENABLE(1), 4, 0xffffffff);
  strictEqual(plic.read(ENABLE(1), 4), 0xfffffffe); // source 0 does not exist
  plic.write(ENABLE(1) + 4, 4, 0xffffffff);
  strictEqual(plic.read(ENABLE(1) + 4, 4), 0x1ff); // sources 32..40
  plic.write(PRIORITY(0), 4, 5);
  strictEqual(plic.read(PRIORITY(0), 4), 0);
  plic.write(PRIORITY(41), 4, 5);
  strictEqual(plic.read(PRIORITY(41), 4), 0);
  plic.write(PENDING, 4, 0xffffffff); // read-only
  strictEqual(plic.read(PENDING, 4), 0);
  strictEqual(plic.read(ENABLE(5), 4), 0); // no such context
  strictEqual(plic.read(CLAIM(5), 4), 0);
  plic.write(THRESHOLD(5), 4, 1);
  plic.write(PRIORITY(1), 1, 5);
  strictEqual(plic.read(PRIORITY(1), 2), 0);
  strictEqual(plic.read(PRIORITY(1), 4), 0);
  strictEqual(plic.read(0x5ffffc, 4), 0);
  strictEqual(bad.length, 2); // one report per kind
  throws(() => plic.setLevel(0, true), VmonError);
  throws(() => plic.pulse(41), VmonError);
  throws(() => new Plic(1, { sources: 0, onOutput: () => {} }), VmonError);
  throws(() => new Plic(0, { sources: 1, onOutput: () => {} }), VmonError);
});

Deno.test("plic: random register traffic never throws", () => {
  const { plic } = makePlic(4, 95);
  let seed = 99;
  const rand = () => (seed = (seed * 1664525 + 1013904223) >>> 0);
  for (let i = 0; i < 20000; i++) {
    const offset = rand() % 0x600000;
    const size = ([1, 2, 4, 8] as const)[rand() % 4]!;
    if (rand() & 1) plic.read(offset & ~3, size === 8 ? 4 : size);
    else plic.write(offset & ~3, size === 8 ? 4 : size, rand());
    if (i % 7 === 0) plic.setLevel(1 + (rand() % 95), (rand() & 1) === 1);
  }
});
