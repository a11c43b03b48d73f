/*
 * mmapchurn N: N rounds over a ring of 8 anonymous mappings: each round checks and unmaps the
 * oldest mapping, then maps a new one of 1..64 pages (fixed-seed sizes), writes a word in every
 * page and reads the first page back. Measures mmap/munmap, fault-in and page-table teardown
 * (TLB shootdowns, freed page-table pages) with a changing address-space layout.
 */
#include <sys/mman.h>

#include "bench.h"

#define RING 8

struct mapping {
  unsigned char *base;
  size_t pages;
  uint64_t seed; /* regenerates the words written into the mapping */
};

static uint64_t check_and_unmap(const char *name, struct mapping *m, size_t page, uint64_t sum) {
  uint64_t seed = m->seed;
  for (size_t p = 0; p < m->pages; p++) {
    uint64_t want = bench_rand(&seed);
    uint64_t got = ((const uint64_t *)(m->base + p * page))[p % 16];
    if (got != want) bench_die(name, "mapping page %zu lost its value", p);
    sum = bench_mix(sum, got);
  }
  if (munmap(m->base, m->pages * page) != 0) bench_die(name, "munmap failed: %s", strerror(errno));
  m->base = NULL;
  return sum;
}

int main(int argc, char **argv) {
  const char *name = "mmapchurn";
  if (argc != 2) bench_die(name, "usage: mmapchurn N");
  uint64_t n = bench_arg(name, "N", argv[1], 1, 100000000);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  struct mapping ring[RING];
  memset(ring, 0, sizeof ring);
  uint64_t rng = 0x6d6d6170u;
  uint64_t sum = 0;
  uint64_t start = bench_now_ns();
  for (uint64_t i = 0; i < n; i++) {
    struct mapping *m = &ring[i % RING];
    if (m->base != NULL) sum = check_and_unmap(name, m, page, sum);
    m->pages = 1 + (size_t)bench_below(&rng, 64);
    m->seed = bench_rand(&rng);
    m->base = mmap(NULL, m->pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m->base == MAP_FAILED) bench_die(name, "cannot map %zu pages: %s", m->pages, strerror(errno));
    uint64_t seed = m->seed;
    for (size_t p = 0; p < m->pages; p++) {
      ((uint64_t *)(m->base + p * page))[p % 16] = bench_rand(&seed);
    }
    sum = bench_mix(sum, ((const uint64_t *)m->base)[0]);
  }
  for (int r = 0; r < RING; r++) {
    if (ring[r].base != NULL) sum = check_and_unmap(name, &ring[r], page, sum);
  }
  char args[64];
  snprintf(args, sizeof args, "n=%llu", (unsigned long long)n);
  bench_report(name, args, sum, start);
  return 0;
}
