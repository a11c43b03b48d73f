/*
 * The endpoint of ffi/net (net.h): rings, the poll thread and the exported calls the machine's
 * thread makes. tap.c and passt.c open the backend descriptor and hand it to net__alloc().
 *
 * Ownership: vmon_net_open_tap()/vmon_net_open_passt() return an endpoint the caller owns until
 * vmon_net_close(). Buffers passed to vmon_net_recv()/vmon_net_send() are the caller's and are
 * used during the call only. vmon_net_counters() points into the endpoint: valid until
 * vmon_net_close().
 */
#define _GNU_SOURCE
#include "net.h"
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RING_CAP (4u << 20) /* 4 MiB each way: 64 frames of 64 KiB, thousands of small ones */
#define WRAP 0xffffffffu
#define REC_MAX (4u + NET_MAX_PACKET)
#define SBUF_CAP (2u * REC_MAX)

void net__set_error(char *err, int errlen, const char *fmt, ...) {
  if (!err || errlen <= 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, (size_t)errlen, fmt, ap);
  va_end(ap);
}

/* ---------------------------------------------------------------------------------------- */
/* rings                                                                                     */

static uint32_t rec_size(uint32_t len) { return (4u + len + 7u) & ~7u; }

/* Producer: where a record of up to REC_MAX bytes can be written, or NULL when full. */
static uint8_t *ring_reserve(net_ring *r) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  uint32_t pos = (uint32_t)(head & (r->cap - 1));
  uint32_t contig = r->cap - pos;
  uint64_t need = contig >= REC_MAX ? REC_MAX : (uint64_t)contig + REC_MAX;
  if (r->cap - (head - tail) < need) return NULL;
  if (contig < REC_MAX) {
    memcpy(r->buf + pos, &(uint32_t){WRAP}, 4);
    atomic_store_explicit(&r->head, head + contig, memory_order_release);
    pos = 0;
  }
  return r->buf + pos + 4;
}

/* Producer: publishes the record of `len` bytes written at ring_reserve()'s pointer. */
static void ring_commit(net_ring *r, uint32_t len) {
  uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  memcpy(r->buf + (head & (r->cap - 1)), &len, 4);
  atomic_store_explicit(&r->head, head + rec_size(len), memory_order_release);
}

/* Consumer: the oldest record (its length in *len), or NULL when empty. */
static uint8_t *ring_peek(net_ring *r, uint32_t *len) {
  for (;;) {
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail == head) return NULL;
    uint32_t pos = (uint32_t)(tail & (r->cap - 1));
    uint32_t l;
    memcpy(&l, r->buf + pos, 4);
    if (l == WRAP) {
      atomic_store_explicit(&r->tail, tail + (r->cap - pos), memory_order_release);
      continue;
    }
    *len = l;
    return r->buf + pos + 4;
  }
}

/* Consumer: drops the record ring_peek() returned. */
static void ring_pop(net_ring *r, uint32_t len) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  atomic_store_explicit(&r->tail, tail + rec_size(len), memory_order_release);
}

static int ring_init(net_ring *r) {
  void *p = mmap(NULL, RING_CAP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -1;
  r->buf = p;
  r->cap = RING_CAP;
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* events                                                                                    */

static void signal_fd(int fd) {
  uint64_t one = 1;
  ssize_t r = write(fd, &one, sizeof one);
  (void)r; /* an eventfd only fails when its counter is saturated: it is signalled then */
}

static void drain_fd(int fd) {
  uint64_t v;
  ssize_t r = read(fd, &v, sizeof v);
  (void)r;
}

/* Something happened the machine must look at: bump seq, kick once if armed, wake a waiter. */
static void notify(vmon_net *n) {
  atomic_fetch_add(&n->seq, 1);
  if (n->kick && atomic_exchange(&n->kick_armed, 0)) {
    n->counters[NC_KICKS]++;
    n->kick(n->kick_arg);
  }
  if (atomic_load(&n->waiting)) signal_fd(n->waitfd);
}

/* ---------------------------------------------------------------------------------------- */
/* transmit (tx_lock held)                                                                   */

/* Writes queued records until the ring is empty or the descriptor would block. Returns 1 when
   records are left (wait for POLLOUT). */
static int flush_locked(vmon_net *n) {
  uint32_t len;
  uint8_t *p;
  int freed = 0;
  while (!atomic_load(&n->dead) && !atomic_load(&n->tx_failed) &&
         (p = ring_peek(&n->tx, &len))) {
    uint32_t frame = len - NET_HDR;
    if (n->kind == NET_KIND_TAP) {
      ssize_t w = write(n->fd, p, len);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (w < 0 && errno == EINTR) continue;
      if (w == (ssize_t)len) {
        n->counters[NC_TX_FRAMES]++;
        n->counters[NC_TX_BYTES] += frame;
      } else {
        n->counters[NC_TX_DROPPED]++; /* EIO while the interface is down, ... */
      }
    } else {
      /* QEMU's stream framing: a 4-byte big-endian length, then the Ethernet frame. */
      uint8_t prefix[4] = {(uint8_t)(frame >> 24), (uint8_t)(frame >> 16), (uint8_t)(frame >> 8),
                           (uint8_t)frame};
      uint32_t total = 4 + frame;
      while (n->tx_off < total) {
        struct iovec iov[2];
        int cnt = 0;
        if (n->tx_off < 4) iov[cnt++] = (struct iovec){prefix + n->tx_off, 4 - n->tx_off};
        uint32_t fo = n->tx_off < 4 ? 0 : n->tx_off - 4;
        iov[cnt++] = (struct iovec){p + NET_HDR + fo, frame - fo};
        ssize_t w = writev(n->fd, iov, cnt);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (w <= 0) {
          atomic_store(&n->tx_failed, 1); /* the poll thread declares the backend dead */
          signal_fd(n->evfd);
          break;
        }
        n->tx_off += (uint32_t)w;
      }
      if (n->tx_off < total) break;
      n->tx_off = 0;
      n->counters[NC_TX_FRAMES]++;
      n->counters[NC_TX_BYTES] += frame;
    }
    ring_pop(&n->tx, len);
    freed = 1;
  }
  if (freed && atomic_exchange(&n->tx_blocked, 0)) notify(n);
  if (atomic_load(&n->dead)) {
    /* Nothing will be written any more: drop what is queued so senders are not stuck. */
    while ((p = ring_peek(&n->tx, &len))) {
      ring_pop(&n->tx, len);
      n->counters[NC_TX_DROPPED]++;
    }
    n->tx_off = 0;
    return 0;
  }
  return ring_peek(&n->tx, &len) != NULL;
}

static void flush(vmon_net *n) {
  pthread_mutex_lock(&n->tx_lock);
  int left = flush_locked(n);
  pthread_mutex_unlock(&n->tx_lock);
  atomic_store(&n->tx_waiting, left);
}

/* ---------------------------------------------------------------------------------------- */
/* receive (poll thread)                                                                     */

/* Reads what the descriptor has, as long as the rx ring has room. Returns frames added; sets
   `why` (a static or n-owned string) when the backend stopped. */
static int receive(vmon_net *n, const char **why) {
  int added = 0;
  for (int rounds = 0; rounds < 256 && !*why; rounds++) {
    uint8_t *slot = ring_reserve(&n->rx);
    if (!slot) {
      atomic_store(&n->rx_blocked, 1);
      /* the consumer may have made room between the check and the flag */
      if (!(slot = ring_reserve(&n->rx))) break;
      atomic_store(&n->rx_blocked, 0);
    }
    if (n->kind == NET_KIND_TAP) {
      ssize_t r = read(n->fd, slot, NET_MAX_PACKET);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (r <= 0) {
        *why = r == 0 ? "the TAP device was closed" : "reading the TAP device failed";
        break;
      }
      if (r < NET_HDR + NET_MIN_FRAME) {
        n->counters[NC_RX_DROPPED]++;
        continue;
      }
      n->counters[NC_RX_FRAMES]++;
      n->counters[NC_RX_BYTES] += (uint64_t)r - NET_HDR;
      ring_commit(&n->rx, (uint32_t)r);
      added++;
      continue;
    }
    /* stream: one whole frame from the staging buffer, else read more */
    if (n->slen >= 4) {
      uint32_t flen = (uint32_t)n->sbuf[0] << 24 | (uint32_t)n->sbuf[1] << 16 |
                      (uint32_t)n->sbuf[2] << 8 | n->sbuf[3];
      if (flen > NET_MAX_FRAME) {
        *why = "passt sent a frame longer than 65553 bytes";
        break;
      }
      if (n->slen >= 4 + flen) {
        if (flen < NET_MIN_FRAME) {
          n->counters[NC_RX_DROPPED]++;
        } else {
          memset(slot, 0, NET_HDR);
          memcpy(slot + NET_HDR, n->sbuf + 4, flen);
          n->counters[NC_RX_FRAMES]++;
          n->counters[NC_RX_BYTES] += flen;
          ring_commit(&n->rx, NET_HDR + flen);
          added++;
        }
        n->slen -= 4 + flen;
        memmove(n->sbuf, n->sbuf + 4 + flen, n->slen);
        continue;
      }
    }
    ssize_t r = read(n->fd, n->sbuf + n->slen, SBUF_CAP - n->slen);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (r <= 0) {
      *why = "passt closed the connection";
      break;
    }
    n->slen += (uint32_t)r;
  }
  return added;
}

/* passt's stderr: keep its last line that is not about syslog, for error messages. */
static void read_stderr(vmon_net *n) {
  char buf[1024];
  ssize_t r = read(n->errfd, buf, sizeof buf - 1);
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close(n->errfd);
    n->errfd = -1;
    return;
  }
  buf[r] = 0;
  if (atomic_load(&n->dead)) return; /* the message was read: keep it stable */
  if (!atomic_load(&n->ready)) net__passt_starting(n, buf, (size_t)r);
  char *save = NULL;
  for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    if (strstr(line, "syslog") || !line[0]) continue;
    snprintf(n->last_line, sizeof n->last_line, "%s", line);
  }
}

static void *poll_thread(void *arg) {
  vmon_net *n = arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals belong to the machine's threads */
  while (!atomic_load(&n->stopping)) {
    struct pollfd p[3];
    int np = 0;
    p[np++] = (struct pollfd){n->evfd, POLLIN, 0};
    int fdi = -1, erri = -1;
    if (!atomic_load(&n->dead)) {
      short ev = 0;
      if (!atomic_load(&n->rx_blocked)) ev |= POLLIN;
      if (atomic_load(&n->tx_waiting)) ev |= POLLOUT;
      fdi = np;
      p[np++] = (struct pollfd){n->fd, ev, 0};
    }
    if (n->errfd >= 0) {
      erri = np;
      p[np++] = (struct pollfd){n->errfd, POLLIN, 0};
    }
    if (poll(p, (nfds_t)np, -1) < 0 && errno != EINTR) break;
    if (atomic_load(&n->stopping)) break;
    if (p[0].revents & POLLIN) drain_fd(n->evfd);
    if (erri >= 0 && p[erri].revents) read_stderr(n);
    int event = 0;
    const char *why = NULL;
    if (fdi >= 0 && (p[fdi].revents & POLLOUT || atomic_load(&n->tx_waiting))) flush(n);
    if (fdi >= 0 && !atomic_load(&n->rx_blocked) && receive(n, &why) > 0) event = 1;
    if (fdi >= 0 && !why) {
      if (atomic_load(&n->tx_failed)) why = "passt closed the connection";
      else if (p[fdi].revents & (POLLHUP | POLLERR) && !(p[fdi].revents & POLLIN))
        why = n->kind == NET_KIND_TAP ? "the TAP device failed" : "passt closed the connection";
    }
    if (why) {
      /* passt says why it stopped on stderr: give it a moment. error and last_line are written
         before `dead` is set and read only after. */
      for (int i = 0; i < 20 && n->errfd >= 0; i++) {
        struct pollfd e = {n->errfd, POLLIN, 0};
        if (poll(&e, 1, 10) <= 0) break;
        read_stderr(n);
      }
      if (n->child && !atomic_load(&n->ready)) net__passt_start_error(n);
      else snprintf(n->error, sizeof n->error, "%s", why);
      atomic_store(&n->dead, 1);
      flush(n); /* drops what is queued */
      event = 1;
    }
    if (event) notify(n);
  }
  return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* life cycle                                                                                */

vmon_net *net__alloc(int kind, int fd) {
  vmon_net *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->kind = kind;
  n->fd = fd;
  n->errfd = -1;
  n->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  n->waitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  atomic_init(&n->refs, 1);
  atomic_init(&n->ready, kind == NET_KIND_TAP); /* passt: its opener says */
  pthread_mutex_init(&n->tx_lock, NULL);
  if (n->evfd < 0 || n->waitfd < 0 || ring_init(&n->rx) < 0 || ring_init(&n->tx) < 0 ||
      (kind == NET_KIND_STREAM && !(n->sbuf = malloc(SBUF_CAP)))) {
    n->fd = -1; /* the caller closes its descriptor */
    net__free(n);
    return NULL;
  }
  return n;
}

void net__free(vmon_net *n) {
  if (n->rx.buf) munmap(n->rx.buf, n->rx.cap);
  if (n->tx.buf) munmap(n->tx.buf, n->tx.cap);
  if (n->evfd >= 0) close(n->evfd);
  if (n->waitfd >= 0) close(n->waitfd);
  if (n->errfd >= 0) close(n->errfd);
  if (n->fd >= 0) close(n->fd);
  pthread_mutex_destroy(&n->tx_lock);
  free(n->sbuf);
  free(n);
}

static void unref(vmon_net *n) {
  if (atomic_fetch_sub(&n->refs, 1) == 1) net__free(n);
}

/*
 * Starts the poll thread. `kick(kick_arg)` (may be NULL) is called from that thread when frames
 * arrive while the machine armed it (vmon_net_poll): it must be safe to call from any thread and
 * must not block (rv64_kick). `kick_arg` must stay valid until vmon_net_close() returns.
 * Returns 0, or -1 when the thread cannot be created.
 */
VMON_EXPORT int vmon_net_start(vmon_net *n, void (*kick)(void *), void *kick_arg) {
  if (!n || n->started) return -1;
  n->kick = kick;
  n->kick_arg = kick_arg;
  if (pthread_create(&n->thread, NULL, poll_thread, n) != 0) return -1;
  n->started = 1;
  return 0;
}

/*
 * Copies the oldest received packet (12-byte header + Ethernet frame) into `buf` (caller-owned,
 * `cap` bytes, used during the call only) and returns its length; 0 when there is none; -(length)
 * when it does not fit (the packet stays queued).
 */
VMON_EXPORT int vmon_net_recv(vmon_net *n, uint8_t *buf, uint32_t cap) {
  uint32_t len;
  uint8_t *p = ring_peek(&n->rx, &len);
  if (!p) return 0;
  if (len > cap) return -(int)len;
  memcpy(buf, p, len);
  ring_pop(&n->rx, len);
  if (atomic_load(&n->rx_blocked)) {
    atomic_store(&n->rx_blocked, 0);
    signal_fd(n->evfd);
  }
  return (int)len;
}

/*
 * Queues one packet (12-byte header + Ethernet frame, `len` bytes of caller-owned `buf`, copied
 * during the call). Returns 1 when queued, 0 when the queue is full (an event follows when
 * there is room again), -1 when the length is out of range, -2 when the backend has stopped.
 * Queued packets are written by vmon_net_flush() or the poll thread.
 */
VMON_EXPORT int vmon_net_send(vmon_net *n, const uint8_t *buf, uint32_t len) {
  if (len < NET_HDR + NET_MIN_FRAME || len > NET_MAX_PACKET) return -1;
  if (atomic_load(&n->dead)) return -2;
  uint8_t *slot = ring_reserve(&n->tx);
  if (!slot) {
    atomic_store(&n->tx_blocked, 1);
    signal_fd(n->evfd); /* let the poll thread write what is queued */
    if (!(slot = ring_reserve(&n->tx))) return 0;
    atomic_store(&n->tx_blocked, 0);
  }
  memcpy(slot, buf, len);
  ring_commit(&n->tx, len);
  return 1;
}

/* Writes queued packets now, as far as the descriptor takes them; the poll thread does the rest. */
VMON_EXPORT void vmon_net_flush(vmon_net *n) {
  if (pthread_mutex_trylock(&n->tx_lock) != 0) {
    signal_fd(n->evfd); /* the poll thread is writing: it looks again */
    return;
  }
  int left = flush_locked(n);
  pthread_mutex_unlock(&n->tx_lock);
  if (left && !atomic_exchange(&n->tx_waiting, 1)) signal_fd(n->evfd);
}

/*
 * The event sequence number: it changes when packets arrived, when there is room to send again
 * after a refused send, and when the backend stopped. Arms the kick for the next event.
 */
VMON_EXPORT uint32_t vmon_net_poll(vmon_net *n) {
  atomic_store(&n->kick_armed, 1);
  return atomic_load(&n->seq);
}

/*
 * Blocks until the event sequence number differs from `seen`, the endpoint is closed, or
 * `timeout_ms` passed (-1: no limit). Returns the sequence number. Called through a non-blocking
 * FFI symbol (a worker thread of Deno's pool); the endpoint stays allocated until it returns,
 * even when vmon_net_close() runs meanwhile.
 */
VMON_EXPORT uint32_t vmon_net_wait(vmon_net *n, uint32_t seen, int timeout_ms) {
  atomic_fetch_add(&n->refs, 1);
  atomic_store(&n->waiting, 1);
  while (atomic_load(&n->seq) == seen && !atomic_load(&n->stopping)) {
    struct pollfd p = {n->waitfd, POLLIN, 0};
    int r = poll(&p, 1, timeout_ms);
    if (r == 0) break;
    if (r > 0) drain_fd(n->waitfd);
  }
  atomic_store(&n->waiting, 0);
  uint32_t seq = atomic_load(&n->seq);
  unref(n);
  return seq;
}

/* 1 when the backend has stopped; its reason is copied into `buf` (caller-owned, `len` bytes). */
VMON_EXPORT int vmon_net_error(vmon_net *n, char *buf, int len) {
  if (!atomic_load(&n->dead)) return 0;
  if (n->last_line[0]) net__set_error(buf, len, "%s (%s)", n->error, n->last_line);
  else net__set_error(buf, len, "%s", n->error);
  return 1;
}

/* 1 once the backend is ready (a TAP device, or passt that printed its configuration), else 0. */
VMON_EXPORT int vmon_net_ready(vmon_net *n) { return atomic_load(&n->ready); }

/* The counters (NC_* order), owned by the endpoint until vmon_net_close(). */
VMON_EXPORT uint64_t *vmon_net_counters(vmon_net *n) { return n->counters; }

/* TAP: the interface name (owned by the endpoint until vmon_net_close()). */
VMON_EXPORT const char *vmon_net_ifname(vmon_net *n) { return n->ifname; }

/* passt: its process id (0 for a TAP endpoint). */
VMON_EXPORT int vmon_net_pid(vmon_net *n) { return (int)n->child; }

/* Waits up to `ms` for `pid` to exit; returns 1 when it did. */
static int reap(pid_t pid, int ms) {
  for (int waited = 0;; waited += 10) {
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return 1;
    if (waited >= ms) return 0;
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  }
}

/*
 * Stops the poll thread, closes the backend (passt sees the connection close and exits; it is
 * killed if it has not after a second) and releases the endpoint. A vmon_net_wait() in progress
 * returns at once; the memory is freed when it has. Idempotent for NULL.
 */
VMON_EXPORT void vmon_net_close(vmon_net *n) {
  if (!n) return;
  atomic_store(&n->stopping, 1);
  signal_fd(n->evfd);
  signal_fd(n->waitfd);
  if (n->started) pthread_join(n->thread, NULL);
  if (n->fd >= 0) close(n->fd);
  n->fd = -1;
  if (n->child > 0) {
    if (!reap(n->child, 1000)) {
      kill(n->child, SIGKILL);
      reap(n->child, 1000);
    }
    n->child = 0;
  }
  unref(n);
}
