import { exitKindName, parseTraceSpec, Tracer } from "./trace.ts";
import { ExitKind, type ExitRecord } from "./api/mod.ts";
import { VmonError } from "./errors.ts";

function eq(actual: unknown, expected: unknown): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

Deno.test("parseTraceSpec accepts lists, commas and all", () => {
  eq([...parseTraceSpec("io,mmio")], ["io", "mmio"]);
  eq([...parseTraceSpec(["sbi", " Exits "])], ["sbi", "exits"]);
  eq([...parseTraceSpec("all")].sort(), ["exits", "io", "mmio", "plugins", "sbi"]);
  eq([...parseTraceSpec("")], []);
});

Deno.test("parseTraceSpec refuses unknown categories", () => {
  try {
    parseTraceSpec("io,disk");
    throw new Error("no error");
  } catch (e) {
    if (!(e instanceof VmonError)) throw e;
    eq(
      e.message,
      'Invalid trace spec "io,disk": unknown category "disk" (known: exits, io, mmio, sbi, plugins, all)',
    );
  }
  try {
    parseTraceSpec(["exits", " Bogus"], { what: "--trace" });
    throw new Error("no error");
  } catch (e) {
    if (!(e instanceof VmonError)) throw e;
    eq(
      e.message,
      'Invalid --trace "exits, Bogus": unknown category "Bogus" (known: exits, io, mmio, sbi, plugins, all)',
    );
  }
});

Deno.test("Tracer fields reflect the spec and lines are prefixed", () => {
  const lines: string[] = [];
  const t = new Tracer("exits,plugins", { write: (l) => lines.push(l) });
  eq([t.exits, t.io, t.mmio, t.sbi, t.plugins, t.enabled], [true, false, false, false, true, true]);
  eq(t.categories, ["exits", "plugins"]);
  eq(new Tracer().enabled, false);
  t.plugin("uart16550", "reset");
  const exit = {
    kind: ExitKind.Halt,
    pc: 0x1000n,
    detail: "",
  } as ExitRecord;
  t.exit(3, exit);
  t.exit(
    0,
    {
      kind: ExitKind.Io,
      address: 0x3f8,
      size: 1,
      isWrite: true,
      count: 2,
      pc: 0x10n,
      detail: "",
    } as ExitRecord,
  );
  t.exit(
    0,
    { kind: ExitKind.InternalError, code: 1, pc: 0x20n, detail: "emulation failure" } as ExitRecord,
  );
  eq(lines, [
    "[uart16550] reset",
    "[vcpu3] exit hlt pc=0x1000",
    "[vcpu0] exit io write 0x3f8 size 1 count 2 pc=0x10",
    "[vcpu0] exit internal_error code 1 pc=0x20 emulation failure",
  ]);
  eq([exitKindName(ExitKind.SystemEvent), exitKindName(99)], ["system_event", "kind99"]);
});
