/**
 * Assembles small RISC-V guest programs with the cross toolchain (`riscv64-linux-gnu-as`, `ld`,
 * `objcopy`) for the rv64 tests and benchmarks. Results are cached by source hash.
 *
 * @module
 */

import { join } from "node:path";
import { createHash } from "node:crypto";
import { cacheDir } from "../../core/cache.ts";
import { VmonError } from "../../core/errors.ts";

/** Options of {@linkcode assemble}. */
export interface AssembleOptions {
  /** Load (link) address of `.text` (default 0x80000000). */
  base?: number;
  /** `-march` (default `rv64gc`). */
  march?: string;
}

function run(cmd: string, args: string[]): void {
  let res: Deno.CommandOutput;
  try {
    res = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  } catch (cause) {
    throw new VmonError(`Cannot run "${cmd}": ${String(cause)}`, { cause });
  }
  if (!res.success) {
    throw new VmonError(
      `Cannot assemble the guest program: ${cmd} failed: ${
        new TextDecoder().decode(res.stderr).trim()
      }`,
    );
  }
}

/** True when the riscv64 cross tool `tool` (`as`, `gcc`, ...) runs. */
function haveCrossTool(tool: string): boolean {
  try {
    return new Deno.Command(`riscv64-linux-gnu-${tool}`, { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/** True when the RISC-V cross assembler is installed. */
export function haveCrossAssembler(): boolean {
  return haveCrossTool("as");
}

/** True when the RISC-V cross C compiler (`riscv64-linux-gnu-gcc`) is installed. */
export function haveCrossCompiler(): boolean {
  return haveCrossTool("gcc");
}

/**
 * Assembles `source` (GNU as syntax) into a flat binary linked at `options.base`.
 *
 * @param source Assembly text; execution starts at the first byte of `.text`.
 * @param options Link address and ISA string.
 */
export function assemble(source: string, options: AssembleOptions = {}): Uint8Array {
  const base = options.base ?? 0x8000_0000;
  const march = options.march ?? "rv64gc";
  const key = createHash("sha256").update(`${base}\0${march}\0${source}`).digest("hex").slice(
    0,
    20,
  );
  const out = join(cacheDir("rv64-asm"), `${key}.bin`);
  try {
    return Deno.readFileSync(out);
  } catch {
    // not cached yet
  }
  const dir = Deno.makeTempDirSync({ prefix: "vmon-rv64-asm-" });
  try {
    const s = join(dir, "p.s"),
      o = join(dir, "p.o"),
      e = join(dir, "p.elf"),
      b = join(dir, "p.bin");
    Deno.writeTextFileSync(s, source);
    run("riscv64-linux-gnu-as", [`-march=${march}`, "-mabi=lp64d", "-o", o, s]);
    run("riscv64-linux-gnu-ld", [
      "-nostdlib",
      "--no-relax",
      `-Ttext=0x${base.toString(16)}`,
      "-o",
      e,
      o,
    ]);
    run("riscv64-linux-gnu-objcopy", ["-O", "binary", e, b]);
    const tmp = `${out}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
    Deno.copyFileSync(b, tmp);
    Deno.renameSync(tmp, out);
    return Deno.readFileSync(out);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}
