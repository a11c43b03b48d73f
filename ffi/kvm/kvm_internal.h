/*
 * vmon's KVM layer: shared declarations of the C files in ffi/kvm/.
 *
 * Object model: a vmon_kvm_vm owns the /dev/kvm and VM file descriptors and every guest RAM
 * mapping; a vmon_kvm_vcpu owns its vCPU fd, its kvm_run mapping, its slice timer and its exit
 * record. TypeScript holds the objects as opaque pointers from create until destroy.
 */
#ifndef VMON_KVM_INTERNAL_H
#define VMON_KVM_INTERNAL_H

#include <linux/kvm.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "exits.h"
#include "vmon_ffi.h"

#define VMON_KVM_MAX_REGIONS 64
#define VMON_KVM_MAX_VCPUS 256

/* KVM passes its system event type through as the exit code: it must equal ours. */
_Static_assert(KVM_SYSTEM_EVENT_SHUTDOWN == VMON_SYSTEM_EVENT_SHUTDOWN &&
                   KVM_SYSTEM_EVENT_RESET == VMON_SYSTEM_EVENT_RESET &&
                   KVM_SYSTEM_EVENT_CRASH == VMON_SYSTEM_EVENT_CRASH,
               "KVM system event types are vmon's");

/* Flags of struct vmon_kvm_exit.flags. */
enum {
  VMON_EXIT_F_PC = 1,       /* pc holds the guest rip */
  VMON_EXIT_F_DOORBELL = 2, /* the hypercall came through the port-I/O doorbell */
};

/*
 * The decoded exit record, one per vCPU, filled by vmon_kvm_vcpu_run. TypeScript reads it through
 * a Uint32Array and a BigUint64Array made once over it; the layout is fixed (see symbols.ts).
 */
struct vmon_kvm_exit {
  uint32_t kind;          /*   0: enum vmon_exit_kind */
  uint32_t raw_reason;    /*   4: KVM exit_reason (KVM_EXIT_INTR for slice ends) */
  uint32_t address_lo;    /*   8: Io: port; Mmio: gpa bits 0-31 */
  uint32_t address_hi;    /*  12: Mmio: gpa bits 32-63 */
  uint32_t size;          /*  16: Io/Mmio: access width in bytes */
  uint32_t is_write;      /*  20: Io/Mmio: 1 for OUT/store */
  uint32_t count;         /*  24: Io: repeat count of string I/O, else 1 */
  uint32_t data_offset;   /*  28: Io/Mmio: byte offset of the data in the kvm_run mapping */
  uint32_t code;          /*  32: suberror / hardware reason / system event type / raw reason */
  uint32_t ndata;         /*  36: number of valid words in data[] */
  uint32_t nr;            /*  40: Hypercall: number */
  uint32_t flags;         /*  44: VMON_EXIT_F_* */
  uint64_t pc;            /*  48: guest rip, valid with VMON_EXIT_F_PC */
  uint64_t args[6];       /*  56: Hypercall arguments */
  uint64_t data[16];      /* 104: InternalError data words, FailEntry reason and cpu, Debug info */
  uint64_t counts[VMON_EXIT_KINDS]; /* 232: exits per kind since creation */
  uint64_t runs;          /* 360: KVM_RUN calls */
  uint64_t signals;       /* 368: KVM_RUN calls interrupted by a signal (slice ends and others) */
};                        /* 376 bytes */

struct vmon_kvm_region {
  uint32_t slot;
  uint32_t flags;
  uint64_t gpa;
  uint64_t size;
  uint8_t *host; /* owned by the VM: mmap'ed in add_region, munmap'ed in vm_destroy */
};

struct vmon_kvm_vm {
  int kvm_fd;
  int vm_fd;
  int run_size;
  int irqchip;
  int nvcpus;
  int cpuid_ready;
  uint32_t nregions;
  struct vmon_kvm_region regions[VMON_KVM_MAX_REGIONS];
  struct kvm_cpuid2 *cpuid; /* owned by the VM; malloc'ed on first vCPU creation */
};

struct vmon_kvm_vcpu {
  struct vmon_kvm_vm *vm; /* borrowed: the VM outlives its vCPUs */
  int fd;
  int id;
  int table_index;        /* index in the signal handler's vCPU table */
  struct kvm_run *run;    /* owned: mmap of the vCPU fd, unmapped in vcpu_destroy */
  size_t run_size;
  int pending_io;         /* the last exit was IO/MMIO: KVM completes it on the next KVM_RUN */
  uint32_t doorbell_port; /* port whose OUT is a hypercall; 0 = none */
  uint64_t slice_ns;      /* 0 = unbounded */
  int timer_ok;
  pid_t timer_tid;        /* thread the timer signals */
  timer_t timer;
  int armed;
  volatile sig_atomic_t expired; /* set by the timer's signal handler */
  struct vmon_kvm_exit exit;
};

/* Records the failing step and errno for vmon_kvm_last_error (thread-local). Returns -errno. */
VMON_INTERNAL int vmon_kvm__fail(const char *what, int err);

/* The host address of guest-physical [gpa, gpa+len) if it lies inside one region, else NULL. */
VMON_INTERNAL uint8_t *vmon_kvm__gpa_to_host(struct vmon_kvm_vm *vm, uint64_t gpa, uint64_t len);

/* Sets the time slice in microseconds (0 = unbounded); ends the current slice. */
VMON_EXPORT void vmon_kvm_vcpu_set_slice(struct vmon_kvm_vcpu *v, uint32_t us);

#endif
