/**
 * `deno task bench:exits`: the port-I/O exit round trip through vmon (exit decoded, routed over
 * the exit bus to a TypeScript plugin, vCPU resumed) against a pure-C KVM_RUN loop on the same
 * guest (`images/x86/exits.c`), alternating in one run. Prints one JSON line with both medians
 * and the ratio vmon / C (target: <= 1.10).
 *
 * Usage: deno task bench:exits [--exits N] [--rounds R]
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { MachineManifest, X86Vcpu } from "../../mod.ts";
import { buildImage } from "../../images/mod.ts";
import { Vm } from "../../core/vm.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    exits: { type: "string", default: "100000" },
    rounds: { type: "string", default: "5" },
  },
});
const N = Number(values.exits);
const ROUNDS = Number(values.rounds);
if (!Number.isInteger(N) || N < 1000 || !Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error("bench:exits: --exits must be an integer >= 1000 and --rounds >= 1");
  Deno.exit(2);
}

const image = await buildImage("exits", { onProgress: (l) => console.error(`bench: ${l}`) });
const manifest: MachineManifest = {
  cpus: 1,
  memory: "16M",
  hostport: { use: "kvm" },
  platform: { use: "x86-64-direct", options: { arg: N } },
  devices: [
    { use: "uart16550" },
    { use: "debug-exit" },
    { use: new URL("./port80_device.ts", import.meta.url).href },
  ],
  boot: { kernel: image.kernel },
};

const sink = { write: () => {}, log: (l: string) => console.error(l) };

/** vmon: the scheduler's run loop on this thread (as in the machine worker). */
async function vmonRound(): Promise<{ ms: number; exits: number }> {
  const vm = await Vm.build(manifest, { io: sink });
  try {
    const t0 = performance.now();
    const outcome = await vm.run();
    const ms = performance.now() - t0;
    if (outcome.status !== 0) throw new Error(`vmon run ended with ${outcome.reason}`);
    return { ms, exits: vm.stats().exits.io ?? 0 };
  } finally {
    vm.dispose();
  }
}

/**
 * C: the same guest from the same start state, KVM_RUN in a C loop for exactly the number of
 * port-I/O exits the vmon run made (the guest's loop, its summary line and the debug-exit write).
 */
async function cRound(exits: number): Promise<{ ms: number; exits: number }> {
  const vm = await Vm.build(manifest, { io: sink });
  try {
    const vcpu = vm.vcpus[0] as X86Vcpu & {
      benchLoop(n: number, inValue?: number): { ns: number; ios: number; stop: number };
    };
    const r = vcpu.benchLoop(exits, 0x5a);
    if (r.ios !== exits) throw new Error(`the C loop stopped after ${r.ios} of ${exits} exits`);
    return { ms: r.ns / 1e6, exits: r.ios };
  } finally {
    vm.dispose();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

try {
  Deno.statSync("/dev/kvm");
} catch {
  console.error("bench:exits: needs /dev/kvm (KVM_RUN on an x86-64 guest), which this host lacks");
  Deno.exit(2);
}

// One warm-up of each (JIT, page faults in guest RAM), then alternating rounds.
const { exits: perRun } = await vmonRound();
await cRound(perRun);
const vmonMs: number[] = [];
const cMs: number[] = [];
let vmonExits = 0;
let cExits = 0;
for (let i = 0; i < ROUNDS; i++) {
  const v = await vmonRound();
  const c = await cRound(perRun);
  vmonMs.push(v.ms);
  cMs.push(c.ms);
  vmonExits = v.exits;
  cExits = c.exits;
}
const v = median(vmonMs);
const c = median(cMs);
console.log(JSON.stringify({
  bench: "exits",
  exits: N,
  rounds: ROUNDS,
  vmon_ms: Number(v.toFixed(2)),
  c_loop_ms: Number(c.toFixed(2)),
  vmon_us_per_exit: Number((v * 1000 / vmonExits).toFixed(3)),
  c_us_per_exit: Number((c * 1000 / cExits).toFixed(3)),
  vmon_io_exits: vmonExits,
  c_io_exits: cExits,
  ratio: Number((v / c).toFixed(3)),
  target: 1.1,
}));
