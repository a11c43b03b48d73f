/**
 * Test helper: runs the vmon CLI (`mod.ts`) in a child Deno process, as a user would, and
 * captures its status and output. Only tests import this file.
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../core/cache.ts";

/** What a CLI run produced. */
export interface CliResult {
  /** Exit status. */
  readonly status: number;
  /** Standard output as text. */
  readonly stdout: string;
  /** Standard error as text. */
  readonly stderr: string;
}

/** This process's environment without `INIT_CWD`. */
function inherited(): Record<string, string> {
  const { INIT_CWD: _initCwd, ...rest } = Deno.env.toObject();
  return rest;
}

/**
 * Runs `deno run --allow-all mod.ts ...args` with vmon's config and stdin closed.
 * `INIT_CWD` (where `deno task` was started, inherited from a `deno task test`) is not passed on
 * unless `env` sets it, so that the child's paths resolve against `cwd` as the test means.
 *
 * @param args The CLI arguments.
 * @param options `cwd` for the child (default the repository root);
 *   `env` extra environment variables.
 */
export async function runCli(
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--quiet",
      "--no-lock",
      "--config",
      join(REPO_ROOT, "deno.json"),
      join(REPO_ROOT, "cli", "main.ts"),
      ...args,
    ],
    cwd: options.cwd ?? REPO_ROOT,
    clearEnv: true,
    env: { ...inherited(), NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    status: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/**
 * Checks that a failed CLI run reported exactly one `vmon: ...` line on stderr, no stack trace,
 * a non-zero status, and that the line matches `pattern`. Throws with the whole output otherwise.
 */
export function assertOneLineError(result: CliResult, pattern: RegExp): void {
  const lines = result.stderr.split("\n").filter((l) => l.trim() !== "");
  const problems: string[] = [];
  if (result.status === 0) problems.push("status is 0");
  if (lines.length !== 1) problems.push(`${lines.length} stderr lines, expected 1`);
  if (!lines[0]?.startsWith("vmon: ")) problems.push("the line does not start with 'vmon: '");
  if (/\n\s+at /.test(result.stderr)) problems.push("stderr holds a stack trace");
  if (/this is a bug/.test(result.stderr)) problems.push("reported as an unexpected error");
  if (!pattern.test(lines[0] ?? "")) problems.push(`the line does not match ${pattern}`);
  if (problems.length > 0) {
    throw new Error(
      `${
        problems.join("; ")
      }\n--- status ${result.status}\n--- stderr\n${result.stderr}--- stdout\n${
        result.stdout.slice(-2000)
      }`,
    );
  }
}
