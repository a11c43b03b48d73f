import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { join } from "node:path";
import { buildX86Images, X86_IMAGES } from "./mod.ts";

Deno.test("the x86 guests build once into the cache, with progress, then come from it", async () => {
  const root = await Deno.makeTempDir({ prefix: "vmon-x86-images-" });
  try {
    const first: string[] = [];
    const dir = await buildX86Images({ cacheRoot: root, onProgress: (m) => first.push(m) });
    ok(first.some((m) => m.includes("compiling hello.c")), first.join("\n"));
    ok(first.some((m) => m.includes("linking memtest.elf")), first.join("\n"));
    for (const image of X86_IMAGES) {
      const elf = Deno.readFileSync(join(dir, `${image.name}.elf`));
      assertEquals([...elf.subarray(0, 5)], [0x7f, 0x45, 0x4c, 0x46, 2]);
      assertEquals(new DataView(elf.buffer).getUint16(18, true), 62, "x86-64");
    }
    const again: string[] = [];
    assertEquals(await buildX86Images({ cacheRoot: root, onProgress: (m) => again.push(m) }), dir);
    assertEquals(again, [], "a cached build prints nothing");
    // Nothing but the finished build is left behind.
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name), [dir.split("/").pop()]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
