/* Entry point of vmon's x86-64 test guests: align the stack, call guest_main, exit with its value. */
  .section .text.entry, "ax"
  .globl _start
  .type _start, @function
_start:
  andq $-16, %rsp
  xorl %ebp, %ebp
  call guest_main
  movq %rax, %rdi
  call guest_exit
1:
  jmp 1b
  .size _start, . - _start

  .section .note.GNU-stack, "", @progbits
