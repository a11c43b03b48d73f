/*
 * pipepong N: parent and child pass a byte back and forth over two pipes N times (the child adds
 * one to it each time). Measures context switches between two address spaces (the address-space
 * switch and the TLB work it causes) with almost no memory traffic.
 */
#include <sys/wait.h>

#include "bench.h"

static void put(const char *name, int fd, unsigned char b) {
  for (;;) {
    ssize_t w = write(fd, &b, 1);
    if (w == 1) return;
    if (w < 0 && errno == EINTR) continue;
    bench_die(name, "pipe write failed: %s", w < 0 ? strerror(errno) : "short write");
  }
}

/* Returns the byte read, or -1 at end of file. */
static int get(const char *name, int fd) {
  unsigned char b;
  for (;;) {
    ssize_t r = read(fd, &b, 1);
    if (r == 1) return b;
    if (r == 0) return -1;
    if (errno == EINTR) continue;
    bench_die(name, "pipe read failed: %s", strerror(errno));
  }
}

int main(int argc, char **argv) {
  const char *name = "pipepong";
  if (argc != 2) bench_die(name, "usage: pipepong N");
  uint64_t n = bench_arg(name, "N", argv[1], 1, 100000000);
  int ping[2], pong[2];
  if (pipe(ping) != 0 || pipe(pong) != 0) bench_die(name, "pipe failed: %s", strerror(errno));
  uint64_t start = bench_now_ns();
  pid_t pid = fork();
  if (pid < 0) bench_die(name, "fork failed: %s", strerror(errno));
  if (pid == 0) {
    close(ping[1]);
    close(pong[0]);
    int b;
    while ((b = get("pipepong child", ping[0])) >= 0) put("pipepong child", pong[1], (unsigned char)(b + 1));
    _exit(0);
  }
  close(ping[0]);
  close(pong[1]);
  uint64_t sum = 0;
  unsigned char b = 0x5a;
  for (uint64_t i = 0; i < n; i++) {
    put(name, ping[1], b);
    int r = get(name, pong[0]);
    if (r != (unsigned char)(b + 1)) bench_die(name, "round %llu: sent %u, got %d", (unsigned long long)i, b, r);
    b = (unsigned char)(r * 13 + (int)i);
    sum = bench_mix(sum, (uint64_t)r);
  }
  close(ping[1]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    bench_die(name, "child failed (wait status 0x%x)", (unsigned)status);
  }
  char args[64];
  snprintf(args, sizeof args, "n=%llu", (unsigned long long)n);
  bench_report(name, args, sum, start);
  return 0;
}
