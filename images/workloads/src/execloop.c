/*
 * execloop N [PATH]: fork, exec PATH (default /bin/true) in the child, wait; N times. Measures
 * process creation plus exec: a fresh address space, ELF mapping and its first-touch faults.
 */
#include <sys/wait.h>

#include "bench.h"

int main(int argc, char **argv) {
  const char *name = "execloop";
  if (argc != 2 && argc != 3) bench_die(name, "usage: execloop N [PATH]");
  uint64_t n = bench_arg(name, "N", argv[1], 1, 100000000);
  const char *path = argc == 3 ? argv[2] : "/bin/true";
  if (access(path, X_OK) != 0) bench_die(name, "cannot execute \"%s\": %s", path, strerror(errno));
  uint64_t start = bench_now_ns();
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) bench_die(name, "fork failed at %llu: %s", (unsigned long long)i, strerror(errno));
    if (pid == 0) {
      char *child_argv[] = {(char *)path, NULL};
      char *child_env[] = {NULL};
      execve(path, child_argv, child_env);
      _exit(127);
    }
    int status = 0;
    pid_t got;
    do got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got != pid) bench_die(name, "waitpid failed: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      bench_die(name, "\"%s\" failed in round %llu (wait status 0x%x)", path, (unsigned long long)i,
                (unsigned)status);
    }
    sum = bench_mix(sum, i);
  }
  char args[64];
  snprintf(args, sizeof args, "n=%llu", (unsigned long long)n);
  bench_report(name, args, sum, start);
  return 0;
}
