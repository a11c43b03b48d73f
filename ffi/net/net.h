/*
 * ffi/net: the packet backends of virtio-net (see README.md). One endpoint (vmon_net) owns a
 * backend descriptor (a TAP file or a stream socket connected to passt), a poll thread, and two
 * single-producer single-consumer rings of frames in memory it owns:
 *
 *   rx: the poll thread reads frames from the descriptor and appends them; the machine's thread
 *       takes them with vmon_net_recv();
 *   tx: the machine's thread appends frames with vmon_net_send(); vmon_net_flush() and the poll
 *       thread write them to the descriptor (under tx_lock, so one writer at a time).
 *
 * Every frame in a ring is a record: u32 length, then that many bytes: the 12-byte
 * virtio_net_hdr followed by the Ethernet frame. Records are 8-byte aligned; a record never wraps
 * (a WRAP marker sends the reader back to the start).
 *
 * Events: the poll thread bumps `seq` whenever frames arrived, room to send came back after a
 * refused send, or the backend stopped. It then calls the kick function once if the machine
 * armed it (vmon_net_poll arms it), and wakes a vmon_net_wait() caller.
 */
#ifndef VMON_NET_H
#define VMON_NET_H

#include "vmon_ffi.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* The virtio_net_hdr of virtio 1.x (num_buffers included). */
#define NET_HDR 12
/* The largest Ethernet frame a backend may carry: a 65535-byte MTU, the header and a VLAN tag. */
#define NET_MAX_FRAME (65535 + 18)
/* The largest record payload (header + frame). */
#define NET_MAX_PACKET (NET_HDR + NET_MAX_FRAME)
/* The smallest frame accepted: an Ethernet header. */
#define NET_MIN_FRAME 14

enum { NET_KIND_TAP = 1, NET_KIND_STREAM = 2 };

/* Counters (vmon_net_counters), in the order of NET_COUNTER_NAMES in symbols.ts. */
enum {
  NC_RX_FRAMES,  /* frames read from the backend */
  NC_RX_BYTES,   /* their bytes (Ethernet frame only) */
  NC_RX_DROPPED, /* frames read but refused (too short, too long) */
  NC_TX_FRAMES,  /* frames written to the backend */
  NC_TX_BYTES,   /* their bytes (Ethernet frame only) */
  NC_TX_DROPPED, /* frames the backend refused (write errors other than "try again") */
  NC_KICKS,      /* calls of the kick function */
  NC_COUNT
};

typedef struct {
  uint8_t *buf;
  uint32_t cap; /* power of 2 */
  _Atomic uint64_t head; /* bytes produced; written by the producer only */
  _Atomic uint64_t tail; /* bytes consumed; written by the consumer only */
} net_ring;

typedef struct vmon_net {
  int kind;
  int fd;          /* the backend descriptor, non-blocking */
  int evfd;        /* eventfd: wakes the poll thread (stop, tx pending, rx room) */
  int waitfd;      /* eventfd: wakes vmon_net_wait() */
  int errfd;       /* passt's stderr (read for its last message), or -1 */
  pid_t child;     /* passt, or 0 */
  char ifname[16]; /* TAP: the interface's name */

  net_ring rx, tx;
  pthread_mutex_t tx_lock;
  uint32_t tx_off;          /* stream: bytes of the first tx record already written */
  _Atomic int tx_blocked;   /* a send was refused: signal when room comes back */
  _Atomic int rx_blocked;   /* the poll thread stopped reading: the rx ring was full */
  _Atomic int tx_waiting;   /* records are left that need POLLOUT */
  _Atomic int tx_failed;    /* a write found the connection closed */

  /* stream: bytes read from the socket that do not form a whole frame yet */
  uint8_t *sbuf;
  uint32_t slen;

  _Atomic uint32_t seq;
  _Atomic int kick_armed;
  _Atomic int waiting;
  void (*kick)(void *);
  void *kick_arg;

  pthread_t thread;
  int started;
  _Atomic int stopping;
  _Atomic int dead; /* the backend stopped (error holds why) */
  char error[256];
  char last_line[200]; /* passt's last message on stderr */
  /* passt started without waiting (vmon_net_open_passt with wait 0): set once its configuration
     summary arrives; until then its stderr is kept in start_text, which names the reason when it
     exits first. Written by the poll thread only (by the opener before the thread starts). */
  _Atomic int ready;
  char start_text[4096];
  size_t start_len;
  _Atomic int refs;

  uint64_t counters[NC_COUNT];
} vmon_net;

/* net.c */
VMON_INTERNAL vmon_net *net__alloc(int kind, int fd);
VMON_INTERNAL void net__free(vmon_net *n);
/* passt.c: passt's stderr before it is ready (poll thread), and the reason it exited before. */
VMON_INTERNAL void net__passt_starting(vmon_net *n, const char *buf, size_t len);
VMON_INTERNAL void net__passt_start_error(vmon_net *n);
VMON_INTERNAL void net__set_error(char *err, int errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
