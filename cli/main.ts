/**
 * The `vmon` program: `deno task vmon <command>` runs this file. It hands the arguments to
 * {@linkcode main} and ends the process with the status it returns. `deno task` runs the program
 * in the repository and says where the user was in `INIT_CWD`: paths the user gives resolve
 * against that directory (the current one when `INIT_CWD` is not set).
 *
 * @module
 */

import { main } from "./mod.ts";

if (import.meta.main) Deno.exit(await main(Deno.args, { cwd: Deno.env.get("INIT_CWD") }));
