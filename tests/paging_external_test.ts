/**
 * A paging strategy written outside the repository runs through the real CLI: the example of
 * docs/paging.md (`docs/examples/flush_counter/mod.ts`, importing only `@vmon/vmon`) is copied
 * into a temporary folder outside the repository and loaded by path, on the rv64 port running the
 * project's Linux image. It uses the public paging mechanisms (`paging-exits`) and must not change
 * the guest: the run succeeds and its counters show in the JSON stats with traps > 0.
 * Skips (visibly) without the riscv64 cross compiler, which the image build needs.
 */

import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { PAGING_COUNTER_NAMES } from "../core/api/mod.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { runCli } from "../cli/_spawn.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";

const EXAMPLE = join(REPO_ROOT, "docs", "examples", "flush_counter");

const missing = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (missing !== undefined) console.error(`paging_external_test: skipped: ${missing}`);

/** Copies the example's `mod.ts` into a new folder outside the repository. */
async function copyExample(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vmon-paging-external-" });
  assert.ok(relative(REPO_ROOT, dir).startsWith(".."), `${dir} is inside the repository`);
  await Deno.copyFile(join(EXAMPLE, "mod.ts"), join(dir, "mod.ts"));
  return dir;
}

Deno.test("external strategy: vmon plugins lists it with the options its README names", async () => {
  const dir = await copyExample();
  try {
    const r = await runCli(["plugins", "--json", join(dir, "mod.ts")], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ name: string; kind: string; options?: object }>;
    const row = rows.find((p) => p.name === "flush-counter");
    assert.ok(row !== undefined, r.stdout);
    assert.equal(row.kind, "paging");
    assert.deepEqual(Object.keys(row.options ?? {}), ["sfence", "satp"]);
    const readme = await Deno.readTextFile(join(EXAMPLE, "README.md"));
    for (const option of Object.keys(row.options ?? {})) {
      assert.match(readme, new RegExp(`^\\| \`${option}\` +\\|`, "m"), `README lists ${option}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "external strategy: loaded by path on rv64 Linux, counts paging exits, guest unchanged",
  ignore: missing !== undefined,
  sanitizeResources: false,
  fn: async () => {
    const dir = await copyExample();
    try {
      const r = await runCli([
        "run",
        "--image",
        "linux-rv64",
        "--paging",
        join(dir, "mod.ts"),
        "--exec",
        "true",
        "--stats=json",
      ], { cwd: dir });
      assert.equal(r.status, 0, `${r.stderr}\n${r.stdout.slice(-2000)}`);
      const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
        status: number;
        failed: boolean;
        stats: { exits: Record<string, number>; metrics: Record<string, Record<string, number>> };
      };
      assert.equal(result.status, 0);
      assert.equal(result.failed, false);
      const c = result.stats.metrics["flush-counter"];
      assert.ok(c !== undefined, JSON.stringify(result.stats.metrics));
      for (const name of PAGING_COUNTER_NAMES) assert.equal(typeof c[name], "number", name);
      assert.ok(c.traps! > 0, JSON.stringify(c));
      assert.ok(c["traps.flush"]! > 0 && c["traps.satp"]! > 0, JSON.stringify(c));
      assert.equal(c.traps, c["traps.flush"]! + c["traps.satp"]!, "only the exits it enabled");
      assert.equal(result.stats.exits.paging, c.traps, "every paging exit reached the strategy");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
