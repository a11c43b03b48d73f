/* UART output and exit helpers for vmon's x86-64 test guests. Plain integer code only. */
#include "guest.h"

/* The 16550 line status register bit "transmit holding register empty". */
#define LSR_THRE 0x20

void putc(char c) {
  /* Bounded wait: a UART that never reports empty must not hang the guest. */
  for (int tries = 0; tries < 1000; tries++) {
    if (inb(UART_BASE + 5) & LSR_THRE) break;
  }
  outb(UART_BASE, (u8)c);
}

void puts(const char *s) {
  while (*s) putc(*s++);
}

void put_dec(u64 value) {
  char buf[21];
  int i = 20;
  buf[i] = 0;
  do {
    buf[--i] = (char)('0' + value % 10);
    value /= 10;
  } while (value != 0);
  puts(&buf[i]);
}

void put_hex(u64 value) {
  char buf[19];
  int i = 18;
  buf[i] = 0;
  do {
    buf[--i] = "0123456789abcdef"[value & 15];
    value >>= 4;
  } while (value != 0);
  buf[--i] = 'x';
  buf[--i] = '0';
  puts(&buf[i]);
}

void guest_exit(u64 code) {
  outb(DEBUG_EXIT_PORT, (u8)code);
  /* The monitor stops the machine on that write; if nothing listens, spin politely. */
  for (;;) cpu_relax();
}

static volatile u32 console_lock;

void print_lock(void) {
  while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE) != 0) {
    while (console_lock != 0) cpu_relax();
  }
}

void print_unlock(void) {
  __atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

/* gcc may emit calls to these even in freestanding code. */
void *memset(void *dst, int c, u64 n) {
  u8 *d = dst;
  while (n--) *d++ = (u8)c;
  return dst;
}

void *memcpy(void *dst, const void *src, u64 n) {
  u8 *d = dst;
  const u8 *s = src;
  while (n--) *d++ = *s++;
  return dst;
}
