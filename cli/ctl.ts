/**
 * `vmon ctl --socket <path> <command> [args]`: the client of the control socket
 * (cli/api_socket.ts, docs/control-socket.md). Sends one request, prints the answer's result as
 * JSON on stdout, or the error on stderr with status 1; `events` prints event lines until the
 * machine exits or the socket closes.
 *
 * @module
 */

import { VmonError } from "../core/errors.ts";
import { API_COMMANDS } from "./api_socket.ts";

/** Options of {@linkcode ctlCommand}. */
export interface CtlOptions {
  /** The socket's path. */
  readonly socket: string;
  /** `snapshot`: deflate the file. */
  readonly compress?: boolean;
  /** `stop`: the exit status. */
  readonly status?: string;
}

/** Builds the request for `command` and its arguments, refusing unknown commands. */
export function ctlRequest(
  command: string,
  args: readonly string[],
  options: Omit<CtlOptions, "socket"> = {},
): Record<string, unknown> {
  if (!(API_COMMANDS as readonly string[]).includes(command)) {
    throw new VmonError(`Unknown command "${command}": expected one of ${API_COMMANDS.join(", ")}`);
  }
  const req: Record<string, unknown> = { id: 1, cmd: command };
  if (command === "snapshot") {
    if (args.length !== 1) throw new VmonError("Invalid ctl snapshot: give the file to write");
    // The monitor may run elsewhere: a relative path is made absolute here, where it was typed.
    req.path = args[0]!.startsWith("/") ? args[0] : `${Deno.cwd()}/${args[0]}`;
    if (options.compress) req.compress = true;
  } else if (args.length > 0) {
    throw new VmonError(`Invalid ctl ${command}: it takes no arguments`);
  }
  if (command === "stop" && options.status !== undefined) {
    const n = Number(options.status);
    if (!Number.isInteger(n) || n < 0 || n > 255) {
      throw new VmonError(`Invalid --status "${options.status}": expected an integer 0-255`);
    }
    req.status = n;
  }
  return req;
}

/**
 * Runs `vmon ctl`: connects, sends the request and prints the answer.
 *
 * @param command The command.
 * @param args Its arguments, then the options.
 * @returns The process status: 0, or 1 when the monitor answered with an error.
 */
export async function ctlCommand(
  command: string,
  args: readonly string[],
  options: CtlOptions,
): Promise<number> {
  const req = ctlRequest(command, args, options);
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: options.socket });
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such socket (is `vmon run --api-socket` running?)"
      : err instanceof Deno.errors.ConnectionRefused
      ? "nothing listens there (the monitor has exited?)"
      : (err as Error).message;
    throw new VmonError(`Cannot connect to "${options.socket}": ${why}`);
  }
  try {
    await conn.write(new TextEncoder().encode(JSON.stringify(req) + "\n"));
    const decoder = new TextDecoder();
    let text = "";
    const buf = new Uint8Array(64 * 1024);
    let answered = false;
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      let nl: number;
      while ((nl = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (!answered && "ok" in msg) {
          answered = true;
          if (msg.ok !== true) {
            console.error(`vmon: ${msg.error}`);
            return 1;
          }
          if (command !== "events") {
            console.log(JSON.stringify(msg.result));
            return 0;
          }
          continue;
        }
        console.log(line);
        if (msg.event === "exited") return 0;
      }
    }
    if (!answered) throw new VmonError(`Cannot read the answer from "${options.socket}": closed`);
    return 0;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the monitor */ }
  }
}
