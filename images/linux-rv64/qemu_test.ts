import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { buildLinuxRv64, execCmdline, findQemu, INIT_READY_MARKER, runQemu } from "./mod.ts";

const qemu = findQemu();
const reason = qemu ? "" : " (skipped: qemu-system-riscv64 is not installed)";

async function image() {
  // Built once (with progress) and cached; tests/prepare.ts normally builds it before the suite.
  return await buildLinuxRv64({ onProgress: (line) => console.error(`linux-rv64: ${line}`) });
}

function assertIncludes(text: string, part: string): void {
  if (!text.includes(part)) throw new Error(`expected "${part}" in:\n${text.slice(-3000)}`);
}

Deno.test({
  name: `qemu peer: vmon.exec runs the command on 2 harts and its status is QEMU's${reason}`,
  ignore: !qemu,
  async fn() {
    const img = await image();
    const run = await runQemu(img, {
      cpus: 2,
      append: `${img.cmdline} ${execCmdline("uname -a; echo nproc=$(nproc); exit 3")}`,
    });
    assertIncludes(run.output, INIT_READY_MARKER);
    assertIncludes(run.output, "Linux vmon 6.1");
    assertIncludes(run.output, "riscv64");
    assertIncludes(run.output, "nproc=2");
    assertIncludes(run.output, "vmon: exit status 3");
    assertEquals(run.status, 3);
    assertEquals(typeof run.readyMs, "number");
  },
});

Deno.test({
  name: `qemu peer: a successful command powers off with status 0${reason}`,
  ignore: !qemu,
  async fn() {
    const img = await image();
    const script = "mount | grep -q devtmpfs && test -c /dev/null && echo guest-ok";
    const run = await runQemu(img, { append: `${img.cmdline} ${execCmdline(script)}` });
    assertIncludes(run.output, "guest-ok");
    assertIncludes(run.output, "vmon: exit status 0");
    assertEquals(run.status, 0);
  },
});

Deno.test({
  name: `qemu peer: a vmon.exec that is not base64 is reported with status 2${reason}`,
  ignore: !qemu,
  async fn() {
    const img = await image();
    const run = await runQemu(img, { append: `${img.cmdline} vmon.exec=@@not*base64@@` });
    assertIncludes(run.output, "vmon: cannot decode vmon.exec");
    assertEquals(run.status, 2);
  },
});

Deno.test({
  name: `qemu peer: the quoted plain-text form vmon.exec="..." runs too${reason}`,
  ignore: !qemu,
  async fn() {
    const img = await image();
    const run = await runQemu(img, {
      append: `${img.cmdline} vmon.exec="echo quoted-ok $((6 * 7)); exit 5" quiet`,
    });
    assertIncludes(run.output, "quoted-ok 42");
    assertIncludes(run.output, "vmon: exit status 5");
    assertEquals(run.status, 5);
  },
});
