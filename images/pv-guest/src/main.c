/*
 * pv-guest: a bare-metal paravirtual test guest for the queued paging strategy.
 *
 * Runs in S-mode on riscv-virt with the monitor as SBI firmware. It builds Sv39 tables
 * (identity-mapped RAM in 2 MiB leaves, plus a 4 KiB "playground" table at VA 0x40000000), turns
 * on translation, and drives vmon's page-table update call (SBI extension 0x0A564D4E, fid 0:
 * a0 = gpa of {ptr, val} pairs, a1 = count, a2 = gpa of a status array) with valid, invalid and
 * random batches. Without the call (another strategy) it performs the valid updates with plain
 * stores instead. Prints results through the SBI debug console and powers off through SRST
 * (reason "system failure" when a check failed).
 *
 * Options come from the kernel command line (the device tree's bootargs):
 *   pv.batch=N    updates per call (default 16)
 *   pv.updates=N  valid updates in the first phase (default 1024)
 *   pv.random=N   random updates in the last phase (default 256)
 *   pv.seed=N     seed of the random phase (default 1)
 */
#include <stdint.h>

#define PV_EID 0x0A564D4EL
#define DBCN_EID 0x4442434EL
#define SRST_EID 0x53525354L
#define MAX_BATCH 4096

#define PTE_V 1UL
#define PTE_R 2UL
#define PTE_W 4UL
#define PTE_X 8UL
#define PTE_A 0x40UL
#define PTE_D 0x80UL
#define PLAY_VA 0x40000000UL
#define NDATA 16

struct sbiret {
  long error;
  long value;
};

static struct sbiret sbi(long eid, long fid, long a0, long a1, long a2) {
  register long r0 __asm__("a0") = a0;
  register long r1 __asm__("a1") = a1;
  register long r2 __asm__("a2") = a2;
  register long r6 __asm__("a6") = fid;
  register long r7 __asm__("a7") = eid;
  __asm__ volatile("ecall" : "+r"(r0), "+r"(r1) : "r"(r2), "r"(r6), "r"(r7) : "memory");
  return (struct sbiret){r0, r1};
}

static uint64_t root[512] __attribute__((aligned(4096)));
static uint64_t l1_ram[512] __attribute__((aligned(4096)));
static uint64_t l1_play[512] __attribute__((aligned(4096)));
static uint64_t l0_play[512] __attribute__((aligned(4096)));
static uint8_t data[NDATA][4096] __attribute__((aligned(4096)));
static uint64_t batch_buf[MAX_BATCH][2];
static uint64_t status_buf[MAX_BATCH];
static char line[160];
static int line_len;

static void flush_line(void) {
  sbi(DBCN_EID, 0, line_len, (long)(uintptr_t)line, 0);
  line_len = 0;
}
static void puts_(const char *s) {
  while (*s) {
    if (line_len == (int)sizeof line) flush_line();
    char ch = *s++;
    line[line_len++] = ch;
    if (ch == '\n') flush_line();
  }
}
static void putu(uint64_t v) {
  char b[24];
  int n = 0;
  do { b[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  char o[24];
  for (int i = 0; i < n; i++) o[i] = b[n - 1 - i];
  o[n] = 0;
  puts_(o);
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Finds `key` (such as "pv.batch=") in the device tree blob and parses the number after its
   last occurrence (a later option on the command line wins). */
static uint64_t dt_option(const uint8_t *dtb, const char *key, uint64_t dflt) {
  if (!dtb || be32(dtb) != 0xd00dfeed) return dflt;
  uint32_t size = be32(dtb + 4);
  if (size > (1u << 20)) return dflt;
  int klen = 0;
  while (key[klen]) klen++;
  for (uint32_t i = 0; i + (uint32_t)klen < size; i++) {
    int k = 0;
    while (k < klen && dtb[i + k] == (uint8_t)key[k]) k++;
    if (k < klen) continue;
    uint64_t v = 0;
    const uint8_t *p = dtb + i + klen;
    if (*p < '0' || *p > '9') continue;
    while (*p >= '0' && *p <= '9' && v < (1ULL << 40)) v = v * 10 + (uint64_t)(*p++ - '0');
    dflt = v;
  }
  return dflt;
}

static uint64_t leaf(uint64_t pa, uint64_t perm) { return ((pa >> 12) << 10) | perm | PTE_V | PTE_A | PTE_D; }
static uint64_t table(uint64_t pa) { return ((pa >> 12) << 10) | PTE_V; }

static int have_call;
static uint64_t batch;
static uint64_t calls, applied, rejected;
static uint64_t rng = 1;

static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Submits `n` updates from batch_buf; returns how many the monitor applied. */
static uint64_t submit(uint64_t n) {
  if (!have_call) {
    /* no update call: plain stores (the strategy traps them if it protects the page) */
    for (uint64_t i = 0; i < n; i++) {
      *(volatile uint64_t *)(uintptr_t)batch_buf[i][0] = batch_buf[i][1];
      status_buf[i] = 0;
    }
    __asm__ volatile("sfence.vma" ::: "memory");
    applied += n;
    return n;
  }
  struct sbiret r = sbi(PV_EID, 0, (long)(uintptr_t)batch_buf, (long)n, (long)(uintptr_t)status_buf);
  calls++;
  if (r.error) {
    puts_("pv-guest: update call failed with error ");
    putu((uint64_t)-r.error);
    puts_("\n");
    return 0;
  }
  applied += (uint64_t)r.value;
  rejected += n - (uint64_t)r.value;
  __asm__ volatile("sfence.vma" ::: "memory");
  return (uint64_t)r.value;
}

/* Queues one update, submitting when the batch is full. */
static uint64_t queued_n;
static void update(uint64_t ptr, uint64_t val) {
  batch_buf[queued_n][0] = ptr;
  batch_buf[queued_n][1] = val;
  if (++queued_n == batch) { submit(queued_n); queued_n = 0; }
}
static void drain(void) {
  if (queued_n) { submit(queued_n); queued_n = 0; }
}

static int failures;
static void check(int ok, const char *what) {
  if (ok) return;
  failures++;
  puts_("pv-guest: FAILED: ");
  puts_(what);
  puts_("\n");
}

void pv_main(uint64_t hartid, const uint8_t *dtb) {
  (void)hartid;
  batch = dt_option(dtb, "pv.batch=", 16);
  uint64_t nvalid = dt_option(dtb, "pv.updates=", 1024);
  uint64_t nrandom = dt_option(dtb, "pv.random=", 256);
  rng = dt_option(dtb, "pv.seed=", 1) | 1;
  if (batch < 1) batch = 1;
  if (batch > MAX_BATCH) batch = MAX_BATCH;

  /* identity map 0x80000000..0x81000000 in 2 MiB leaves, the playground through l1_play/l0_play */
  for (int i = 0; i < 8; i++) l1_ram[i] = leaf(0x80000000UL + ((uint64_t)i << 21), PTE_R | PTE_W | PTE_X);
  root[2] = table((uint64_t)(uintptr_t)l1_ram);
  root[1] = table((uint64_t)(uintptr_t)l1_play);
  l1_play[0] = table((uint64_t)(uintptr_t)l0_play);
  __asm__ volatile("csrw satp, %0; sfence.vma" ::"r"((8UL << 60) | ((uint64_t)(uintptr_t)root >> 12)) : "memory");

  struct sbiret probe = sbi(PV_EID, 1, 0, 0, 0);
  have_call = probe.error == 0;
  if (have_call && batch > (uint64_t)probe.value) batch = (uint64_t)probe.value;
  puts_("pv-guest: batch=");
  putu(batch);
  puts_(have_call ? " mode=hypercall\n" : " mode=stores\n");

  /* phase 1: valid updates, then every mapping checked through the playground */
  for (uint64_t k = 0; k < nvalid; k++) {
    uint64_t slot = k % NDATA, page = (k * 7 + 3) % NDATA;
    update((uint64_t)(uintptr_t)&l0_play[slot], leaf((uint64_t)(uintptr_t)data[page], PTE_R | PTE_W));
  }
  drain();
  uint64_t valid_applied = applied;
  check(valid_applied == nvalid, "valid updates not all applied");
  for (uint64_t slot = 0; slot < NDATA && nvalid >= NDATA; slot++) {
    uint64_t last = 0;
    for (uint64_t k = 0; k < nvalid; k++) if (k % NDATA == slot) last = k;
    uint64_t page = (last * 7 + 3) % NDATA;
    volatile uint64_t *va = (volatile uint64_t *)(PLAY_VA + slot * 4096 + 8 * slot);
    *va = 0x5eed0000UL + slot;
    check(*(volatile uint64_t *)(uintptr_t)(data[page] + 8 * slot) == 0x5eed0000UL + slot,
          "a mapping did not reach its page");
  }

  /* phase 2: invalid updates (with a valid one between each), one call, every one reported */
  if (have_call) {
    uint64_t before_applied = applied, before_rejected = rejected;
    uint64_t p0 = (uint64_t)(uintptr_t)&l0_play[0];
    uint64_t ok = leaf((uint64_t)(uintptr_t)data[0], PTE_R | PTE_W);
    uint64_t bad[5][2] = {
      {p0 + 8, leaf(0x100000000000UL, PTE_R | PTE_W)},               /* beyond RAM */
      {p0 + 16, table(0x200000000000UL)},                             /* table not in RAM */
      {p0 + 24, leaf((uint64_t)(uintptr_t)l0_play, PTE_R | PTE_W)},   /* writable PT page */
      {p0 + 36, ok},                                                  /* misaligned ptr */
      {0x10000000000UL, ok},                                          /* ptr not RAM */
    };
    uint64_t n = 0;
    for (int i = 0; i < 5; i++) {
      batch_buf[n][0] = p0 + 8 * (uint64_t)(5 + i);
      batch_buf[n][1] = ok;
      n++;
      batch_buf[n][0] = bad[i][0];
      batch_buf[n][1] = bad[i][1];
      n++;
    }
    for (uint64_t i = 0; i < n; i++) status_buf[i] = 0x55;
    submit(n);
    int reported = 0;
    for (uint64_t i = 0; i < n; i++) {
      if (i % 2 == 0) check(status_buf[i] == 0, "a valid update in the invalid batch was refused");
      else if (status_buf[i] != 0) reported++;
    }
    check(reported == 5, "not every invalid update was reported");
    check(applied - before_applied == 5, "valid updates of the invalid batch not applied");
    check(rejected - before_rejected == 5, "invalid updates not rejected");
    puts_("pv-guest: invalid sent=5 rejected=");
    putu(rejected - before_rejected);
    puts_("\n");
    /* the playground still works after the rejected batch */
    volatile uint64_t *va = (volatile uint64_t *)(PLAY_VA + 5 * 4096);
    *va = 0xabcdUL;
    check(*(volatile uint64_t *)(uintptr_t)data[0] == 0xabcdUL, "mapping after invalid batch");
  }

  /* phase 3: random updates: random PTE values, pointers inside or outside the playground */
  if (have_call) {
    uint64_t a0 = applied, r0 = rejected;
    for (uint64_t k = 0; k < nrandom; k++) {
      uint64_t x = next_random(), y = next_random();
      uint64_t ptr = (x & 3) ? (uint64_t)(uintptr_t)&l0_play[(x >> 8) % 512] : (y ^ (x << 3));
      update(ptr, next_random());
    }
    drain();
    puts_("pv-guest: random sent=");
    putu(nrandom);
    puts_(" applied=");
    putu(applied - a0);
    puts_(" rejected=");
    putu(rejected - r0);
    puts_("\n");
    /* clear the playground again; the random values are never used */
    for (int i = 0; i < 512; i++) update((uint64_t)(uintptr_t)&l0_play[i], 0);
    drain();
  }

  puts_("pv-guest: calls=");
  putu(calls);
  puts_(" applied=");
  putu(applied);
  puts_(" rejected=");
  putu(rejected);
  puts_("\n");
  puts_(failures ? "pv-guest: FAILED\n" : "pv-guest: ok\n");
  sbi(SRST_EID, 0, 0, failures ? 1 : 0, 0);
  for (;;) __asm__ volatile("wfi");
}
