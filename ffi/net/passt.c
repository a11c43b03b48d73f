/*
 * The user-mode backend: passt (https://passt.top), started by the endpoint with one end of a
 * socketpair as its connection (`--fd 3`), spoken to with QEMU's stream framing (a 4-byte
 * big-endian length, then the Ethernet frame). passt's stderr stays connected to the endpoint
 * (its last message explains an exit). passt runs with --one-off, so it exits when the endpoint
 * closes the connection, and in its own session, so a terminal's signals do not reach it.
 */
#define _GNU_SOURCE
#include "net.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_ARGS 64
#define STARTUP_MS 10000

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Appends `n` bytes of `buf` to the text `out` (`*len` bytes, NUL-terminated, `cap` bytes in
   all), keeping the newest text when it does not fit. */
static void keep_tail(char *out, size_t cap, size_t *len, const char *buf, size_t n) {
  if (n >= cap) {
    buf += n - (cap - 1);
    n = cap - 1;
  }
  if (*len + n >= cap) {
    size_t drop = *len + n - (cap - 1);
    memmove(out, out + drop, *len - drop);
    *len -= drop;
  }
  memcpy(out + *len, buf, n);
  *len += n;
  out[*len] = 0;
}

/* Reads passt's stderr into `out` (NUL-terminated, `cap` bytes, keeping the newest text). Returns
   -1 at end of file. */
static int read_err(int fd, char *out, size_t cap, size_t *len) {
  char buf[1024];
  ssize_t r = read(fd, buf, sizeof buf);
  if (r == 0) return -1;
  if (r < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  keep_tail(out, cap, len, buf, (size_t)r);
  return 0;
}

/* The last line of `text` that is not about syslog, into `err`. */
static void last_message(const char *text, char *err, int errlen) {
  const char *best = NULL;
  size_t best_len = 0;
  for (const char *p = text; *p;) {
    const char *e = strchr(p, '\n');
    size_t l = e ? (size_t)(e - p) : strlen(p);
    if (l > 0 && !memmem(p, l, "syslog", 6)) {
      best = p;
      best_len = l;
    }
    p += l + (e ? 1 : 0);
  }
  if (best) net__set_error(err, errlen, "%.*s", (int)best_len, best);
}

/*
 * Starts passt at `path` (caller-owned string) with the arguments in `args` (`nargs`
 * NUL-terminated strings one after another, caller-owned, read during the call) plus
 * `--fd 3`, and waits until it has configured itself (its configuration summary, which it prints
 * after binding forwarded ports, contains "MAC:") or exited. Returns the endpoint (owned by the
 * caller until vmon_net_close(), which also stops passt), or NULL with the reason in `err`
 * (caller-owned, `errlen` bytes): passt's own last message when it exited.
 */
VMON_EXPORT vmon_net *vmon_net_open_passt(const char *path, const char *args, int nargs, int wait,
                                          char *err, int errlen) {
  if (nargs < 0 || nargs > MAX_ARGS - 4) {
    net__set_error(err, errlen, "too many passt arguments");
    return NULL;
  }
  char *argv[MAX_ARGS];
  int argc = 0;
  argv[argc++] = (char *)path;
  for (int i = 0; i < nargs; i++) {
    argv[argc++] = (char *)args;
    args += strlen(args) + 1;
  }
  argv[argc++] = "--fd";
  argv[argc++] = "3";
  argv[argc] = NULL;

  int sv[2], ep[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
    net__set_error(err, errlen, "socketpair failed (%s)", strerror(errno));
    return NULL;
  }
  if (pipe2(ep, O_CLOEXEC) < 0) {
    net__set_error(err, errlen, "pipe failed (%s)", strerror(errno));
    close(sv[0]);
    close(sv[1]);
    return NULL;
  }
  /* passt drops frames it cannot write at once (TCP retransmits them, seconds later): give its
     end a large send buffer (SO_SNDBUFFORCE needs CAP_NET_ADMIN; else up to wmem_max) */
  int sz = 16 << 20;
  if (setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  /* dup2 onto 3 clears close-on-exec; make sure the source is not 3 already */
  int child_sock = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  close(sv[1]);
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
  posix_spawn_file_actions_adddup2(&fa, child_sock, 3);
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGHUP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  pid_t pid = 0;
  int rc = child_sock < 0 ? errno : posix_spawn(&pid, path, &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (child_sock >= 0) close(child_sock);
  close(ep[1]);
  if (rc != 0) {
    net__set_error(err, errlen, "cannot run %s (%s)", path, strerror(rc));
    close(sv[0]);
    close(ep[0]);
    return NULL;
  }

  /* wait for the configuration summary or the exit (not at all without `wait`) */
  char text[4096];
  size_t len = 0;
  text[0] = 0;
  int ready = !wait, eof = 0;
  uint64_t deadline = now_ms() + STARTUP_MS;
  while (!ready && !eof) {
    int64_t left = (int64_t)(deadline - now_ms());
    if (left <= 0) break;
    struct pollfd p = {ep[0], POLLIN, 0};
    if (poll(&p, 1, (int)left) > 0 && read_err(ep[0], text, sizeof text, &len) < 0) eof = 1;
    if (strstr(text, "MAC:")) ready = 1;
  }
  int status = 0;
  pid_t done = waitpid(pid, &status, WNOHANG);
  if (eof && done == 0) { /* stderr closed: passt is exiting */
    for (int i = 0; i < 100 && (done = waitpid(pid, &status, WNOHANG)) == 0; i++)
      nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
  if (done == pid) {
    net__set_error(err, errlen, "passt exited with status %d", WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    last_message(text, err, errlen);
    close(sv[0]);
    close(ep[0]);
    return NULL;
  }
  /* running (with a summary, or silent but alive after the startup time) */
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  fcntl(ep[0], F_SETFL, fcntl(ep[0], F_GETFL) | O_NONBLOCK);
  if (setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
  vmon_net *n = net__alloc(NET_KIND_STREAM, sv[0]);
  if (!n) {
    close(sv[0]);
    close(ep[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    net__set_error(err, errlen, "out of memory");
    return NULL;
  }
  n->child = pid;
  n->errfd = ep[0];
  atomic_store(&n->ready, wait);
  return n;
}

/* Keeps passt's stderr `buf` (`len` bytes) until it prints its configuration summary. */
void net__passt_starting(vmon_net *n, const char *buf, size_t len) {
  keep_tail(n->start_text, sizeof n->start_text, &n->start_len, buf, len);
  if (strstr(n->start_text, "MAC:")) atomic_store(&n->ready, 1);
}

/* passt stopped before it was ready: the reason into n->error, as a waiting open would give it. */
void net__passt_start_error(vmon_net *n) {
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 100 && (done = waitpid(n->child, &status, WNOHANG)) == 0; i++)
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  if (done == n->child) {
    net__set_error(n->error, sizeof n->error, "passt exited with status %d",
                   WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    n->child = 0; /* reaped */
  } else {
    net__set_error(n->error, sizeof n->error, "passt closed the connection before it was ready");
  }
  /* what it printed before it exited (it may close the socket first and print later) */
  if (n->errfd >= 0) {
    char buf[1024];
    ssize_t r;
    while ((r = read(n->errfd, buf, sizeof buf)) > 0) net__passt_starting(n, buf, (size_t)r);
  }
  last_message(n->start_text, n->error, (int)sizeof n->error);
  n->last_line[0] = 0; /* the reason is the whole message */
}
