/**
 * Snapshots of a machine with a network (docs/DESIGN.md, "Snapshots"; virtio-net's README): the
 * default linux-rv64 machine (virtio-net with the `user` backend, passt) fetches a page from an
 * HTTP server this test runs on 127.0.0.1, a snapshot is taken after that, and the machine restored
 * from it (passt started again) fetches another page through the same device: the guest's rings,
 * its DHCP address and its route survive. A restore whose backend cannot be started again fails
 * with one line. Traffic goes only to this machine (the gateway 10.0.2.2 is the host's loopback).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { createMachine } from "../core/machine.ts";
import type { MachineExit, MachineManifest } from "../core/api/mod.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { buildImage, imageManifest } from "../images/mod.ts";
import { makeNetns, type NetnsServer, netSkips, startTapPageServer } from "./fixtures/netns.ts";

const { missing, tap: noTap } = netSkips("snapshot_net_test");

const td = new TextDecoder();
const CLI = [Deno.execPath(), "run", "-A", "--quiet", `${REPO_ROOT}/cli/main.ts`];
const POINT = "vmon-test: snapshot point";

/** An HTTP server on 127.0.0.1 answering `/page/<token>` with `page <token>`; it logs the paths. */
function startServer(): { port: number; paths: string[]; close: () => Promise<void> } {
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    paths.push(path);
    const m = /^\/page\/([\w-]+)$/.exec(path);
    return m ? new Response(`page ${m[1]}\n`) : new Response("no\n", { status: 404 });
  });
  return { port: server.addr.port, paths, close: () => server.shutdown() };
}

/** Runs a machine to its end; `input` is typed into its console first (after a restore). */
async function run(
  spec: MachineManifest | { restore: string },
  options: { snapshot?: string; input?: string } = {},
): Promise<{ out: string; exit: MachineExit }> {
  let out = "";
  const errors: string[] = [];
  const machine = await createMachine(spec, {
    console: { write: (b) => out += td.decode(b, { stream: true }) },
    log: () => {},
    ...(options.snapshot
      ? { snapshotOn: [{ text: POINT, path: options.snapshot, then: "stop" as const }] }
      : {}),
    onSnapshot: (r) => {
      if ("error" in r) errors.push(r.error);
    },
  });
  if (options.input !== undefined) machine.sendInput(new TextEncoder().encode(options.input));
  const timer = setTimeout(() => machine.stop("test timeout", 124), 240_000);
  try {
    const exit = await machine.run();
    assert.deepEqual(errors, []);
    return { out, exit };
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
}

Deno.test({
  name: "snapshot with virtio-net (user): the restored guest fetches a page from the host",
  ignore: missing !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-snapnet-" });
    const server = startServer();
    try {
      const image = await buildImage("linux-rv64");
      const manifest = imageManifest(image, {
        // The first page before the snapshot; then the shell reads one command line from the
        // console and runs it (the restored machine gets it typed in).
        exec: [
          `wget -q -O - http://10.0.2.2:${server.port}/page/before`,
          `echo "${POINT}"`,
          "read -r cmd",
          'eval "$cmd"',
        ].join("; "),
      });
      assert.ok(
        manifest.devices?.some((d) => d.use === "virtio-net" && d.options?.backend !== "none"),
        "the default linux-rv64 machine has virtio-net with a backend",
      );
      const snap = join(dir, "net.snap");
      // The machine the snapshot is taken from stops there.
      const a = await run(manifest, { snapshot: snap });
      assert.equal(a.exit.status, 0, a.out);
      assert.match(a.out, /page before/);
      assert.ok(a.out.includes(POINT), a.out);

      const b = await run({ restore: snap }, {
        input: [
          `wget -q -O - http://10.0.2.2:${server.port}/page/after-restore`,
          "echo wget-status $?",
          "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'",
        ].join("; ") + "\n",
      });
      assert.equal(b.exit.status, 0, b.out);
      assert.match(b.out, /page after-restore\r?\nwget-status 0/);
      assert.match(b.out, /inet 10\.0\.2\.15\/24/);
      assert.ok(!b.out.includes("page before"), "the restored run starts after the snapshot");
      assert.ok(server.paths.includes("/page/after-restore"), server.paths.join());
      const net = b.exit.stats.metrics["virtio-net"]!;
      assert.equal(net.malformed_chains, 0, JSON.stringify(net));
      assert.equal(net.device_errors, 0, JSON.stringify(net));
      assert.equal(net.rx_malformed, 0);
      assert.equal(net.tx_malformed, 0);
      // The counters go on from the snapshot's: more than the restored run alone moved.
      const netA = a.exit.stats.metrics["virtio-net"]!;
      assert.ok(net.rx_packets! > 0 && netA.rx_packets! > 0, JSON.stringify({ net, netA }));

      // A backend that cannot be started again: vmon run --restore fails with one line.
      const cli = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", `${REPO_ROOT}/cli/main.ts`, "run", "--restore", snap],
        env: { VMON_PASST: join(dir, "no-passt-here") },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = td.decode(cli.stderr).trim();
      assert.notEqual(cli.code, 0, err);
      assert.equal(err.split("\n").length, 1, err);
      assert.match(err, /user network/);
    } finally {
      await server.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Runs `vmon <args>` (through `wrap`, e.g. `ip netns exec ns`); resolves with its output. */
async function vmon(args: string[], wrap: string[] = []) {
  const all = [...wrap, ...CLI, ...args];
  const out = await new Deno.Command(all[0]!, {
    args: all.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { status: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

Deno.test({
  name: "snapshot with virtio-net (tap): the TAP device is opened again at restore",
  ignore: noTap !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Everything inside a network namespace of the test: the TAP device, its host address and
    // the page server; nothing leaves it.
    const { ns, remove } = makeNetns("vmon-snapnet");
    const dir = await Deno.makeTempDir({ prefix: "vmon-snapnet-tap-" });
    let server: NetnsServer | undefined;
    try {
      server = await startTapPageServer(ns, {
        ifname: "vmtap0",
        address: "10.9.0.1/24",
        handler: `(req) => new Response("tap page " + new URL(req.url).pathname.slice(1) + "\\n")`,
      });
      const inNs = ["ip", "netns", "exec", ns];
      const snap = join(dir, "tap.snap");
      const a = await vmon([
        "run",
        "--image",
        "linux-rv64",
        "--net",
        "tap,ifname=vmtap0",
        "--exec",
        `ip addr add 10.9.0.2/24 dev eth0; wget -q -O - http://10.9.0.1:8000/before; echo "${POINT}"; read -r cmd; eval "$cmd"`,
        "--snapshot-on",
        POINT,
        "--snapshot",
        snap,
        "--snapshot-then",
        "stop",
      ], inNs);
      assert.equal(a.status, 0, a.stdout + a.stderr);
      assert.match(a.stdout, /tap page before/);
      // vmon run --restore --exec types the command: the guest's `read` takes it.
      const b = await vmon([
        "run",
        "--restore",
        snap,
        "--exec",
        "wget -q -O - http://10.9.0.1:8000/after; echo wget-status $?",
      ], inNs);
      assert.equal(b.status, 0, b.stdout + b.stderr);
      assert.match(b.stdout, /tap page after\r?\nwget-status 0/);
      assert.doesNotMatch(b.stdout, /tap page before/);
      // A TAP device that cannot be opened again (no /dev/net/tun): one line.
      const c = await vmon(["run", "--restore", snap], [
        ...inNs,
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs none /dev/net && exec "$@"',
        "sh",
      ]);
      assert.notEqual(c.status, 0);
      assert.match(
        c.stderr.trim(),
        /^vmon: Cannot open TAP device "vmtap0": \/dev\/net\/tun does not exist$/,
      );
    } finally {
      await server?.stop();
      remove();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
