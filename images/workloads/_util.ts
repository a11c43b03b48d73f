/**
 * Helpers of the workloads recipe: logged child processes, cache locks and atomic file
 * placement. Private to this folder.
 *
 * @module
 */

import { dirname } from "node:path";
import { VmonError } from "../../core/errors.ts";

/** Receives one human-readable progress line. */
export type ProgressFn = (line: string) => void;

/** Formats milliseconds as `1m05s` or `12.3s`. */
export function formatDuration(ms: number): string {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
}

/** Returns whether `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** A temporary sibling name for `path`, unique to this process and call. */
export function tempSibling(path: string): string {
  return `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Writes `data` to `path` atomically (temporary sibling, then rename). */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  Deno.mkdirSync(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  if (typeof data === "string") Deno.writeTextFileSync(tmp, data);
  else Deno.writeFileSync(tmp, data);
  Deno.renameSync(tmp, path);
}

/** Copies `from` to `to` atomically. */
export function copyAtomic(from: string, to: string): void {
  Deno.mkdirSync(dirname(to), { recursive: true });
  const tmp = tempSibling(to);
  Deno.copyFileSync(from, tmp);
  Deno.renameSync(tmp, to);
}

function tail(path: string, lines = 30): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Log file that receives the command line, stdout and stderr. */
  log: string;
  /** What the command does, for error messages ("build lua"). */
  what: string;
}

/**
 * Runs `cmd args` with its output appended to a log file; on failure throws a `VmonError` that
 * names the log and carries its tail.
 */
export async function run(cmd: string, args: readonly string[], options: RunOptions) {
  Deno.mkdirSync(dirname(options.log), { recursive: true });
  const log = Deno.openSync(options.log, { append: true, create: true });
  try {
    log.writeSync(new TextEncoder().encode(`\n$ ${cmd} ${args.join(" ")}\n`));
    let status: Deno.CommandStatus;
    try {
      const child = new Deno.Command(cmd, {
        args: [...args],
        cwd: options.cwd,
        env: options.env,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) log.writeSync(chunk);
      };
      [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
    } catch (e) {
      throw new VmonError(`Cannot ${options.what}: cannot start "${cmd}"`, { cause: e });
    }
    if (!status.success) {
      throw new VmonError(
        `Cannot ${options.what}: "${cmd}" exited with status ${status.code}` +
          ` (log: ${options.log})\n${tail(options.log)}`,
      );
    }
  } finally {
    log.close();
  }
}

/** Runs a command and returns its stdout, or undefined if it cannot start or fails. */
export async function capture(cmd: string, args: readonly string[]): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding the lock file `path`, so that parallel builds of one step wait for each
 * other; a lock left by a dead process is taken over.
 */
export async function withLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: { onWait?: () => void } = {},
): Promise<T> {
  Deno.mkdirSync(dirname(path), { recursive: true });
  let waited = false;
  for (;;) {
    try {
      const f = Deno.openSync(path, { write: true, createNew: true });
      f.writeSync(new TextEncoder().encode(String(Deno.pid)));
      f.close();
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      let owner = NaN;
      try {
        owner = Number(Deno.readTextFileSync(path));
      } catch { /* removed meanwhile */ }
      if (Number.isInteger(owner) && owner > 0 && owner !== Deno.pid && !alive(owner)) {
        try {
          Deno.removeSync(path);
        } catch { /* another waiter removed it */ }
        continue;
      }
      if (!waited) options.onWait?.();
      waited = true;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      Deno.removeSync(path);
    } catch { /* already gone */ }
  }
}

/** Throws a `VmonError` unless `path` is a static RISC-V 64 ELF executable. */
export function checkStaticRiscv(path: string): void {
  const b = Deno.readFileSync(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const bad = (why: string) => new VmonError(`Cannot use program "${path}": ${why}`);
  if (b.length < 64 || dv.getUint32(0) !== 0x7f454c46) throw bad("not an ELF file");
  if (b[4] !== 2 || b[5] !== 1) throw bad("not a 64-bit little-endian ELF");
  if (dv.getUint16(18, true) !== 243) throw bad("not a RISC-V executable");
  const phoff = Number(dv.getBigUint64(32, true));
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  for (let i = 0; i < phnum; i++) {
    const off = phoff + i * phentsize;
    if (off + 4 > b.length) throw bad("truncated program headers");
    if (dv.getUint32(off, true) === 3) throw bad("dynamically linked (has PT_INTERP)");
  }
}
