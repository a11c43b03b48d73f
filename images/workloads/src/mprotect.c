/*
 * mprotect N: N rounds over a 64-page region: make it read-only and read every page, make it
 * writable again and write every page. Every 16th round also writes to the read-only region once
 * and expects a SIGSEGV (caught, counted and checked). Measures permission changes: page-table
 * updates of present entries and the TLB flushes they need.
 */
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include "bench.h"

#define PAGES 64

static sigjmp_buf fault_jump;
static volatile sig_atomic_t faults;

static void on_segv(int sig) {
  (void)sig;
  faults++;
  siglongjmp(fault_jump, 1);
}

/* Writes to *target, which must fault; returns only after the SIGSEGV handler jumped back. */
static __attribute__((noinline)) void write_must_fault(const char *name, volatile uint64_t *target,
                                                       uint64_t round) {
  if (sigsetjmp(fault_jump, 1) == 0) {
    *target = 0xdead;
    bench_die(name, "write to a read-only page in round %llu did not fault", (unsigned long long)round);
  }
}

int main(int argc, char **argv) {
  const char *name = "mprotect";
  if (argc != 2) bench_die(name, "usage: mprotect N");
  uint64_t n = bench_arg(name, "N", argv[1], 1, 100000000);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = PAGES * page;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_segv;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0) bench_die(name, "sigaction failed: %s", strerror(errno));
  uint64_t start = bench_now_ns();
  unsigned char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) bench_die(name, "cannot map %d pages: %s", PAGES, strerror(errno));
  for (size_t p = 0; p < PAGES; p++) ((volatile uint64_t *)(base + p * page))[0] = p;
  uint64_t sum = 0;
  uint64_t expected_faults = 0;
  for (uint64_t i = 0; i < n; i++) {
    if (mprotect(base, len, PROT_READ) != 0) bench_die(name, "mprotect(PROT_READ) failed: %s", strerror(errno));
    for (size_t p = 0; p < PAGES; p++) sum = bench_mix(sum, ((volatile uint64_t *)(base + p * page))[0]);
    if (i % 16 == 0) {
      expected_faults++;
      write_must_fault(name, (volatile uint64_t *)(base + (i / 16 % PAGES) * page), i);
    }
    if (mprotect(base, len, PROT_READ | PROT_WRITE) != 0) {
      bench_die(name, "mprotect(PROT_READ|PROT_WRITE) failed: %s", strerror(errno));
    }
    for (size_t p = 0; p < PAGES; p++) ((volatile uint64_t *)(base + p * page))[0] += i + p;
  }
  if ((uint64_t)faults != expected_faults) {
    bench_die(name, "caught %llu faults, expected %llu", (unsigned long long)faults,
              (unsigned long long)expected_faults);
  }
  sum = bench_mix(sum, (uint64_t)faults);
  if (munmap(base, len) != 0) bench_die(name, "munmap failed: %s", strerror(errno));
  char args[64];
  snprintf(args, sizeof args, "n=%llu faults=%llu", (unsigned long long)n, (unsigned long long)faults);
  bench_report(name, args, sum, start);
  return 0;
}
