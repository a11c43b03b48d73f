/*
 * gendata KIB [SEED]: writes KIB KiB of deterministic, compressible pseudo-text to stdout (words
 * from a fixed vocabulary and numbers, in lines), the input of the xz workload. The same
 * arguments always give the same bytes.
 */
#include "bench.h"

static const char *const words[] = {
    "page",   "table",  "entry",   "shadow", "guest",   "host",   "frame",  "fault",
    "walk",   "flush",  "batch",   "queue",  "update",  "valid",  "dirty",  "access",
    "user",   "kernel", "mapping", "region", "memory",  "translation", "level", "leaf",
    "root",   "switch", "process", "thread", "fork",    "exec",   "wait",   "pipe",
    "the",    "a",      "of",      "to",     "and",     "in",     "is",     "for",
    "with",   "on",     "by",      "from",   "at",      "as",     "not",    "one",
};

int main(int argc, char **argv) {
  const char *name = "gendata";
  if (argc != 2 && argc != 3) bench_die(name, "usage: gendata KIB [SEED]");
  uint64_t kib = bench_arg(name, "KIB", argv[1], 1, 1 << 20);
  uint64_t rng = argc == 3 ? bench_arg(name, "SEED", argv[2], 0, UINT64_MAX) : 1;
  uint64_t total = kib * 1024, done = 0;
  char buf[8192];
  size_t len = 0, line = 0;
  const size_t nwords = sizeof words / sizeof words[0];
  while (done < total) {
    char tok[32];
    uint64_t r = bench_rand(&rng);
    int n;
    if (r % 11 == 0) n = snprintf(tok, sizeof tok, "%llu", (unsigned long long)(r >> 40) % 100000);
    else n = snprintf(tok, sizeof tok, "%s", words[(r >> 8) % nwords]);
    if (n < 0) n = 0;
    if (line + (size_t)n + 1 > 72) {
      buf[len++] = '\n';
      line = 0;
    } else if (line > 0) {
      buf[len++] = ' ';
      line++;
    }
    memcpy(buf + len, tok, (size_t)n);
    len += (size_t)n;
    line += (size_t)n;
    if (len > sizeof buf - 64 || done + len >= total) {
      size_t out = len;
      if (done + out > total) out = (size_t)(total - done);
      size_t off = 0;
      while (off < out) {
        ssize_t w = write(1, buf + off, out - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) bench_die(name, "write failed: %s", w < 0 ? strerror(errno) : "short write");
        off += (size_t)w;
      }
      done += out;
      len = 0;
    }
  }
  return 0;
}
