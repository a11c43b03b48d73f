// Unit tests of BenchCapture, the streaming side of the one parser of /bench/run.sh output.

import { deepStrictEqual as assertEquals, ok, strictEqual } from "node:assert/strict";
import { BenchCapture, parseBenchOutput } from "./results.ts";

const enc = new TextEncoder();

/** A capture whose clock advances by 7 ms per call. */
function capture(): BenchCapture {
  let t = 100;
  return new BenchCapture({ now: () => t += 7 });
}

const CONSOLE = [
  "[    1.135644] Run /init as init process\r\n",
  "vmon: init ready\r\n",
  "vmon-bench: begin churn 1 200\r\n",
  "[    2.000001] random: crng init done\r\n",
  "result: churn 1 n=200 checksum=0123456789abcdef\r\n",
  "time: churn 812.250 ms\r\n",
  "vmon-bench: end churn status 0\r\n",
  "vmon: exit status 0\r\n",
];

Deno.test("capture cuts the output between the markers and drops kernel and time lines", () => {
  const cap = capture();
  for (const chunk of CONSOLE) cap.write(enc.encode(chunk));
  const out = cap.finish();
  strictEqual(out.begin, "vmon-bench: begin churn 1 200");
  strictEqual(out.end, "vmon-bench: end churn status 0");
  strictEqual(out.endStatus, 0);
  assertEquals(out.output, ["result: churn 1 n=200 checksum=0123456789abcdef"]);
  assertEquals(out.result, out.output);
  strictEqual(out.timeLine, "time: churn 812.250 ms");
  strictEqual(out.guestMs, 812.25);
  strictEqual(out.windowMs, 7);
  strictEqual(out.tail.at(-1), "vmon: exit status 0");
});

Deno.test("capture handles any chunking, including split UTF-8 and split marker lines", () => {
  const bytes = enc.encode(CONSOLE.join("").replace("checksum", "chécksum"));
  for (const size of [1, 2, 3, 5, 64]) {
    const cap = capture();
    for (let i = 0; i < bytes.length; i += size) cap.write(bytes.subarray(i, i + size));
    const out = cap.finish();
    assertEquals(out.result, ["result: churn 1 n=200 chécksum=0123456789abcdef"], `size ${size}`);
    strictEqual(out.endStatus, 0);
  }
});

Deno.test("capture keeps every non-time line and picks the result lines among them", () => {
  const cap = capture();
  cap.write(enc.encode("vmon-bench: begin lua bench.lua\nfib 832040\n"));
  cap.write(enc.encode("result: lua checksum=1\nsorted 1000\nvmon-bench: end lua status 0\n"));
  const out = cap.finish();
  assertEquals(out.output, ["fib 832040", "result: lua checksum=1", "sorted 1000"]);
  assertEquals(out.result, ["result: lua checksum=1"]);
  strictEqual(out.timeLine, undefined);
  strictEqual(out.guestMs, undefined);
});

Deno.test("capture without result lines uses all output lines as the result", () => {
  const cap = capture();
  cap.write(enc.encode("vmon-bench: begin xz 4\n4 files ok\n"));
  cap.write(enc.encode("vmon-bench: end xz status 0\n"));
  assertEquals(cap.finish().result, ["4 files ok"]);
});

Deno.test("capture reports missing markers, failed status and an unterminated last line", () => {
  const none = capture();
  none.write(enc.encode("sh: /bench/run.sh: not found\nvmon: exit status 127"));
  const a = none.finish();
  strictEqual(a.begin, undefined);
  strictEqual(a.end, undefined);
  strictEqual(a.windowMs, undefined);
  assertEquals(a.tail, ["sh: /bench/run.sh: not found", "vmon: exit status 127"]);

  const cut = capture();
  cut.write(enc.encode("vmon-bench: begin forkwait 5\nforkwait: fork failed at 3: EAGAIN\n"));
  const b = cut.finish();
  ok(b.begin !== undefined && b.end === undefined);
  assertEquals(b.output, ["forkwait: fork failed at 3: EAGAIN"]);

  const bad = capture();
  bad.write(enc.encode("vmon-bench: begin mprotect 5\n"));
  bad.write(enc.encode("vmon-bench: end mprotect status 2"));
  strictEqual(bad.finish().endStatus, 2);
});

Deno.test("capture gives no window when both markers arrived in one chunk", () => {
  const cap = capture();
  cap.write(enc.encode(CONSOLE.join("")));
  const out = cap.finish();
  strictEqual(out.windowMs, undefined);
  strictEqual(out.endStatus, 0);
});

Deno.test("capture ignores a second workload after the end marker", () => {
  const cap = capture();
  cap.write(enc.encode("vmon-bench: begin a 1\nresult: a\nvmon-bench: end a status 0\n"));
  cap.write(enc.encode("vmon-bench: begin b 1\nresult: b\nvmon-bench: end b status 3\n"));
  const out = cap.finish();
  assertEquals(out.result, ["result: a"]);
  strictEqual(out.endStatus, 0);
});

Deno.test("capture and parseBenchOutput are one parser: the same runs from bytes and text", () => {
  const cap = capture();
  for (const chunk of CONSOLE) cap.write(enc.encode(chunk));
  const runs = cap.runs();
  assertEquals(runs, parseBenchOutput(CONSOLE.join("")));
  assertEquals(runs, [{
    workload: "churn",
    args: ["1", "200"],
    status: 0,
    result: "churn 1 n=200 checksum=0123456789abcdef",
    checksum: "0123456789abcdef",
    timeMs: 812.25,
    other: [],
  }]);
});
