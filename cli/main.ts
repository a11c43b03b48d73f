/**
 * The `vmon` program: `deno task vmon <command>` runs this file. It hands the arguments to
 * {@linkcode main} and ends the process with the status it returns. `deno task` runs the program
 * in the repository and says where the user was in `INIT_CWD`: paths the user gives resolve
 * against that directory (the current one when `INIT_CWD` is not set).
 *
 * @module
 */

import { prewarmMachineWorker } from "../core/machine_prewarm.ts";

if (import.meta.main) {
  // `vmon run` will build a machine: start its worker first, so that the worker's start-up runs
  // beside the loading of the CLI and the image check instead of after them.
  if (Deno.args[0] === "run") prewarmMachineWorker();
  const { main } = await import("./mod.ts");
  Deno.exit(await main(Deno.args, { cwd: Deno.env.get("INIT_CWD") }));
}
