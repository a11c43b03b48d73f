/**
 * The guest protocol of the linux-rv64 image: the kernel command-line word `vmon.exec=<base64>`
 * that `/init` runs, and the marker lines it prints (documented in README.md).
 *
 * @example Build the kernel command line that runs a command
 * ```ts
 * import { execCmdline } from "./protocol.ts";
 *
 * const arg = execCmdline("uname -a; nproc");
 * if (arg !== "vmon.exec=" + btoa("uname -a; nproc")) throw new Error(arg);
 * ```
 *
 * @module
 */

import { VmonError } from "../../core/errors.ts";

/** The default kernel command line (the CLI appends to it). */
export const DEFAULT_CMDLINE = "console=ttyS0 panic=-1";

/** Line `/init` prints as soon as it starts. */
export const INIT_READY_MARKER = "vmon: init ready";

/** Prefix of the line `/init` prints before powering off, followed by the status. */
export const EXIT_STATUS_MARKER = "vmon: exit status ";

/**
 * The kernel command-line word that makes `/init` read its command as one line from the console
 * (after printing {@linkcode INIT_READY_MARKER}) and run it as it runs `vmon.exec`'s. Every boot
 * with it is the same boot up to the marker whatever the command, so one snapshot taken there
 * serves every command (`vmon compare`'s runs, lab/runner.ts).
 */
export const EXEC_FROM_CONSOLE = "vmon.exec=console";

/**
 * The console input that gives `/init` its command under {@linkcode EXEC_FROM_CONSOLE}: the
 * command and a line feed.
 *
 * @param command A one-line shell command.
 * @throws {VmonError} If the command has a line break (init reads one line).
 *
 * @example
 * ```ts
 * import { consoleExecInput } from "./protocol.ts";
 * if (consoleExecInput("uname -a") !== "uname -a\n") throw new Error("bad input");
 * ```
 */
export function consoleExecInput(command: string): string {
  if (/[\r\n]/.test(command)) {
    throw new VmonError(
      `Cannot give the command to init on the console: it has a line break (${
        JSON.stringify(command)
      })`,
    );
  }
  return `${command}\n`;
}

/** The riscv64 kernel's command-line limit (`COMMAND_LINE_SIZE`), including the final NUL. */
export const COMMAND_LINE_SIZE = 1024;

/**
 * Returns the kernel command-line word that makes `/init` run `command` with `sh`:
 * `vmon.exec=` followed by the standard base64 of the UTF-8 command.
 *
 * @param command A shell command or script.
 * @param options `base`: the rest of the command line, counted against the kernel's limit.
 * @throws {VmonError} If the command line would exceed {@linkcode COMMAND_LINE_SIZE}.
 */
export function execCmdline(command: string, options: { base?: string } = {}): string {
  const bytes = new TextEncoder().encode(command);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  const word = `vmon.exec=${btoa(bin)}`;
  const total = (options.base ? options.base.length + 1 : 0) + word.length + 1;
  if (total > COMMAND_LINE_SIZE) {
    throw new VmonError(
      `Cannot pass the command to the guest: the kernel command line would be ${total} bytes` +
        ` (limit ${COMMAND_LINE_SIZE}); put long scripts on a disk instead`,
    );
  }
  return word;
}

/**
 * Parses `vmon: exit status N` from guest console output; undefined if the line is missing.
 *
 * @param output Console text.
 */
export function parseExitStatus(output: string): number | undefined {
  const m = new RegExp(`${EXIT_STATUS_MARKER}(\\d+)`).exec(output);
  return m ? Number(m[1]) : undefined;
}
