/**
 * rv64 speed: runs a CPU-bound guest loop (ALU, loads/stores, branches; 9 instructions per
 * iteration) on the rv64 host port and prints one JSON line with MIPS: `mips` as `vmon run` runs
 * it (the rv64 plugin's default, `jit=on`: the block translator, which stays off with a note on a
 * host without a backend), `interpreterMips` with `jit=off`, `jitMips` the same run as `mips`. The reference is QEMU's TCG (`qemu-system-riscv64 -M virt`)
 * running the same program in the same run, when installed; `ratio` is MIPS / QEMU MIPS (above 1:
 * vmon is faster), `interpreterRatio` and `jitRatio` likewise; `cpu` repeats them from CPU time
 * (user + system, QEMU's from /usr/bin/time), which a busy host disturbs less than wall time.
 *
 * Usage: deno task bench:mips [iterations]
 *
 * @module
 */

import { join } from "node:path";
import process from "node:process";
import { ExitKind } from "../../core/api/mod.ts";
import { assemble } from "../../ffi/rv64/asm.ts";
import { Rv64Port } from "../../plugins/hostports/rv64/mod.ts";

const ITERATIONS = Number(Deno.args[0] ?? 50_000_000);
const PER_ITERATION = 9;

/** The loop; it ends with a store of 0x5555 to 0x100000 (QEMU virt's test finisher: poweroff). */
function program(iterations: number): Uint8Array {
  return assemble(`
    .option norvc
    la s0, buf
    li t0, 0
    li t1, ${iterations}
    li t2, 0
  1:
    addi t0, t0, 1
    add t2, t2, t0
    xor t3, t2, t0
    andi t3, t3, 255
    sd t3, 0(s0)
    ld t4, 0(s0)
    add t2, t2, t4
    slli t5, t2, 1
    bne t0, t1, 1b
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
  2:
    j 2b
    .align 12 /* data on its own page: QEMU slows down on stores near code */
  buf:
    .dword 0
  `);
}

function runRv64(
  iterations: number,
  jit?: boolean,
): { instructions: number; ms: number; cpuMs: number } {
  using port = new Rv64Port({ harts: 1, slice: 10_000_000, ...(jit === undefined ? {} : { jit }) });
  new Uint8Array(port.addMemoryRegion(0x8000_0000, 1 << 20, { readonly: false })).set(
    program(iterations),
  );
  const hart = port.createVcpu(0);
  hart.setPc(0x8000_0000n);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let kind: number;
  do kind = hart.run(); while (kind === ExitKind.Interrupted);
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  if (kind !== ExitKind.Mmio || hart.exit.address !== 0x100000) {
    throw new Error(`unexpected exit ${kind}: ${hart.exit.detail}`);
  }
  return { instructions: Number(hart.instret), ms, cpuMs: (c1.user + c1.system) / 1000 };
}

/** The CPU time of commands, from /usr/bin/time when installed. */
const TIME = (() => {
  try {
    return Deno.statSync("/usr/bin/time").isFile ? "/usr/bin/time" : undefined;
  } catch {
    return undefined;
  }
})();

function runQemu(iterations: number): { ms: number; cpuMs?: number } | undefined {
  const dir = Deno.makeTempDirSync({ prefix: "vmon-bench-" });
  try {
    const bin = join(dir, "loop.bin");
    const times = join(dir, "times");
    Deno.writeFileSync(bin, program(iterations));
    const t0 = performance.now();
    const qemu = [
      "qemu-system-riscv64",
      "-M",
      "virt",
      "-bios",
      "none",
      "-nographic",
      "-monitor",
      "none",
      "-serial",
      "none",
      "-device",
      `loader,file=${bin},addr=0x80000000,cpu-num=0`,
    ];
    const [cmd, ...args] = TIME ? [TIME, "-f", "%U %S", "-o", times, ...qemu] : qemu;
    const res = new Deno.Command(cmd!, { args, stdout: "null", stderr: "null" }).outputSync();
    const ms = performance.now() - t0;
    if (!res.success) return undefined;
    if (!TIME) return { ms };
    const [user, sys] = Deno.readTextFileSync(times).trim().split(/\s+/).map(Number);
    return { ms, cpuMs: (user! + sys!) * 1000 };
  } catch {
    return undefined;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

// warm up (build the library, assemble)
runRv64(1000);
const mipsOf = (r: { instructions: number; ms: number }) => r.instructions / r.ms / 1000;
const cpuMipsOf = (r: { instructions: number; cpuMs: number }) => r.instructions / r.cpuMs / 1000;
// The plugin's default (its `jit` option defaults to "on"); the Rv64Port class alone keeps it off.
const ours = runRv64(ITERATIONS, true);
const interpreter = runRv64(ITERATIONS, false);
const jit = ours;
const mips = mipsOf(ours);
const interpreterMips = mipsOf(interpreter);
const jitMips = mipsOf(jit);
let qemuMips: number | undefined;
let qemuCpuMips: number | undefined;
const qBase = runQemu(1);
const qBig = qBase === undefined ? undefined : runQemu(ITERATIONS);
if (qBase !== undefined && qBig !== undefined && qBig.ms > qBase.ms) {
  qemuMips = (ITERATIONS * PER_ITERATION) / (qBig.ms - qBase.ms) / 1000;
  if (qBig.cpuMs !== undefined && qBase.cpuMs !== undefined && qBig.cpuMs > qBase.cpuMs) {
    qemuCpuMips = (ITERATIONS * PER_ITERATION) / (qBig.cpuMs - qBase.cpuMs) / 1000;
  }
}
const r1 = (x: number) => Math.round(x * 10) / 10;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  bench: "rv64_mips",
  iterations: ITERATIONS,
  instructions: ours.instructions,
  ms: Math.round(ours.ms),
  mips: r1(mips),
  interpreterMips: r1(interpreterMips),
  jitMips: r1(jitMips),
  reference: qemuMips === undefined ? null : "qemu-system-riscv64 (TCG)",
  referenceMips: qemuMips === undefined ? null : r1(qemuMips),
  ratio: qemuMips === undefined ? null : r3(mips / qemuMips),
  interpreterRatio: qemuMips === undefined ? null : r3(interpreterMips / qemuMips),
  jitRatio: qemuMips === undefined ? null : r3(jitMips / qemuMips),
  // the same from CPU time (user + system; less sensitive to a busy host than wall time)
  cpu: qemuCpuMips === undefined ? null : {
    jitMips: r1(cpuMipsOf(jit)),
    interpreterMips: r1(cpuMipsOf(interpreter)),
    referenceMips: r1(qemuCpuMips),
    jitRatio: r3(cpuMipsOf(jit) / qemuCpuMips),
    interpreterRatio: r3(cpuMipsOf(interpreter) / qemuCpuMips),
  },
}));
