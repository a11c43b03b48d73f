/**
 * Host file access for plugins (disk images, kernels): Deno file APIs behind the `HostFiles`
 * capability, with errors that name the file and say why.
 *
 * @module
 */

import { resolve } from "./paths.ts";
import type { HostFile, HostFiles } from "./api/mod.ts";
import { VmonError } from "./errors.ts";

function fileError(action: string, path: string, err: unknown): VmonError {
  const full = resolve(path); // messages show the path resolved against the current directory
  const why = err instanceof Deno.errors.NotFound
    ? "no such file"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : err instanceof Deno.errors.IsADirectory
    ? "is a directory"
    : err instanceof Error
    ? err.message
    : String(err);
  return new VmonError(`Cannot ${action} file "${full}": ${why}`, { cause: err });
}

/**
 * Locks `file` (flock: exclusive for writing, shared for reading) or closes it and throws one line
 * naming the file and the holder. flock, not fcntl: two vmon processes exclude each other, and so
 * do two opens in one process (a flock belongs to the open file description); QEMU's image locks
 * are fcntl OFD byte-range locks, which Linux keeps apart from flock, so they do not see ours.
 */
function lock(file: Deno.FsFile, path: string, write: boolean): void {
  let taken = false;
  try {
    taken = file.tryLockSync(write);
  } catch (err) {
    // A file system without flock (rare): say so rather than run unprotected in silence.
    file.close();
    throw new VmonError(
      `Cannot lock file "${resolve(path)}": ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  if (taken) return;
  let holder = "another process";
  try {
    holder = lockHolder(file.statSync()) ?? holder;
  } catch {
    // /proc/locks unreadable: the holder stays unnamed.
  }
  file.close();
  throw new VmonError(
    `Cannot open file "${resolve(path)}" ${
      write ? "for writing" : "read-only"
    }: it is locked by ${holder}`,
  );
}

/**
 * Who holds a flock on the file of `stat`, from /proc/locks: `process 42 (vmon run ...)`, or
 * `this process` (the file was opened twice), or undefined when nothing there says.
 */
function lockHolder(stat: Deno.FileInfo): string | undefined {
  const dev = stat.dev, ino = stat.ino;
  if (ino === null) return undefined;
  // glibc's dev_t encoding; /proc/locks prints the kernel's major:minor in hex.
  const major = (Math.floor(dev / 256) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff);
  const holders: { pid: number; sameDev: boolean }[] = [];
  for (const line of Deno.readTextFileSync("/proc/locks").split("\n")) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+(?:READ|WRITE)\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/
      .exec(line);
    if (!m || Number(m[4]) !== ino) continue;
    const sameDev = parseInt(m[2]!, 16) === major && parseInt(m[3]!, 16) === minor;
    holders.push({ pid: Number(m[1]), sameDev });
  }
  // Overlay file systems may show another device number: fall back to the inode alone.
  const pid = (holders.find((h) => h.sameDev) ?? holders[0])?.pid;
  if (pid === undefined || pid === 0) return undefined;
  if (pid === Deno.pid) return "this process (the file is given twice)";
  let command = "";
  try {
    command = describeCommand(Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0"));
  } catch {
    // The process ended, or its command line is hidden.
  }
  if (command.length > 160) command = `${command.slice(0, 157)}...`;
  return command === "" ? `process ${pid}` : `process ${pid} (${command})`;
}

/**
 * A process's command line as a user would have typed it: another vmon is shown as
 * `vmon <its arguments>` (not the Deno executable, its flags and the path of `cli/main.ts`), any
 * other program by its executable's base name and arguments.
 */
function describeCommand(argv: string[]): string {
  const args = argv.filter((a) => a !== "");
  const entry = args.findIndex((a) => /(^|\/)cli\/main\.ts$/.test(a));
  if (entry >= 0) return ["vmon", ...args.slice(entry + 1)].join(" ");
  if (args.length === 0) return "";
  return [args[0]!.slice(args[0]!.lastIndexOf("/") + 1), ...args.slice(1)].join(" ");
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
    open(path: string, options: { readonly write: boolean; readonly lock?: boolean }): HostFile {
      try {
        const file = Deno.openSync(path, { read: true, write: options.write });
        if (options.lock !== false) lock(file, path, options.write);
        return new RealHostFile(file, path, options.write);
      } catch (err) {
        if (err instanceof VmonError) throw err;
        throw fileError("open", path, err);
      }
    },
  };
}
