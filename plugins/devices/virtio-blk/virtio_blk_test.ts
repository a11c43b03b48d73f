import { deepStrictEqual as assertEquals, equal, match, ok, rejects } from "node:assert/strict";
import type { HostFile, HostFiles } from "../../../core/api/mod.ts";
import { createHostFiles, createTestDeviceHost, setupTestDevice } from "../../../testing/mod.ts";
import { MmioReg, VirtioStatus } from "../../../core/virtio/mod.ts";
import { type UsedEntry, VirtioTestDriver } from "../../../testing/virtio.ts";
import virtioBlk, { BlkFeature, BlkStatus, BlkType } from "./mod.ts";

const SECTORS = 128;

function header(type: number, sector: bigint | number): Uint8Array {
  const h = new DataView(new ArrayBuffer(16));
  h.setUint32(0, type, true);
  h.setBigUint64(8, BigInt(sector), true);
  return new Uint8Array(h.buffer);
}

function pattern(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (i * 7 + seed) & 0xff);
}

/** Real files, with a hook that runs during sync (to check ordering). */
function spyFiles(onSync: () => void): HostFiles & { opened: { write: boolean }[] } {
  const real = createHostFiles();
  const opened: { write: boolean }[] = [];
  return {
    opened,
    readFile: real.readFile,
    open(path: string, options: { readonly write: boolean }): HostFile {
      opened.push({ write: options.write });
      const f = real.open(path, options);
      return {
        get size() {
          return f.size;
        },
        readAt: (b, o) => f.readAt(b, o),
        writeAt: (b, o) => f.writeAt(b, o),
        sync() {
          onSync();
          f.sync();
        },
        close: () => f.close(),
      };
    },
  };
}

async function setup(options: Record<string, unknown> = {}, onSync: () => void = () => {}) {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  Deno.writeFileSync(path, pattern(SECTORS * 512, 1));
  const files = spyFiles(() => onSync());
  const host = createTestDeviceHost({ hasPio: false, files });
  const dev = await setupTestDevice(virtioBlk, host, { file: path, ...options });
  const driver = new VirtioTestDriver(host, host.descriptions[0]!.mmio!.base);
  ok(driver.init() & VirtioStatus.DRIVER_OK);
  const cleanup = () => {
    dev.dispose();
    Deno.removeSync(path);
  };
  return { host, dev, driver, path, files, cleanup };
}

function status(driver: VirtioTestDriver, u: UsedEntry): number {
  const all = driver.readUsed(u, u.writable.reduce((n, b) => n + b.len, 0));
  return all[all.length - 1]!;
}

Deno.test("virtio-blk: config and features", async () => {
  const { driver, files, cleanup } = await setup();
  try {
    equal(driver.reg(MmioReg.DEVICE_ID), 2);
    equal(driver.config(0, 4), SECTORS);
    equal(driver.config(4, 4), 0);
    equal(driver.config(12, 4), 254);
    equal(driver.config(20, 4), 512);
    const f = driver.deviceFeatures();
    ok(f & BlkFeature.FLUSH && f & BlkFeature.SEG_MAX && f & BlkFeature.BLK_SIZE);
    equal(f & BlkFeature.RO, 0n);
    assertEquals(files.opened, [{ write: true }]);
  } finally {
    cleanup();
  }
});

Deno.test("virtio-blk: read, write and read back, direct and indirect", async () => {
  const { driver, host, path, cleanup } = await setup();
  try {
    driver.submit(0, [{ data: header(BlkType.IN, 2) }, { len: 1024 }, { len: 1 }]);
    let [u] = driver.takeUsed(0);
    equal(u!.len, 1025);
    equal(status(driver, u!), BlkStatus.OK);
    assertEquals(driver.readUsed(u!, 1024), pattern(SECTORS * 512, 1).slice(1024, 2048));
    const data = pattern(1536, 99);
    driver.submit(0, [
      { data: header(BlkType.OUT, 5) },
      { data: data.slice(0, 512) },
      { data: data.slice(512) },
      { len: 1 },
    ], { indirect: true });
    [u] = driver.takeUsed(0);
    equal(u!.len, 1);
    equal(status(driver, u!), BlkStatus.OK);
    assertEquals(Deno.readFileSync(path).slice(5 * 512, 5 * 512 + 1536), data);
    // Read back with the status byte sharing the last data buffer.
    driver.submit(0, [{ data: header(BlkType.IN, 5) }, { len: 1000 }, { len: 537 }]);
    [u] = driver.takeUsed(0);
    equal(u!.len, 1537);
    assertEquals(driver.readUsed(u!, 1536), data);
    equal(status(driver, u!), BlkStatus.OK);
    const c = host.counters();
    equal(c.reads, 2);
    equal(c.writes, 1);
    equal(c.bytes_written, 1536);
  } finally {
    cleanup();
  }
});

Deno.test("virtio-blk: FLUSH syncs before the status byte is written", async () => {
  let seenStatus = -1;
  let statusAddr = -1;
  const ref: { host?: ReturnType<typeof createTestDeviceHost> } = {};
  const { driver, host, cleanup } = await setup({}, () => {
    seenStatus = ref.host!.memory.readU8(statusAddr);
  });
  ref.host = host;
  try {
    statusAddr = driver.alloc(1);
    host.memory.writeU8(statusAddr, 0xee);
    driver.submit(0, [{ data: header(BlkType.FLUSH, 0) }, { addr: statusAddr, len: 1 }]);
    equal(seenStatus, 0xee, "status still untouched during sync");
    equal(host.memory.readU8(statusAddr), BlkStatus.OK);
    equal(host.counters().flushes, 1);
  } finally {
    cleanup();
  }
});

Deno.test("virtio-blk: GET_ID returns the serial", async () => {
  const { driver, cleanup } = await setup({ serial: "disk-0001" });
  try {
    driver.submit(0, [{ data: header(BlkType.GET_ID, 0) }, { len: 20 }, { len: 1 }]);
    const [u] = driver.takeUsed(0);
    equal(u!.len, 21);
    const id = driver.readUsed(u!, 20);
    equal(new TextDecoder().decode(id.subarray(0, 9)), "disk-0001");
    equal(id[9], 0);
    equal(status(driver, u!), BlkStatus.OK);
  } finally {
    cleanup();
  }
});

Deno.test("virtio-blk: bad requests get IOERR or UNSUPP and the device keeps working", async () => {
  const { driver, host, path, cleanup } = await setup();
  try {
    const before = Deno.readFileSync(path);
    const expect = (buffers: Parameters<VirtioTestDriver["submit"]>[1], want: number) => {
      driver.submit(0, buffers);
      const [u] = driver.takeUsed(0);
      equal(status(driver, u!), want, JSON.stringify(buffers.map((b) => b.len ?? b.data?.length)));
    };
    // Beyond the end, straddling the end, absurd sector numbers.
    expect([{ data: header(BlkType.IN, SECTORS) }, { len: 512 }, { len: 1 }], BlkStatus.IOERR);
    expect([{ data: header(BlkType.IN, SECTORS - 1) }, { len: 1024 }, { len: 1 }], BlkStatus.IOERR);
    expect(
      [{ data: header(BlkType.IN, 2n ** 64n - 1n) }, { len: 512 }, { len: 1 }],
      BlkStatus.IOERR,
    );
    expect([
      { data: header(BlkType.OUT, 2n ** 62n) },
      { data: new Uint8Array(512) },
      { len: 1 },
    ], BlkStatus.IOERR);
    // Not whole sectors.
    expect([{ data: header(BlkType.IN, 0) }, { len: 100 }, { len: 1 }], BlkStatus.IOERR);
    expect(
      [{ data: header(BlkType.OUT, 0) }, { data: new Uint8Array(3) }, { len: 1 }],
      BlkStatus.IOERR,
    );
    // A short header.
    expect([{ data: new Uint8Array(8) }, { len: 1 }], BlkStatus.IOERR);
    // Unknown types (DISCARD, WRITE_ZEROES, garbage).
    expect([{ data: header(11, 0) }, { len: 1 }], BlkStatus.UNSUPP);
    expect([{ data: header(13, 0) }, { len: 1 }], BlkStatus.UNSUPP);
    expect([{ data: header(0xffffffff, 0) }, { len: 1 }], BlkStatus.UNSUPP);
    // No status byte at all: returned with length 0.
    driver.submit(0, [{ data: header(BlkType.IN, 0) }]);
    equal(driver.takeUsed(0)[0]!.len, 0);
    // A data buffer outside RAM: a malformed chain.
    driver.submit(0, [{ data: header(BlkType.IN, 0) }, { addr: 0x7fff_0000, len: 512 }, {
      len: 1,
    }]);
    equal(driver.takeUsed(0)[0]!.len, 0);
    assertEquals(Deno.readFileSync(path), before, "nothing was written");
    const c = host.counters();
    equal(c.unsupported, 3);
    equal(c.malformed_chains, 1);
    equal(driver.status() & VirtioStatus.DEVICE_NEEDS_RESET, 0);
    expect([{ data: header(BlkType.IN, 0) }, { len: 512 }, { len: 1 }], BlkStatus.OK);
  } finally {
    cleanup();
  }
});

Deno.test("virtio-blk: read-only disks refuse writes", async () => {
  const { driver, path, files, cleanup } = await setup({ readonly: true });
  try {
    assertEquals(files.opened, [{ write: false }]);
    ok(driver.deviceFeatures() & BlkFeature.RO);
    const before = Deno.readFileSync(path);
    driver.submit(0, [{ data: header(BlkType.OUT, 0) }, { data: new Uint8Array(512) }, { len: 1 }]);
    const [u] = driver.takeUsed(0);
    equal(status(driver, u!), BlkStatus.IOERR);
    assertEquals(Deno.readFileSync(path), before);
    driver.submit(0, [{ data: header(BlkType.FLUSH, 0) }, { len: 1 }]);
    equal(status(driver, driver.takeUsed(0)[0]!), BlkStatus.OK);
  } finally {
    cleanup();
  }
});

Deno.test("virtio-blk: the file option is required and a missing file is a clear error", async () => {
  const host = createTestDeviceHost({ hasPio: false });
  await rejects(() => setupTestDevice(virtioBlk, host), /file/);
  await rejects(
    () => setupTestDevice(virtioBlk, host, { file: "/nonexistent/disk.img" }),
    /Cannot open file "\/nonexistent\/disk.img": no such file/,
  );
});

/** Sets up virtio-blk on `path` with `options` on a fresh test host (real host files). */
function attach(path: string, options: Record<string, unknown> = {}) {
  return setupTestDevice(virtioBlk, createTestDeviceHost({ hasPio: false }), {
    file: path,
    ...options,
  });
}

Deno.test("virtio-blk: a writable image is locked; a second writer or reader is refused", async () => {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  Deno.writeFileSync(path, pattern(SECTORS * 512, 3));
  const before = Deno.readFileSync(path);
  const first = await attach(path);
  try {
    // flock belongs to the open file description: a second open in this process conflicts too.
    for (const options of [{}, { readonly: true }]) {
      await rejects(() => attach(path, options), (e: Error) => {
        match(e.message, /^Cannot open file ".*\.img" (for writing|read-only): it is locked by /);
        ok(e.message.includes(path), e.message);
        ok(e.message.includes("this process"), e.message);
        ok(!e.message.includes("\n"), e.message);
        return true;
      });
    }
    assertEquals(Deno.readFileSync(path), before);
    // lock=off opens it anyway (for those who know nothing else writes it).
    const forced = await attach(path, { lock: "off" });
    forced.dispose();
  } finally {
    first.dispose();
  }
  // Closing releases the lock.
  (await attach(path)).dispose();
  Deno.removeSync(path);
});

Deno.test("virtio-blk: read-only images share the lock; a writer is refused meanwhile", async () => {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  Deno.writeFileSync(path, pattern(SECTORS * 512, 4));
  const a = await attach(path, { readonly: true });
  const b = await attach(path, { readonly: true });
  try {
    await rejects(() => attach(path), /for writing: it is locked by this process/);
  } finally {
    a.dispose();
    b.dispose();
  }
  (await attach(path)).dispose();
  Deno.removeSync(path);
});

Deno.test("virtio-blk: lock takes on or off only", async () => {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  Deno.writeFileSync(path, new Uint8Array(512));
  try {
    await rejects(() => attach(path, { lock: "maybe" }), /lock/);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("virtio-blk: an image that cannot be opened for writing suggests readonly=true", async () => {
  const path = Deno.makeTempFileSync({ suffix: ".img" });
  Deno.writeFileSync(path, new Uint8Array(SECTORS * 512));
  // Root ignores file modes, but not the immutable attribute; others get EACCES from mode 0444.
  let denied: boolean;
  if (Deno.uid() === 0) {
    denied =
      new Deno.Command("chattr", { args: ["+i", path], stderr: "null" }).outputSync().success;
  } else {
    Deno.chmodSync(path, 0o444);
    denied = true;
  }
  if (!denied) {
    console.error("virtio-blk permission test: skipped: chattr +i is not supported here");
    Deno.removeSync(path);
    return;
  }
  try {
    await rejects(() => attach(path), (e: Error) => {
      match(e.message, /: permission denied.*\(attach it read-only: readonly=true\)$/);
      equal(e.message.split("readonly=true").length, 2, e.message); // said once
      ok(e.message.includes(path), e.message);
      return true;
    });
    (await attach(path, { readonly: true })).dispose();
  } finally {
    if (Deno.uid() === 0) new Deno.Command("chattr", { args: ["-i", path] }).outputSync();
    Deno.removeSync(path);
  }
});
