/**
 * passt started with and without waiting for its configuration (ffi/net/passt.c): a passt that
 * cannot bind a forwarded port fails the waiting start at once, and the non-waiting start with
 * the same one line through startError(); a passt that starts well reports nothing.
 */

import assert from "node:assert/strict";
import { findPasst, type NetBackend, openPacketBackend } from "./mod.ts";

const passt = findPasst();
const ignore = passt === undefined;
if (ignore) console.error("passt_test: skipped: passt is not installed (Debian package passt)");

/** Waits for the backend's events until `done` holds (or 10 s pass). */
async function until(b: NetBackend, done: () => boolean): Promise<void> {
  const end = performance.now() + 10_000;
  let seen = b.poll();
  while (!done() && performance.now() < end) {
    const next = await Promise.race([
      b.wait(seen),
      new Promise<number>((r) => setTimeout(() => r(seen), 100)),
    ]);
    seen = next;
  }
}

Deno.test({
  name:
    "passt: a taken forwarded port fails a waiting start, and a non-waiting one with the same line",
  ignore,
  async fn() {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    const hostfwd = [{
      protocol: "tcp" as const,
      hostAddress: "127.0.0.1",
      hostPort: port,
      guestPort: 80,
    }];
    try {
      let waited = "";
      assert.throws(() => openPacketBackend({ kind: "user", hostfwd }), (e: Error) => {
        waited = e.message;
        return true;
      });
      assert.match(waited, new RegExp(`^Cannot start the user network \\(passt\\): .*${port}`));
      const b = openPacketBackend({ kind: "user", hostfwd }, { wait: false });
      try {
        await until(b, () => b.startError() !== undefined);
        assert.equal(b.startError(), waited);
        // The device side still hears that the backend stopped.
        assert.notEqual(b.error(), undefined);
        assert.equal(b.send(new Uint8Array(12 + 60)), true); // dropped, as on a cut cable
      } finally {
        b.close();
      }
    } finally {
      taken.close();
    }
  },
});

Deno.test({
  name: "passt: a non-waiting start that succeeds reports no error",
  ignore,
  async fn() {
    const b = openPacketBackend({ kind: "user" }, { wait: false });
    try {
      assert.equal(b.startError(), undefined);
      await new Promise((r) => setTimeout(r, 1500)); // passt has configured itself by now
      assert.equal(b.startError(), undefined);
      assert.equal(b.error(), undefined);
      assert.match(b.description, /^passt \(pid \d+\)$/);
    } finally {
      b.close();
    }
  },
});
