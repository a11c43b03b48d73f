/**
 * Test machinery for the x86-64-direct platform: a `PlatformHost` built on core's test device
 * host, and a small run loop that boots a guest on a real host port with a minimal UART (0x3f8)
 * and debug-exit (0x501) of its own. Private to this folder's tests; the real machine (core's
 * scheduler and the full device plugins) is wired by the lead.
 *
 * @module
 */

import type {
  ExitRecord,
  GuestMemoryAccess,
  HostPortInstance,
  HostPortPluginDefinition,
  PlatformHost,
  PlatformInstance,
  Vcpu,
} from "../../../core/api/mod.ts";
import { ExitKind } from "../../../core/api/mod.ts";
import { GuestMemory } from "../../../core/memory.ts";
import { createTestDeviceHost, type TestDeviceHost } from "../../../testing/mod.ts";
import plugin from "./mod.ts";

/** A platform test host and the test controls behind it. */
export interface PlatformTestHost {
  /** What the platform's `setup` receives. */
  readonly host: PlatformHost;
  /** The underlying test device host: bus access, captured exits, console, logs. */
  readonly test: TestDeviceHost;
  /** The vCPU list `host.vcpus` returns; push vCPUs here before `boot`. */
  readonly vcpus: Vcpu[];
}

/** Builds a `PlatformHost` for `hostport` with `cpus` vCPUs and `memorySize` bytes of RAM. */
export function createPlatformTestHost(
  hostport: HostPortInstance,
  options: { cpus: number; memorySize: number; hostportName?: string },
): PlatformTestHost {
  const memory = new GuestMemory();
  const test = createTestDeviceHost({ name: "x86-64-direct", memory, arch: "x86_64" });
  const vcpus: Vcpu[] = [];
  const reserved: { space: string; base: number; size: number; label: string }[] = [];
  const host: PlatformHost = {
    name: "x86-64-direct",
    machine: {
      cpus: options.cpus,
      memorySize: options.memorySize,
      arch: "x86_64",
      hostport: options.hostportName ?? "test",
    },
    log: test.log,
    metrics: test.metrics,
    timers: test.timers,
    files: test.files,
    hostport,
    memory,
    bus: test.bus,
    console: test.console,
    occupant(space, base, size) {
      // RAM and reservations, then what was registered on the test bus (all by this plugin).
      const overlaps = (b: number, n: number) => base < b + n && b < base + size;
      const ram = memory.regions.find((r) => overlaps(r.gpa, r.size));
      if (space === "MMIO" && ram) {
        return { owner: "RAM", reserved: true, base: ram.gpa, size: ram.size };
      }
      const held = reserved.find((r) => r.space === space && overlaps(r.base, r.size));
      if (held) return { owner: held.label, reserved: true, base: held.base, size: held.size };
      const r = (space === "MMIO" ? test.mmioRanges : test.pioRanges)
        .find((r) => overlaps(r.base, r.size));
      return r && { owner: test.name, reserved: false, base: r.base, size: r.size };
    },
    reserve(space, range) {
      const r = { space, ...range };
      reserved.push(r);
      return {
        unregister: () => {
          const i = reserved.indexOf(r);
          if (i >= 0) reserved.splice(i, 1);
        },
      };
    },
    addRam(gpa, size, opts = {}) {
      const buffer = hostport.addMemoryRegion(gpa, size, { readonly: opts.readonly ?? false });
      memory.addRegion(gpa, buffer, {
        name: opts.name ?? "ram",
        readonly: opts.readonly ?? false,
      });
    },
    vcpus,
    requestExit: (status, reason) => test.requestExit(status, reason),
    wake() {},
  };
  return { host, test, vcpus };
}

/** What a test run of a guest produced. */
export interface GuestRun {
  /** Exit status (debug-exit value, or the platform's failure status). */
  readonly status: number;
  /** Why the machine ended. */
  readonly reason: string;
  /** Everything written to the UART. */
  readonly output: string;
  /** Port-I/O exits handled. */
  readonly ioExits: number;
  /** Accesses to port 0x80 (the `exits` guest's port). */
  readonly port80: number;
  /** Wall time of the run loop in milliseconds. */
  readonly ms: number;
}

/** Options for {@linkcode runGuest}. */
export interface RunGuestOptions {
  /** Number of vCPUs (default 1). */
  cpus?: number;
  /** RAM bytes (default 16 MiB). */
  memorySize?: number;
  /** Platform `ring` option (default 3). */
  ring?: number;
  /** Platform `arg` option. */
  arg?: number;
  /** Kernel command line. */
  cmdline?: string;
  /** Give up after this many milliseconds (default 20000). */
  timeoutMs?: number;
  /** Called with guest memory after the run, before the machine is disposed. */
  inspect?: (memory: GuestMemoryAccess) => void;
}

/**
 * Boots `kernel` on the x86-64-direct platform over a real host port and runs it until the
 * guest (or the platform) asks to exit. vCPUs are time-sliced round-robin (10 ms slices).
 */
export async function runGuest(
  hostportPlugin: HostPortPluginDefinition,
  kernel: string,
  options: RunGuestOptions = {},
): Promise<GuestRun> {
  const cpus = options.cpus ?? 1;
  const memorySize = options.memorySize ?? 16 * 2 ** 20;
  const probe = createTestDeviceHost({ name: "kvm", arch: "x86_64" });
  const portHost = {
    name: "kvm",
    machine: { cpus, memorySize, arch: "x86_64" as const, hostport: "kvm" },
    log: probe.log,
    metrics: probe.metrics,
    timers: probe.timers,
    files: probe.files,
  };
  const hostport = await hostportPlugin.setup(portHost, {});
  let platform: PlatformInstance | undefined;
  const { host, test, vcpus } = createPlatformTestHost(hostport, {
    cpus,
    memorySize,
    hostportName: "kvm",
  });
  try {
    platform = await plugin.setup(host, {
      ring: options.ring ?? 3,
      arg: options.arg,
      irqchip: false,
      console: true, // the default device it names is the machine's business, not the test's
    });
    let output = "";
    test.bus.registerPio(0x3f8, 8, {
      read: (offset) => offset === 5 ? 0x60 : 0,
      write(offset, _size, value) {
        if (offset === 0) output += String.fromCharCode(value & 0xff);
      },
    });
    let port80 = 0;
    test.bus.registerPio(0x80, 1, {
      read: () => (port80++, 0),
      write: () => void port80++,
    });
    test.bus.registerPio(0x501, 1, {
      read: () => 0xff,
      write: (_offset, _size, value) => test.requestExit(value, "guest exit"),
    });
    for (let i = 0; i < cpus; i++) vcpus.push(hostport.createVcpu(i));
    await platform.boot({ kernel, ...(options.cmdline ? { cmdline: options.cmdline } : {}) });

    const start = performance.now();
    const deadline = start + (options.timeoutMs ?? 20000);
    let ioExits = 0;
    let failure: { status: number; reason: string } | undefined;
    for (const v of vcpus) v.setSlice(10_000);
    while (test.exits.length === 0 && failure === undefined) {
      if (performance.now() > deadline) {
        failure = { status: -1, reason: `timeout after ${options.timeoutMs ?? 20000} ms` };
        break;
      }
      let ran = false;
      for (const vcpu of vcpus) {
        if (failure !== undefined) break;
        // A vCPU keeps its turn across I/O exits until its 10 ms slice ends (as core's
        // scheduler does), so a vCPU holding the guest's print lock is not starved.
        const turnEnd = performance.now() + 10;
        while (test.exits.length === 0 && vcpu.runnable()) {
          ran = true;
          const kind = vcpu.run();
          const exit = vcpu.exit;
          if (kind === ExitKind.Io) {
            ioExits++;
            handleIo(test, exit);
            if (performance.now() < turnEnd) continue;
          } else if (kind !== ExitKind.Interrupted && kind !== ExitKind.Halt) {
            if (!platform.onExit?.(vcpu, exit)) {
              failure = { status: -2, reason: `exit kind ${kind} at ${exit.pc}: ${exit.detail}` };
            }
          }
          break;
        }
      }
      if (!ran && test.exits.length === 0) {
        failure = { status: -3, reason: "every vCPU halted" };
      }
    }
    const ms = performance.now() - start;
    const end = test.exits[0] ?? failure!;
    options.inspect?.(host.memory);
    return { status: end.status, reason: end.reason ?? "", output, ioExits, port80, ms };
  } finally {
    for (const v of vcpus) v.dispose();
    platform?.dispose();
    hostport.dispose();
  }
}

function handleIo(test: TestDeviceHost, exit: ExitRecord): void {
  const size = exit.size as 1 | 2 | 4;
  for (let i = 0; i < exit.count; i++) {
    const at = i * size;
    if (exit.isWrite) {
      const value = size === 1
        ? exit.data.getUint8(at)
        : size === 2
        ? exit.data.getUint16(at, true)
        : exit.data.getUint32(at, true);
      test.pioWrite(exit.address, size, value);
    } else {
      const value = test.pioRead(exit.address, size);
      if (size === 1) exit.data.setUint8(at, value);
      else if (size === 2) exit.data.setUint16(at, value, true);
      else exit.data.setUint32(at, value, true);
    }
  }
}
