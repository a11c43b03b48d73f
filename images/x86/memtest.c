/*
 * memtest: writes and checks two patterns (inverted, then plain) over the free RAM above the
 * image, prints a checksum over the UART and exits 0, or 1 on a mismatch. `arg`, if non-zero,
 * limits the test to that many MiB.
 *
 * The pattern for the 32-bit word at address a is (u32)((a >> 2) * 2654435761) ^ 0xa5a5a5a5;
 * the checksum is the sum of all pattern words modulo 2^32.
 */
#include "guest.h"

static inline u32 pattern(u64 addr) {
  return (u32)((u32)(addr >> 2) * 2654435761u) ^ 0xa5a5a5a5u;
}

static int check(volatile u32 *start, volatile u32 *end, u32 invert, u32 *sum) {
  u32 total = 0;
  for (volatile u32 *p = start; p < end; p++) {
    u32 want = pattern((u64)p) ^ invert;
    u32 got = *p;
    if (got != want) {
      puts("memtest: mismatch at ");
      put_hex((u64)p);
      puts(": wrote ");
      put_hex(want);
      puts(", read ");
      put_hex(got);
      puts("\n");
      return 0;
    }
    total += got;
  }
  *sum = total;
  return 1;
}

u64 guest_main(u64 id, u64 arg, u64 cpus, u64 free_start, u64 free_end) {
  (void)cpus;
  if (id != 0) {
    for (;;) cpu_relax();
  }
  u64 start = (free_start + 4095) & ~4095ul;
  u64 end = free_end & ~3ul;
  if (arg != 0 && arg < (end - start) >> 20) end = start + (arg << 20);
  if (end <= start) {
    puts("memtest: no free memory to test\n");
    return 1;
  }
  puts("memtest: testing ");
  put_hex(start);
  puts("-");
  put_hex(end);
  puts("\n");

  volatile u32 *s = (volatile u32 *)start;
  volatile u32 *e = (volatile u32 *)end;
  u32 sum = 0;
  for (volatile u32 *p = s; p < e; p++) *p = ~pattern((u64)p);
  if (!check(s, e, ~0u, &sum)) return 1;
  for (volatile u32 *p = s; p < e; p++) *p = pattern((u64)p);
  if (!check(s, e, 0, &sum)) return 1;

  puts("memtest: ok, ");
  put_dec((end - start) >> 10);
  puts(" KiB, checksum ");
  put_hex(sum);
  puts("\n");
  return 0;
}
