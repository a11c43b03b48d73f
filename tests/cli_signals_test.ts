/**
 * Signals and stalls through the real CLI (`vmon run` in a child process): a plugin handler that
 * never returns is reported while it runs, SIGTERM ends the process anyway with status 143 and
 * the guest output written before the stall on stdout; SIGHUP and SIGQUIT end it with 129 and
 * 131 and leave the terminal as it was (checked under a pseudo-terminal made by `script`).
 * Durations are printed, never asserted; the bounds below only keep a broken build from hanging.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../core/cache.ts";
import { QUIT_SIGNALS } from "../cli/terminal.ts";

const fixture = (name: string) => join(REPO_ROOT, "tests", "fixtures", name);

/** A manifest file: the scripted host port prints "Hi" on the UART, then runs `then`. */
async function writeManifest(dir: string, then: string, on = "write"): Promise<string> {
  const path = join(dir, "machine.json");
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      memory: "1M",
      hostport: {
        use: fixture("scripted_hostport.ts"),
        options: { script: `out:0x3f8:1:72;out:0x3f8:1:105;out:0x3f8:1:10;${then}` },
      },
      platform: { use: fixture("bare_platform.ts") },
      devices: [
        { use: "uart16550" },
        { use: fixture("stuck_device.ts"), options: { base: 0x1000_0000, on } },
      ],
    }),
  );
  return path;
}

function vmonArgs(manifest: string): string[] {
  return [
    "run",
    "--allow-all",
    "--quiet",
    "--no-lock",
    "--config",
    join(REPO_ROOT, "deno.json"),
    join(REPO_ROOT, "cli", "main.ts"),
    "run",
    "--manifest",
    manifest,
  ];
}

/** Collects a stream's text as it arrives. */
function collect(stream: ReadableStream<Uint8Array>): { text: () => string; done: Promise<void> } {
  let text = "";
  const decoder = new TextDecoder();
  const done = (async () => {
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  })();
  return { text: () => text, done };
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("cli signals: SIGTERM while a plugin's setup never returns ends vmon with 143", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-signals-" });
  try {
    const manifest = await writeManifest(dir, "halt", "setup");
    const child = new Deno.Command(Deno.execPath(), {
      args: vmonArgs(manifest),
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const err = collect(child.stderr);
    const out = collect(child.stdout);
    try {
      await until(() => err.text().includes("setup never returns"), 60_000, "the setup's line");
    } catch (e) {
      child.kill("SIGKILL");
      await child.status;
      throw e;
    }
    child.kill("SIGTERM");
    const guard = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const status = await child.status;
    clearTimeout(guard);
    await Promise.all([out.done, err.done]);
    console.log(err.text().trim());
    assert.equal(status.code, QUIT_SIGNALS.SIGTERM);
    assert.match(err.text(), /^vmon: Cannot build the machine: stopped by SIGTERM$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli signals: a stuck handler is reported; SIGTERM ends vmon with 143 and the output before it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmon-signals-" });
  try {
    const manifest = await writeManifest(dir, "mmio-w:0x10000000:4:1");
    const child = new Deno.Command(Deno.execPath(), {
      args: vmonArgs(manifest),
      env: { NO_COLOR: "1", VMON_STALL_WARNING: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = collect(child.stdout);
    const err = collect(child.stderr);
    try {
      await until(() => err.text().includes("has run for"), 60_000, "the stall report");
      // The worker is still inside the handler: what the guest printed before is already out.
      assert.equal(out.text(), "Hi\n", "guest output before the stall, while stalled");
    } catch (e) {
      child.kill("SIGKILL");
      await child.status;
      throw e;
    }
    const t0 = performance.now();
    child.kill("SIGTERM");
    const guard = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const status = await child.status;
    clearTimeout(guard);
    await Promise.all([out.done, err.done]);
    console.log(
      `exit after SIGTERM: ${Math.round(performance.now() - t0)} ms, status ${status.code}`,
    );
    console.log(err.text().trim());
    assert.equal(status.signal, null, "vmon ended by itself (not killed by the guard)");
    assert.equal(status.code, QUIT_SIGNALS.SIGTERM);
    assert.equal(out.text(), "Hi\n");
    assert.match(
      err.text(),
      /^vmon: warning: plugin "stuck-device" handler for MMIO write 0x10000000 \(vCPU 0\) has run for \d+\.\d s/m,
    );
    assert.match(
      err.text(),
      /^vmon: stopped by SIGTERM; ended while plugin "stuck-device" handler for MMIO write 0x10000000 \(vCPU 0\) was running/m,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs vmon under a pseudo-terminal (`script`), waits for raw mode, sends `signal`, and reports
 * the terminal's `icanon` and `echo` settings during and after, and vmon's status.
 */
async function underPty(manifest: string, signal: "HUP" | "QUIT"): Promise<string> {
  const vmon = [Deno.execPath(), ...vmonArgs(manifest)].map((a) => `'${a}'`).join(" ");
  const outFile = join(manifest, "..", "stdout.txt");
  const modes =
    `stty -a </dev/tty | tr ' ;' '\\n\\n' | grep -x -- '-\\?\\(icanon\\|echo\\)' | tr '\\n' ' '`;
  const sh = [
    // stdout to a file, so that the shell can wait for the guest's first output.
    `${vmon} </dev/tty >'${outFile}' & pid=$!`,
    `i=0; while [ $i -lt 600 ] && ! grep -q Hi '${outFile}'; do sleep 0.1; i=$((i+1)); done`,
    `echo "during: $(${modes})"`,
    `kill -${signal} $pid; wait $pid; echo "status: $?"`,
    `echo "stdout: $(cat '${outFile}')"`,
    `echo "after: $(${modes})"`,
  ].join("\n");
  const out = await new Deno.Command("script", {
    args: ["-qfec", sh, "/dev/null"],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

const haveScript = (() => {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();
if (!haveScript) console.error("cli_signals_test: pty tests skipped: `script` (bsdutils) missing");

for (
  const [signal, status] of [["HUP", QUIT_SIGNALS.SIGHUP], ["QUIT", QUIT_SIGNALS.SIGQUIT]] as const
) {
  Deno.test({
    name: `cli signals: SIG${signal} ends vmon with ${status} and restores the terminal`,
    ignore: !haveScript,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "vmon-pty-" });
      try {
        // SIGHUP arrives while a handler is stuck; SIGQUIT while every vCPU is halted.
        const manifest = await writeManifest(
          dir,
          signal === "HUP" ? "mmio-w:0x10000000:4:1" : "halt",
        );
        const text = await underPty(manifest, signal);
        console.log(text.replace(/\r/g, "").trim());
        assert.match(text, /during: -icanon -echo/, "vmon put the terminal in raw mode");
        assert.match(text, new RegExp(`status: ${status}\\b`));
        assert.match(
          text,
          /after: icanon echo/,
          "the terminal is back in canonical mode with echo",
        );
        assert.match(text, new RegExp(`vmon: stopped by SIG${signal}`));
        assert.match(text, /stdout: Hi/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
