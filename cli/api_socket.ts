/**
 * The control socket of `vmon run --api-socket <path>` (docs/control-socket.md): a UNIX socket,
 * mode 0600, speaking JSON lines. Each request is one line `{"id": 1, "cmd": "status"}`; each
 * answer one line `{"id": 1, "ok": true, "result": {...}}` or `{"id": 1, "ok": false, "error":
 * "..."}`. `events` subscribes the connection to event lines `{"event": "paused", ...}`.
 * Malformed or unknown requests get an error object; the machine keeps running; a client that
 * disconnects midway harms nothing.
 *
 * @module
 */

import type { MachineExit } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import type { Machine, SnapshotResult } from "../core/machine.ts";

/** The control protocol's version (`version` returns it). */
export const API_VERSION = 1;
/** The commands the socket understands. */
export const API_COMMANDS = [
  "version",
  "status",
  "pause",
  "resume",
  "stop",
  "stats",
  "snapshot",
  "events",
] as const;
/** Longest request line accepted (bytes); a longer one is answered with an error and skipped. */
export const MAX_REQUEST = 64 * 1024;

/** An event sent to subscribed connections. */
export type ApiEvent =
  | { readonly event: "started" }
  | { readonly event: "paused" }
  | { readonly event: "resumed" }
  | { readonly event: "snapshot"; readonly path: string; readonly bytes: number }
  | { readonly event: "guest-panic"; readonly reason: string }
  | {
    readonly event: "exited";
    readonly status: number;
    readonly reason: string;
    readonly failed: boolean;
  };

/** Options of {@linkcode ApiSocket.listen}. */
export interface ApiSocketOptions {
  /** vmon's version string, reported by `version`. */
  readonly vmonVersion: string;
}

interface Connection {
  readonly conn: Deno.Conn;
  events: boolean;
  closed: boolean;
}

const encoder = new TextEncoder();

/**
 * A control socket serving one machine. Create with {@linkcode ApiSocket.listen}; call
 * `started()` and `exited()` as the machine starts and ends, and `close()` at the end.
 */
export class ApiSocket {
  #listener: Deno.Listener;
  #path: string;
  #machine: Machine;
  #options: ApiSocketOptions;
  #conns = new Set<Connection>();
  #state: "built" | "running" | "paused" | "exited" = "built";
  #started = 0;
  #exit: MachineExit | undefined;
  #closed = false;

  private constructor(
    listener: Deno.Listener,
    path: string,
    machine: Machine,
    options: ApiSocketOptions,
  ) {
    this.#listener = listener;
    this.#path = path;
    this.#machine = machine;
    this.#options = options;
  }

  /**
   * Creates the socket at `path` (mode 0600; a stale socket left by a dead monitor is replaced,
   * any other file is refused) and serves it.
   *
   * @param path The socket's path.
   * @param machine The machine it controls.
   * @param options The version to report.
   */
  static listen(path: string, machine: Machine, options: ApiSocketOptions): ApiSocket {
    try {
      const info = Deno.lstatSync(path);
      if (!info.isSocket) {
        throw new VmonError(
          `Cannot create API socket "${path}": a file that is not a socket exists`,
        );
      }
      Deno.removeSync(path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        if (err instanceof VmonError) throw err;
        throw new VmonError(`Cannot create API socket "${path}": ${(err as Error).message}`);
      }
    }
    let listener: Deno.Listener;
    // Created with mode 0600 (umask 0177 while it is made), so no other user can ever connect.
    const old = Deno.umask(0o177);
    try {
      listener = Deno.listen({ transport: "unix", path });
    } catch (err) {
      throw new VmonError(`Cannot create API socket "${path}": ${(err as Error).message}`);
    } finally {
      Deno.umask(old);
    }
    Deno.chmodSync(path, 0o600);
    const socket = new ApiSocket(listener, path, machine, options);
    socket.#accept();
    return socket;
  }

  /** The machine started running. */
  started(): void {
    this.#state = "running";
    this.#started = performance.now();
    this.#emit({ event: "started" });
  }

  /** A snapshot was written (by a trigger or a request); a trigger that only settled is not told. */
  snapshotTaken(result: SnapshotResult): void {
    if (result.path === undefined) return;
    this.#emit({ event: "snapshot", path: result.path, bytes: result.bytes });
  }

  /** The machine ended. */
  exited(exit: MachineExit): void {
    this.#state = "exited";
    this.#exit = exit;
    if (exit.failed && /panic/i.test(exit.reason)) {
      this.#emit({ event: "guest-panic", reason: exit.reason });
    }
    this.#emit({ event: "exited", status: exit.status, reason: exit.reason, failed: exit.failed });
  }

  /** Closes the socket, every connection, and removes the socket file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    for (const c of this.#conns) this.#drop(c);
    try {
      Deno.removeSync(this.#path);
    } catch { /* gone already */ }
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // closed
      }
      const c: Connection = { conn, events: false, closed: false };
      this.#conns.add(c);
      this.#serve(c).catch(() => this.#drop(c));
    }
  }

  #drop(c: Connection): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c);
    try {
      c.conn.close();
    } catch { /* closed by the peer */ }
  }

  async #send(c: Connection, value: unknown): Promise<void> {
    if (c.closed) return;
    const bytes = encoder.encode(JSON.stringify(value) + "\n");
    try {
      let o = 0;
      while (o < bytes.length) o += await c.conn.write(bytes.subarray(o));
    } catch {
      this.#drop(c); // the client went away: nothing else is affected
    }
  }

  #emit(event: ApiEvent): void {
    for (const c of this.#conns) if (c.events) void this.#send(c, event);
  }

  async #serve(c: Connection): Promise<void> {
    const buf = new Uint8Array(16 * 1024);
    let line: number[] = [];
    let tooLong = false;
    for (;;) {
      let n: number | null;
      try {
        n = await c.conn.read(buf);
      } catch {
        n = null;
      }
      if (n === null) break;
      for (let i = 0; i < n; i++) {
        const b = buf[i]!;
        if (b !== 0x0a) {
          if (line.length < MAX_REQUEST) line.push(b);
          else tooLong = true;
          continue;
        }
        const text = new TextDecoder().decode(Uint8Array.from(line));
        line = [];
        if (tooLong) {
          tooLong = false;
          await this.#send(c, {
            id: null,
            ok: false,
            error: `Malformed request: longer than ${MAX_REQUEST} bytes`,
          });
          continue;
        }
        if (text.trim() === "") continue;
        await this.#send(c, await this.#handle(c, text));
      }
    }
    this.#drop(c);
  }

  async #handle(c: Connection, text: string): Promise<Record<string, unknown>> {
    let req: unknown;
    try {
      req = JSON.parse(text);
    } catch {
      return { id: null, ok: false, error: "Malformed request: not JSON" };
    }
    if (typeof req !== "object" || req === null || Array.isArray(req)) {
      return { id: null, ok: false, error: "Malformed request: expected a JSON object" };
    }
    const r = req as Record<string, unknown>;
    const id = typeof r.id === "number" || typeof r.id === "string" ? r.id : null;
    const fail = (error: string) => ({ id, ok: false, error });
    const ok = (result: unknown = {}) => ({ id, ok: true, result });
    if (typeof r.cmd !== "string") return fail('Malformed request: no "cmd" string');
    const live = this.#state === "running" || this.#state === "paused";
    try {
      switch (r.cmd) {
        case "version":
          return ok({ api: API_VERSION, vmon: this.#options.vmonVersion, commands: API_COMMANDS });
        case "status":
          return ok({
            state: this.#state,
            uptimeMs: this.#started === 0 ? 0 : Math.round(performance.now() - this.#started),
            ...(this.#exit !== undefined
              ? { exit: { status: this.#exit.status, reason: this.#exit.reason } }
              : {}),
          });
        case "pause":
          if (!live) return fail(`Cannot pause: the machine is ${this.#state}`);
          this.#machine.pause();
          if (this.#state !== "paused") {
            this.#state = "paused";
            this.#emit({ event: "paused" });
          }
          return ok({ state: this.#state });
        case "resume":
          if (!live) return fail(`Cannot resume: the machine is ${this.#state}`);
          this.#machine.resume();
          if (this.#state !== "running") {
            this.#state = "running";
            this.#emit({ event: "resumed" });
          }
          return ok({ state: this.#state });
        case "stop": {
          if (this.#state === "exited") return fail("Cannot stop: the machine has exited");
          const status = r.status ?? 130;
          if (
            typeof status !== "number" || !Number.isInteger(status) || status < 0 || status > 255
          ) {
            return fail('Malformed request: "status" must be an integer 0-255');
          }
          this.#machine.stop("stopped through the API socket", status);
          return ok();
        }
        case "stats":
          if (this.#state === "exited") return ok(this.#exit!.stats);
          return ok(await this.#machine.stats());
        case "snapshot": {
          if (!live) return fail(`Cannot take a snapshot: the machine is ${this.#state}`);
          if (typeof r.path !== "string" || r.path === "") {
            return fail('Malformed request: "path" must be a file name');
          }
          if (r.compress !== undefined && typeof r.compress !== "boolean") {
            return fail('Malformed request: "compress" must be true or false');
          }
          const result = await this.#machine.snapshot(r.path, { compress: r.compress === true });
          this.snapshotTaken(result);
          return ok(result);
        }
        case "events":
          c.events = true;
          return ok({ state: this.#state });
        default:
          return fail(
            `Unknown command "${r.cmd.slice(0, 40)}": expected one of ${API_COMMANDS.join(", ")}`,
          );
      }
    } catch (err) {
      return fail((err as Error).message);
    }
  }
}
