// Integration: the three paging strategies on the rv64 port running the project's Linux image
// (linux-rv64-bench: busybox plus the workload programs of images/workloads). Asserts on counters
// only, never on times: wired has zero strategy traps; on the fork workload (`/bench/run.sh
// forkwait N`: fork, child exits, waitpid; the bench image's program, not a busybox loop, so a
// fork is one fork and not a shell's fork+exec) queued takes at most a tenth of shadow's traps per
// fork, summed over three boots with different address-space layouts; the CPU-bound control
// (`/bench/run.sh cpuloop N`) retires the same number of guest instructions under every strategy
// (tests/paging_same_guest_test.ts checks every workload); the guest's output is identical under
// all three.
// The machine runs with clock=icount and a fixed platform seed, so each run is deterministic:
// a failure reproduces with the same command (`deno task vmon run --image linux-rv64-bench
// --host rv64,clock=icount --platform riscv-virt,rng-seed=false --paging <s> --exec '...'`).
// Skips (visibly) without the riscv64 cross compiler, which the image build needs.

import { ok } from "node:assert/strict";
import { createMachine } from "../core/machine.ts";
import type { MachineExit } from "../core/api/mod.ts";
import { buildImage } from "../images/mod.ts";
import { DEFAULT_CMDLINE, execCmdline } from "../images/linux-rv64/protocol.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const skip = haveCrossCompiler() ? undefined : "riscv64-linux-gnu-gcc is not installed";
if (skip) console.warn(`paging Linux tests skipped: ${skip}`);

interface Run {
  /** Console output after the init marker, kernel log lines removed. */
  output: string;
  exit: MachineExit;
  paging: Record<string, number>;
  instructions: number;
}

/**
 * Boots the bench image under `strategy` and runs `command`. `layout` (0, 1, 2, ...) adds an
 * unused kernel parameter: Linux mixes its command line into its random pool, so each value gives
 * another deterministic address-space layout (0 adds nothing).
 */
async function runGuest(strategy: string, command: string, layout = 0): Promise<Run> {
  const image = await buildImage("linux-rv64-bench");
  const chunks: Uint8Array[] = [];
  const machine = await createMachine({
    cpus: 1,
    memory: image.defaults.memory ?? "128M",
    hostport: { use: "rv64", options: { clock: "icount" } },
    platform: { use: "riscv-virt", options: { "rng-seed": false } },
    paging: { use: strategy },
    devices: image.defaults.devices.map((use) => ({ use })),
    boot: {
      kernel: image.kernel,
      ...(image.initrd === undefined ? {} : { initrd: image.initrd }),
      cmdline: `${image.cmdline ?? DEFAULT_CMDLINE}${layout ? ` vmon.layout=${layout}` : ""} ${
        execCmdline(command, { base: image.cmdline ?? DEFAULT_CMDLINE })
      }`,
    },
  }, { console: { write: (b) => chunks.push(b.slice()) }, log: () => {} });
  const timer = setTimeout(() => machine.stop("test timeout", 124), 240_000);
  let exit: MachineExit;
  try {
    exit = await machine.run();
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
  const text = new TextDecoder().decode(
    chunks.reduce((a, c) => {
      const n = new Uint8Array(a.length + c.length);
      n.set(a);
      n.set(c, a.length);
      return n;
    }, new Uint8Array()),
  );
  const after = text.slice(text.indexOf("vmon: init ready"));
  const output = after.split(/\r?\n/).filter((l) =>
    !/^\[\s*\d+\.\d+\]/.test(l) && !l.startsWith("time:")
  )
    .join("\n");
  ok(exit.status === 0 && !exit.failed, `${strategy}: ${exit.reason}\n${text.slice(-2000)}`);
  return {
    output,
    exit,
    paging: exit.stats.metrics[strategy] ?? {},
    instructions: exit.stats.hostport.instructions ?? 0,
  };
}

const FORKS = 200;
/** Rounds of the control loop: about 12 instructions each, far more than boot and exit. */
const CPULOOP = 20_000_000;

Deno.test({
  name: "paging: wired, shadow and queued on Linux (traps, forks, instructions, output)",
  ignore: skip !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const runs: Record<
      string,
      { base: Run; forks: Run; control: Run; churn: Run; layouts: [Run, Run][] }
    > = {};
    for (const strategy of ["wired", "shadow", "queued"]) {
      runs[strategy] = {
        base: await runGuest(strategy, "/bench/run.sh forkwait 1"),
        forks: await runGuest(strategy, `/bench/run.sh forkwait ${FORKS + 1}`),
        layouts: [],
        control: await runGuest(strategy, `/bench/run.sh cpuloop ${CPULOOP}`),
        // The differential test: a fixed-seed mix of fork, mmap, munmap, mprotect, touches and
        // checksums (children report over pipes); its checksums must not depend on the strategy.
        churn: await runGuest(strategy, "/bench/run.sh churn 7 300"),
      };
      // two more layouts of the fork workload, for the ratio of shadow's and queued's traps
      if (strategy === "wired") continue;
      for (const layout of [1, 2]) {
        runs[strategy]!.layouts.push([
          await runGuest(strategy, "/bench/run.sh forkwait 1", layout),
          await runGuest(strategy, `/bench/run.sh forkwait ${FORKS + 1}`, layout),
        ]);
      }
    }
    const r = (s: string) => runs[s]!;
    const show = (s: string) =>
      `${s}: base ${JSON.stringify(r(s).base.paging)}\nforks ${JSON.stringify(r(s).forks.paging)}`;

    await t.step("wired has zero strategy traps", () => {
      for (const run of [r("wired").base, r("wired").forks, r("wired").control]) {
        ok(run.paging.traps === 0, show("wired"));
        ok(run.exit.stats.exits.paging === undefined || run.exit.stats.exits.paging === 0);
      }
    });

    await t.step("shadow and queued trap, validate and fill", () => {
      for (const s of ["shadow", "queued"]) {
        const p = r(s).forks.paging;
        ok((p["traps.pt-write"] ?? 0) > 0, show(s));
        ok((p.validations ?? 0) > 0 && (p["updates-applied"] ?? 0) > 0, show(s));
        ok((p["shadow-fills"] ?? 0) > 0 && (p["shadow-flushes"] ?? 0) > 0, show(s));
      }
      ok((r("queued").forks.paging.batches ?? 0) > 0, show("queued"));
      ok((r("queued").forks.paging["traps.flush"] ?? 0) > 0, show("queued"));
    });

    // Issue 4's bound. Shadow's traps per fork depend on the guest's address-space layout (which
    // freed page-table pages the next fork reuses while the shadow still holds them), and Linux
    // draws its layout from a pool seeded with its version string and command line: one layout
    // gave shadow 274 to 308 and queued 24 to 28 per fork on the bench kernel (ratios 10.4 to
    // 12.5; the kernel with networking, which the bench image no longer has, 126 to 171 vs 28).
    // So the counts are summed over three layouts, and the kernel build is reproducible (no build
    // date in its version string: images/linux-rv64/kernel.ts).
    await t.step("queued takes at most a tenth of shadow's traps per fork", () => {
      const perFork = (s: string) => {
        const pairs: [Run, Run][] = [[r(s).base, r(s).forks], ...r(s).layouts];
        const traps = pairs.reduce(
          (sum, [base, forks]) => sum + (forks.paging.traps ?? 0) - (base.paging.traps ?? 0),
          0,
        );
        return traps / (FORKS * pairs.length);
      };
      const shadow = perFork("shadow");
      const queued = perFork("queued");
      ok(shadow > 0, show("shadow"));
      ok(queued <= shadow / 10, `queued ${queued} vs shadow ${shadow} traps per fork`);
    });

    await t.step("every run retires the same guest instructions under every strategy", () => {
      // identical, not close: interrupts land at the same instruction count whatever exits occur
      const control = r("wired").control.instructions - r("wired").base.instructions;
      ok(control > CPULOOP * 5, `control too small: ${control}`);
      for (const kind of ["base", "forks", "control", "churn"] as const) {
        const counts = ["wired", "shadow", "queued"].map((s) => r(s)[kind].instructions);
        ok(counts.every((n) => n === counts[0]), `${kind}: instructions ${counts.join(", ")}`);
      }
    });

    await t.step("the guest's output is identical under every strategy", () => {
      for (const kind of ["base", "forks", "control", "churn"] as const) {
        const wired = r("wired")[kind].output;
        ok(wired.includes("result:"), wired);
        if (kind === "churn") ok(/errors=0\b/.test(wired), wired);
        for (const s of ["shadow", "queued"]) {
          ok(r(s)[kind].output === wired, `${kind} ${s}:\n${r(s)[kind].output}\nwired:\n${wired}`);
        }
      }
    });
  },
});
