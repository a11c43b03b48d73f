import { formatSize, parseSize, validateOptions } from "./schema.ts";
import { VmonError } from "./errors.ts";
import type { OptionsSchema } from "./api/mod.ts";

function eq(actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`expected ${e}, got ${a}`);
}

function throwsVmon(fn: () => unknown, message: string, exact = false): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof VmonError)) throw new Error(`expected VmonError, got ${e}`);
    if (exact ? e.message !== message : !e.message.includes(message)) {
      throw new Error(
        `message ${JSON.stringify(e.message)} does not match ${JSON.stringify(message)}`,
      );
    }
    return;
  }
  throw new Error(`expected an error ${JSON.stringify(message)}`);
}

Deno.test("parseSize accepts byte counts, hex and binary units", () => {
  eq(parseSize("4096"), 4096);
  eq(parseSize(4096), 4096);
  eq(parseSize("0x1000"), 4096);
  eq(parseSize("512k"), 512 * 1024);
  eq(parseSize("512K"), 512 * 1024);
  eq(parseSize("64M"), 64 * 1024 * 1024);
  eq(parseSize("64MiB"), 64 * 1024 * 1024);
  eq(parseSize("64MB"), 64 * 1024 * 1024);
  eq(parseSize("2G"), 2 * 1024 ** 3);
  eq(parseSize("1T"), 1024 ** 4);
  eq(parseSize(" 8 k "), 8192);
  eq(parseSize("0"), 0);
});

Deno.test("parseSize refuses what is not a size", () => {
  for (const bad of ["", "12Q", "-1", "1.5G", "M", "0x", "64 M B x"]) {
    throwsVmon(() => parseSize(bad), `Invalid size "${bad}": expected a byte count`);
  }
  throwsVmon(() => parseSize(-1), "Invalid size -1");
  throwsVmon(() => parseSize(1.5), "Invalid size 1.5");
  throwsVmon(() => parseSize("99999999999T"), "too large");
});

Deno.test("formatSize picks the largest exact unit", () => {
  eq(
    [formatSize(64 * 1024 * 1024), formatSize(4096), formatSize(1000), formatSize(3 * 1024 ** 3)],
    [
      "64M",
      "4k",
      "1000",
      "3G",
    ],
  );
});

const schema = {
  base: { type: "integer", description: "Port base", default: 0x3f8, min: 0, max: 0xffff },
  irq: { type: "integer", description: "IRQ line" },
  ratio: { type: "number", description: "A ratio", min: 0 },
  echo: { type: "boolean", description: "Echo input", default: false },
  mode: { type: "string", description: "Mode", enum: ["fast", "slow"], default: "fast" },
  disk: { type: "path", description: "Disk image" },
  ram: { type: "size", description: "Buffer", default: "4k", min: 4096, max: 1024 ** 3 },
} as const satisfies OptionsSchema;

Deno.test("validateOptions applies defaults and passes JSON values through", () => {
  eq(validateOptions(schema, undefined, { plugin: "p" }), {
    base: 0x3f8,
    echo: false,
    mode: "fast",
    ram: 4096,
  });
  const v = validateOptions(schema, {
    base: 0x2f8,
    irq: 4,
    ratio: 0.5,
    echo: true,
    mode: "slow",
    disk: "d.img",
    ram: 1 << 20,
  }, { plugin: "p" });
  eq(v, { base: 0x2f8, irq: 4, ratio: 0.5, echo: true, mode: "slow", disk: "d.img", ram: 1 << 20 });
  eq("irq" in validateOptions(schema, {}, { plugin: "p" }), true);
  eq(validateOptions(schema, {}, { plugin: "p" }).irq, undefined);
  eq(validateOptions(schema, { irq: undefined }, { plugin: "p" }).irq, undefined);
});

Deno.test("validateOptions converts CLI strings", () => {
  const v = validateOptions(schema, {
    base: "0x2F8",
    irq: "-3",
    ratio: "1.25",
    echo: "true",
    ram: "64M",
  }, { plugin: "p" });
  eq([v.base, v.irq, v.ratio, v.echo, v.ram], [0x2f8, -3, 1.25, true, 64 * 1024 * 1024]);
  eq(validateOptions(schema, { echo: "false" }, { plugin: "p" }).echo, false);
  eq(validateOptions(schema, { ratio: "0x10" }, { plugin: "p" }).ratio, 16);
  eq(validateOptions(schema, { irq: "12" }, { plugin: "p" }).irq, 12);
});

Deno.test("validateOptions reports every kind of error", () => {
  const p = { plugin: "uart16550" };
  throwsVmon(
    () => validateOptions({ base: schema.base, irq: schema.irq }, { foo: 1 }, p),
    'Unknown option "foo" for plugin "uart16550": expected one of base, irq',
    true,
  );
  throwsVmon(
    () => validateOptions({}, { x: 1 }, p),
    'Unknown option "x" for plugin "uart16550": it takes no options',
    true,
  );
  throwsVmon(() => validateOptions(schema, "base=1", p), "expected an object of options");
  throwsVmon(() => validateOptions(schema, [1], p), "expected an object of options");
  throwsVmon(
    () => validateOptions(schema, { base: "ten" }, p),
    'Invalid option "base" for plugin "uart16550": expected an integer (decimal or 0x hex), got "ten"',
    true,
  );
  throwsVmon(() => validateOptions(schema, { base: 1.5 }, p), "expected an integer");
  throwsVmon(() => validateOptions(schema, { base: 2 ** 60 }, p), "expected an integer");
  throwsVmon(
    () => validateOptions(schema, { base: 0x10000 }, p),
    'Invalid option "base" for plugin "uart16550": 65536 is above the maximum 65535',
    true,
  );
  throwsVmon(() => validateOptions(schema, { base: -1 }, p), "-1 is below the minimum 0");
  throwsVmon(() => validateOptions(schema, { ratio: "abc" }, p), 'expected a number, got "abc"');
  throwsVmon(() => validateOptions(schema, { ratio: "" }, p), "expected a number");
  throwsVmon(() => validateOptions(schema, { ratio: Infinity }, p), "expected a number");
  throwsVmon(
    () => validateOptions(schema, { echo: "yes" }, p),
    'expected true or false, got "yes"',
  );
  throwsVmon(() => validateOptions(schema, { echo: 1 }, p), "expected true or false, got 1");
  throwsVmon(
    () => validateOptions(schema, { mode: "medium" }, p),
    'got "medium", expected one of fast, slow',
  );
  throwsVmon(() => validateOptions(schema, { mode: 3 }, p), "expected a string, got 3");
  throwsVmon(() => validateOptions(schema, { disk: "" }, p), "expected a path");
  throwsVmon(() => validateOptions(schema, { disk: null }, p), "expected a string, got null");
  throwsVmon(
    () => validateOptions(schema, { ram: "lots" }, p),
    'Invalid option "ram" for plugin "uart16550": expected a size',
  );
  throwsVmon(() => validateOptions(schema, { ram: true }, p), "expected a size");
  throwsVmon(() => validateOptions(schema, { ram: "2k" }, p), "2k is below the minimum 4k");
  throwsVmon(() => validateOptions(schema, { ram: "2G" }, p), "2G is above the maximum 1G");
  throwsVmon(
    () =>
      validateOptions({ disk: { type: "path", description: "Disk image", required: true } }, {}, {
        plugin: "virtio-blk",
      }),
    'Missing option "disk" for plugin "virtio-blk": it is required (path: Disk image)',
    true,
  );
});

Deno.test("validateOptions does not trust inherited keys", () => {
  throwsVmon(
    () => validateOptions(schema, JSON.parse('{"__proto__": {"x": 1}}'), { plugin: "p" }),
    'Unknown option "__proto__"',
  );
  throwsVmon(
    () => validateOptions(schema, { toString: "x" }, { plugin: "p" }),
    'Unknown option "toString"',
  );
});
