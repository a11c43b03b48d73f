import { deepStrictEqual as assertEquals, ok, rejects } from "node:assert/strict";
import { VmonError } from "../core/errors.ts";
import { buildImage, listImages } from "./mod.ts";

Deno.test("listImages lists the x86 guests with their defaults", () => {
  const names = listImages().map((i) => i.name);
  for (const name of ["hello", "exits", "smp", "memtest"]) ok(names.includes(name), name);
  assertEquals(new Set(names).size, names.length, "names are unique");
  for (const image of listImages()) ok(image.description.length > 0, image.name);
});

Deno.test("buildImage refuses unknown names and lists the known ones", async () => {
  await rejects(buildImage("nope"), (e: unknown) => {
    ok(e instanceof VmonError);
    ok(e.message.startsWith('Cannot build image "nope": unknown image (known: '), e.message);
    ok(e.message.includes("hello, exits, smp, crash, memtest"), e.message);
    return true;
  });
});

Deno.test("buildImage returns the kernel and the machine defaults", async () => {
  const hello = await buildImage("hello");
  assertEquals(hello.name, "hello");
  ok(hello.kernel.endsWith("/hello.elf"));
  ok(Deno.statSync(hello.kernel).isFile);
  assertEquals(hello.defaults.platform, "x86-64-direct");
  assertEquals(hello.defaults.hostport, "kvm");
  const smp = await buildImage("smp");
  assertEquals(smp.defaults.cpus, 4);
  const exits = await buildImage("exits");
  assertEquals(exits.cmdline, "arg=10000");
  assertEquals(exits.defaults.platformOptions, { ring: 0 });
});
