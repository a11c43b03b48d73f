// `vmon run` end to end on the rv64 host port: a tiny S-mode guest (built here with the RISC-V
// cross compiler) prints through the SBI console and powers off through SBI SRST.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../cli/_spawn.ts";

const GUEST = `
.globl _start
_start:
  la s0, msg
1: lbu a0, 0(s0)
  beqz a0, 2f
  li a7, 1          # legacy SBI console_putchar
  ecall
  addi s0, s0, 1
  j 1b
2: li a7, 0x53525354 # SBI SRST: shutdown
  li a6, 0
  li a0, 0
  li a1, 0
  ecall
3: j 3b
msg: .asciz "hello from a tiny rv64 guest\\n"
`;

const CC = "riscv64-linux-gnu-gcc";

async function buildGuest(dir: string): Promise<string | undefined> {
  await Deno.writeTextFile(join(dir, "guest.S"), GUEST);
  const elf = join(dir, "guest.elf");
  try {
    const out = await new Deno.Command(CC, {
      args: [
        "-nostdlib",
        "-static",
        "-Wl,-Ttext-segment=0x80200000",
        "-Wl,-z,max-page-size=4096",
        "-o",
        elf,
        join(dir, "guest.S"),
      ],
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  return elf;
}

Deno.test("vmon run boots a tiny rv64 guest, forwards its console and reports stats", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-run-test-" });
  try {
    const elf = await buildGuest(dir);
    if (elf === undefined) {
      console.error(`skipping: ${CC} is not installed`);
      return;
    }
    const base = ["run", "--host", "rv64", "--platform", "riscv-virt", "--kernel", elf];

    await t.step("--stats=json prints the guest output, then one JSON object", async () => {
      const r = await runCli([...base, "--mem", "64M", "--stats=json"]);
      assertEquals(r.status, 0, r.stderr);
      const lines = r.stdout.trimEnd().split("\n");
      assertEquals(lines[0], "hello from a tiny rv64 guest");
      const json = JSON.parse(lines.at(-1) ?? "");
      assertEquals(json.status, 0);
      assertEquals(json.failed, false);
      // 29 characters through console_putchar plus the SRST call.
      assertEquals(json.stats.exits.hypercall, 30);
      assert(json.stats.hostport.instructions > 100, JSON.stringify(json.stats.hostport));
      // One name per counter: the comparison's tlb-fills, never also tlbFills.
      const names = Object.keys(json.stats.hostport);
      assert(names.includes("tlb-fills") && names.includes("tlb-flushes"), names.join(" "));
      assertEquals(names.filter((n) => /^tlb[A-Z]/.test(n)), []);
    });

    await t.step("--stats prints tables on stderr", async () => {
      const r = await runCli([...base, "--stats"]);
      assertEquals(r.status, 0, r.stderr);
      assertEquals(r.stdout, "hello from a tiny rv64 guest\n");
      assert(/exit kind\s.*count/.test(r.stderr), r.stderr);
      assert(/hypercall\s*│\s*30 │/.test(r.stderr), r.stderr);
      assert(/wall time: [\d.]+ ms/.test(r.stderr), r.stderr);
    });

    await t.step("a manifest with flags over it", async () => {
      const manifest = join(dir, "machine.json");
      await Deno.writeTextFile(
        manifest,
        JSON.stringify({
          hostport: "rv64",
          platform: "riscv-virt",
          memory: "32M",
          boot: { kernel: "guest.elf" },
        }),
      );
      const r = await runCli(["run", "--manifest", manifest, "--mem", "48M", "--stats=json"]);
      assertEquals(r.status, 0, r.stderr);
      assert(r.stdout.startsWith("hello from a tiny rv64 guest\n"), r.stdout);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
