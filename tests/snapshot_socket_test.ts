/**
 * The control socket (cli/api_socket.ts, docs/control-socket.md) on a real linux-rv64 machine
 * waiting at its shell: mode 0600, every command, malformed and unknown requests answered with an
 * error object while the machine keeps running, a client that disconnects midway, events, the
 * `vmon ctl` client, and a snapshot taken through the socket that restores.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { createMachine } from "../mod.ts";
import { buildImage, imageManifest } from "../images/mod.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";
import { ApiSocket, MAX_REQUEST } from "../cli/api_socket.ts";
import { runCli } from "../cli/_spawn.ts";

/** A test device without save() (tests/fixtures/stuck_device.ts). */
const NO_SAVE_DEVICE = new URL("./fixtures/stuck_device.ts", import.meta.url).href;

const missing = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (missing !== undefined) console.error(`snapshot_socket_test: skipped: ${missing}`);

/** A line-oriented client. */
class Client {
  #conn: Deno.UnixConn;
  #text = "";
  #dec = new TextDecoder();
  constructor(conn: Deno.UnixConn) {
    this.#conn = conn;
  }
  static async open(path: string): Promise<Client> {
    return new Client(await Deno.connect({ transport: "unix", path }));
  }
  async send(line: string): Promise<void> {
    const b = new TextEncoder().encode(line);
    let o = 0;
    while (o < b.length) o += await this.#conn.write(b.subarray(o));
  }
  async line(): Promise<Record<string, any>> {
    const buf = new Uint8Array(65536);
    while (!this.#text.includes("\n")) {
      const n = await this.#conn.read(buf);
      if (n === null) throw new Error("closed");
      this.#text += this.#dec.decode(buf.subarray(0, n), { stream: true });
    }
    const at = this.#text.indexOf("\n");
    const l = this.#text.slice(0, at);
    this.#text = this.#text.slice(at + 1);
    return JSON.parse(l);
  }
  async ask(req: unknown): Promise<Record<string, any>> {
    await this.send(JSON.stringify(req) + "\n");
    return await this.line();
  }
  close(): void {
    this.#conn.close();
  }
}

Deno.test({
  name: "control socket: commands, malformed input, events, ctl, snapshot",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-sock-" });
    const path = join(dir, "api.sock");
    const image = await buildImage("linux-rv64");
    let out = "";
    const dec = new TextDecoder();
    let prompt!: () => void;
    const atPrompt = new Promise<void>((r) => prompt = r);
    // A device without save() makes a snapshot fail with one line naming it (the machine is never
    // run, so the fixture's MMIO window is never written).
    const base = imageManifest(image);
    const withoutSave = await createMachine({
      ...base,
      devices: [...(base.devices ?? []), { use: NO_SAVE_DEVICE }],
    }, { log: () => {} });
    await assert.rejects(
      () => withoutSave.snapshot(join(dir, "nosave.snap")),
      /^VmonError: Cannot take a snapshot: plugin "stuck-device" has no save\(\)$/,
    );
    await withoutSave[Symbol.asyncDispose]();
    // No network: this test is about the socket (tests/snapshot_net_test.ts snapshots one).
    const manifest = { ...base, devices: base.devices?.filter((d) => d.use !== "virtio-net") };
    const machine = await createMachine(manifest, {
      console: {
        write: (b) => {
          out += dec.decode(b, { stream: true });
          if (out.includes("/ # ")) prompt();
        },
      },
      log: () => {},
    });
    const socket = ApiSocket.listen(path, machine, { vmonVersion: "test" });
    try {
      assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
      const events = await Client.open(path);
      assert.deepEqual((await events.ask({ id: "e", cmd: "events" })).ok, true);
      const run = machine.run();
      socket.started();
      assert.deepEqual(await events.line(), { event: "started" });
      await atPrompt;

      const c = await Client.open(path);
      const v = await c.ask({ id: 1, cmd: "version" });
      assert.equal(v.id, 1);
      assert.equal(v.result.api, 1);
      assert.equal((await c.ask({ id: 2, cmd: "status" })).result.state, "running");
      // Malformed and unknown requests: an error object each, the connection and machine go on.
      await c.send("this is not json\n");
      assert.deepEqual(await c.line(), {
        id: null,
        ok: false,
        error: "Malformed request: not JSON",
      });
      await c.send("[1,2]\n");
      assert.match((await c.line()).error, /expected a JSON object/);
      assert.match((await c.ask({ id: 3 })).error, /no "cmd"/);
      assert.match((await c.ask({ id: 4, cmd: "reboot-the-world" })).error, /Unknown command/);
      assert.match((await c.ask({ id: 5, cmd: "snapshot" })).error, /"path"/);
      assert.match((await c.ask({ id: 6, cmd: "stop", status: "x" })).error, /"status"/);
      await c.send("x".repeat(MAX_REQUEST + 10) + "\n");
      assert.match((await c.line()).error, /longer than/);
      // A client that goes away in the middle of a request harms nothing.
      const rude = await Client.open(path);
      await rude.send('{"id": 9, "cmd": "sta');
      rude.close();
      assert.equal((await c.ask({ id: 7, cmd: "status" })).result.state, "running");

      assert.equal((await c.ask({ id: 8, cmd: "pause" })).result.state, "paused");
      assert.deepEqual(await events.line(), { event: "paused" });
      const snap = join(dir, "vm.snap");
      const s = await c.ask({ id: 10, cmd: "snapshot", path: snap });
      assert.equal(s.ok, true, JSON.stringify(s));
      assert.equal(s.result.path, snap);
      assert.deepEqual(await events.line(), {
        event: "snapshot",
        path: snap,
        bytes: s.result.bytes,
      });
      assert.equal((await c.ask({ id: 11, cmd: "resume" })).result.state, "running");
      assert.deepEqual(await events.line(), { event: "resumed" });
      const stats = await c.ask({ id: 12, cmd: "stats" });
      assert.ok(stats.result.hostport.instructions > 0);

      // The command-line client.
      const ctl = await runCli(["ctl", "--socket", path, "status"]);
      assert.equal(ctl.status, 0, ctl.stderr);
      assert.equal(JSON.parse(ctl.stdout).state, "running");
      const bad = await runCli(["ctl", "--socket", path, "frob"]);
      assert.equal(bad.status !== 0, true);
      assert.match(bad.stderr, /Unknown command "frob"/);

      assert.equal((await c.ask({ id: 13, cmd: "stop", status: 7 })).ok, true);
      const exit = await run;
      socket.exited(exit);
      assert.equal(exit.status, 7);
      assert.deepEqual(await events.line(), {
        event: "exited",
        status: 7,
        reason: "stopped through the API socket",
        failed: false,
      });
      c.close();
      events.close();

      // The snapshot taken through the socket restores to the same shell.
      let restored = "";
      const again = await createMachine({ restore: snap }, {
        console: { write: (b) => restored += dec.decode(b, { stream: true }) },
        log: () => {},
      });
      again.sendInput(new TextEncoder().encode("echo restored-$((6*7))\nexit 5\n"));
      const e2 = await again.run();
      assert.match(restored, /restored-42/);
      assert.equal(e2.status, 5);
    } finally {
      socket.close();
      await machine[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
