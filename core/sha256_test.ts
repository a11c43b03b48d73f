import { strictEqual as assertEquals, throws } from "node:assert/strict";
import { createHash } from "node:crypto";
import { Sha256 } from "./sha256.ts";

Deno.test("sha256: the FIPS 180-4 examples and the empty message", () => {
  assertEquals(
    new Sha256().update("abc").hex(),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assertEquals(
    new Sha256().update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex(),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
  assertEquals(
    new Sha256().hex(),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
});

Deno.test("sha256: agrees with node:crypto on every length around the block edges, in any split", () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
  for (let len = 0; len < 300; len++) {
    const data = Uint8Array.from({ length: len }, rand);
    const want = createHash("sha256").update(data).digest("hex");
    assertEquals(new Sha256().update(data).hex(), want, `length ${len}`);
    const cut = len === 0 ? 0 : rand() % len;
    const split = new Sha256().update(data.subarray(0, cut)).update(data.subarray(cut));
    assertEquals(split.hex(), want, `length ${len} split at ${cut}`);
  }
  const big = Uint8Array.from({ length: 1 << 20 }, rand);
  assertEquals(new Sha256().update(big).hex(), createHash("sha256").update(big).digest("hex"));
  assertEquals(new Sha256().update("é€𝄞").hex(), createHash("sha256").update("é€𝄞").digest("hex"));
});

Deno.test("sha256: a finished hash refuses more data and keeps its digest", () => {
  const h = new Sha256().update("abc");
  const first = h.hex();
  assertEquals(h.hex(), first);
  throws(() => h.update("d"), /^Error: Cannot update a SHA-256 hash: it is finished$/);
});
