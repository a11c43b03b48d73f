/**
 * The user's terminal while a machine runs: raw mode when stdin is a TTY, the Ctrl-A escape
 * (Ctrl-A x quits, Ctrl-A Ctrl-A sends Ctrl-A), SIGINT/SIGTERM/SIGHUP/SIGQUIT handling, and
 * restoring the terminal on every exit path.
 *
 * @module
 */

const CTRL_A = 0x01;

/**
 * The signals that end a machine, with the conventional exit status (128 + the signal's number).
 */
export const QUIT_SIGNALS: Readonly<Record<"SIGHUP" | "SIGINT" | "SIGQUIT" | "SIGTERM", number>> = {
  SIGHUP: 129,
  SIGINT: 130,
  SIGQUIT: 131,
  SIGTERM: 143,
};

/** What the terminal reports to its owner. */
export interface TerminalHandlers {
  /** Bytes the user typed (after escape processing), for the guest. */
  onInput(bytes: Uint8Array): void;
  /**
   * The user asked to quit (Ctrl-A x, `status` 0) or a signal arrived (`status` 128 + its
   * number: {@linkcode QUIT_SIGNALS}); `reason` says which.
   */
  onQuit(reason: string, status: number): void;
}

/** Options for {@linkcode Terminal}. */
export interface TerminalOptions {
  /** Forward stdin to the guest (default true). */
  readonly input?: boolean;
  /** The input stream (default `Deno.stdin`). */
  readonly stdin?: {
    read(buf: Uint8Array): Promise<number | null>;
    isTerminal(): boolean;
    setRaw(mode: boolean): void;
  };
}

/**
 * Owns stdin and the terminal mode for the lifetime of one machine. Call {@linkcode Terminal.start}
 * before running and {@linkcode Terminal.restore} (idempotent) after, including on errors; it is
 * also restored when the process unloads.
 */
export class Terminal implements Disposable {
  #handlers: TerminalHandlers;
  #stdin: NonNullable<TerminalOptions["stdin"]>;
  #input: boolean;
  #raw = false;
  #stopped = false;
  #escape = false;
  #signals: Array<[Deno.Signal, () => void]> = [];
  #signalCount = 0;
  #onUnload = () => this.restore();

  /**
   * @param handlers Where input and quit requests go.
   * @param options Input forwarding and the stream to read.
   */
  constructor(handlers: TerminalHandlers, options: TerminalOptions = {}) {
    this.#handlers = handlers;
    this.#stdin = options.stdin ?? Deno.stdin;
    this.#input = options.input ?? true;
  }

  /** True when stdin is a terminal (raw mode and the Ctrl-A escape apply). */
  get interactive(): boolean {
    return this.#stdin.isTerminal();
  }

  /** Enters raw mode (on a TTY), installs signal handlers and starts forwarding input. */
  start(): void {
    globalThis.addEventListener("unload", this.#onUnload);
    for (const signal of Object.keys(QUIT_SIGNALS) as (keyof typeof QUIT_SIGNALS)[]) {
      const handler = () => this.#signal(signal);
      Deno.addSignalListener(signal, handler);
      this.#signals.push([signal, handler]);
    }
    if (this.interactive) {
      this.#stdin.setRaw(true);
      this.#raw = true;
    }
    if (this.#input) void this.#readLoop();
  }

  /** Leaves raw mode and removes the signal handlers. Idempotent; safe on every exit path. */
  restore(): void {
    this.#stopped = true;
    this.#leaveRaw();
    for (const [signal, handler] of this.#signals) {
      try {
        Deno.removeSignalListener(signal, handler);
      } catch {
        // Already removed.
      }
    }
    this.#signals = [];
    globalThis.removeEventListener("unload", this.#onUnload);
  }

  #leaveRaw(): void {
    if (!this.#raw) return;
    this.#raw = false;
    try {
      this.#stdin.setRaw(false);
    } catch {
      // The terminal is gone (hang-up): nothing to restore.
    }
  }

  /** Same as {@linkcode Terminal.restore}. */
  [Symbol.dispose](): void {
    this.restore();
  }

  /**
   * Applies the Ctrl-A escape to a chunk typed on a TTY: returns the bytes for the guest and
   * calls `onQuit` for Ctrl-A x. Exposed for tests.
   */
  filter(chunk: Uint8Array): Uint8Array {
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.#escape) {
        this.#escape = false;
        if (byte === 0x78 || byte === 0x58) { // x or X
          this.#handlers.onQuit("quit from the terminal (Ctrl-A x)", 0);
          continue;
        }
        if (byte === CTRL_A) {
          out.push(CTRL_A);
          continue;
        }
        out.push(CTRL_A, byte);
      } else if (byte === CTRL_A) {
        this.#escape = true;
      } else {
        out.push(byte);
      }
    }
    return new Uint8Array(out);
  }

  #signal(signal: keyof typeof QUIT_SIGNALS): void {
    this.#signalCount++;
    const status = QUIT_SIGNALS[signal];
    if (this.#signalCount > 1) {
      // A second signal: the machine did not stop in time. Leave now, terminal restored.
      this.restore();
      Deno.exit(status);
    }
    // A hang-up leaves no terminal to restore later: leave raw mode now (restore() may fail).
    if (signal === "SIGHUP") this.#leaveRaw();
    this.#handlers.onQuit(`stopped by ${signal}`, status);
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(4096);
    while (!this.#stopped) {
      let n: number | null;
      try {
        n = await this.#stdin.read(buf);
      } catch {
        return; // stdin closed or unreadable: no more input.
      }
      if (n === null || this.#stopped) return;
      const chunk = buf.slice(0, n);
      const bytes = this.interactive ? this.filter(chunk) : chunk;
      if (bytes.length > 0) this.#handlers.onInput(bytes);
    }
  }
}
