/**
 * Integration: virtio-net with its real backends under the project's Linux image on the rv64 port.
 * Traffic goes only to this machine: the `user` tests talk to servers on 127.0.0.1 (passt maps the
 * gateway 10.0.2.2 to the host's loopback); the ping and TAP tests run vmon inside a network
 * namespace the test creates (`ip netns`) and removes, where the TAP device and the servers live.
 * Tests needing root, `ip netns` or `/dev/net/tun` skip with the reason; all need passt (installed
 * by `tests/prepare.ts`) and the riscv64 cross compiler (to build the image).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createMachine } from "../core/machine.ts";
import type { MachineExit, PluginRef } from "../core/api/mod.ts";
import { buildImage, imageManifest } from "../images/mod.ts";
import { REPO_ROOT } from "../core/cache.ts";
import { makeNetns, type NetnsServer, netSkips, sh, startTapPageServer } from "./fixtures/netns.ts";

const { missing, netns: netnsMissing, tap: tunMissing } = netSkips("net_linux_test");

const test = (name: string, skip: string | undefined, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: skip !== undefined, fn, sanitizeResources: false, sanitizeOps: false });

const td = new TextDecoder();
const CLI = [Deno.execPath(), "run", "-A", "--quiet", `${REPO_ROOT}/cli/main.ts`];

/** 3 MiB of deterministic printable bytes (busybox wget posts a file as a C string). */
const BIG = Uint8Array.from({ length: 3 << 20 }, (_, i) => 48 + ((i * 2654435761) >>> 26));
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** An HTTP server on 127.0.0.1: /hello, /big (BIG), POST /md5 (the md5 of the body). */
function startServer(): { port: number; close: () => Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/hello") return new Response("hello from the host\n");
    if (path === "/big") return new Response(BIG);
    if (path === "/md5") {
      const body = new Uint8Array(await req.arrayBuffer());
      return new Response(`host got ${body.length} bytes md5 ${md5(body)}\n`);
    }
    return new Response("no\n", { status: 404 });
  });
  return { port: server.addr.port, close: () => server.shutdown() };
}

interface Boot {
  output: string;
  exit: MachineExit;
}

/**
 * Boots linux-rv64 with a virtio-net device of `net` options (none: without the device) and runs
 * `exec`; `onOutput` sees the console text so far (to act while the guest runs).
 */
async function bootLinux(
  exec: string,
  options: {
    net?: Record<string, string>;
    hostport?: PluginRef;
    onOutput?: (text: string, stop: () => void) => void;
  } = {},
): Promise<Boot> {
  const image = await buildImage("linux-rv64");
  const m = imageManifest(image, {
    exec,
    ...(options.hostport ? { hostport: options.hostport } : {}),
  });
  const devices = (m.devices ?? []).filter((d) => d.use !== "virtio-net");
  if (options.net) devices.push({ use: "virtio-net", options: options.net });
  let text = "";
  const machine = await createMachine({ ...m, devices }, {
    console: {
      write: (b) => {
        text += td.decode(b);
        options.onOutput?.(text, () => machine.stop("test done", 0));
      },
    },
    log: () => {},
  });
  const timer = setTimeout(() => machine.stop("test timeout", 124), 240_000);
  try {
    return { exit: await machine.run(), output: text };
  } finally {
    clearTimeout(timer);
    await machine[Symbol.asyncDispose]();
  }
}

/** What the guest printed after init's marker, kernel log lines removed. */
function guestOutput(output: string): string {
  const at = output.indexOf("vmon: init ready");
  return output.slice(at < 0 ? 0 : at).split("\n").filter((l) => !/^\[\s*\d+\.\d+\]/.test(l))
    .join("\n").replaceAll("\r", "");
}

test(
  "net user: DHCP, a page and 3 MiB from the host's loopback, 3 MiB back, intact",
  missing,
  async () => {
    const server = startServer();
    try {
      const url = `http://10.0.2.2:${server.port}`;
      const r = await bootLinux(
        [
          "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'",
          "ip route | grep default",
          `wget -q -O - ${url}/hello`,
          `wget -q -O /tmp/big ${url}/big && md5sum /tmp/big`,
          `wget -q -O - --post-file=/tmp/big ${url}/md5`,
        ].join("; "),
        { net: { backend: "user" } },
      );
      const out = guestOutput(r.output);
      assert.equal(r.exit.status, 0, out);
      assert.match(out, /inet 10\.0\.2\.15\/24/);
      assert.match(out, /default via 10\.0\.2\.2/);
      assert.match(out, /hello from the host/);
      assert.match(out, new RegExp(`${md5(BIG)}  /tmp/big`));
      assert.match(out, new RegExp(`host got ${BIG.length} bytes md5 ${md5(BIG)}`));
      const net = r.exit.stats.metrics["virtio-net"]!;
      assert.ok(net.rx_bytes! >= BIG.length && net.tx_bytes! >= BIG.length, JSON.stringify(net));
      assert.equal(net.malformed_chains, 0);
      assert.equal(net.rx_malformed, 0);
      assert.equal(net.tx_malformed, 0);
    } finally {
      await server.close();
    }
  },
);

test("net user: hostfwd brings a host port to the guest's httpd", missing, async () => {
  // A free port: bind it, note it, let it go (passt binds it next).
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const token = `guest-page-${crypto.randomUUID()}`;
  let fetched: string | undefined;
  let started = false;
  const r = await bootLinux(
    `mkdir -p /www && echo ${token} > /www/index.html && httpd -h /www -p 80 && echo httpd-up && sleep 120`,
    {
      net: { backend: "user", hostfwd: `tcp:127.0.0.1:${port}-:80` },
      onOutput: (text, stop) => {
        if (started || !text.includes("httpd-up")) return;
        started = true;
        fetch(`http://127.0.0.1:${port}/`).then((res) => res.text()).then((body) => {
          fetched = body;
        }).catch((err) => fetched = `fetch failed: ${err}`).finally(stop);
      },
    },
  );
  assert.ok(started, guestOutput(r.output));
  assert.equal(fetched?.trim(), token);
  assert.equal(r.exit.reason, "test done");
});

test("net user: packets reach a busy guest whatever the slice length", missing, async () => {
  // One slice of 4e9 instructions is minutes of guest time: without the backend ending it, the
  // guest (busy in a loop besides) would not see the reply before the slice ends.
  const server = startServer();
  try {
    const r = await bootLinux(
      `(while :; do :; done) & wget -q -O - http://10.0.2.2:${server.port}/hello; kill %1`,
      {
        net: { backend: "user" },
        hostport: { use: "rv64", options: { slice: 4_000_000_000 } },
      },
    );
    const out = guestOutput(r.output);
    assert.equal(r.exit.status, 0, out);
    assert.match(out, /hello from the host/);
    assert.ok(r.exit.stats.metrics["virtio-net"]!.backend_kicks! > 0);
  } finally {
    await server.close();
  }
});

test(
  "net: the Linux image has the user network by default, and --net none has none",
  missing,
  async () => {
    const cli = async (args: string[]) => {
      const out = await new Deno.Command(CLI[0]!, {
        args: [...CLI.slice(1), "run", "--image", "linux-rv64", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { status: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
    };
    const exec =
      "echo nets: $(ls /sys/class/net); ip -4 addr show eth0 2>/dev/null | grep -o 'inet [0-9.]*'; " +
      "for a in ip udhcpc ping wget nc httpd; do command -v $a >/dev/null || echo missing-$a; done";
    const byDefault = await cli(["--exec", exec]);
    assert.equal(byDefault.status, 0, byDefault.stderr);
    assert.match(byDefault.stdout, /nets: .*\beth0\b/);
    assert.match(byDefault.stdout, /inet 10\.0\.2\.15/);
    assert.doesNotMatch(byDefault.stdout, /missing-/); // busybox keeps the network applets
    const none = await cli(["--net", "none", "--exec", exec, "--stats=json"]);
    assert.equal(none.status, 0, none.stderr);
    assert.match(none.stdout, /nets: /);
    assert.doesNotMatch(none.stdout, /nets: .*\beth0\b/);
    assert.equal(
      JSON.parse(none.stdout.trim().split("\n").at(-1)!).stats.metrics["virtio-net"],
      undefined,
    );
  },
);

/** Runs `args` inside network namespace `ns`; resolves with its output. */
async function inNetns(ns: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { status: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

test("net user in a network namespace: ping round trips to the host", netnsMissing, async () => {
  // passt forwards ICMP through the host's ping sockets, which net.ipv4.ping_group_range must
  // allow for its user: set in the test's own namespace (per namespace), never on the host. A
  // veth pair with a default route gives passt an interface to copy; the guest pings the
  // namespace's own address on it (Debian 12's passt maps the gateway to the host's loopback for
  // TCP and UDP, not ICMP), so nothing leaves the namespace.
  const { ns, remove } = makeNetns();
  try {
    sh(["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    sh(["ip", "-n", ns, "addr", "add", "192.0.2.2/24", "dev", "v0"]);
    sh(["ip", "-n", ns, "link", "set", "v0", "up"]);
    sh(["ip", "-n", ns, "link", "set", "v1", "up"]);
    sh(["ip", "-n", ns, "route", "add", "default", "via", "192.0.2.1"]);
    sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]);
    const r = await inNetns(ns, [
      ...CLI,
      "run",
      "--image",
      "linux-rv64",
      "--net",
      "user",
      "--exec",
      "ping -c 3 192.0.2.2",
    ]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3 packets transmitted, 3 packets received/);
    assert.match(r.stdout, /round-trip min\/avg\/max/);
  } finally {
    remove();
  }
});

test(
  "net tap in a network namespace: a page from the host side, and ping",
  tunMissing,
  async () => {
    const { ns, remove } = makeNetns();
    let server: NetnsServer | undefined;
    try {
      // The page server, inside the namespace.
      server = await startTapPageServer(ns, {
        ifname: "vmtap0",
        address: "10.9.0.1/24",
        handler: `() => new Response("hello over tap\\n")`,
      });
      const r = await inNetns(ns, [
        ...CLI,
        "run",
        "--image",
        "linux-rv64",
        "--net",
        "tap,ifname=vmtap0",
        "--exec",
        "ip addr add 10.9.0.2/24 dev eth0; wget -q -O - http://10.9.0.1:8000/; ping -c 3 10.9.0.1",
        "--stats=json",
      ]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /hello over tap/);
      assert.match(r.stdout, /3 packets transmitted, 3 packets received/);
      const stats = JSON.parse(r.stdout.trim().split("\n").at(-1)!).stats;
      assert.equal(stats.metrics["virtio-net"].malformed_chains, 0);
    } finally {
      await server?.stop();
      remove();
    }
  },
);

test("net errors: one line each for TAP and passt failures", tunMissing, async () => {
  const run = async (args: string[], wrap: string[] = [], env: Record<string, string> = {}) => {
    const out = await new Deno.Command(wrap[0] ?? CLI[0]!, {
      args: [
        ...(wrap.length ? [...wrap.slice(1), ...CLI] : CLI.slice(1)),
        "run",
        "--image",
        "linux-rv64",
        ...args,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = td.decode(out.stderr).trim();
    assert.notEqual(out.code, 0, stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
    return stderr;
  };
  const { ns, remove } = makeNetns();
  try {
    const inNs = ["ip", "netns", "exec", ns];
    // No /dev/net/tun: a private mount namespace hides it.
    assert.match(
      await run(["--net", "tap,ifname=vmtap9"], [
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs none /dev/net && exec "$@"',
        "sh",
      ]),
      /^vmon: Cannot open TAP device "vmtap9": \/dev\/net\/tun does not exist$/,
    );
    // No permission: root without CAP_NET_ADMIN.
    assert.match(
      await run(["--net", "tap,ifname=vmtap9"], [
        ...inNs,
        "setpriv",
        "--bounding-set",
        "-net_admin",
        "--inh-caps",
        "-net_admin",
      ]),
      /^vmon: Cannot open TAP device "vmtap9": no permission \(/,
    );
    // Busy: another process holds the device.
    sh(["ip", "-n", ns, "tuntap", "add", "dev", "vmbusy0", "mode", "tap"]);
    const holder = new Deno.Command("ip", {
      args: [
        ...inNs.slice(1),
        Deno.execPath(),
        "eval",
        `import { openPacketBackend } from "${REPO_ROOT}/ffi/net/mod.ts";
         const b = openPacketBackend({ kind: "tap", ifname: "vmbusy0" });
         console.log("held"); await Deno.stdin.readable.pipeTo(new WritableStream()); b.close();`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = holder.stdout.getReader();
      assert.match(td.decode((await reader.read()).value), /held/);
      reader.releaseLock();
      assert.match(
        await run(["--net", "tap,ifname=vmbusy0"], inNs),
        /^vmon: Cannot open TAP device "vmbusy0": busy \(another process has it open\)$/,
      );
    } finally {
      await holder.stdin.close();
      await holder.status;
      await holder.stdout.cancel().catch(() => {});
    }
    // passt cannot bind a forwarded port that is taken.
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (taken.addr as Deno.NetAddr).port;
      assert.match(
        await run(["--net", `user,hostfwd=tcp:${port}-:80`]),
        new RegExp(
          `^vmon: Cannot start the user network \\(passt\\): .*${port}.*$`,
        ),
      );
    } finally {
      taken.close();
    }
    // passt missing.
    assert.match(
      await run(["--net", "user"], [], { VMON_PASST: "/nonexistent/passt" }),
      /^vmon: Cannot start the user network \(passt\): cannot run \/nonexistent\/passt/,
    );
  } finally {
    remove();
  }
});
