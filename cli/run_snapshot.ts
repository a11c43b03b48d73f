/**
 * The snapshot and control-socket flags of `vmon run` (docs/DESIGN.md, "Snapshots";
 * docs/control-socket.md): `--snapshot-on <text> --snapshot <file> [--snapshot-then stop]`,
 * `--snapshot-compress`, `--restore <file> [--exec <cmd>]` and `--api-socket <path>`.
 *
 * @module
 */

import type { MachineExit } from "../core/api/mod.ts";
import { VmonError } from "../core/errors.ts";
import type { Machine, MachineOptions, SnapshotResult } from "../core/machine.ts";
import { ApiSocket } from "./api_socket.ts";
import denoJson from "../deno.json" with { type: "json" };

/** The flags of this module, as commander gives them. */
export interface SnapshotFlags {
  /** `--snapshot-on <text>`: take a snapshot when the console first prints it. */
  snapshotOn?: string;
  /** `--snapshot <file>`: where that snapshot goes. */
  snapshot?: string;
  /** `--snapshot-then <continue|stop>`. */
  snapshotThen?: string;
  /** `--snapshot-compress`: deflate the snapshot's sections. */
  snapshotCompress?: boolean;
  /** `--restore <file>`: start from a snapshot instead of booting. */
  restore?: string;
  /** `--api-socket <path>`: serve the control socket there. */
  apiSocket?: string;
}

/** The same flags checked. */
export interface CheckedSnapshotFlags {
  /** The snapshot to restore, if any. */
  readonly restore?: string;
  /** `createMachine` options for the trigger. */
  readonly machineOptions: Pick<MachineOptions, "snapshotOn">;
  /** The control socket's path, if any. */
  readonly apiSocket?: string;
}

/** Flags that describe a machine: with `--restore` the machine is the snapshot's. */
const MACHINE_FLAGS: readonly [string, string][] = [
  ["image", "--image"],
  ["kernel", "--kernel"],
  ["initrd", "--initrd"],
  ["append", "--append"],
  ["manifest", "--manifest"],
  ["host", "--host"],
  ["platform", "--platform"],
  ["device", "--device"],
  ["disk", "--disk"],
  ["paging", "--paging"],
  ["cpus", "--cpus"],
  ["mem", "--mem"],
];

/**
 * Checks the snapshot flags against each other and the machine flags.
 *
 * @param flags All flags of `vmon run`.
 */
export function checkSnapshotFlags(flags: SnapshotFlags & object): CheckedSnapshotFlags {
  if ((flags.snapshotOn === undefined) !== (flags.snapshot === undefined)) {
    throw new VmonError(
      "Invalid snapshot flags: --snapshot-on <text> and --snapshot <file> go together",
    );
  }
  if (flags.snapshotOn === "") throw new VmonError("Invalid --snapshot-on: the text is empty");
  const then = flags.snapshotThen ?? "continue";
  if (then !== "continue" && then !== "stop") {
    throw new VmonError(`Invalid --snapshot-then "${then}": expected continue or stop`);
  }
  if (flags.snapshotThen !== undefined && flags.snapshotOn === undefined) {
    throw new VmonError("Invalid --snapshot-then: it needs --snapshot-on and --snapshot");
  }
  if (flags.restore !== undefined) {
    for (const [key, flag] of MACHINE_FLAGS) {
      const v = (flags as Readonly<Record<string, unknown>>)[key];
      if (v !== undefined && !(Array.isArray(v) && v.length === 0)) {
        throw new VmonError(
          `Cannot use ${flag} with --restore: the machine is the one the snapshot holds`,
        );
      }
    }
  }
  return {
    ...(flags.restore !== undefined ? { restore: flags.restore } : {}),
    ...(flags.apiSocket !== undefined ? { apiSocket: flags.apiSocket } : {}),
    machineOptions: flags.snapshotOn === undefined ? {} : {
      snapshotOn: [{
        text: flags.snapshotOn,
        path: flags.snapshot!,
        then: then as "continue" | "stop",
        compress: flags.snapshotCompress === true,
      }],
    },
  };
}

/** What {@linkcode attachSnapshotSupport} returns. */
export interface SnapshotSupport {
  /** Passes a trigger's snapshot result on (stderr line, socket event). */
  onSnapshot(result: SnapshotResult | { readonly error: string }): void;
  /** Tells the socket the machine started. */
  started(): void;
  /** Tells the socket the machine ended. */
  exited(exit: MachineExit): void;
  /** Closes the socket. */
  close(): void;
}

/**
 * Connects a built machine to the control socket and, after `--restore`, types `--exec`'s
 * command into the restored shell (followed by `exit $?`, so that the guest's init reports its
 * status and powers off, as after a cold `--exec`).
 *
 * @param machine The machine.
 * @param options Checked flags and `--exec`.
 */
export function attachSnapshotSupport(
  machine: Machine,
  options: {
    readonly checked: CheckedSnapshotFlags;
    readonly exec?: string;
  },
): SnapshotSupport {
  const socket = options.checked.apiSocket === undefined
    ? undefined
    : ApiSocket.listen(options.checked.apiSocket, machine, { vmonVersion: denoJson.version });
  if (options.checked.restore !== undefined && options.exec !== undefined) {
    machine.sendInput(new TextEncoder().encode(`${options.exec}\nexit $?\n`));
  }
  return {
    onSnapshot(result) {
      if ("error" in result) {
        console.error(`vmon: ${result.error}`);
        return;
      }
      if (result.path === undefined) return; // a trigger without a file (never made by the CLI)
      console.error(
        `vmon: snapshot "${result.path}" written (${
          (result.bytes / 2 ** 20).toFixed(1)
        } MiB, ${result.pages} of ${result.totalPages} pages, ${result.ms.toFixed(0)} ms)`,
      );
      socket?.snapshotTaken(result);
    },
    started: () => socket?.started(),
    exited: (exit) => socket?.exited(exit),
    close: () => socket?.close(),
  };
}
