/**
 * Boots the linux-rv64-bench image once in `qemu-system-riscv64 -M virt` (the reference peer
 * until vmon runs Linux) and runs every workload with a small N; checks that each prints its
 * result line and exits 0, that `churn` is deterministic, and that the C workloads print the
 * same result lines as the same sources compiled natively for this host (a different ISA and
 * MMU: the checksums must not depend on either); sqlite3 and xz are compared with the host's own
 * sqlite3 and xz when those are installed.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { DEFAULT_CMDLINE, execCmdline, findQemu, runQemu } from "../linux-rv64/mod.ts";
import { BENCH_ASSETS, benchCommand, buildLinuxRv64Bench, parseBenchOutput } from "./mod.ts";
import { workloadSource } from "./debian_programs.ts";
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
  ["xz", [256, 1]],
];

/** Runs a host command with `input` on stdin; undefined if it is not installed. */
async function host(
  cmd: string,
  args: string[],
  input?: Uint8Array,
): Promise<Uint8Array | undefined> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: input ? "piped" : "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  if (input) {
    const w = child.stdin.getWriter();
    await w.write(input);
    await w.close();
  }
  const out = await child.output();
  assert(out.success, `host ${cmd} ${args.join(" ")} failed`);
  return out.stdout;
}

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
  if (name === "gendata") return new TextDecoder().decode(out.stdout);
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) =>
    l.startsWith("result: ")
  );
  assert(line, `native ${name} printed no result line`);
  return line.slice("result: ".length);
}

/** The host's result line for sqlite3 or xz, or undefined if the tool is not installed. */
async function hostResult(
  dir: string,
  workload: string,
  args: number[],
): Promise<string | undefined> {
  if (workload === "sqlite3") {
    const sql = `.parameter set @n ${args[0]}\n` +
      Deno.readTextFileSync(BENCH_ASSETS["bench/sqlite3/bench.sql"]!);
    const out = await host("sqlite3", [":memory:"], new TextEncoder().encode(sql));
    return out && new TextDecoder().decode(out).trim().replace(/^result: /, "");
  }
  if (workload === "xz") {
    const [kib, level] = args as [number, number];
    const version = await host("xz", ["--version"]);
    // Compressed bytes are compared only with the same xz release as the guest's.
    const guest = (await workloadSource("xz-utils")).version.replace(/-[^-]*$/, "");
    if (!version || !new TextDecoder().decode(version).includes(` ${guest}\n`)) return undefined;
    const text = new TextEncoder().encode(await nativeResult(dir, "gendata", [kib, 1]));
    const xz = (await host("xz", [`-${level}`, "-T1", "-c"], text))!;
    const md5 = createHash("md5").update(xz).digest("hex").slice(0, 16);
    return `xz kib=${kib} level=${level} compressed=${xz.length} checksum=${md5}`;
  }
  return undefined;
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
    const cmdline = `${image.cmdline ?? DEFAULT_CMDLINE} quiet`;
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
        if (workload === "lua") continue;
        const want = workload === "sqlite3" || workload === "xz"
          ? await hostResult(dir, workload, args)
          : await nativeResult(dir, workload, args);
        if (want === undefined) {
          console.error(`${workload}: no matching host tool, result not compared`);
          continue;
        }
        assertEquals(runs[i]!.result, want, workload);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
