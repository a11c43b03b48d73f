import { strictEqual, throws } from "node:assert/strict";
import * as node from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  basename,
  delimiter,
  dirname,
  fromFileUrl,
  isAbsolute,
  join,
  relative,
  resolve,
  toFileUrl,
} from "./paths.ts";

const SAMPLES = [
  "",
  ".",
  "..",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "a/b/c",
  "/a/b/../c",
  "./a/./b/",
  "../../x",
  "a//b///c/",
  "/..",
  "/../a",
  "a/..",
  "a/../..",
  "x y/#1?%.ts",
  "é/€",
];

Deno.test("paths: join, resolve, dirname, basename, isAbsolute, relative as node:path", () => {
  strictEqual(delimiter, node.delimiter);
  for (const a of SAMPLES) {
    strictEqual(dirname(a), node.dirname(a), `dirname(${JSON.stringify(a)})`);
    strictEqual(basename(a), node.basename(a), `basename(${JSON.stringify(a)})`);
    strictEqual(isAbsolute(a), node.isAbsolute(a), `isAbsolute(${JSON.stringify(a)})`);
    strictEqual(resolve(a), node.resolve(a), `resolve(${JSON.stringify(a)})`);
    for (const b of SAMPLES) {
      const args = JSON.stringify([a, b]);
      strictEqual(join(a, b), node.join(a, b), `join${args}`);
      strictEqual(resolve(a, b), node.resolve(a, b), `resolve${args}`);
      strictEqual(relative(a, b), node.relative(a, b), `relative${args}`);
    }
  }
  strictEqual(join(), node.join());
  strictEqual(resolve(), node.resolve());
  strictEqual(join("/a", "b", "../c", "d/"), node.join("/a", "b", "../c", "d/"));
});

Deno.test("paths: file URLs as node:url", () => {
  for (const p of [...SAMPLES.filter((s) => s !== ""), "/tmp/a b#1?x%41\\y\tz", "/a/b/"]) {
    const mine = toFileUrl(p);
    strictEqual(mine.href, pathToFileURL(p).href, `toFileUrl(${JSON.stringify(p)})`);
    strictEqual(fromFileUrl(mine), fileURLToPath(mine), `fromFileUrl(${mine.href})`);
    strictEqual(fromFileUrl(mine.href), fileURLToPath(mine.href));
  }
  strictEqual(fromFileUrl("file://localhost/etc/hosts"), "/etc/hosts");
  throws(() => fromFileUrl("https://example.com/a"), /not a file URL/);
  throws(() => fromFileUrl("file://host/a"), /names a host/);
  throws(() => fromFileUrl("file:///a%2Fb"), /encodes a slash/);
});
