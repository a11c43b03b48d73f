import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { checkStaticRiscv, debSrcLines, machineSources } from "./_debian.ts";
import { assertVmonError } from "./_test_support.ts";

Deno.test("apt sources: deb entries become deb-src, in both formats", () => {
  const lines = debSrcLines([
    {
      name: "sources.list",
      text:
        "# c\ndeb [arch=amd64] http://a/debian bookworm main contrib # x\ndeb-src http://b/ x y\n",
    },
    {
      name: "debian.sources",
      text: [
        "Types: deb",
        "# a comment",
        "URIs: http://m/debian",
        "Suites: bookworm bookworm-updates",
        "Components: main",
        "Signed-By: /usr/share/keyrings/k.gpg",
        "",
        "Types: deb",
        "URIs: http://off/",
        "Suites: s",
        "Components: main",
        "Enabled: no",
        "",
        "Types: deb-src",
        "URIs: http://src-only/",
        "Suites: s",
        "Components: main",
      ].join("\n"),
    },
  ]);
  assertEquals(lines, [
    "deb-src [arch=amd64] http://a/debian bookworm main contrib",
    "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://m/debian bookworm main",
    "deb-src [signed-by=/usr/share/keyrings/k.gpg] http://m/debian bookworm-updates main",
  ]);
});

Deno.test("checkStaticRiscv: a host binary is refused as a guest program", () => {
  assertVmonError(() => checkStaticRiscv(Deno.execPath()), "not a RISC-V executable");
  const tmp = Deno.makeTempFileSync({ prefix: "vmon-notelf-" });
  try {
    Deno.writeTextFileSync(tmp, "#!/bin/sh\n");
    assertVmonError(() => checkStaticRiscv(tmp), "not an ELF file");
  } finally {
    Deno.removeSync(tmp);
  }
});

Deno.test("machineSources: reads sources.list and sources.list.d in name order", async () => {
  const root = await Deno.makeTempDir({ prefix: "vmon-apt-" });
  try {
    Deno.mkdirSync(join(root, "sources.list.d"));
    Deno.writeTextFileSync(join(root, "sources.list"), "deb http://a/debian bookworm main\n");
    Deno.writeTextFileSync(
      join(root, "sources.list.d", "b.sources"),
      "Types: deb\nURIs: http://b/debian\nSuites: bookworm\nComponents: main\n",
    );
    Deno.writeTextFileSync(join(root, "sources.list.d", "c.list.disabled"), "deb http://c/ x y\n");
    const files = machineSources(root);
    assertEquals(files.map((f) => f.name), ["sources.list", "b.sources"]);
    assertEquals(debSrcLines(files), [
      "deb-src http://a/debian bookworm main",
      "deb-src http://b/debian bookworm main",
    ]);
    assertEquals(machineSources(join(root, "missing")), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
