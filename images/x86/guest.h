/*
 * Shared declarations for vmon's freestanding x86-64 test guests.
 *
 * Boot contract (set up by the x86-64-direct platform): the guest starts in 64-bit long mode at
 * the ELF entry with identity-mapped memory and
 *   rdi = vCPU id, rsi = arg (platform option or `arg=N` on the command line),
 *   rdx = number of vCPUs, rcx = first free byte above the image, r8 = end of free RAM,
 *   rsp = top of this vCPU's own stack.
 * That is the System V argument order, so `_start` passes them straight to guest_main.
 */
#ifndef VMON_GUEST_H
#define VMON_GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define UART_BASE 0x3f8
#define DEBUG_EXIT_PORT 0x501
#define NOP_PORT 0x80

static inline void outb(u16 port, u8 value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline u8 inb(u16 port) {
  u8 value;
  __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
  return value;
}

static inline void cpu_relax(void) {
  __asm__ volatile("pause" ::: "memory");
}

/* The entry point each image defines; its return value becomes the exit code. */
u64 guest_main(u64 id, u64 arg, u64 cpus, u64 free_start, u64 free_end);

void putc(char c);
void puts(const char *s);
void put_dec(u64 value);
void put_hex(u64 value);
/* Writes `code` to the debug-exit port; never returns. */
__attribute__((noreturn)) void guest_exit(u64 code);

void print_lock(void);
void print_unlock(void);

#endif
