/**
 * Network throughput and latency: the linux-rv64 image with virtio-net in vmon (`--net user`,
 * passt) and in `qemu-system-riscv64 -M virt` (TCG, `virtio-net-device`) with two backends, the
 * same passt over `-netdev stream` (the reference: same backend, so the monitors are compared) and
 * QEMU's own `-netdev user` (slirp). Each monitor boots once per run and its guest measures, with
 * busybox `time`:
 *
 * - `rx_MBps`: host to guest, `wget -O /dev/null` of SIZE MiB from an HTTP server of this script;
 * - `tx_MBps`: guest to host, `wget --post-file` of SIZE MiB to it;
 * - `ping_ms`: the average round trip of 10 pings to the host's address (needs ICMP through
 *   passt or slirp, so the host side's ping sockets: see below).
 *
 * Traffic stays on this machine. As root, the script runs itself inside a network namespace it
 * creates (a veth pair with a default route gives passt an interface; `net.ipv4.ping_group_range`
 * is opened there, never on the host) and removes afterwards; the HTTP server listens on
 * 127.0.0.1 inside it (the guests reach it as 10.0.2.2). Without root it runs on the host's
 * loopback and `ping_ms` is null.
 *
 * Prints one JSON line: medians per monitor and the ratios vmon / QEMU (throughput: higher is
 * better, target >= 1.0 against the passt reference; ping: vmon's round trip over QEMU's, lower is
 * better). Installs QEMU (`qemu-system-misc`) and passt with apt when missing (as root).
 *
 * Usage: deno task bench:net [runs (default 3)] [MiB (default 32)]
 *
 * @module
 */

import { join } from "node:path";
import { REPO_ROOT } from "../../core/cache.ts";
import { buildImage } from "../../images/mod.ts";
import { execCmdline, findQemu } from "../../images/linux-rv64/mod.ts";
import { ensureHostPackages } from "../../images/linux-rv64/deps.ts";
import { findPasst, passtArguments } from "../../ffi/net/mod.ts";

const RUNS = Number(Deno.args[0] ?? 3);
const MIB = Number(Deno.args[1] ?? 32);
const INSIDE = Deno.args[2] === "--inside-netns";
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isInteger(MIB) || MIB < 1 || MIB > 128) {
  console.error(`Invalid arguments "${Deno.args.join(" ")}": expected [runs] [MiB (1 to 128)]`);
  Deno.exit(2);
}
const SIZE = MIB << 20;
const TIMEOUT_MS = 600_000;
const td = new TextDecoder();

function log(line: string): void {
  console.error(`net: ${line}`);
}

function sh(args: string[]): void {
  const out = new Deno.Command(args[0]!, { args: args.slice(1), stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!out.success) throw new Error(`${args.join(" ")} failed: ${td.decode(out.stderr)}`);
}

/** As root: runs this script again inside a fresh network namespace and removes it after. */
async function runInNetns(): Promise<number> {
  const ns = `vmon-bench-net-${Deno.pid}`;
  sh(["ip", "netns", "add", ns]);
  try {
    const ip = (...a: string[]) => sh(["ip", "-n", ns, ...a]);
    ip("link", "set", "lo", "up");
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
    ip("addr", "add", "192.0.2.2/24", "dev", "v0");
    ip("link", "set", "v0", "up");
    ip("link", "set", "v1", "up");
    ip("route", "add", "default", "via", "192.0.2.1");
    sh(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]);
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "--allow-all",
        import.meta.filename!,
        String(RUNS),
        String(MIB),
        "--inside-netns",
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    return (await child.status).code;
  } finally {
    sh(["ip", "netns", "delete", ns]);
  }
}

/** The HTTP server the guests talk to: GET /big?n= streams n bytes, POST /sink counts the body. */
function startServer(): { port: number; close: () => Promise<void> } {
  const chunk = new Uint8Array(1 << 20).fill(0x61);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/big") {
      let left = Number(url.searchParams.get("n") ?? 0);
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (left <= 0) return c.close();
          const n = Math.min(left, chunk.length);
          c.enqueue(chunk.subarray(0, n));
          left -= n;
        },
      });
      return new Response(body, { headers: { "content-length": url.searchParams.get("n")! } });
    }
    if (url.pathname === "/sink") {
      let n = 0;
      for await (const b of req.body ?? []) n += b.length;
      return new Response(`sink got ${n}\n`);
    }
    return new Response("no\n", { status: 404 });
  });
  return { port: server.addr.port, close: () => server.shutdown() };
}

/** The guest's script: one line, no double quotes (vmon's --exec form). */
function guestScript(port: number, ping: boolean): string {
  const url = `http://10.0.2.2:${port}`;
  return [
    `head -c ${SIZE} /dev/zero | tr '\\000' b > /tmp/up`,
    `echo net-bench: rx; time wget -q -O /dev/null '${url}/big?n=${SIZE}'`,
    `echo net-bench: tx; time wget -q -O - --post-file=/tmp/up ${url}/sink`,
    ...(ping ? ["ping -c 10 -i 0.2 192.0.2.2"] : []),
  ].join("; ");
}

interface Sample {
  rxMBps: number;
  txMBps: number;
  pingMs: number | null;
}

/** busybox time: "real\t0m 1.75s". */
function seconds(text: string, label: string): number {
  const at = text.indexOf(`net-bench: ${label}`);
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(text.slice(at));
  if (at < 0 || !m) throw new Error(`no "${label}" timing in the output:\n${text.slice(-1500)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

function sample(who: string, output: string, ping: boolean): Sample {
  const text = output.replaceAll("\r", "");
  if (!new RegExp(`sink got ${SIZE}`).test(text)) {
    throw new Error(`${who}: the upload did not arrive whole:\n${text.slice(-1500)}`);
  }
  const rtt = /round-trip min\/avg\/max = [\d.]+\/([\d.]+)\//.exec(text);
  if (ping && !rtt) throw new Error(`${who}: no ping result:\n${text.slice(-1500)}`);
  return {
    rxMBps: MIB / seconds(text, "rx"),
    txMBps: MIB / seconds(text, "tx"),
    pingMs: rtt ? Number(rtt[1]) : null,
  };
}

async function run(cmd: string, args: string[]): Promise<string> {
  const child = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  return td.decode(out.stdout) + td.decode(out.stderr);
}

async function runVmon(script: string): Promise<string> {
  return await run(Deno.execPath(), [
    "run",
    "--allow-all",
    "--quiet",
    join(REPO_ROOT, "cli", "main.ts"),
    "run",
    "--image",
    "linux-rv64",
    "--net",
    "user",
    "--exec",
    script,
  ]);
}

async function runQemu(
  image: { kernel: string; initrd?: string; cmdline?: string },
  script: string,
  backend: "stream" | "user",
): Promise<string> {
  const qemu = findQemu()!;
  let passt: Deno.ChildProcess | undefined;
  let dir: string | undefined;
  const netdev: string[] = [];
  if (backend === "stream") {
    // passt drops to the user nobody, which must be able to create its socket.
    dir = await Deno.makeTempDir({ prefix: "vmon-bench-passt-" });
    await Deno.chmod(dir, 0o777);
    const sock = join(dir, "passt.sock");
    passt = new Deno.Command(findPasst()!, {
      args: [...passtArguments(), "--socket", sock],
      stdout: "null",
      stderr: "null",
    }).spawn();
    for (let i = 0; i < 100; i++) {
      try {
        Deno.statSync(sock);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    netdev.push("-netdev", `stream,id=n0,server=off,addr.type=unix,addr.path=${sock}`);
  } else {
    netdev.push("-netdev", "user,id=n0");
  }
  try {
    const base = image.cmdline ?? "console=ttyS0 panic=-1";
    return await run(qemu, [
      "-M",
      "virt",
      "-m",
      "256M",
      "-smp",
      "1",
      "-nographic",
      "-no-reboot",
      "-kernel",
      image.kernel,
      ...(image.initrd ? ["-initrd", image.initrd] : []),
      "-append",
      `${base} ${execCmdline(script, { base })}`,
      ...netdev,
      "-device",
      "virtio-net-device,netdev=n0",
    ]);
  } finally {
    if (passt) {
      try {
        passt.kill("SIGTERM");
      } catch { /* exited with its one client */ }
      await passt.status;
    }
    if (dir) await Deno.remove(dir, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function summary(samples: Sample[]) {
  const pings = samples.map((s) => s.pingMs).filter((p): p is number => p !== null);
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    rx_MBps: round(median(samples.map((s) => s.rxMBps))),
    tx_MBps: round(median(samples.map((s) => s.txMBps))),
    ping_ms: pings.length ? round(median(pings)) : null,
  };
}

async function main(): Promise<number> {
  if (!INSIDE && Deno.uid() === 0) {
    await ensureHostPackages(log, { extra: ["passt", "qemu-system-misc"] });
    try {
      sh(["ip", "netns", "list"]);
      return await runInNetns();
    } catch (err) {
      log(`no network namespace (${(err as Error).message.split("\n")[0]}): loopback, no ping`);
    }
  }
  const ping = INSIDE;
  if (findQemu() === undefined || findPasst() === undefined) {
    console.log(JSON.stringify({
      bench: "net",
      error: "qemu-system-riscv64 or passt is missing (apt-get install qemu-system-misc passt)",
    }));
    return 1;
  }
  const image = await buildImage("linux-rv64", { onProgress: (l) => log(`image: ${l}`) });
  const server = startServer();
  const script = guestScript(server.port, ping);
  const results: Record<string, Sample[]> = { vmon: [], qemu_stream: [], qemu_user: [] };
  try {
    for (let r = 0; r < RUNS; r++) {
      for (const who of Object.keys(results)) {
        const output = who === "vmon"
          ? await runVmon(script)
          : await runQemu(image, script, who === "qemu_stream" ? "stream" : "user");
        const s = sample(who, output, ping);
        results[who]!.push(s);
        log(`run ${r + 1}/${RUNS} ${who}: ${JSON.stringify(s)}`);
      }
    }
  } finally {
    await server.close();
  }
  const v = summary(results.vmon!);
  const qs = summary(results.qemu_stream!);
  const qu = summary(results.qemu_user!);
  const ratio = (a: number | null, b: number | null) =>
    a === null || b === null || b === 0 ? null : Math.round((a / b) * 100) / 100;
  console.log(JSON.stringify({
    bench: "net",
    reference: "qemu-system-riscv64 -M virt (TCG), virtio-net-device, -netdev stream to passt",
    also: "qemu -netdev user (slirp)",
    image: "linux-rv64",
    mib: MIB,
    runs: RUNS,
    netns: INSIDE,
    vmon: v,
    qemu_stream: qs,
    qemu_user: qu,
    ratio_rx: ratio(v.rx_MBps, qs.rx_MBps),
    ratio_tx: ratio(v.tx_MBps, qs.tx_MBps),
    ratio_ping_rtt: ratio(v.ping_ms, qs.ping_ms),
    ratio_rx_vs_user: ratio(v.rx_MBps, qu.rx_MBps),
    ratio_tx_vs_user: ratio(v.tx_MBps, qu.tx_MBps),
    ratio_ping_rtt_vs_user: ratio(v.ping_ms, qu.ping_ms),
    target: "ratio_rx and ratio_tx >= 1.0",
  }));
  return 0;
}

if (import.meta.main) Deno.exit(await main());
