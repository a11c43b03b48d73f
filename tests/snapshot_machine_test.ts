/**
 * Snapshots of the real linux-rv64 machine (docs/DESIGN.md, "Snapshots"): under clock=icount a
 * machine restored from a snapshot taken at any of several points, with virtio-blk writes and
 * console output in flight, gives exactly the output, counters and disk contents of the run it
 * was taken from (settling at later points without writing a file changes nothing either); disk
 * writes made before a snapshot are read back from the disk after restore
 * (the guest drops its page cache first); bad files are refused with one line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { createMachine } from "../mod.ts";
import type { MachineExit, MachineManifest, SnapshotTrigger } from "../mod.ts";
import { buildImage, imageManifest } from "../images/mod.ts";
import { haveCrossCompiler } from "../ffi/rv64/asm.ts";
import { encodeSnapshot } from "../core/snapshot_format.ts";
import { parseSnapshot } from "../core/snapshot_vm.ts";
import { loadSnapshotCodec } from "../core/snapshot_codec.ts";

// Encoding and decoding files directly needs the checksum and compression code.
await loadSnapshotCodec();

const missing = haveCrossCompiler()
  ? undefined
  : "riscv64-linux-gnu-gcc is not installed (deno task image linux-rv64 installs it)";
if (missing !== undefined) console.error(`snapshot_machine_test: skipped: ${missing}`);

/** Writes sector i, says "step i", drops the page cache and reads sectors 1..i from the disk. */
const SCRIPT = [
  "for i in 1 2 3 4 5 6; do",
  "printf 'data %d\\n' $i | dd of=/dev/vda bs=512 seek=$i conv=sync,fsync 2>/dev/null;",
  "echo step $i;",
  "echo 3 > /proc/sys/vm/drop_caches;",
  "echo read: $(dd if=/dev/vda bs=512 skip=1 count=$i 2>/dev/null | tr -d '\\000');",
  "done",
].join(" ");

const POINTS = ["step 2", "step 4", "step 6"];

interface Run {
  out: string;
  exit: MachineExit;
}

/** Runs a machine to its end, collecting its console; `onSnapshot` may pause work (async). */
async function runMachine(
  spec: MachineManifest | { restore: string },
  options: {
    triggers?: SnapshotTrigger[];
    onSnapshot?: (path: string) => Promise<void> | void;
  } = {},
): Promise<Run> {
  const dec = new TextDecoder();
  let out = "";
  const errors: string[] = [];
  const machine = await createMachine(spec, {
    console: { write: (b) => out += dec.decode(b, { stream: true }) },
    log: () => {},
    ...(options.triggers ? { snapshotOn: options.triggers } : {}),
    onSnapshot: (r) => {
      if ("error" in r) errors.push(r.error);
      else {
        Promise.resolve(options.onSnapshot?.(r.path ?? "(settled, no file)")).then(
          () => machine.resume(),
          (e) => errors.push(String(e)),
        );
      }
    },
  });
  const exit = await machine.run();
  assert.deepEqual(errors, []);
  return { out, exit };
}

/** The output after the line that holds `text` (where its trigger's snapshot was taken). */
function after(out: string, text: string): string {
  const at = out.indexOf(text);
  assert.ok(at >= 0, `"${text}" not in the output`);
  return out.slice(out.indexOf("\n", at) + 1);
}

/** Stats without the wall time. */
function counters(exit: MachineExit): unknown {
  return { ...exit.stats, wallMs: 0 };
}

Deno.test({
  name: "snapshot: restored at several points under icount, output, counters and disk match",
  ignore: missing !== undefined,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmon-snap-" });
    try {
      const disk = join(dir, "disk.img");
      await Deno.writeFile(disk, new Uint8Array(64 * 1024));
      const image = await buildImage("linux-rv64");
      const base = imageManifest(image, {
        exec: SCRIPT,
        hostport: { use: "rv64", options: { clock: "icount" } },
      });
      const manifest: MachineManifest = {
        ...base,
        platform: { ...base.platform, options: { ...base.platform.options, "rng-seed": false } },
        // no network: this test is about the disk and the console (tests/snapshot_net_test.ts has one).
        devices: [
          ...(base.devices ?? []).filter((d) => d.use !== "virtio-net"),
          { use: "virtio-blk", options: { file: disk } },
        ],
      };
      const snap = (i: number) => join(dir, `s${i}.snap`);
      const diskAt = (i: number) => join(dir, `disk${i}.img`);
      // Run A takes a snapshot at every point, pausing to copy the disk as it is then.
      const a = await runMachine(manifest, {
        triggers: POINTS.map((text, i) => ({ text, path: snap(i), then: "pause" })),
        onSnapshot: async (path) => {
          const i = Number(/s(\d)\.snap$/.exec(path)![1]);
          await Deno.copyFile(disk, diskAt(i));
        },
      });
      assert.equal(a.exit.status, 0, a.out);
      assert.match(a.out, /read: data 1 data 2 data 3 data 4 data 5 data 6/);
      const finalDisk = await Deno.readFile(disk);

      for (let i = 0; i < POINTS.length; i++) {
        await Deno.copyFile(diskAt(i), disk);
        // At the later points, where run A wrote snapshots (each drops derived caches, which the
        // counters see), the restored run only settles (triggers without a file): its counters
        // must still be run A's, so settling does to the machine exactly what a snapshot does.
        const b = await runMachine({ restore: snap(i) }, {
          triggers: POINTS.slice(i + 1).map((text) => ({ text, then: "continue" })),
        });
        assert.equal(b.out, after(a.out, POINTS[i]!), `output after "${POINTS[i]}"`);
        assert.deepEqual(counters(b.exit), counters(a.exit), `counters after "${POINTS[i]}"`);
        assert.equal(b.exit.status, a.exit.status);
        assert.deepEqual(await Deno.readFile(disk), finalDisk, `disk after "${POINTS[i]}"`);
      }
      // Sectors written before "step 2" are read back from the disk file after the restore.
      await Deno.copyFile(diskAt(0), disk);
      const b = await runMachine({ restore: snap(0) });
      assert.match(b.out, /^(\[[^\n]*drop_caches[^\n]*\n)?read: data 1 data 2\r?\n/);

      // Bad files: one line each, never a crash.
      const good = await Deno.readFile(snap(0));
      const bad = async (name: string, bytes: Uint8Array, pattern: RegExp) => {
        const path = join(dir, `${name}.snap`);
        await Deno.writeFile(path, bytes);
        await assert.rejects(
          () => createMachine({ restore: path }, { log: () => {} }),
          (e: Error) => {
            assert.match(e.message, pattern);
            assert.ok(!e.message.includes("\n"), e.message);
            return true;
          },
        );
      };
      await bad("truncated", good.subarray(0, good.length - 1000), /truncated/);
      const flipped = good.slice();
      flipped[good.length - 5000]! ^= 0x40;
      await bad("corrupted", flipped, /corrupted/);
      const v2 = good.slice();
      new DataView(v2.buffer).setUint32(8, 2, true);
      await bad("version", v2, /format version 2|header is corrupted/);
      await bad("text", new TextEncoder().encode("hello"), /not a vmon snapshot/);
      // Another machine: the same sections with a META saying 128 MiB at another address.
      const sections = (await import("../core/snapshot_format.ts")).decodeSnapshot(good, {
        name: "x",
      });
      const meta = JSON.parse(new TextDecoder().decode(sections[0]!.payload));
      meta.manifest.memory = "128M";
      const other = encodeSnapshot([
        { tag: "META", payload: new TextEncoder().encode(JSON.stringify(meta)) },
        ...sections.slice(1),
      ]);
      parseSnapshot(other, { name: "other" }); // well-formed: refused only at restore
      await bad("other", other, /RAM 256 MiB at 0x80000000; this machine has 128 MiB/);
      const gone = good.slice();
      await Deno.remove(disk);
      await bad("disk-gone", gone, /disk\.img.*no such file|No such file|not found/i);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
