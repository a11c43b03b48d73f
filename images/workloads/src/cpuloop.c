/*
 * cpuloop N: N rounds of an integer-only loop body (xorshift, multiply, add, shifts; no memory
 * beyond registers, no system calls). The control: its cost should not depend on the paging
 * strategy at all.
 */
#include "bench.h"

int main(int argc, char **argv) {
  const char *name = "cpuloop";
  if (argc != 2) bench_die(name, "usage: cpuloop N");
  uint64_t n = bench_arg(name, "N", argv[1], 1, UINT64_MAX / 2);
  uint64_t start = bench_now_ns();
  uint64_t x = 0x243f6a8885a308d3ull, acc = 0;
  for (uint64_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    acc += (x * 0x9e3779b97f4a7c15ull) >> (i & 31);
    acc ^= acc >> 11;
  }
  char args[64];
  snprintf(args, sizeof args, "n=%llu", (unsigned long long)n);
  bench_report(name, args, bench_mix(acc, x), start);
  return 0;
}
