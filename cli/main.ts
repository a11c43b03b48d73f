/**
 * The `vmon` program: `deno task vmon <command>` runs this file. It hands the arguments to
 * {@linkcode main} and ends the process with the status it returns. `deno task` runs the program
 * in the repository and says where the user was in `INIT_CWD`: paths the user gives resolve
 * against that directory (the current one when `INIT_CWD` is not set).
 *
 * @module
 */

import { DEFAULT_PAGING } from "../core/api/machine.ts";
import type { PreloadPlugin } from "../core/machine_protocol.ts";
import { prewarmMachineWorker } from "../core/machine_prewarm.ts";
import { linuxRv64Defaults } from "../images/linux-rv64/defaults.ts";

/**
 * The plugins of the machine `vmon run` boots by default (the linux-rv64 image, the first of
 * cli/run.ts's DEFAULT_IMAGES), which are also those of most runs: the worker loads them while the
 * CLI loads. Other runs lose nothing; they load their own plugins as before.
 */
function defaultMachinePlugins(): PreloadPlugin[] {
  const d = linuxRv64Defaults(true);
  return [
    { use: d.hostport, kind: "hostport" },
    { use: d.platform, kind: "platform" },
    { use: DEFAULT_PAGING, kind: "paging" },
    ...d.devices.map((use): PreloadPlugin => ({ use, kind: "device" })),
  ];
}

if (import.meta.main) {
  // `vmon run` will build a machine: start its worker first, so that the worker's start-up runs
  // beside the loading of the CLI and the image check instead of after them.
  if (Deno.args[0] === "run") {
    prewarmMachineWorker({ preload: defaultMachinePlugins() });
    // The command's own modules load beside the parser's (main() imports the same module).
    import("./run.ts").catch(() => {}); // a failure shows again where main() imports it
  }
  const { main } = await import("./mod.ts");
  Deno.exit(await main(Deno.args, { cwd: Deno.env.get("INIT_CWD") }));
}
