/**
 * Host file access for plugins (disk images, kernels): Deno file APIs behind the `HostFiles`
 * capability, with errors that name the file and say why.
 *
 * @module
 */

import type { HostFile, HostFiles } from "./api/mod.ts";
import { VmonError } from "./errors.ts";

function fileError(action: string, path: string, err: unknown): VmonError {
  const why = err instanceof Deno.errors.NotFound
    ? "no such file"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : err instanceof Deno.errors.IsADirectory
    ? "is a directory"
    : err instanceof Error
    ? err.message
    : String(err);
  return new VmonError(`Cannot ${action} file "${path}": ${why}`, { cause: err });
}

class RealHostFile implements HostFile {
  #file: Deno.FsFile | undefined;
  #path: string;
  #writable: boolean;

  constructor(file: Deno.FsFile, path: string, writable: boolean) {
    this.#file = file;
    this.#path = path;
    this.#writable = writable;
  }

  #open(): Deno.FsFile {
    if (!this.#file) throw new VmonError(`Cannot use file "${this.#path}": it is closed`);
    return this.#file;
  }

  get size(): number {
    return this.#open().statSync().size;
  }

  readAt(buf: Uint8Array, offset: number): number {
    const f = this.#open();
    f.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) {
      const n = f.readSync(buf.subarray(done));
      if (n === null || n === 0) break;
      done += n;
    }
    return done;
  }

  writeAt(buf: Uint8Array, offset: number): void {
    if (!this.#writable) throw new VmonError(`Cannot write file "${this.#path}": opened read-only`);
    const f = this.#open();
    f.seekSync(offset, Deno.SeekMode.Start);
    let done = 0;
    while (done < buf.length) done += f.writeSync(buf.subarray(done));
  }

  sync(): void {
    this.#open().syncDataSync();
  }

  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }
}

/**
 * Real host file access (Deno file APIs) with errors that name the file. The machine hands this
 * to every plugin; tests use it too.
 */
export function createHostFiles(): HostFiles {
  return {
    readFile(path: string): Uint8Array {
      try {
        return Deno.readFileSync(path);
      } catch (err) {
        throw fileError("read", path, err);
      }
    },
    open(path: string, options: { readonly write: boolean }): HostFile {
      try {
        const file = Deno.openSync(path, { read: true, write: options.write });
        return new RealHostFile(file, path, options.write);
      } catch (err) {
        throw fileError("open", path, err);
      }
    },
  };
}
