/*
 * crash: fails on purpose, for the tests of vmon's fatal-exit messages. Runs in ring 0.
 *   arg=1: triple fault (loads an empty IDT, then executes ud2: #UD -> #DF -> shutdown)
 *   arg=2: an instruction nested KVM cannot emulate in ring 0 (popcnt: internal error)
 *   arg=3: a page fault on an unmapped address (reported through the platform's IDT)
 *   otherwise: prints a line and exits 0
 */
#include "guest.h"

u64 guest_main(u64 id, u64 arg, u64 cpus, u64 free_start, u64 free_end) {
  (void)id;
  (void)cpus;
  (void)free_start;
  (void)free_end;
  puts("crash: mode ");
  put_dec(arg);
  puts("\n");
  if (arg == 1) {
    struct __attribute__((packed)) {
      unsigned short limit;
      u64 base;
    } idt = {0, 0};
    __asm__ volatile("lidt %0\n\tud2" : : "m"(idt));
  } else if (arg == 2) {
    /* popcnt %rax, %rax, as bytes so the compiler needs no -mpopcnt. */
    __asm__ volatile(".byte 0xf3, 0x48, 0x0f, 0xb8, 0xc0" : : : "rax");
  } else if (arg == 3) {
    volatile u64 *p = (volatile u64 *)0x7ff0000000ull;
    return *p;
  }
  return 0;
}
