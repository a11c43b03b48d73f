/**
 * The rv64 block translator against the interpreter (tests/fuzz/rv64_diff.ts): a few thousand
 * seeded random RV64GC sequences must give identical registers, CSRs, counters, exit records and
 * memory with the translator on and off. `deno task fuzz:rv64` runs a million.
 */

import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ExitKind, PagingTrapCode } from "../core/api/mod.ts";
import { DiffFuzzer } from "./fuzz/rv64_diff.ts";

const SEQUENCES = 3000;
const X86 = Deno.build.arch === "x86_64";

Deno.test({
  name: "rv64 jit: the translator matches the interpreter on random sequences",
  ignore: !X86,
  fn() {
    using fuzz = new DiffFuzzer();
    const mismatches = [];
    for (let seed = 1; seed <= SEQUENCES; seed++) {
      const m = fuzz.check(seed);
      if (m) mismatches.push(m);
      if (mismatches.length >= 5) break;
    }
    assertEquals(mismatches, []);
    const stats = fuzz.jitStats();
    // the comparison means something only if much of the work ran as translated code, and the
    // paths that drop translations ran too
    assert(fuzz.translated > fuzz.instructions / 5, `translated ${fuzz.translated}`);
    assert(stats.jitBlocks! > 1000, `blocks ${stats.jitBlocks}`);
    assert(stats.jitChained! > 1000, `chained ${stats.jitChained}`);
    assert(stats.jitInvalidations! > 0, "no decode page changed under a translation");
    assert(stats.jitFlushes! > 0, "the code cache never filled");
    // and the sequences reached what the translator must leave to the interpreter exactly
    const c = fuzz.coverage;
    const paging = (code: number) => c[`exit-${ExitKind.Paging}-code-${code}`] ?? 0;
    assert(c[`exit-${ExitKind.Mmio}`]! > 0, "no MMIO exit");
    assert(paging(PagingTrapCode.WriteProtected) > 0, "no write-protect exit");
    assert(paging(PagingTrapCode.PtWrite) > 0, "no page-table write exit");
    assert(c.traps! > 0 && c.interrupts! > 0, "no trap or no interrupt");
    assert(c.decodeFlushes! > 0, "no self-modifying code");
  },
});

Deno.test({
  name: "rv64 jit: fuzz:rv64 seed 105988 after the seeds that wore out its code page's store count",
  ignore: !X86,
  fn() {
    // on the same machines, these sequences leave the page-store count of the code page near its
    // limit; in 105988 an AMO's store then cleared the decode page under the running AMO, which
    // read rd and rs2 from the cleared slot (tests/rv64_jit_test.ts has the same on a program)
    using fuzz = new DiffFuzzer();
    for (const seed of [104270, 104294, 104300, 104316, 104468, 104648, 104676]) {
      assertEquals(fuzz.check(seed), undefined);
    }
    assertEquals(fuzz.check(105988), undefined);
  },
});
