/**
 * The `vmon` command line: `run`, `compare`, `plugins`, `images`, `new-plugin` and
 * `plugin bundle`.
 * `main(args)` parses the arguments, runs the command and turns every failure into one clear
 * line on stderr (`vmon: <message>`) with a non-zero status.
 *
 * @example Show the version
 * ```ts
 * import { main } from "./mod.ts";
 *
 * const status = await main(["--version"], { exit: false });
 * if (status !== 0) throw new Error(`status ${status}`);
 * ```
 *
 * @module
 */

import { Command, CommanderError, Option } from "@commander-js/extra-typings";
import { VmonError } from "../core/errors.ts";
import { TEMPLATE_KINDS } from "./new_plugin.ts";
import { TRACE_CATEGORIES } from "./flags.ts";

/** Options of {@linkcode main}. */
export interface MainOptions {
  /**
   * End the process with the status when done (default true). The machine's worker and the
   * terminal reader would otherwise keep a finished process alive.
   */
  readonly exit?: boolean;
  /**
   * The directory the user ran vmon from: the process changes into it first, so that every path
   * the user gives (`--kernel`, `--disk`, `--device ./mod.ts`, `--manifest`, `--out`, ...)
   * resolves against it. The program passes `INIT_CWD`, which `deno task` sets to the directory
   * it was started from (the task itself runs in the repository); absent or empty: the current
   * directory.
   */
  readonly cwd?: string;
}

const VERSION = "0.1.0";

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Builds the commander program; `setStatus` receives each command's exit status. */
function buildProgram(setStatus: (status: number) => void): Command {
  const program = new Command()
    .name("vmon")
    .description("A virtual machine monitor runtime for Deno: KVM (x86-64) and RV64 host ports.")
    .version(VERSION, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (text) => void Deno.stdout.writeSync(new TextEncoder().encode(text)),
      writeErr: (text) => void Deno.stderr.writeSync(new TextEncoder().encode(text)),
      outputError: () => {}, // main() prints the one line
    });
  program.addHelpText(
    "after",
    `
Examples:
  vmon run                                  boot the default demo image
  vmon run --image hello --stats            boot an image, print exit counts
  vmon run --image linux-rv64 --exec 'uname -a'
  vmon run --host rv64 --kernel Image --initrd initrd.cpio --mem 256M --append console=ttyS0
  vmon run --image linux-rv64 --device ./my_device/mod.ts,step=2,base=0x10010000 \
    --exec 'devmem 0x10010004 32 1; devmem 0x10010000 32'
  vmon plugins                              list loadable plugins and their options
  vmon new-plugin my-counter --kind device --dir /tmp/my-counter
  vmon plugin bundle /tmp/my-counter/mod.ts -o /tmp/my-counter/bundle.js

Paths are relative to the directory vmon was started from (INIT_CWD under deno task).

Environment: VMON_CACHE (build cache folder, default .cache/ in the repository),
VMON_DEBUG=1 (print stacks of unexpected errors).`,
  );

  program.command("run")
    .description("build a machine from an image, a manifest and flags, and run it")
    .option("--image <name>", "boot a project image (see `vmon images`); default: the demo image")
    .option("--kernel <file>", "kernel or guest image to boot (ELF or Image)")
    .option("--initrd <file>", "initramfs to load")
    .option("--append <cmdline>", "text appended to the kernel command line")
    .option(
      "--exec <cmd>",
      "Linux images: run this command instead of a shell, then power off (refused for images " +
        "that cannot run commands)",
    )
    .option("--manifest <file>", "machine manifest (JSON or TS); flags override it")
    .option("--host <spec>", "host port: name or path, with options (kvm,device=/dev/kvm)")
    .option(
      "--platform <spec>",
      "platform: name or path, with options (default: the host port's only one; console=false: " +
        "no serial console added)",
    )
    .option(
      "--device <spec>",
      "add a device (repeatable): name|path[,key=value...]",
      collect,
    )
    .option("--disk <file>", "add a virtio-blk disk backed by <file> (repeatable)", collect)
    .option(
      "--net <spec>",
      "network: user[,hostfwd=tcp:HOSTPORT-:GUESTPORT...] (passt), tap[,ifname=NAME] or none " +
        "(Linux images: user)",
    )
    .option("--paging <spec>", "paging strategy: wired, shadow, queued (default wired)")
    .option("--cpus <n>", "number of vCPUs")
    .option("--mem <size>", "RAM size such as 64M or 1G")
    .option("--overcommit", "allow --mem larger than the host's memory (the guest may exhaust it)")
    .option("--trace <cats>", `trace categories, comma-separated: ${TRACE_CATEGORIES.join(", ")}`)
    .option(
      "--stats [format]",
      "print exit counts per kind and plugin after the run: a table on stderr, or --stats=json",
    )
    .option("--snapshot-on <text>", "take a snapshot when the console first prints <text>")
    .option("--snapshot <file>", "the file --snapshot-on writes")
    .option("--snapshot-then <what>", "after --snapshot-on's snapshot: continue (default) or stop")
    .option("--snapshot-compress", "deflate the snapshot (smaller, slower)")
    .option("--restore <file>", "start from a snapshot instead of booting (--exec types a command)")
    .option("--api-socket <path>", "serve the JSON control socket there (see `vmon ctl`)")
    .addHelpText(
      "after",
      `
Precedence: the image's defaults, then the manifest, then flags. A --device naming a device the
image or manifest already has replaces that device's options. The platform adds its serial
console (uart16550) unless the machine has one or --platform ...,console=false. In a terminal,
Ctrl-A x quits and Ctrl-A Ctrl-A sends Ctrl-A. The exit status is the machine's.`,
    )
    .action(async (flags) => {
      const { runCommand } = await import("./run.ts");
      setStatus(await runCommand(flags));
    });

  program.command("compare")
    .description("compare paging strategies on the rv64 Linux bench image: table, JSON, SVG chart")
    .option("--workloads <list>", "workloads, comma-separated (default: all known)")
    .option("--strategies <list>", "paging strategies, comma-separated (default: all built-in)")
    .option(
      "--batch <list>",
      "batch sizes for the paravirtual update call: runs the pv-guest under queued",
    )
    .option("--repeat <n>", "runs per workload and strategy (default 3)")
    .option("--n <list>", "N per workload: forkwait=200,execloop=50,...")
    .option("--out <dir>", "folder for results.json, chart.svg, table.txt (default in the cache)")
    .option("--cpus <n>", "number of vCPUs")
    .option("--mem <size>", "RAM size such as 256M")
    .option("--image <name>", "image to boot (default linux-rv64-bench)")
    .option("--timeout <seconds>", "stop a run after this many seconds (default 900)")
    .option("--no-baseline", "do not subtract a short baseline run from the counters")
    .option("--from-snapshot", "boot each strategy once, start every run from its snapshot")
    .option(
      "--cost-model <name|file>",
      "project each cost on a CPU profile (nehalem-ept, recent-x86, or a .json file)",
    )
    .option("--console", "echo the guest console on stderr")
    .action(async (flags) => {
      const { compareCommand } = await import("./compare.ts");
      setStatus(await compareCommand(flags));
    });

  program.command("ctl")
    .description("drive a running `vmon run --api-socket` machine (docs/control-socket.md)")
    .argument("<command>", "version, status, pause, resume, stop, stats, snapshot <file>, events")
    .argument("[args...]", "snapshot: the file to write")
    .requiredOption("--socket <path>", "the control socket")
    .option("--compress", "snapshot: deflate the file")
    .option("--status <n>", "stop: the exit status (default 130)")
    .action(async (command, args, flags) => {
      const { ctlCommand } = await import("./ctl.ts");
      setStatus(await ctlCommand(command, args, flags));
    });

  program.command("plugins")
    .description("list loadable plugins with kind, description and options")
    .argument("[refs...]", "also load and show plugins at these paths or URLs")
    .option("--kind <kind>", "show only plugins of one kind: hostport, platform, paging, device")
    .option("--json", "print JSON instead of a table")
    .action(async (refs, flags) => {
      const { pluginsCommand } = await import("./listing.ts");
      await pluginsCommand(refs, flags);
    });

  program.command("images")
    .description("list the guest images vmon can build and boot")
    .option("--json", "print JSON instead of a table")
    .action(async (flags) => {
      const { imagesCommand } = await import("./listing.ts");
      imagesCommand(flags);
    });

  program.command("new-plugin")
    .description(
      "scaffold a plugin folder: mod.ts, README.md, a test and a deno.json (maps @vmon/vmon, tasks)",
    )
    .argument("<name>", "plugin name: lowercase letters, digits and dashes")
    .addOption(
      new Option("--kind <kind>", "plugin kind").choices(TEMPLATE_KINDS).makeOptionMandatory(),
    )
    .option("--dir <path>", "folder to create (default ./<name>); must not exist")
    .option("--vmon <mod>", "vmon's mod.ts (path or file URL) to import; default this checkout's")
    .action(async (name, flags) => {
      const { scaffoldPlugin } = await import("./new_plugin.ts");
      const result = scaffoldPlugin(name, flags);
      console.log(`Created ${result.dir}: ${result.files.join(", ")}`);
      console.log(`Next: cd ${result.dir} && deno task test`);
    });

  const plugin = program.command("plugin").description("work with plugin sources");
  plugin.command("bundle")
    .description("bundle a plugin and its npm dependencies into one ES module (esbuild)")
    .argument("<entry>", "the plugin's entry module (mod.ts)")
    .option("-o, --output <file>", "output file (default bundle.js next to the entry)")
    .option("--vmon <mod>", "vmon's mod.ts the plugin imports (default this checkout's)")
    .option("--minify", "minify the bundle")
    .action(async (entry, flags) => {
      const { bundlePlugin } = await import("./bundle.ts");
      const result = await bundlePlugin(entry, {
        outfile: flags.output,
        vmon: flags.vmon,
        minify: flags.minify,
      });
      const npm = result.npmPackages.length ? ` with ${result.npmPackages.join(", ")}` : "";
      console.log(`Wrote ${result.outfile} (${result.bytes} bytes)${npm}`);
    });

  return program as unknown as Command;
}

/** Turns a commander message (`error: unknown option '--x'\n(Did you mean --y?)`) into a line. */
function commanderLine(message: string): string {
  const text = message.replace(/^error:\s*/i, "").replace(/\s*\n\s*/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Changes into the user's directory, with a one-line error when that is impossible. */
function enterDirectory(dir: string): void {
  try {
    Deno.chdir(dir);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such directory"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : err instanceof Error
      ? err.message
      : String(err);
    throw new VmonError(`Cannot enter the directory vmon was started from "${dir}": ${why}`);
  }
}

function isVmonError(err: unknown): err is VmonError {
  return err instanceof VmonError || (err instanceof Error && err.name === "VmonError");
}

/**
 * Runs the vmon command line.
 *
 * @param args The arguments after the program name (`Deno.args`).
 * @param options `exit: false` returns the status instead of ending the process.
 * @returns The exit status (when `exit` is false).
 */
export async function main(args: readonly string[], options: MainOptions = {}): Promise<number> {
  let status = 0;
  try {
    if (options.cwd) enterDirectory(options.cwd);
    const program = buildProgram((s) => status = s);
    if (args.length === 0) {
      program.outputHelp({ error: true });
      status = 2;
    } else {
      await program.parseAsync([...args], { from: "user" });
    }
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) {
        status = 0; // --help, --version
      } else {
        console.error(`vmon: ${commanderLine(err.message)}`);
        status = 2;
      }
    } else if (isVmonError(err)) {
      status = (err as VmonError).status ?? 1;
      // 70: a software error (a plugin's setup threw); its stack is worth having.
      const hint = status === 70 && Deno.env.get("VMON_DEBUG") !== "1"
        ? " (VMON_DEBUG=1 prints the stack)"
        : "";
      console.error(`vmon: ${err.message}${hint}`);
    } else {
      const message = err instanceof Error ? err.message : String(err);
      console.error(`vmon: ${message} (this is a bug; run with VMON_DEBUG=1 for the stack)`);
      status = 70;
    }
    if (Deno.env.get("VMON_DEBUG") === "1" && err instanceof Error && err.stack) {
      console.error(err.stack);
    }
  }
  if (options.exit ?? true) Deno.exit(status);
  return status;
}
