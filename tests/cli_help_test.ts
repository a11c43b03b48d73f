// `--help` on every command prints usage on stdout and exits 0; unknown commands and a bare
// `vmon` fail with one clear line or the usage on stderr.

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { assertOneLineError, runCli } from "../cli/_spawn.ts";

const COMMANDS: ReadonlyArray<[string[], RegExp]> = [
  [[], /Commands:[\s\S]*run[\s\S]*plugins[\s\S]*images[\s\S]*new-plugin[\s\S]*plugin/],
  [["run"], /--image <name>[\s\S]*--device <spec>[\s\S]*--stats \[format\][\s\S]*Ctrl-A x/],
  [["plugins"], /--kind <kind>/],
  [["images"], /list the guest images/],
  [["new-plugin"], /--kind <kind>[\s\S]*--dir <path>[\s\S]*--vmon <mod>/],
  [["plugin"], /bundle/],
  [["plugin", "bundle"], /<entry>[\s\S]*--output <file>/],
];

for (const [command, pattern] of COMMANDS) {
  Deno.test(`vmon ${[...command, "--help"].join(" ")} prints usage`, async () => {
    const result = await runCli([...command, "--help"]);
    assertEquals(result.status, 0, result.stderr);
    assert(result.stdout.startsWith("Usage: vmon"), result.stdout);
    assert(pattern.test(result.stdout), `help does not match ${pattern}:\n${result.stdout}`);
    assertEquals(result.stderr, "");
  });
}

Deno.test("vmon --version prints the version", async () => {
  const result = await runCli(["--version"]);
  assertEquals(result.status, 0);
  assert(/^\d+\.\d+\.\d+\n$/.test(result.stdout), result.stdout);
});

Deno.test("vmon with no command prints usage on stderr and fails", async () => {
  const result = await runCli([]);
  assert(result.status !== 0);
  assert(result.stderr.startsWith("Usage: vmon"), result.stderr);
});

Deno.test("vmon with an unknown command fails with one line", async () => {
  assertOneLineError(await runCli(["frobnicate"]), /^vmon: Unknown command 'frobnicate'/);
});

Deno.test("vmon run with an unknown option fails with one line", async () => {
  assertOneLineError(
    await runCli(["run", "--frobnicate"]),
    /^vmon: Unknown option '--frobnicate'$/,
  );
});

Deno.test("a misspelt option gets a suggestion on the same line", async () => {
  assertOneLineError(
    await runCli(["run", "--kernal", "x"]),
    /^vmon: Unknown option '--kernal' \(Did you mean --kernel\?\)$/,
  );
});
