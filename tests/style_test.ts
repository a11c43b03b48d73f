/**
 * The style tools pass on the whole repository: `deno fmt --check`, `deno lint`, and
 * `deno doc --lint` on both public entries, `mod.ts` and `testing/mod.ts` (every export documented, no private types leaking).
 */

import assert from "node:assert/strict";
import { REPO_ROOT } from "../core/cache.ts";

async function deno(args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { ok: r.success, out: d.decode(r.stdout) + d.decode(r.stderr) };
}

Deno.test("style: deno fmt --check", async () => {
  const r = await deno(["fmt", "--check"]);
  assert.ok(r.ok, r.out);
});

Deno.test("style: deno lint", async () => {
  const r = await deno(["lint"]);
  assert.ok(r.ok, r.out);
});

Deno.test("style: deno doc --lint on the public API", async () => {
  const r = await deno(["doc", "--lint", "mod.ts", "testing/mod.ts"]);
  assert.ok(r.ok, r.out);
});
