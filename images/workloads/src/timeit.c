/*
 * timeit NAME COMMAND [ARGS...]: runs COMMAND (stdin, stdout and stderr inherited), waits for it
 * and prints "time: NAME <milliseconds> ms"; exits with the command's status. Used by run.sh for
 * the programs built from Debian sources, which do not time themselves.
 */
#include <sys/wait.h>

#include "bench.h"

int main(int argc, char **argv) {
  if (argc < 3) bench_die("timeit", "usage: timeit NAME COMMAND [ARGS...]");
  uint64_t start = bench_now_ns();
  pid_t pid = fork();
  if (pid < 0) bench_die("timeit", "fork failed: %s", strerror(errno));
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    bench_fdprintf(2, "timeit: cannot execute \"%s\": %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  int status = 0;
  pid_t got;
  do got = waitpid(pid, &status, 0);
  while (got < 0 && errno == EINTR);
  if (got != pid) bench_die("timeit", "waitpid failed: %s", strerror(errno));
  uint64_t ns = bench_now_ns() - start;
  bench_fdprintf(1, "time: %s %llu.%03llu ms\n", argv[1], (unsigned long long)(ns / 1000000u),
                 (unsigned long long)(ns / 1000u % 1000u));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
