/**
 * The `vmon` program: `deno task vmon <command>` runs this file. It hands the arguments to
 * {@linkcode main} and ends the process with the status it returns.
 *
 * @module
 */

import { main } from "./mod.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
