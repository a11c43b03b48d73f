/* pv-guest entry: S-mode, a0 = hart id, a1 = device tree. Zeroes .bss, sets the stack, runs
   pv_main(a0, a1), then shuts down through pv_main's own SBI SRST call (never returns). */
  .section .text.start, "ax"
  .globl _start
_start:
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 1b
2:
  la sp, __stack_top
  call pv_main
3:
  wfi
  j 3b
