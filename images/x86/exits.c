/*
 * exits: makes exactly `arg` port-I/O exits to port 0x80 (alternating out and in), prints a
 * summary over the UART and exits with code 0. For the port-I/O exit benchmark.
 */
#include "guest.h"

u64 guest_main(u64 id, u64 arg, u64 cpus, u64 free_start, u64 free_end) {
  (void)id;
  (void)cpus;
  (void)free_start;
  (void)free_end;
  u64 pairs = arg / 2;
  /* A tight loop: one out and one in per iteration, nothing else. */
  __asm__ volatile(
      "test %0, %0\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      "outb %%al, $0x80\n\t"
      "inb $0x80, %%al\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      : "+r"(pairs)
      :
      : "rax", "memory", "cc");
  if (arg & 1) outb(NOP_PORT, 0);
  puts("exits: made ");
  put_dec(arg);
  puts(" port-I/O exits\n");
  return 0;
}
