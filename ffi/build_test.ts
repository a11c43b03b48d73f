// Tests of the C accelerator build: cache hits, compiler errors, a missing compiler, loading.

import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { join } from "node:path";
import { VmonError } from "../core/errors.ts";
import { buildLibrary, findCompiler, planLibrary } from "./build.ts";
import { loadLibrary, overrideVariable } from "./mod.ts";

function tempBackend(source: string): string {
  const dir = Deno.makeTempDirSync({ prefix: "vmon-ffi-test-" });
  Deno.writeTextFileSync(join(dir, "lib.c"), source);
  return dir;
}

Deno.test("build: compiles once, then the cached library is returned without compiling", () => {
  // A unique source gives a hash no other run has built.
  const dir = tempBackend(
    `/* ${crypto.randomUUID()} */\n#include "vmon_ffi.h"\nVMON_EXPORT int test_add(int a, int b) { return a + b; }\n`,
  );
  try {
    const lines: string[] = [];
    const onProgress = (line: string) => lines.push(line);
    const first = buildLibrary("testlib", { sourceDir: dir, onProgress });
    assertEquals(lines, ["Compiling the C accelerator (testlib)..."]);
    assert(/libvmon-testlib-[0-9a-f]{16}\.so$/.test(first), first);
    const second = buildLibrary("testlib", { sourceDir: dir, onProgress });
    assertEquals(second, first);
    assertEquals(lines.length, 1, "no second compilation");
    const lib = Deno.dlopen(first, { test_add: { parameters: ["i32", "i32"], result: "i32" } });
    try {
      assertEquals(lib.symbols.test_add(2, 40), 42);
    } finally {
      lib.close();
    }
    // A changed source is a new library (a second dlopen of one path would return old code).
    Deno.writeTextFileSync(join(dir, "lib.c"), "int test_other(void) { return 1; }\n");
    const third = buildLibrary("testlib", { sourceDir: dir, onProgress });
    assert(third !== first);
    Deno.removeSync(first);
    Deno.removeSync(third);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("build: a compile error reports the compiler's first error lines", () => {
  const dir = tempBackend(`/* ${crypto.randomUUID()} */\nint broken(void) { return nope; }\n`);
  try {
    throws(
      () => buildLibrary("broken", { sourceDir: dir, onProgress: () => {} }),
      (e: unknown) =>
        e instanceof VmonError &&
        e.message.startsWith("Cannot build the C accelerator (broken): ") &&
        e.message.includes("'nope' undeclared"),
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("build: a bad CC gives the no-compiler error", () => {
  throws(
    () => buildLibrary("kvm", { cc: "/nonexistent/bin/cc" }),
    (e: unknown) =>
      e instanceof VmonError &&
      e.message.startsWith(
        "Cannot build the C accelerator: no C compiler found (install gcc or set CC",
      ) && e.message.includes("/nonexistent/bin/cc"),
  );
  throws(() => findCompiler("no-such-compiler-vmon"), /no C compiler found/);
  assert(findCompiler().length >= 1);
});

Deno.test("build: the plan covers the kvm sources and shared headers", () => {
  const plan = planLibrary("kvm");
  assert(plan.sources.some((p) => p.endsWith("/ffi/kvm/vcpu.c")));
  assert(plan.headers.some((p) => p.endsWith("/ffi/common/vmon_ffi.h")));
  assert(plan.flags.includes("-fPIC") && plan.flags.includes("-shared"));
  throws(() => planLibrary("../etc"), /backend names use/);
  throws(() => planLibrary("nosuchbackend"), /Cannot build the C accelerator "nosuchbackend"/);
});

Deno.test("load: one handle per thread; VMON_FFI_LIB_<BACKEND> names a prebuilt library", async () => {
  const symbols = { vmon_kvm_vm_fd: { parameters: ["pointer"], result: "i32" } } as const;
  const a = loadLibrary("kvm", symbols);
  assertEquals(loadLibrary("kvm", symbols), a);
  assertEquals(a.symbols.vmon_kvm_vm_fd(null), -1);
  assertEquals(overrideVariable("kvm"), "VMON_FFI_LIB_KVM");
  assertEquals(overrideVariable("rv-64"), "VMON_FFI_LIB_RV_64");
  // The override is read from the environment: check it in a child process.
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { loadLibrary } from ${JSON.stringify(new URL("./mod.ts", import.meta.url).href)};
       try { loadLibrary("kvm", {}); } catch (e) { console.log(e.message); }`,
    ],
    env: { VMON_FFI_LIB_KVM: "/nonexistent/libvmon-kvm.so" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert(
    text.startsWith('Cannot load the C accelerator (kvm) "/nonexistent/libvmon-kvm.so": '),
    text + new TextDecoder().decode(out.stderr),
  );
});
