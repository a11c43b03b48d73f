/**
 * Errors vmon reports to users: one clear line, no stack trace.
 *
 * @module
 */

/**
 * A failure caused by user input, the host environment or the guest, reported as one line
 * (`Cannot load image "x": not an ELF file`). The CLI prints `message` and exits with `status`.
 */
export class VmonError extends Error {
  /** The process exit status the CLI uses (default 1). */
  readonly status: number;

  /**
   * Creates the error.
   *
   * @param message Sentence-case text with the detail after a colon.
   * @param options `status` for the CLI and `cause` for the underlying error.
   */
  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "VmonError";
    this.status = options.status ?? 1;
  }
}

/** Formats a guest address for messages: `0x3f8`. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
