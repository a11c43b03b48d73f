// Integration tests: the project's own x86-64 guests booted through this platform on the real
// kvm host port, with the minimal UART and debug-exit of _test_machine.ts.
import { deepStrictEqual as assertEquals, match, ok } from "node:assert/strict";
import { join } from "node:path";
import type { HostPortPluginDefinition } from "../core/api/mod.ts";
import { buildImage } from "../images/mod.ts";
import {
  type GuestRun,
  runGuest,
  type RunGuestOptions,
} from "../plugins/platforms/x86-64-direct/_test_machine.ts";
import { makeElf } from "../plugins/platforms/x86-64-direct/_test_elf.ts";

const KVM_PORT = new URL("../plugins/hostports/kvm/mod.ts", import.meta.url);

function missing(path: string | URL): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch {
    return true;
  }
}

const skip = missing("/dev/kvm")
  ? "/dev/kvm is absent"
  : missing(KVM_PORT)
  ? "the kvm host port (plugins/hostports/kvm/mod.ts) is not present yet"
  : undefined;
if (skip !== undefined) console.warn(`x86-64-direct boot tests skipped: ${skip}`);

async function kvm(): Promise<HostPortPluginDefinition> {
  return (await import(KVM_PORT.href)).default as HostPortPluginDefinition;
}

async function boot(image: string, options: RunGuestOptions = {}): Promise<GuestRun> {
  const built = await buildImage(image);
  return await runGuest(await kvm(), built.kernel, options);
}

function kvmTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name: skip ? `${name} (skipped: ${skip})` : name, ignore: skip !== undefined, fn });
}

kvmTest("hello prints its greeting and exits with arg, in ring 3", async () => {
  const run = await boot("hello", { arg: 7 });
  assertEquals(run.reason, "guest exit");
  assertEquals(run.status, 7);
  assertEquals(
    run.output,
    "Hello from vmon x86-64 guest on vCPU 0!\nhello: exiting with code 7\n",
  );
});

kvmTest("hello in ring 0 takes its exit code from the command line", async () => {
  const run = await boot("hello", { ring: 0, cmdline: "quiet arg=3" });
  assertEquals([run.status, run.reason], [3, "guest exit"]);
  match(run.output, /exiting with code 3\n$/);
});

kvmTest("exits makes exactly arg port-I/O exits", async () => {
  for (const ring of [0, 3]) {
    const run = await boot("exits", { ring, arg: 1001 });
    assertEquals([run.status, run.reason], [0, "guest exit"]);
    assertEquals(run.port80, 1001);
    assertEquals(run.output, "exits: made 1001 port-I/O exits\n");
  }
});

kvmTest("smp: every vCPU reports, all meet at the barrier, vCPU 0 exits", async () => {
  for (const [cpus, ring] of [[4, 3], [2, 0]] as const) {
    const run = await boot("smp", { cpus, ring, arg: 5 });
    assertEquals([run.status, run.reason], [5, "guest exit"]);
    const lines = run.output.trimEnd().split("\n");
    assertEquals(lines.length, cpus + 1);
    assertEquals(
      lines.slice(0, cpus).sort(),
      Array.from({ length: cpus }, (_, i) => `smp: cpu ${i} of ${cpus} is up`),
    );
    assertEquals(lines[cpus], `smp: all ${cpus} cpus met at the barrier`);
  }
});

kvmTest("memtest checks 64 MiB and its checksum matches the monitor's", async () => {
  let inMemory = true;
  const run = await boot("memtest", {
    memorySize: 64 * 2 ** 20,
    inspect(memory) {
      // The final pattern is still in guest RAM.
      for (const a of [0x300000, 0x1234560, 0x3000000]) {
        const want = (Math.imul(a >>> 2, 2654435761 | 0) ^ 0xa5a5a5a5) >>> 0;
        if (memory.readU32(a) !== want) inMemory = false;
      }
    },
  });
  assertEquals([run.status, run.reason], [0, "guest exit"]);
  ok(inMemory, "the pattern is in guest memory");
  const m = run.output.match(
    /^memtest: testing (0x[0-9a-f]+)-(0x[0-9a-f]+)\nmemtest: ok, (\d+) KiB, checksum (0x[0-9a-f]+)\n$/,
  );
  ok(m, run.output);
  const start = Number(m[1]), end = Number(m[2]);
  assertEquals(end, 64 * 2 ** 20 - 0x10000, "free RAM ends below the stack");
  assertEquals(Number(m[3]), (end - start) / 1024);
  let sum = 0;
  for (let a = start; a < end; a += 4) {
    sum = (sum + ((Math.imul(a >>> 2, 2654435761 | 0) ^ 0xa5a5a5a5) >>> 0)) >>> 0;
  }
  assertEquals(Number(m[4]), sum);
});

async function guestElf(code: number[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "x86-direct-boot-" });
  const path = join(dir, "fault.elf");
  await Deno.writeFile(
    path,
    makeElf({ entry: 0x200000, segments: [{ paddr: 0x200000, data: Uint8Array.from(code) }] }),
  );
  return path;
}

kvmTest("a ring-3 page fault is reported with its address, not a triple fault", async () => {
  // mov rax, [0x1000]: the platform's area is supervisor-only.
  const kernel = await guestElf([0x48, 0x8b, 0x04, 0x25, 0x00, 0x10, 0x00, 0x00]);
  const run = await runGuest(await kvm(), kernel, {});
  assertEquals(run.status, 128 + 14);
  assertEquals(
    run.reason,
    "Guest exception on vCPU 0: #PF page fault at rip 0x200000 in ring 3 " +
      "(read of 0x1000, protection violation, user mode)",
  );
});

kvmTest("a ring-0 invalid opcode is reported", async () => {
  const kernel = await guestElf([0x90, 0x0f, 0x0b]); // nop; ud2
  const run = await runGuest(await kvm(), kernel, { ring: 0 });
  assertEquals([run.status, run.reason], [
    128 + 6,
    "Guest exception on vCPU 0: #UD invalid opcode at rip 0x200001 in ring 0",
  ]);
});
