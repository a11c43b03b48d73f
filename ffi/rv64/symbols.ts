/**
 * The FFI symbol table of the rv64 software RISC-V machine (C sources in this folder) and the
 * layout constants of the memory it shares with TypeScript.
 *
 * @module
 */

import { PagingTrapCode } from "../../core/api/mod.ts";

/** Symbols exported by the rv64 library, with their C prototypes. */
export const RV64_SYMBOLS = {
  /** `rv64_machine *rv64_create(int nharts, int flags, int ipt)` (flags bit 0: icount clock). */
  rv64_create: { parameters: ["i32", "i32", "i32"], result: "pointer" },
  /** `void rv64_destroy(rv64_machine *m)` */
  rv64_destroy: { parameters: ["pointer"], result: "void" },
  /** `uint8_t *rv64_add_ram(rv64_machine *m, uint64_t gpa, uint64_t size, int readonly)` */
  rv64_add_ram: { parameters: ["pointer", "u64", "u64", "i32"], result: "pointer" },
  /** `rv64_exit *rv64_exit_record(rv64_machine *m, int hart)` */
  rv64_exit_record: { parameters: ["pointer", "i32"], result: "pointer" },
  /** `uint64_t *rv64_registers(rv64_machine *m, int hart)`: x0..x31, scratch, f0..f31, pc. */
  rv64_registers: { parameters: ["pointer", "i32"], result: "pointer" },
  /** `uint64_t *rv64_counters(rv64_machine *m, int hart)` */
  rv64_counters: { parameters: ["pointer", "i32"], result: "pointer" },
  /** `int rv64_run(rv64_machine *m, int hart, uint32_t budget)` */
  rv64_run: { parameters: ["pointer", "i32", "u32"], result: "i32" },
  /** `uint64_t rv64_get_csr(rv64_machine *m, int hart, int csr)` */
  rv64_get_csr: { parameters: ["pointer", "i32", "i32"], result: "u64" },
  /** `int rv64_set_csr(rv64_machine *m, int hart, int csr, uint64_t value)` */
  rv64_set_csr: { parameters: ["pointer", "i32", "i32", "u64"], result: "i32" },
  /** `int rv64_set_priv(rv64_machine *m, int hart, int priv)` */
  rv64_set_priv: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  /** `int rv64_get_priv(rv64_machine *m, int hart)` */
  rv64_get_priv: { parameters: ["pointer", "i32"], result: "i32" },
  /** `void rv64_set_timer(rv64_machine *m, int hart, uint64_t deadline)` */
  rv64_set_timer: { parameters: ["pointer", "i32", "u64"], result: "void" },
  /** `int rv64_set_irq(rv64_machine *m, int hart, int bit, int level)` */
  rv64_set_irq: { parameters: ["pointer", "i32", "i32", "i32"], result: "i32" },
  /** `void rv64_flush_tlb(rv64_machine *m, int hart, int all, uint64_t va)` */
  rv64_flush_tlb: { parameters: ["pointer", "i32", "i32", "u64"], result: "void" },
  /** `void rv64_set_started(rv64_machine *m, int hart, int started)` */
  rv64_set_started: { parameters: ["pointer", "i32", "i32"], result: "void" },
  /** `int rv64_hart_state(rv64_machine *m, int hart)`: bit 0 started, bit 1 halted. */
  rv64_hart_state: { parameters: ["pointer", "i32"], result: "i32" },
  /** `int rv64_runnable(rv64_machine *m, int hart)` */
  rv64_runnable: { parameters: ["pointer", "i32"], result: "i32" },
  /** `double rv64_ticks_to_deadline(rv64_machine *m, int hart)`: -1 when no timer is set. */
  rv64_ticks_to_deadline: { parameters: ["pointer", "i32"], result: "f64" },
  /** `uint64_t rv64_time_now(rv64_machine *m)` */
  rv64_time_now: { parameters: ["pointer"], result: "u64" },
  /** `int rv64_write_protect(rv64_machine *m, uint64_t gpa, uint64_t size, int on)` */
  rv64_write_protect: { parameters: ["pointer", "u64", "u64", "i32"], result: "i32" },
  /** `void rv64_set_paging_exits(rv64_machine *m, int hart, int which)` */
  rv64_set_paging_exits: { parameters: ["pointer", "i32", "i32"], result: "void" },
  /** `int rv64_skip_instruction(rv64_machine *m, int hart)` */
  rv64_skip_instruction: { parameters: ["pointer", "i32"], result: "i32" },
  /** `void rv64_invalidate_code(rv64_machine *m)` */
  rv64_invalidate_code: { parameters: ["pointer"], result: "void" },
  /** `int rv64_paging_mode(rv64_machine *m, int mode)`: 0 wired, 1 shadow, 2 queued. */
  rv64_paging_mode: { parameters: ["pointer", "i32"], result: "i32" },
  /**
   * `int rv64_paging_set_ranges(rv64_machine *m, const uint64_t *ranges, int n)`: [lo, hi)
   * pairs a leaf may map; `ranges` is caller-owned and read during the call only.
   */
  rv64_paging_set_ranges: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** `int rv64_paging_approve(rv64_machine *m, int hart, int approve)` */
  rv64_paging_approve: { parameters: ["pointer", "i32", "i32"], result: "i32" },
  /** `int rv64_shadow_invalidate(rv64_machine *m, uint64_t gpa, uint64_t size)` */
  rv64_shadow_invalidate: { parameters: ["pointer", "u64", "u64"], result: "i32" },
  /** `void rv64_shadow_flush(rv64_machine *m)` */
  rv64_shadow_flush: { parameters: ["pointer"], result: "void" },
  /** `int rv64_is_pt_page(rv64_machine *m, uint64_t gpa)` */
  rv64_is_pt_page: { parameters: ["pointer", "u64"], result: "i32" },
  /** `int rv64_queue_page(rv64_machine *m, uint64_t gpa)`: slot, -1 not shadowed, -2 full. */
  rv64_queue_page: { parameters: ["pointer", "u64"], result: "i32" },
  /** `uint8_t *rv64_queue_snapshots(rv64_machine *m)`: machine-owned, QUEUE_SLOTS pages. */
  rv64_queue_snapshots: { parameters: ["pointer"], result: "pointer" },
  /** `uint64_t rv64_queue_gpa(rv64_machine *m, int slot)` */
  rv64_queue_gpa: { parameters: ["pointer", "i32"], result: "u64" },
  /** `int rv64_queue_length(rv64_machine *m)` */
  rv64_queue_length: { parameters: ["pointer"], result: "i32" },
  /** `int rv64_queue_release(rv64_machine *m)` */
  rv64_queue_release: { parameters: ["pointer"], result: "i32" },
  /**
   * `int rv64_queue_diff(rv64_machine *m, uint64_t *out, int cap)`: the changed PTEs of the
   * queued pages (their shadow entries dropped); `out` is caller-owned, `QUEUE_DIFF_WORDS` words,
   * written during the call only. Returns the number of changes, -1 for a short buffer.
   */
  rv64_queue_diff: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /**
   * `int rv64_queue_keep(rv64_machine *m, const uint64_t *gpas, int n)`: empties the queue except
   * the listed pages, which stay queued with fresh snapshots; `gpas` is caller-owned, read during
   * the call only. Returns the number kept, -1 for bad arguments.
   */
  rv64_queue_keep: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** `uint64_t *rv64_paging_counters(rv64_machine *m)`: machine-owned, PAGING_COUNTER_NAMES. */
  rv64_paging_counters: { parameters: ["pointer"], result: "pointer" },
  /** `int rv64_disasm(uint32_t raw, char *buf, int len)`: buf is caller-owned. */
  rv64_disasm: { parameters: ["u32", "buffer", "i32"], result: "i32" },
  /**
   * `void *rv64_kick_function(void)`: the address of `void rv64_kick(void *machine)`, which ends
   * the running slice from any thread (for `ffi/net`'s packet threads; static code, never freed).
   */
  rv64_kick_function: { parameters: [], result: "pointer" },
  /**
   * `int rv64_jit_config(rv64_machine *m, int on, double cache_bytes, int threshold)`: the block
   * translator on or off; 1 on, 0 off, -1 when this host has no backend (jit.c).
   */
  rv64_jit_config: { parameters: ["pointer", "i32", "f64", "i32"], result: "i32" },
  /**
   * `void rv64_jit_stats(rv64_machine *m, uint64_t *out)`: copies JIT_STAT_NAMES.length words
   * into `out` (caller-owned, written during the call only).
   */
  rv64_jit_stats: { parameters: ["pointer", "buffer"], result: "void" },
  /**
   * `void rv64_jit_cache_range(rv64_machine *m, uint64_t *out)`: address and size of the code
   * cache (0 when off) into `out` (caller-owned, 2 words, written during the call only).
   */
  rv64_jit_cache_range: { parameters: ["pointer", "buffer"], result: "void" },
  /**
   * `int rv64_ram_hint_bulk(rv64_machine *m, uint64_t gpa, uint64_t size)`: the range is about to
   * be written in bulk (snapshot restore); backs it with huge pages where it can. 0 or -1.
   */
  rv64_ram_hint_bulk: { parameters: ["pointer", "u64", "u64"], result: "i32" },
  /** `uint32_t rv64_state_size(rv64_machine *m)`: bytes of the state blob (snapshots). */
  rv64_state_size: { parameters: ["pointer"], result: "u32" },
  /**
   * `int rv64_state_save(rv64_machine *m, uint8_t *out, uint32_t len)`: writes the state blob
   * into `out` (caller-owned, 8-byte aligned, written during the call only) and drops the
   * machine's derived state (TLBs, decode pages, shadow tables); bytes written or < 0.
   */
  rv64_state_save: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  /**
   * `int rv64_state_load(rv64_machine *m, const uint8_t *in, uint32_t len)`: loads a state blob
   * (`in` caller-owned, 8-byte aligned, read during the call only); 0 or < 0 (api.c says which).
   */
  rv64_state_load: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's symbols. */
export type Rv64Symbols = Deno.DynamicLibrary<typeof RV64_SYMBOLS>["symbols"];

/** Byte offsets in the exit record (`rv64_exit` in rv64.h). */
export const EXIT_LAYOUT = {
  kind: 0,
  size: 4,
  isWrite: 8,
  code: 12,
  addr: 16,
  data: 24,
  nr: 32,
  fid: 40,
  args: 48,
  pc: 96,
  detail: 104,
  detailLength: 160,
  bytes: 264,
} as const;

/** Indices in the register block (u64 words). */
export const REG_LAYOUT = { x: 0, f: 33, pc: 65, words: 66 } as const;

/** Counter names in the order of the C counter array. */
export const COUNTER_NAMES = [
  "instructions",
  "tlbFills",
  "tlbFlushes",
  "pageWalks",
  "decoded",
  "decodeFlushes",
  "traps",
  "interrupts",
  "mmioExits",
  "sbiCalls",
  "pagingExits",
  "shadowHits",
] as const;

/** Machine-level paging counters in the order of the C array (`PC_*` in rv64.h). */
export const PAGING_COUNTER_NAMES = [
  "shadowFills",
  "shadowDrops",
  "addressSpaceEvictions",
  "ptPages",
  "queuedPages",
] as const;

/** The block translator's statistics in the order of `rv64_jit_stats` (`JS_*` in jit.h). */
export const JIT_STAT_NAMES = [
  "jitBlocks",
  "jitInstructions",
  "jitEntries",
  "jitInvalidations",
  "jitChained",
  "jitFlushes",
  "jitCodeBytes",
  "jitCacheBytes",
  "jitEnabled",
  "jitJumpCacheHits",
  "jitExitsChunk",
  "jitExitsOtherPage",
  "jitExitsInPage",
  "jitExitsInstruction",
  "jitExitsSequential",
  "jitExitsCheck",
] as const;

/** Snapshot slots of the queued strategy's page queue (`PQ_SLOTS` in rv64.h, checked likewise). */
export const QUEUE_SLOTS = 64;

/**
 * Words of the buffer `rv64_queue_diff` fills (`RV64_QUEUE_DIFF_WORDS` in shadow.c): the page
 * count, one address per slot, then a `{gpa, old, new}` triple per changed PTE, room for all.
 */
export const QUEUE_DIFF_WORDS = 1 + QUEUE_SLOTS + 3 * QUEUE_SLOTS * 512;

/** Paging modes of `rv64_paging_mode` (`PMODE_*` in rv64.h, checked by `ffi/exits_test.ts`). */
export const PagingMode = { wired: 0, shadow: 1, queued: 2 } as const;

/**
 * Paging exit codes (exit `code` of an `ExitKind.Paging` exit): `PagingTrapCode` of the API, the
 * mirror of `enum vmon_paging_trap` in `ffi/common/exits.h` (checked by `ffi/exits_test.ts`).
 */
export const PagingExitCode: typeof PagingTrapCode = PagingTrapCode;
