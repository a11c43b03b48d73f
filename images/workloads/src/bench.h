/*
 * Shared helpers of the vmon paging-comparison workloads (riscv64 Linux guest programs).
 *
 * Every workload prints exactly one result line,
 *   result: <name> <args> checksum=<16 hex digits>
 * whose checksum depends only on the arguments (fixed seeds, no addresses, no timing), so it is
 * identical under any correct MMU, and then one timing line,
 *   time: <name> <milliseconds> ms
 * which a harness ignores when comparing runs. Errors go to stderr with a non-zero exit status.
 *
 * Output is written with write(2) from a stack buffer, never through stdio buffers, so nothing is
 * duplicated or lost across fork().
 */
#ifndef VMON_BENCH_H
#define VMON_BENCH_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Writes a formatted line to file descriptor fd (whole buffer, retrying short writes). */
static void bench_fdprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bench_fdprintf(int fd, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (size_t)w;
  }
}

/* Prints "<name>: <message>" to stderr and exits with status 2. */
#define bench_die(name, ...)                                                                     \
  do {                                                                                           \
    bench_fdprintf(2, "%s: ", (name));                                                           \
    bench_fdprintf(2, __VA_ARGS__);                                                              \
    bench_fdprintf(2, "\n");                                                                     \
    _exit(2);                                                                                    \
  } while (0)

/* Parses a decimal argument in [min, max]; exits with a usage message otherwise. */
__attribute__((unused)) static uint64_t bench_arg(const char *name, const char *what, const char *text, uint64_t min,
                          uint64_t max) {
  if (text == NULL || *text == '\0') bench_die(name, "missing argument %s", what);
  uint64_t v = 0;
  for (const char *p = text; *p; p++) {
    if (*p < '0' || *p > '9') bench_die(name, "argument %s is not a number: \"%s\"", what, text);
    uint64_t d = (uint64_t)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) bench_die(name, "argument %s is too large: \"%s\"", what, text);
    v = v * 10 + d;
  }
  if (v < min || v > max) {
    bench_die(name, "argument %s must be in %llu..%llu: got %llu", what, (unsigned long long)min,
              (unsigned long long)max, (unsigned long long)v);
  }
  return v;
}

/* Monotonic time in nanoseconds. */
static uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Folds a 64-bit value into a running checksum (order-sensitive, good avalanche). */
static inline uint64_t bench_mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h ^= h >> 31;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 29;
  return h;
}

/* A small deterministic generator (splitmix64). */
static inline uint64_t bench_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Returns a value in [0, n) (n > 0). */
__attribute__((unused)) static inline uint64_t bench_below(uint64_t *state, uint64_t n) { return bench_rand(state) % n; }

/* Prints the result and time lines. `args` describes the arguments ("n=200"). */
__attribute__((unused)) static void bench_report(const char *name, const char *args, uint64_t checksum, uint64_t start_ns) {
  uint64_t ns = bench_now_ns() - start_ns;
  bench_fdprintf(1, "result: %s %s checksum=%016llx\n", name, args, (unsigned long long)checksum);
  bench_fdprintf(1, "time: %s %llu.%03llu ms\n", name, (unsigned long long)(ns / 1000000u),
                 (unsigned long long)(ns / 1000u % 1000u));
}

#endif
