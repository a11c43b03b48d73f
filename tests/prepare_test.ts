// tests/prepare.ts installs the peers the tests compare with, so that no peer check is skipped
// in CI: qemu-system-riscv64 comes from a package on its list, and a missing one gives a step.

import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { findQemu } from "../images/linux-rv64/qemu.ts";
import { packageSteps, PEER_PACKAGES } from "./prepare.ts";

Deno.test("prepare: a missing peer package becomes an install step, none when installed", async () => {
  const asked: string[][] = [];
  const steps = await packageSteps({
    missing: (names) => {
      asked.push([...names]);
      return Promise.resolve(names.filter((n) => n === "qemu-system-misc"));
    },
  });
  assertEquals(asked, [[...PEER_PACKAGES]]);
  assertEquals(steps.map((s) => s.label), ["host packages qemu-system-misc"]);
  assertEquals(await packageSteps({ missing: () => Promise.resolve([]) }), []);
});

Deno.test("prepare: qemu-system-riscv64 is installed, from a package prepare.ts installs", async () => {
  const qemu = findQemu();
  ok(qemu, "qemu-system-riscv64 is not on PATH: run `deno run -A tests/prepare.ts` (as root)");
  const out = await new Deno.Command("dpkg-query", { args: ["-S", qemu], stdout: "piped" })
    .output();
  const owner = new TextDecoder().decode(out.stdout).split(":")[0]?.trim() ?? "";
  ok(PEER_PACKAGES.includes(owner), `${qemu} comes from "${owner}", not from ${PEER_PACKAGES}`);
});
