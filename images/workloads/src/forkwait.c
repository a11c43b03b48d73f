/*
 * forkwait N: fork a child that exits at once with a status derived from its index, wait for it;
 * N times. Measures process creation and teardown (address space copy, page-table setup and
 * teardown, TLB flushes on the way).
 */
#include <sys/wait.h>

#include "bench.h"

int main(int argc, char **argv) {
  const char *name = "forkwait";
  if (argc != 2) bench_die(name, "usage: forkwait N");
  uint64_t n = bench_arg(name, "N", argv[1], 1, 100000000);
  uint64_t start = bench_now_ns();
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) bench_die(name, "fork failed at %llu: %s", (unsigned long long)i, strerror(errno));
    if (pid == 0) _exit((int)(i * 7 % 251));
    int status = 0;
    pid_t got;
    do got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got != pid) bench_die(name, "waitpid failed: %s", strerror(errno));
    if (!WIFEXITED(status)) bench_die(name, "child %llu did not exit normally", (unsigned long long)i);
    uint64_t code = (uint64_t)WEXITSTATUS(status);
    if (code != i * 7 % 251) {
      bench_die(name, "child %llu exited with %llu, expected %llu", (unsigned long long)i,
                (unsigned long long)code, (unsigned long long)(i * 7 % 251));
    }
    sum = bench_mix(sum, code);
  }
  char args[64];
  snprintf(args, sizeof args, "n=%llu", (unsigned long long)n);
  bench_report(name, args, sum, start);
  return 0;
}
