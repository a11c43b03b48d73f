/*
 * smp: every vCPU prints its id, all meet at a barrier (lock-prefixed atomics), then vCPU 0
 * prints a final line and exits with code `arg`; the others spin until the machine stops.
 */
#include "guest.h"

static volatile u64 arrived;

u64 guest_main(u64 id, u64 arg, u64 cpus, u64 free_start, u64 free_end) {
  (void)free_start;
  (void)free_end;
  print_lock();
  puts("smp: cpu ");
  put_dec(id);
  puts(" of ");
  put_dec(cpus);
  puts(" is up\n");
  print_unlock();

  __atomic_fetch_add(&arrived, 1, __ATOMIC_SEQ_CST);
  while (__atomic_load_n(&arrived, __ATOMIC_ACQUIRE) < cpus) cpu_relax();

  if (id != 0) {
    for (;;) cpu_relax();
  }
  print_lock();
  puts("smp: all ");
  put_dec(cpus);
  puts(" cpus met at the barrier\n");
  print_unlock();
  return arg & 0xff;
}
