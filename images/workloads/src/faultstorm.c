/*
 * faultstorm MIB: map MIB MiB of anonymous memory, write one word in every page (one first-touch
 * page fault each), then read every page back and check both the written word and an untouched
 * word (which must still be zero). Measures the page-fault path and page-table growth.
 */
#include <sys/mman.h>

#include "bench.h"

int main(int argc, char **argv) {
  const char *name = "faultstorm";
  if (argc != 2) bench_die(name, "usage: faultstorm MIB");
  uint64_t mib = bench_arg(name, "MIB", argv[1], 1, 1 << 20);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t len = (size_t)mib << 20;
  size_t pages = len / page;
  uint64_t start = bench_now_ns();
  unsigned char *base = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) bench_die(name, "cannot map %llu MiB: %s", (unsigned long long)mib, strerror(errno));
  uint64_t seed = 0x666175u;
  for (size_t p = 0; p < pages; p++) {
    /* Vary the word inside the page so that writes do not all hit the same cache set. */
    size_t slot = (p * 8) % (page / 2 / sizeof(uint64_t));
    ((uint64_t *)(base + p * page))[slot] = bench_rand(&seed);
  }
  uint64_t sum = 0;
  seed = 0x666175u;
  for (size_t p = 0; p < pages; p++) {
    size_t slot = (p * 8) % (page / 2 / sizeof(uint64_t));
    const uint64_t *w = (const uint64_t *)(base + p * page);
    uint64_t want = bench_rand(&seed);
    if (w[slot] != want) bench_die(name, "page %zu lost its value", p);
    /* The upper half of every page was never written: it must read as zero. */
    if (w[page / sizeof(uint64_t) - 1 - slot] != 0) bench_die(name, "page %zu is not zero-filled", p);
    sum = bench_mix(sum, w[slot]);
  }
  if (munmap(base, len) != 0) bench_die(name, "munmap failed: %s", strerror(errno));
  char args[64];
  snprintf(args, sizeof args, "mib=%llu pages=%zu", (unsigned long long)mib, pages);
  bench_report(name, args, sum, start);
  return 0;
}
