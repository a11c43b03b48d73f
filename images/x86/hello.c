/* hello: prints a greeting over the UART and exits with `arg` as the exit code. */
#include "guest.h"

u64 guest_main(u64 id, u64 arg, u64 cpus, u64 free_start, u64 free_end) {
  (void)cpus;
  (void)free_start;
  (void)free_end;
  puts("Hello from vmon x86-64 guest on vCPU ");
  put_dec(id);
  puts("!\nhello: exiting with code ");
  put_dec(arg & 0xff);
  puts("\n");
  return arg & 0xff;
}
