/**
 * Helpers shared by the linux-rv64 build steps: progress lines, logged child processes, cache
 * locks and atomic file placement. Private to this folder.
 *
 * @module
 */

import { dirname } from "node:path";
import { VmonError } from "../../core/errors.ts";

/** Receives one human-readable progress line. */
export type ProgressFn = (line: string) => void;

/** Writes progress lines to stderr, prefixed with the elapsed time since `start`. */
export function stderrProgress(start: number = performance.now()): ProgressFn {
  const enc = new TextEncoder();
  return (line) => {
    const s = ((performance.now() - start) / 1000).toFixed(1).padStart(6);
    Deno.stderr.writeSync(enc.encode(`[${s}s] ${line}\n`));
  };
}

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

/** Returns the last `lines` lines of a text file (empty if it is missing). */
export function tail(path: string, lines = 30): string {
  try {
    const text = Deno.readTextFileSync(path);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Options of {@linkcode runLogged}. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Log file the command's stdout and stderr are appended to. */
  log: string;
  /** What the command does, for error messages ("build the kernel"). */
  what: string;
  /** Called every `heartbeatMs` while the command runs, with the elapsed time. */
  heartbeat?: (elapsedMs: number) => void;
  /** Heartbeat period (default 20 s). */
  heartbeatMs?: number;
}

/**
 * Runs `cmd args` with output appended to a log file; on failure throws a `VmonError` that names
 * the log and carries its tail.
 */
export async function runLogged(
  cmd: string,
  args: readonly string[],
  options: RunOptions,
): Promise<void> {
  Deno.mkdirSync(dirname(options.log), { recursive: true });
  const logFile = Deno.openSync(options.log, { append: true, create: true });
  const header = `\n$ ${cmd} ${args.join(" ")}\n`;
  logFile.writeSync(new TextEncoder().encode(header));
  let status: Deno.CommandStatus;
  const start = performance.now();
  const timer = options.heartbeat
    ? setInterval(
      () => options.heartbeat?.(performance.now() - start),
      options.heartbeatMs ?? 20_000,
    )
    : undefined;
  try {
    const child = new Deno.Command(cmd, {
      args: [...args],
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Both streams go to the same file; writes are small and appended in arrival order.
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) logFile.writeSync(chunk);
    };
    [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  } catch (e) {
    logFile.close();
    if (timer !== undefined) clearInterval(timer);
    throw new VmonError(`Cannot ${options.what}: cannot start "${cmd}"`, { cause: e });
  }
  if (timer !== undefined) clearInterval(timer);
  logFile.close();
  if (!status.success) {
    throw new VmonError(
      `Cannot ${options.what}: "${cmd}" exited with status ${status.code}` +
        ` (log: ${options.log})\n${tail(options.log)}`,
    );
  }
}

/** Runs a command and returns its stdout as text, or undefined if it fails to start or fails. */
export async function capture(
  cmd: string,
  args: readonly string[],
  options: { cwd?: string } = {},
): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(cmd, {
      args: [...args],
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout) : undefined;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `fn` holding an exclusive lock file `path` (so that parallel builds of the same step wait
 * for each other). A lock left by a dead process is taken over.
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
      if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
        try {
          Deno.removeSync(path);
        } catch { /* another waiter removed it */ }
        continue;
      }
      if (!waited) options.onWait?.();
      waited = true;
      await new Promise((r) => setTimeout(r, 500));
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

/** A temporary sibling name for `path`, unique to this process. */
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
