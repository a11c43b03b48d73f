/**
 * Boots the linux-rv64-bench image once in `qemu-system-riscv64 -M virt` (the reference peer
 * until vmon runs Linux) and runs every workload with a small N; checks that each prints its
 * result line and exits 0, that `churn` is deterministic, and that the C workloads print the
 * same result lines as the same sources compiled natively for this host (a different ISA and
 * MMU: the checksums must not depend on either).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { DEFAULT_CMDLINE, execCmdline, findQemu, runQemu } from "../linux-rv64/mod.ts";
import { benchCommand, buildLinuxRv64Bench, parseBenchOutput } from "./mod.ts";
import { SOURCE_DIR } from "./programs.ts";

const QEMU = findQemu();

/** Small runs: together about 10 s of guest time under TCG. */
const RUNS: readonly [string, number[]][] = [
  ["forkwait", [20]],
  ["execloop", [10]],
  ["faultstorm", [4]],
  ["mmapchurn", [200]],
  ["mprotect", [50]],
  ["pipepong", [200]],
  ["cpuloop", [100000]],
  ["churn", [1, 300]],
  ["churn", [1, 300]],
  ["churn", [2, 300]],
  ["lua", [20]],
  ["sqlite3", [200]],
];

/** Compiles `name` natively with the host gcc and returns its result line for `args`. */
async function nativeResult(dir: string, name: string, args: number[]): Promise<string> {
  const exe = join(dir, name);
  try {
    Deno.statSync(exe);
  } catch {
    const cc = await new Deno.Command("gcc", {
      args: ["-O2", "-o", exe, join(SOURCE_DIR, `${name}.c`)],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!cc.success) throw new Error(`gcc ${name}: ${new TextDecoder().decode(cc.stderr)}`);
  }
  const out = await new Deno.Command(exe, { args: args.map(String), stdout: "piped" }).output();
  assert(out.success, `native ${name} failed`);
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.startsWith("result: ")
  );
  assert(line, `native ${name} printed no result line`);
  return line.slice("result: ".length);
}

Deno.test({
  name: QEMU
    ? "linux-rv64-bench: every workload runs in QEMU and matches the native results"
    : "linux-rv64-bench: QEMU boot (skipped: qemu-system-riscv64 is not on PATH)",
  ignore: QEMU === undefined,
  sanitizeResources: false,
  async fn() {
    const image = await buildLinuxRv64Bench({ onProgress: (l) => console.error(l) });
    const script = RUNS.map(([w, args]) => benchCommand(w, args)).join("; ");
    const cmdline = image.cmdline ?? DEFAULT_CMDLINE;
    const run = await runQemu(image, {
      append: `${cmdline} ${execCmdline(script, { base: cmdline })}`,
      timeoutMs: 240_000,
    });
    const runs = parseBenchOutput(run.output);
    const tail = run.output.slice(-3000);
    assertEquals(runs.length, RUNS.length, `expected ${RUNS.length} runs; console tail:\n${tail}`);
    runs.forEach((r, i) => {
      const [workload, args] = RUNS[i]!;
      assertEquals([r.workload, r.args], [workload, args.map(String)]);
      assertEquals(r.status, 0, `${workload} ${args} failed: ${r.other.join(" | ")}`);
      assert(r.result?.startsWith(`${workload} `), `${workload}: no result line`);
      assert(/^[0-9a-f]{16}$/.test(r.checksum ?? ""), `${workload}: no checksum in "${r.result}"`);
      assert(r.timeMs !== undefined && r.timeMs >= 0, `${workload}: no time line`);
      assertEquals(r.other, [], `${workload}: unexpected output`);
    });
    assertEquals(run.status, 0, `the guest did not power off cleanly; tail:\n${tail}`);

    const churns = runs.filter((r) => r.workload === "churn");
    assertEquals(churns[0]!.result, churns[1]!.result, "churn with the same seed differs");
    assert(churns[0]!.checksum !== churns[2]!.checksum, "churn ignores its seed");
    for (const r of churns) assert(r.result!.includes(" errors=0 "), r.result);

    const dir = await Deno.makeTempDir({ prefix: "vmon-native-" });
    try {
      for (let i = 0; i < RUNS.length; i++) {
        const [workload, args] = RUNS[i]!;
        if (workload === "lua" || workload === "sqlite3") continue;
        assertEquals(runs[i]!.result, await nativeResult(dir, workload, args), workload);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
