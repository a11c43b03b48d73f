// Integration: the real rv64 host port runs the Linux kernel from the image cache on this
// platform, with a tiny static /init of this test's own that prints the "vmon: init ready"
// marker and powers off through SBI SRST. Skips (visibly) without a cached kernel or the cross
// compiler.

import { ok, strictEqual } from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { cacheDir } from "../../../core/cache.ts";
import { createMachine } from "../../../core/machine.ts";
import { newcCpio } from "./_test_support.ts";
import { haveCrossCompiler } from "../../../ffi/rv64/asm.ts";

const INIT_C = `
static long sys4(long n, long a, long b, long c, long d) {
  register long a7 __asm__("a7") = n;
  register long a0 __asm__("a0") = a;
  register long a1 __asm__("a1") = b;
  register long a2 __asm__("a2") = c;
  register long a3 __asm__("a3") = d;
  __asm__ volatile("ecall" : "+r"(a0) : "r"(a7), "r"(a1), "r"(a2), "r"(a3) : "memory");
  return a0;
}
void _start(void) {
  static const char msg[] = "vmon: init ready\\n";
  sys4(64 /* write */, 1, (long)msg, sizeof msg - 1, 0);
  sys4(142 /* reboot */, 0xfee1dead, 672274793, 0x4321fedc /* POWER_OFF */, 0);
  for (;;) {}
}
`;

function findKernel(): string | undefined {
  const dir = join(cacheDir("images", "linux-rv64"), "kernel");
  let best: { path: string; mtime: number } | undefined;
  try {
    for (const e of Deno.readDirSync(dir)) {
      const path = join(dir, e.name, "Image");
      try {
        const st = Deno.statSync(path);
        const mtime = st.mtime?.getTime() ?? 0;
        if (st.isFile && (!best || mtime > best.mtime)) best = { path, mtime };
      } catch {
        // not built (yet)
      }
    }
  } catch {
    return undefined;
  }
  return best?.path;
}

/** Builds the test initrd (cached by source hash, renamed into place atomically). */
function buildInitrd(): string {
  const key = createHash("sha256").update(INIT_C).digest("hex").slice(0, 16);
  const dir = cacheDir("riscv-virt-test", key);
  const out = join(dir, "initrd.cpio");
  try {
    Deno.statSync(out);
    return out;
  } catch {
    // build it
  }
  const tmp = Deno.makeTempDirSync({ dir, prefix: "build-" });
  try {
    Deno.writeTextFileSync(join(tmp, "init.c"), INIT_C);
    const cc = new Deno.Command("riscv64-linux-gnu-gcc", {
      args: ["-static", "-nostdlib", "-O2", "-o", join(tmp, "init"), join(tmp, "init.c")],
    }).outputSync();
    if (!cc.success) throw new Error(new TextDecoder().decode(cc.stderr));
    const cpio = newcCpio([
      { path: "dev", dir: true },
      { path: "dev/console", char: [5, 1] },
      { path: "init", data: Deno.readFileSync(join(tmp, "init")), mode: 0o755 },
    ]);
    Deno.writeFileSync(join(tmp, "initrd.cpio"), cpio);
    Deno.renameSync(join(tmp, "initrd.cpio"), out);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
  return out;
}

const kernel = findKernel();
const gcc = haveCrossCompiler();
const skip = !kernel
  ? "no kernel Image in the cache (build the linux-rv64 image first)"
  : !gcc
  ? "riscv64-linux-gnu-gcc is not installed"
  : undefined;
if (skip) console.warn(`riscv-virt boot tests skipped: ${skip}`);

interface BootResult {
  text: string;
  exit: { status: number; reason: string; failed: boolean; metrics: Record<string, number> };
  context: string;
}

async function boot(
  options: { cpus: number; initrd: string; cmdline: string; devices: string[] },
): Promise<BootResult> {
  const chunks: Uint8Array[] = [];
  const logs: string[] = [];
  const machine = await createMachine({
    cpus: options.cpus,
    memory: "128M",
    hostport: { use: "rv64" },
    platform: { use: "riscv-virt", options: { "rng-seed": false } },
    devices: options.devices.map((use) => ({ use })),
    boot: { kernel: kernel!, initrd: options.initrd, cmdline: options.cmdline },
  }, { console: { write: (b) => chunks.push(b.slice()) }, log: (l) => logs.push(l) });
  const timer = setTimeout(() => machine.stop("test timeout", 124), 120_000);
  let exit;
  try {
    exit = await machine.run();
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const text = new TextDecoder().decode(all);
  const context = `exit ${JSON.stringify({ status: exit.status, reason: exit.reason })}\n` +
    `logs:\n${logs.join("\n")}\nconsole tail:\n${text.slice(-3000)}`;
  return {
    text,
    exit: {
      status: exit.status,
      reason: exit.reason,
      failed: exit.failed,
      metrics: exit.stats.metrics["riscv-virt"] ?? {},
    },
    context,
  };
}

for (const cpus of [1, 4]) {
  Deno.test({
    name: `riscv-virt: Linux boots on the rv64 port with ${cpus} hart(s) to "vmon: init ready"`,
    ignore: skip !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const { text, exit, context } = await boot({
        cpus,
        initrd: buildInitrd(),
        cmdline: "console=ttyS0 earlycon=sbi",
        devices: ["uart16550"],
      });
      ok(text.includes("Machine model: vmon riscv-virt"), context);
      ok(text.includes("SBI HSM extension detected"), context);
      ok(text.includes(`smp: Brought up 1 node, ${cpus} CPU`), context);
      ok(text.includes("10000000.serial: ttyS0 at MMIO 0x10000000"), context);
      ok(text.includes("vmon: init ready"), context);
      strictEqual(exit.status, 0, context);
      strictEqual(exit.reason, "poweroff", context);
      strictEqual(exit.failed, false, context);
      ok((exit.metrics["sbi_srst"] ?? 0) >= 1, JSON.stringify(exit.metrics));
      if (cpus > 1) ok((exit.metrics["sbi_hsm"] ?? 0) >= cpus - 1, JSON.stringify(exit.metrics));
    },
  });
}

/** The project's busybox initramfs, if the linux-rv64 image has been built. */
function findInitramfs(): string | undefined {
  const dir = join(cacheDir("images", "linux-rv64"), "initramfs");
  let best: { path: string; mtime: number } | undefined;
  try {
    for (const e of Deno.readDirSync(dir)) {
      const path = join(dir, e.name, "initramfs.cpio.gz");
      try {
        const st = Deno.statSync(path);
        const mtime = st.mtime?.getTime() ?? 0;
        if (st.isFile && (!best || mtime > best.mtime)) best = { path, mtime };
      } catch {
        // not built
      }
    }
  } catch {
    // no image built yet
  }
  return best?.path;
}

const initramfs = findInitramfs();
if (kernel && !initramfs) {
  console.warn("riscv-virt busybox boot test skipped: the linux-rv64 initramfs is not cached");
}

Deno.test({
  name: "riscv-virt: the linux-rv64 busybox image runs a command and powers off via sifive,test0",
  ignore: !kernel || !initramfs,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const script = btoa("echo riscv-virt-exec-ok; exit 3\n");
    const { text, exit, context } = await boot({
      cpus: 2,
      initrd: initramfs!,
      cmdline: `console=ttyS0 panic=-1 vmon.exec=${script}`,
      devices: ["uart16550", "debug-exit"],
    });
    ok(text.includes("vmon: init ready"), context);
    ok(text.includes("riscv-virt-exec-ok"), context);
    strictEqual(exit.status, 3, context);
  },
});
