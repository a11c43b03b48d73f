/**
 * Helpers shared by the image recipes under `images/` that build with host tools: child
 * processes whose output goes to a log file (with heartbeats for long steps), cache steps built
 * once under a lock file, and atomic file placement. Private to `images/`.
 *
 * @module
 */

import { dirname } from "node:path";
import { VmonError } from "../core/errors.ts";

/** Receives one human-readable progress line. */
export type ProgressFn = (line: string) => void;

/** The prefix of the riscv64 Linux cross tools (`riscv64-linux-gnu-gcc`, ...). */
export const CROSS_PREFIX = "riscv64-linux-gnu-";

/**
 * Formats milliseconds as `1m05s` or `12.3s`.
 *
 * @example
 * ```ts
 * import { formatDuration } from "./_build.ts";
 * if (formatDuration(65_000) !== "1m05s") throw new Error(formatDuration(65_000));
 * ```
 */
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
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
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
  /** Log file that receives the command line, stdout and stderr (appended). */
  log: string;
  /** What the command does, for error messages ("build the kernel"). */
  what: string;
  /** Called every `heartbeatMs` while the command runs, with the elapsed time. */
  heartbeat?: (elapsedMs: number) => void;
  /** Heartbeat period (default 20 s). */
  heartbeatMs?: number;
}

/**
 * Runs `cmd args` with its output appended to a log file; on failure throws a `VmonError` that
 * names the log and carries its tail.
 *
 * @param cmd The program.
 * @param args Its arguments.
 * @param options Log file, description, working directory, environment and heartbeat.
 * @throws {VmonError} If the command cannot start or exits with a non-zero status.
 */
export async function runLogged(
  cmd: string,
  args: readonly string[],
  options: RunOptions,
): Promise<void> {
  Deno.mkdirSync(dirname(options.log), { recursive: true });
  const log = Deno.openSync(options.log, { append: true, create: true });
  const start = performance.now();
  const timer = options.heartbeat
    ? setInterval(
      () => options.heartbeat?.(performance.now() - start),
      options.heartbeatMs ?? 20_000,
    )
    : undefined;
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
      // Both streams go to the same file; writes are small and appended in arrival order.
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
    if (timer !== undefined) clearInterval(timer);
    log.close();
  }
}

/**
 * Runs a command and returns its stdout as text, or undefined if it cannot start or fails.
 *
 * @param cmd The program.
 * @param args Its arguments.
 * @param options `cwd`: working directory.
 */
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
 * Runs `fn` holding the lock file `path`, so that parallel builds of one step wait for each
 * other; a lock left by a dead process is taken over.
 *
 * @param path The lock file (created with the holder's pid, removed afterwards).
 * @param fn What to run under the lock.
 * @param options `onWait`: called once if another process holds the lock.
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
      if (Number.isInteger(owner) && owner > 0 && owner !== Deno.pid && !pidAlive(owner)) {
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

/** Options of {@linkcode once}. */
export interface OnceOptions<T> {
  /** Returns the cached result, or undefined if the step has to run. */
  cached: () => T | undefined;
  /** Runs the step (under the lock) and returns its result. */
  build: () => Promise<T>;
  /** Called once if another process holds the lock. */
  onWait?: () => void;
}

/**
 * A cache step: returns `cached()` if it has a result; otherwise takes the lock file `lock`,
 * asks `cached()` again (another process may have finished the step meanwhile) and only then
 * runs `build()`.
 *
 * @param lock The lock file that serializes the step between processes.
 * @param step The cache check, the build and the wait callback.
 */
export async function once<T>(lock: string, step: OnceOptions<T>): Promise<T> {
  const hit = step.cached();
  if (hit !== undefined) return hit;
  return await withLock(lock, async () => step.cached() ?? await step.build(), {
    onWait: step.onWait,
  });
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

/** Copies `from` to `to` atomically (temporary sibling, then rename). */
export function copyAtomic(from: string, to: string): void {
  Deno.mkdirSync(dirname(to), { recursive: true });
  const tmp = tempSibling(to);
  Deno.copyFileSync(from, tmp);
  Deno.renameSync(tmp, to);
}
