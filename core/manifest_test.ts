import { checkHostMemory, loadManifestFile, validateManifest } from "./manifest.ts";
import { VmonError } from "./errors.ts";
import { join } from "node:path";

function eq(actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

async function rejects(fn: () => unknown, message: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`expected VmonError, got ${e}`);
    if (!e.message.startsWith(message)) {
      throw new Error(`got ${JSON.stringify(e.message)}, expected ${JSON.stringify(message)}`);
    }
    return;
  }
  throw new Error(`expected ${JSON.stringify(message)}`);
}

const minimal = { hostport: "rv64", platform: "riscv-virt" };

Deno.test("validateManifest normalizes sizes and string references", () => {
  eq(validateManifest(minimal), { hostport: { use: "rv64" }, platform: { use: "riscv-virt" } });
  const m = validateManifest({
    cpus: 4,
    memory: "128M",
    hostport: { use: "kvm" },
    platform: { use: "x86-64-direct", options: { acpi: false } },
    paging: "shadow",
    devices: ["uart16550", { use: "virtio-blk", options: { disk: "a.img" } }],
    boot: { kernel: "k", cmdline: "console=ttyS0" },
  });
  eq(m, {
    cpus: 4,
    memory: 128 * 1024 * 1024,
    hostport: { use: "kvm" },
    platform: { use: "x86-64-direct", options: { acpi: false } },
    paging: { use: "shadow" },
    devices: [{ use: "uart16550" }, { use: "virtio-blk", options: { disk: "a.img" } }],
    boot: { kernel: "k", cmdline: "console=ttyS0" },
  });
  eq(validateManifest({ ...minimal, memory: 1 << 20 }).memory, 1 << 20);
});

Deno.test("validateManifest errors name the JSON path", async () => {
  const bad = (patch: Record<string, unknown>) => () => validateManifest({ ...minimal, ...patch });
  await rejects(
    bad({ devices: ["a", { use: 5 }] }),
    "Invalid manifest: devices[1].use must be a string, got number 5",
  );
  await rejects(
    bad({ devices: ["a", { name: "x" }] }),
    'Invalid manifest: devices[1] has unknown key "name" (expected use, options)',
  );
  await rejects(
    bad({ devices: [{ use: "x", options: [1] }] }),
    "Invalid manifest: devices[0].options must be an object, got an array",
  );
  await rejects(
    bad({ devices: [{ use: " " }] }),
    "Invalid manifest: devices[0].use must not be empty",
  );
  await rejects(
    bad({ devices: [7] }),
    "Invalid manifest: devices[0] must be a plugin name or { use, options }, got number 7",
  );
  await rejects(bad({ devices: {} }), "Invalid manifest: devices must be an array, got an object");
  await rejects(bad({ cpus: 0 }), "Invalid manifest: cpus must be 1-64, got 0");
  await rejects(bad({ cpus: 65 }), "Invalid manifest: cpus must be 1-64, got 65");
  await rejects(
    bad({ cpus: 1.5 }),
    "Invalid manifest: cpus must be a whole number, got number 1.5",
  );
  await rejects(
    bad({ cpus: "2" }),
    'Invalid manifest: cpus must be a whole number, got the string "2"',
  );
  await rejects(
    bad({ memory: "lots" }),
    'Invalid manifest: memory must be a size such as 64M or a byte count, got the string "lots"',
  );
  await rejects(bad({ memory: true }), "Invalid manifest: memory must be a size");
  await rejects(
    bad({ memory: 1000 }),
    "Invalid manifest: memory must be a non-zero multiple of 4k, got 1000",
  );
  await rejects(bad({ memory: 0 }), "Invalid manifest: memory must be a non-zero multiple of 4k");
  await rejects(
    bad({ paging: null }),
    "Invalid manifest: paging must be a plugin name or { use, options }, got null",
  );
  await rejects(
    bad({ boot: { kernel: 1 } }),
    "Invalid manifest: boot.kernel must be a string, got number 1",
  );
  await rejects(
    bad({ boot: { image: "x" } }),
    'Invalid manifest: boot has unknown key "image" (expected kernel, initrd, cmdline)',
  );
  await rejects(bad({ boot: "k" }), "Invalid manifest: boot must be an object");
  await rejects(
    bad({ name: "vm" }),
    'Invalid manifest: unknown key "name" (expected cpus, memory, overcommit, hostport, platform, paging, devices, boot)',
  );
  await rejects(
    () => validateManifest({ platform: "p" }),
    "Invalid manifest: hostport is required",
  );
  await rejects(
    () => validateManifest({ hostport: "h" }),
    "Invalid manifest: platform is required",
  );
  await rejects(
    () => validateManifest([minimal]),
    "Invalid manifest: expected a JSON object, got an array",
  );
  await rejects(
    () => validateManifest(null, { source: "m.json" }),
    'Invalid manifest "m.json": expected a JSON object, got null',
  );
});

Deno.test("loadManifestFile reads JSON and TS manifests and resolves relative paths", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "vmon_manifest_test_" });
  try {
    const json = join(dir, "m.json");
    Deno.writeTextFileSync(
      json,
      JSON.stringify({
        ...minimal,
        devices: ["uart16550", { use: "./dev.ts" }, "https://example.com/d.js"],
        boot: { kernel: "Image", initrd: "/abs/initrd", cmdline: "./not-a-path" },
      }),
    );
    const m = await loadManifestFile(json);
    eq(m.devices?.map((d) => d.use), [
      "uart16550",
      join(dir, "dev.ts"),
      "https://example.com/d.js",
    ]);
    eq(m.boot, { kernel: join(dir, "Image"), initrd: "/abs/initrd", cmdline: "./not-a-path" });

    const ts = join(dir, "m.ts");
    Deno.writeTextFileSync(
      ts,
      `export default { hostport: "kvm", platform: "x86-64-direct", memory: "2M" };\n`,
    );
    eq(await loadManifestFile(ts), {
      memory: 2 * 1024 * 1024,
      hostport: { use: "kvm" },
      platform: { use: "x86-64-direct" },
    });

    const bad = join(dir, "bad.json");
    Deno.writeTextFileSync(bad, "{ hostport: ");
    await rejects(() => loadManifestFile(bad), `Invalid manifest "${bad}": not JSON:`);
    const wrong = join(dir, "wrong.json");
    Deno.writeTextFileSync(wrong, JSON.stringify({ ...minimal, cpus: 100 }));
    await rejects(
      () => loadManifestFile(wrong),
      `Invalid manifest "${wrong}": cpus must be 1-64, got 100`,
    );
    await rejects(
      () => loadManifestFile(join(dir, "missing.json")),
      `Cannot read manifest "${join(dir, "missing.json")}": no such file`,
    );
    const nodefault = join(dir, "nodefault.ts");
    Deno.writeTextFileSync(nodefault, "export const x = 1;\n");
    await rejects(
      () => loadManifestFile(nodefault),
      `Invalid manifest "${nodefault}": the module has no default export`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("overcommit is a boolean; memory beyond the host's is refused unless it is set", async () => {
  eq(validateManifest({ ...minimal, overcommit: true }).overcommit, true);
  eq("overcommit" in validateManifest(minimal), false);
  await rejects(
    () => validateManifest({ ...minimal, overcommit: "yes" }),
    'Invalid manifest: overcommit must be true or false, got the string "yes"',
  );
  const GiB = 2 ** 30;
  checkHostMemory(GiB, { hostMemory: 23.5 * GiB });
  checkHostMemory(23.5 * GiB, { hostMemory: 23.5 * GiB });
  await rejects(
    () => checkHostMemory(1024 * GiB, { hostMemory: 23.5 * GiB }),
    `Cannot give the machine 1T of RAM: more than the host's 23.5 GiB (--overcommit, or`,
  );
  checkHostMemory(1024 * GiB, { hostMemory: 23.5 * GiB, overcommit: true });
  // The real host: its own size fits, one page more does not.
  const total = Deno.systemMemoryInfo().total;
  checkHostMemory(Math.floor(total / 4096) * 4096);
  await rejects(() => checkHostMemory(total + 4096), "Cannot give the machine");
});
