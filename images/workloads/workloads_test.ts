import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { gunzipSync } from "fflate";
import { readCpio, S_IFMT, S_IFREG } from "../linux-rv64/cpio.ts";
import { assertVmonError } from "../_test_support.ts";
import {
  appendCpio,
  BENCH_ASSETS,
  BENCH_WORKLOADS,
  benchCommand,
  benchCpio,
  DEBIAN_PROGRAMS,
  HELPERS,
  parseBenchOutput,
  PROGRAMS,
  WORKLOADS,
} from "./mod.ts";

Deno.test("results: runs are cut at the markers, kernel lines and other output kept apart", () => {
  const output = [
    "[    0.1] Linux version 6.1",
    "vmon: init ready",
    "vmon-bench: begin churn 1 300",
    "result: churn seed=1 n=300 errors=0 checksum=b0242c280bd322f7\r",
    "[    5.255601] random: crng init done\r",
    "time: churn 378.258 ms\r",
    "vmon-bench: end churn status 0\r",
    "stray line between runs",
    "vmon-bench: begin sqlite3 x",
    "sqlite3: argument N is not a number",
    "vmon-bench: end sqlite3 status 1",
    "vmon-bench: begin forkwait 20",
    "result: forkwait n=20 checksum=70d0eadc6c4e401e",
  ].join("\n");
  assertEquals(parseBenchOutput(output), [
    {
      workload: "churn",
      args: ["1", "300"],
      status: 0,
      result: "churn seed=1 n=300 errors=0 checksum=b0242c280bd322f7",
      checksum: "b0242c280bd322f7",
      timeMs: 378.258,
      other: [],
    },
    {
      workload: "sqlite3",
      args: ["x"],
      status: 1,
      other: ["sqlite3: argument N is not a number"],
    },
    {
      workload: "forkwait",
      args: ["20"],
      result: "forkwait n=20 checksum=70d0eadc6c4e401e",
      checksum: "70d0eadc6c4e401e",
      other: [],
    },
  ]);
  assertEquals(parseBenchOutput("no markers at all\n"), []);
});

Deno.test("benchCommand: known workloads with numeric arguments only", () => {
  assertEquals(benchCommand("churn", [1, "300"]), "/bench/run.sh churn 1 300");
  assertEquals(benchCommand("lua"), "/bench/run.sh lua");
  assertVmonError(() => benchCommand("rm", ["-rf"]), 'Cannot run workload "rm": unknown workload');
  assertVmonError(() => benchCommand("forkwait", ["1; reboot"]), "is not a number");
  assertEquals(WORKLOADS.includes("timeit") || WORKLOADS.includes("gendata"), false);
  assertEquals(WORKLOADS.length, 11);
});

Deno.test("the workload table names exactly the programs built, helpers aside", () => {
  assertEquals(
    BENCH_WORKLOADS.map((w) => w.name),
    [...PROGRAMS.filter((p) => !HELPERS.includes(p)), ...DEBIAN_PROGRAMS],
  );
  for (const w of BENCH_WORKLOADS) {
    assert(w.n === undefined || (Number.isSafeInteger(w.n) && w.n > 0), w.name);
    assert(w.args(7).every((a) => /^\d+$/.test(a)), w.name);
    assert(w.opsPerN >= 1 && w.unit !== "" && w.op !== "" && w.description !== "", w.name);
  }
});

Deno.test("run.sh knows exactly the registry's workloads", () => {
  const script = Deno.readTextFileSync(BENCH_ASSETS["bench/run.sh"]!);
  const m = /^WORKLOADS="([^"]*)"$/m.exec(script);
  assert(m, "run.sh has no WORKLOADS line");
  assertEquals(m[1]!.split(" "), [...WORKLOADS]);
});

Deno.test("benchCpio + appendCpio: a second gzip member with /bench after the base archive", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-workloads-" });
  try {
    const binaries: Record<string, string> = {};
    for (const name of [...PROGRAMS, "lua", "sqlite3", "xz"]) {
      binaries[name] = join(dir, name);
      Deno.writeTextFileSync(binaries[name]!, `binary of ${name}`);
    }
    const extra = benchCpio(binaries);
    const entries = readCpio(extra);
    const byName = new Map(entries.map((e) => [e.name, e]));
    for (const name of [...PROGRAMS, "lua", "sqlite3", "xz"]) {
      const e = byName.get(`bench/bin/${name}`);
      assert(e, `bench/bin/${name} missing`);
      assertEquals(e.mode, S_IFREG | 0o755);
      assertEquals(new TextDecoder().decode(e.data), `binary of ${name}`);
    }
    assertEquals(byName.get("bench/run.sh")?.mode, S_IFREG | 0o755);
    assertEquals(byName.get("bench/lua/bench.lua")!.mode & S_IFMT, S_IFREG);
    assert(byName.has("bench/sqlite3/bench.sql"));

    // A base archive of odd length: the second member starts at the next multiple of 4.
    const base = new Uint8Array([0x1f, 0x8b, 1, 2, 3]);
    const combined = await appendCpio(base, extra);
    assertEquals([...combined.subarray(0, 5)], [...base]);
    assertEquals([...combined.subarray(5, 8)], [0, 0, 0]);
    assertEquals(readCpio(gunzipSync(combined.subarray(8))).map((e) => e.name), [
      ...entries.map((e) => e.name),
    ]);

    delete binaries.xz;
    assertVmonError(() => benchCpio(binaries), 'no binary for "xz"');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
