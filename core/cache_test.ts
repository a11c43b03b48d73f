import { notStrictEqual, strictEqual } from "node:assert/strict";
import { join } from "./paths.ts";
import { hashFiles, hashFilesMemo } from "./cache.ts";

Deno.test("hashFilesMemo: the hash of hashFiles, kept while the files keep their stamps", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const a = join(dir, "a.c"), b = join(dir, "b.h"), memo = join(dir, "memo.json");
    Deno.writeTextFileSync(a, "int a;\n");
    Deno.writeTextFileSync(b, "#define B 1\n");
    const want = hashFiles([a, b], ["cc", "-O2"]);
    strictEqual(hashFilesMemo([a, b], ["cc", "-O2"], { memo }), want);
    // The memo answers while nothing changed: a planted hash comes back.
    const kept = JSON.parse(Deno.readTextFileSync(memo));
    Deno.writeTextFileSync(memo, JSON.stringify({ ...kept, hash: "planted" }));
    strictEqual(hashFilesMemo([a, b], ["cc", "-O2"], { memo }), "planted");
    // Other extra strings, or a changed file: hashed again.
    strictEqual(hashFilesMemo([a, b], ["cc", "-O3"], { memo }), hashFiles([a, b], ["cc", "-O3"]));
    Deno.writeTextFileSync(b, "#define B 22\n");
    const changed = hashFilesMemo([a, b], ["cc", "-O2"], { memo });
    strictEqual(changed, hashFiles([a, b], ["cc", "-O2"]));
    notStrictEqual(changed, want);
    // A memo that cannot be read or written only costs the hashing.
    Deno.writeTextFileSync(memo, "not json");
    strictEqual(hashFilesMemo([a, b], ["cc", "-O2"], { memo }), changed);
    strictEqual(
      hashFilesMemo([a, b], ["cc", "-O2"], { memo: join(dir, "missing", "memo.json") }),
      changed,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
