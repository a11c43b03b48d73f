/**
 * Stuck guests (DESIGN.md, "vCPU scheduling and threads"): a machine in which every vCPU waits
 * and no interrupt can wake it ends with one line naming the pc of each vCPU and a non-zero
 * status, while guests that wait for something that can come (their timer, console input through
 * the PLIC) are left alone. Tiny rv64 guests on riscv-virt, encoded by tests/fixtures/rv64_tiny.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { createMachine, hex, type MachineExit, type PluginRef } from "../mod.ts";
import { runCli } from "../cli/_spawn.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";
import { buildImage } from "../images/mod.ts";
import {
  add,
  addi,
  auipc,
  csrrs,
  csrrw,
  jal,
  li,
  PROGRAM_BASE,
  R,
  sb,
  sbiLegacy,
  sbiPrint,
  sw,
  tinyImage,
  WFI,
} from "./fixtures/rv64_tiny.ts";

const CSR_SIE = 0x104;
const CSR_TIME = 0xc01;

/** The pc of word `index` of a program. */
const pcOf = (index: number) => hex(PROGRAM_BASE + 4 * index);

async function withImage<T>(program: number[], fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "vmon-stuck-" });
  try {
    const path = join(dir, "Image");
    await Deno.writeFile(path, tinyImage(program));
    return await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function runTiny(
  program: number[],
  options: { cpus?: number; devices?: PluginRef[]; input?: { afterMs: number; text: string } } = {},
): Promise<{ exit: MachineExit; text: string }> {
  return await withImage(program, async (kernel) => {
    const out: number[] = [];
    const machine = await createMachine({
      hostport: { use: "rv64" },
      platform: { use: "riscv-virt" },
      cpus: options.cpus ?? 1,
      memory: "8M",
      devices: options.devices ?? [],
      boot: { kernel },
    }, { console: { write: (b) => out.push(...b) }, log: () => {} });
    const done = machine.run();
    // A bound that only a guest nothing ends would reach (the assertions then fail on it).
    const safety = setTimeout(
      () => machine.stop("the machine did not end by itself within 60 s", 99),
      60_000,
    ) as unknown as number;
    let timer: number | undefined;
    if (options.input !== undefined) {
      const input = options.input;
      timer = setTimeout(
        () => machine.sendInput(new TextEncoder().encode(input.text)),
        input.afterMs,
      ) as unknown as number;
    }
    try {
      const exit = await done;
      return { exit, text: new TextDecoder().decode(new Uint8Array(out)) };
    } finally {
      clearTimeout(timer);
      clearTimeout(safety);
    }
  });
}

Deno.test("stuck guest: WFI with every interrupt disabled ends the machine with the pc", async () => {
  const program = [...sbiPrint("ok\n"), csrrw(R.zero, CSR_SIE, R.zero), WFI, jal(R.zero, -4)];
  const wfi = program.length - 2;
  const { exit, text } = await runTiny(program);
  console.log(`reason: ${exit.reason}`);
  assert.equal(text, "ok\n", "output before the wait reaches the console");
  assert.equal(exit.failed, true);
  assert.notEqual(exit.status, 0);
  assert.match(exit.reason, /^The guest is stuck: every vCPU waits and no interrupt can wake it/);
  assert.match(exit.reason, new RegExp(`vCPU 0 waits at pc ${pcOf(wfi)}$`));
});

Deno.test("stuck guest: a timer armed with its interrupt disabled cannot wake the hart", async () => {
  // set_timer(0): due at once, but sie.STIE is clear.
  const program = [
    csrrw(R.zero, CSR_SIE, R.zero),
    ...li(R.a0, 0),
    ...sbiLegacy(0),
    WFI,
    jal(R.zero, -4),
  ];
  const { exit } = await runTiny(program);
  assert.equal(exit.failed, true);
  assert.match(exit.reason, new RegExp(`stuck: .*vCPU 0 waits at pc ${pcOf(program.length - 2)}$`));
});

Deno.test("stuck guest: device interrupts enabled at the hart but none routed by the PLIC", async () => {
  const program = [...li(R.t1, 1 << 9), csrrw(R.zero, CSR_SIE, R.t1), WFI, jal(R.zero, -4)];
  const { exit } = await runTiny(program, { devices: [{ use: "uart16550" }] });
  assert.equal(exit.failed, true);
  assert.match(exit.reason, /The guest is stuck: .*vCPU 0 waits at pc/);
});

Deno.test("stuck guest: two harts, one waiting and one never started, are reported both", async () => {
  const program = [csrrw(R.zero, CSR_SIE, R.zero), WFI, jal(R.zero, -4)];
  const { exit } = await runTiny(program, { cpus: 2 });
  assert.equal(exit.failed, true);
  assert.match(exit.reason, new RegExp(`vCPU 0 waits at pc ${pcOf(1)}, vCPU 1 stopped$`));
});

Deno.test("stuck guest: an exception at the trap vector itself ends the machine", async () => {
  // stvec = the address of an illegal instruction, then run into it: each trap lands on it again.
  const program = [auipc(R.t0, 0), addi(R.t0, R.t0, 12), csrrw(R.zero, 0x105, R.t0), 0];
  const { exit } = await runTiny(program);
  assert.equal(exit.failed, true);
  assert.match(exit.reason, new RegExp(`exception 2 at its own trap vector ${pcOf(3)}`));
});

Deno.test("stuck guest: a hart waiting for its enabled timer is not stuck", async () => {
  // time + 50 ms at 10 MHz, set_timer, sie.STIE only, wfi; then print and shut down.
  const program = [
    csrrs(R.a0, CSR_TIME, R.zero),
    ...li(R.t0, 500_000),
    add(R.a0, R.a0, R.t0),
    ...sbiLegacy(0),
    ...li(R.t1, 1 << 5),
    csrrw(R.zero, CSR_SIE, R.t1),
    WFI,
    ...sbiPrint("woke\n"),
    ...sbiLegacy(8),
  ];
  const { exit, text } = await runTiny(program);
  assert.deepEqual([exit.status, exit.reason, exit.failed], [0, "poweroff", false]);
  assert.equal(text, "woke\n");
});

Deno.test("stuck guest: a hart waiting for console input through the PLIC is not stuck", async () => {
  // PLIC: priority 1 for the UART's line 1, enabled for hart 0's S context, threshold 0; the
  // UART's receive interrupt on; sie.SEIE; wfi. Input arrives 300 ms later.
  const plic = 0x0c00_0000;
  const uart = 0x1000_0000;
  const program = [
    ...li(R.t0, plic),
    ...li(R.t1, 1),
    sw(R.t1, 4, R.t0),
    ...li(R.t0, plic + 0x2080),
    ...li(R.t1, 1 << 1),
    sw(R.t1, 0, R.t0),
    ...li(R.t0, plic + 0x20_1000),
    sw(R.zero, 0, R.t0),
    ...li(R.t0, uart),
    ...li(R.t1, 1),
    sb(R.t1, 1, R.t0),
    ...li(R.t1, 1 << 9),
    csrrw(R.zero, CSR_SIE, R.t1),
    WFI,
    ...sbiPrint("got input\n"),
    ...sbiLegacy(8),
  ];
  const { exit, text } = await runTiny(program, {
    devices: [{ use: "uart16550", options: { base: uart, irq: 1 } }],
    input: { afterMs: 300, text: "x" },
  });
  assert.deepEqual([exit.status, exit.reason, exit.failed], [0, "poweroff", false]);
  assert.equal(text, "got input\n");
});

Deno.test("stuck guest: vmon run prints the stuck line and exits non-zero", async () => {
  const program = [...sbiPrint("before\n"), csrrw(R.zero, CSR_SIE, R.zero), WFI, jal(R.zero, -4)];
  await withImage(program, async (kernel) => {
    const r = await runCli([
      "run",
      "--host",
      "rv64",
      "--platform",
      "riscv-virt",
      "--kernel",
      kernel,
    ]);
    console.log(`status ${r.status}, stderr: ${r.stderr.trim()}`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /before/);
    assert.match(
      r.stderr,
      new RegExp(
        `^vmon: The guest is stuck: every vCPU waits and no interrupt can wake it .*: vCPU 0 waits at pc ${
          pcOf(program.length - 2)
        }$`,
        "m",
      ),
    );
  });
});

// --- Linux (the project's linux-rv64 image; built by tests/prepare.ts) ---------------------------

const noLinux = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (noLinux !== undefined) console.error(`stuck_guest_test: Linux tests skipped: ${noLinux}`);

Deno.test({
  name: "stuck guest: a truncated Linux Image ends with one line and a non-zero status",
  ignore: noLinux !== undefined,
  async fn() {
    const image = await buildImage("linux-rv64");
    const bytes = await Deno.readFile(image.kernel);
    // The head of the kernel runs; it traps into code that is not there and parks the hart.
    const program = bytes.subarray(0, Math.min(bytes.length >> 1, 2 << 20));
    const dir = await Deno.makeTempDir({ prefix: "vmon-truncated-" });
    try {
      const kernel = join(dir, "Image");
      await Deno.writeFile(kernel, program);
      const r = await runCli([
        "run",
        "--host",
        "rv64",
        "--platform",
        "riscv-virt",
        "--kernel",
        kernel,
        "--mem",
        "256M",
      ]);
      console.log(`status ${r.status}: ${r.stderr.trim()}`);
      assert.notEqual(r.status, 0);
      assert.match(
        r.stderr,
        /^vmon: (The guest is stuck: every vCPU waits .*: vCPU 0 waits at pc 0x[0-9a-f]+|Guest vCPU 0 failed, .*exception \d+ at its own trap vector 0x[0-9a-f]+.*)$/m,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "stuck guest: an idle Linux at its shell prompt is not stuck (console input wakes it)",
  ignore: noLinux !== undefined,
  sanitizeResources: false,
  async fn() {
    const image = await buildImage("linux-rv64");
    let text = "";
    const decoder = new TextDecoder();
    const machine = await createMachine({
      hostport: { use: "rv64" },
      platform: { use: "riscv-virt" },
      memory: "256M",
      devices: [{ use: "uart16550" }],
      boot: {
        kernel: image.kernel,
        ...(image.initrd !== undefined ? { initrd: image.initrd } : {}),
        cmdline: "console=ttyS0",
      },
    }, { console: { write: (b) => text += decoder.decode(b, { stream: true }) }, log: () => {} });
    const done = machine.run();
    const safety = setTimeout(() => machine.stop("not ended within 5 minutes", 99), 300_000);
    try {
      const start = performance.now();
      while (!text.includes("init ready") && performance.now() - start < 240_000) {
        await new Promise((r) => setTimeout(r, 100));
      }
      // Idle at the prompt (every hart in WFI, maybe no timer armed) for a while, then type.
      await new Promise((r) => setTimeout(r, 3000));
      machine.sendInput(new TextEncoder().encode("echo still-$((40+2)); poweroff -f\n"));
      const exit = await done;
      assert.equal(exit.failed, false, exit.reason);
      assert.equal(exit.status, 0);
      assert.match(text, /still-42/);
    } finally {
      clearTimeout(safety);
    }
  },
});
