/*
 * The vCPU half of vmon's KVM layer: creation (CPUID, kvm_run mapping), registers, KVM_RUN with
 * time slices, and the decoded exit record.
 *
 * Time slices: each vCPU has a one-shot POSIX timer that signals the thread running it
 * (SIGEV_THREAD_ID) with a real-time signal. The handler sets the vCPU's `expired` flag and
 * kvm_run->immediate_exit, so KVM_RUN returns EINTR (or returns at once if the signal came just
 * before it was entered). A slice spans several run() calls: it is armed by the first run() after
 * the previous slice ended and ends after slice_ns of host time, when run() reports
 * VMON_EXIT_INTERRUPTED. A HLT exit ends the slice early.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kvm_internal.h"

/* The signal handler finds the vCPU through this table (sival_int is the index). */
static _Atomic(struct vmon_kvm_vcpu *) vcpu_table[VMON_KVM_MAX_VCPUS];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t signal_once = PTHREAD_ONCE_INIT;
static int slice_signal;
static int signal_install_error;
static __thread int thread_signal_ready;

static void slice_handler(int sig, siginfo_t *info, void *ctx) {
  (void)sig;
  (void)ctx;
  int idx = info->si_value.sival_int;
  if (info->si_code != SI_TIMER || idx < 0 || idx >= VMON_KVM_MAX_VCPUS) return;
  struct vmon_kvm_vcpu *v = atomic_load(&vcpu_table[idx]);
  if (v == NULL) return;
  v->expired = 1;
  v->run->immediate_exit = 1;
}

static void install_signal(void) {
  slice_signal = SIGRTMIN + 6;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = slice_handler;
  /* SA_RESTART keeps other syscalls of this thread going; KVM_RUN still returns EINTR. */
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(slice_signal, &sa, NULL) < 0) signal_install_error = errno;
}

static int prepare_thread_signal(void) {
  if (thread_signal_ready) return 0;
  pthread_once(&signal_once, install_signal);
  if (signal_install_error) return vmon_kvm__fail("sigaction", signal_install_error);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, slice_signal);
  int err = pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  if (err) return vmon_kvm__fail("pthread_sigmask", err);
  thread_signal_ready = 1;
  return 0;
}

static int load_supported_cpuid(struct vmon_kvm_vm *vm) {
  if (vm->cpuid_ready) return 0;
  for (int nent = 128; nent <= 4096; nent *= 2) {
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + nent * sizeof(struct kvm_cpuid_entry2));
    if (c == NULL) return vmon_kvm__fail("calloc", ENOMEM);
    c->nent = nent;
    if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
      vm->cpuid = c;
      vm->cpuid_ready = 1;
      return 0;
    }
    int err = errno;
    free(c);
    if (err != E2BIG) return vmon_kvm__fail("KVM_GET_SUPPORTED_CPUID", err);
  }
  return vmon_kvm__fail("KVM_GET_SUPPORTED_CPUID", E2BIG);
}

/* Sets the vCPU's CPUID: the supported table with this vCPU's APIC id. */
static int set_cpuid(struct vmon_kvm_vcpu *v) {
  struct vmon_kvm_vm *vm = v->vm;
  int r = load_supported_cpuid(vm);
  if (r < 0) return r;
  size_t bytes = sizeof *vm->cpuid + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
  struct kvm_cpuid2 *c = malloc(bytes);
  if (c == NULL) return vmon_kvm__fail("malloc", ENOMEM);
  memcpy(c, vm->cpuid, bytes);
  for (uint32_t i = 0; i < c->nent; i++) {
    struct kvm_cpuid_entry2 *e = &c->entries[i];
    if (e->function == 1) e->ebx = (e->ebx & 0x00ffffffu) | ((uint32_t)v->id << 24);
    if (e->function == 0xb || e->function == 0x1f) e->edx = (uint32_t)v->id;
  }
  r = ioctl(v->fd, KVM_SET_CPUID2, c) < 0 ? vmon_kvm__fail("KVM_SET_CPUID2", errno) : 0;
  free(c);
  return r;
}

/*
 * Creates vCPU id (0-255) with the host-supported CPUID and maps its kvm_run area. Returns the
 * vCPU (owned by the caller until vmon_kvm_vcpu_destroy, which must precede vmon_kvm_vm_destroy)
 * or NULL with the last error set.
 */
VMON_EXPORT struct vmon_kvm_vcpu *vmon_kvm_vcpu_create(struct vmon_kvm_vm *vm, uint32_t id) {
  if (vm == NULL || id >= VMON_KVM_MAX_VCPUS) {
    vmon_kvm__fail("create vCPU", EINVAL);
    return NULL;
  }
  struct vmon_kvm_vcpu *v = calloc(1, sizeof *v);
  if (v == NULL) {
    vmon_kvm__fail("calloc", ENOMEM);
    return NULL;
  }
  v->vm = vm;
  v->id = (int)id;
  v->table_index = -1;
  v->run = MAP_FAILED;
  v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
  if (v->fd < 0) {
    vmon_kvm__fail("KVM_CREATE_VCPU", errno);
    goto fail;
  }
  v->run_size = (size_t)vm->run_size;
  v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
  if (v->run == MAP_FAILED) {
    vmon_kvm__fail("mmap kvm_run", errno);
    goto fail;
  }
  if (set_cpuid(v) < 0) goto fail;
  if (vm->irqchip) {
    /*
     * With the in-kernel LAPIC, vCPUs other than 0 start waiting for INIT/SIPI. vmon boots every
     * vCPU directly (the platform sets its registers), so all of them start runnable.
     */
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (ioctl(v->fd, KVM_SET_MP_STATE, &mp) < 0) {
      vmon_kvm__fail("KVM_SET_MP_STATE", errno);
      goto fail;
    }
  }
  pthread_mutex_lock(&table_lock);
  for (int i = 0; i < VMON_KVM_MAX_VCPUS; i++) {
    if (atomic_load(&vcpu_table[i]) == NULL) {
      atomic_store(&vcpu_table[i], v);
      v->table_index = i;
      break;
    }
  }
  pthread_mutex_unlock(&table_lock);
  if (v->table_index < 0) {
    vmon_kvm__fail("create vCPU: too many vCPUs in this process", ENOSPC);
    goto fail;
  }
  v->exit.count = 1;
  vm->nvcpus++;
  return v;
fail:
  if (v->run != MAP_FAILED) munmap(v->run, v->run_size);
  if (v->fd >= 0) close(v->fd);
  free(v);
  return NULL;
}

/* Destroys the vCPU: its timer, kvm_run mapping and fd. */
VMON_EXPORT void vmon_kvm_vcpu_destroy(struct vmon_kvm_vcpu *v) {
  if (v == NULL) return;
  if (v->table_index >= 0) atomic_store(&vcpu_table[v->table_index], NULL);
  if (v->timer_ok) timer_delete(v->timer);
  munmap(v->run, v->run_size);
  close(v->fd);
  v->vm->nvcpus--;
  free(v);
}

/* The exit record (owned by the vCPU, valid until destroy; 376 bytes, layout in symbols.ts). */
VMON_EXPORT struct vmon_kvm_exit *vmon_kvm_vcpu_exit_record(struct vmon_kvm_vcpu *v) {
  return &v->exit;
}

/* The kvm_run mapping (owned by the vCPU, valid until destroy); its size is vmon_kvm_vcpu_run_size. */
VMON_EXPORT struct kvm_run *vmon_kvm_vcpu_run_area(struct vmon_kvm_vcpu *v) { return v->run; }

/* Size in bytes of the kvm_run mapping. */
VMON_EXPORT uint32_t vmon_kvm_vcpu_run_size(struct vmon_kvm_vcpu *v) {
  return (uint32_t)v->run_size;
}

/* Makes OUTs to port (1-65535) hypercall exits; 0 turns the doorbell off. */
VMON_EXPORT void vmon_kvm_vcpu_set_doorbell(struct vmon_kvm_vcpu *v, uint32_t port) {
  v->doorbell_port = port & 0xffff;
}

static void disarm(struct vmon_kvm_vcpu *v) {
  if (v->armed && v->timer_ok) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    timer_settime(v->timer, 0, &its, NULL);
  }
  v->armed = 0;
  v->expired = 0;
  v->run->immediate_exit = 0;
}

static int arm(struct vmon_kvm_vcpu *v) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  if (v->timer_ok && v->timer_tid != tid) {
    timer_delete(v->timer);
    v->timer_ok = 0;
  }
  if (!v->timer_ok) {
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = slice_signal;
    sev.sigev_value.sival_int = v->table_index;
    sev._sigev_un._tid = tid;
    if (timer_create(CLOCK_MONOTONIC, &sev, &v->timer) < 0) {
      return vmon_kvm__fail("timer_create", errno);
    }
    v->timer_ok = 1;
    v->timer_tid = tid;
  }
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = (time_t)(v->slice_ns / 1000000000ull);
  its.it_value.tv_nsec = (long)(v->slice_ns % 1000000000ull);
  if (timer_settime(v->timer, 0, &its, NULL) < 0) return vmon_kvm__fail("timer_settime", errno);
  v->armed = 1;
  return 0;
}

/* Sets the time slice in microseconds; 0 makes run() unbounded. Ends the current slice. */
VMON_EXPORT void vmon_kvm_vcpu_set_slice(struct vmon_kvm_vcpu *v, uint32_t us) {
  disarm(v);
  v->slice_ns = (uint64_t)us * 1000ull;
}

static int get_regs(struct vmon_kvm_vcpu *v, struct kvm_regs *regs) {
  return ioctl(v->fd, KVM_GET_REGS, regs) < 0 ? vmon_kvm__fail("KVM_GET_REGS", errno) : 0;
}

static void set_pc(struct vmon_kvm_vcpu *v) {
  struct kvm_regs regs;
  if (get_regs(v, &regs) == 0) {
    v->exit.pc = regs.rip;
    v->exit.flags |= VMON_EXIT_F_PC;
  }
}

static void decode(struct vmon_kvm_vcpu *v) {
  struct kvm_run *run = v->run;
  struct vmon_kvm_exit *e = &v->exit;
  e->raw_reason = run->exit_reason;
  e->flags = 0;
  e->ndata = 0;
  e->count = 1;
  switch (run->exit_reason) {
  case KVM_EXIT_IO: {
    uint64_t bytes = (uint64_t)run->io.size * run->io.count;
    if (run->io.size == 0 || run->io.count == 0 || run->io.data_offset >= v->run_size ||
        bytes > v->run_size - run->io.data_offset) {
      e->kind = VMON_EXIT_UNKNOWN;
      e->code = run->exit_reason;
      set_pc(v);
      return;
    }
    e->address_lo = run->io.port;
    e->address_hi = 0;
    e->size = run->io.size;
    e->is_write = run->io.direction == KVM_EXIT_IO_OUT;
    e->count = run->io.count;
    e->data_offset = (uint32_t)run->io.data_offset;
    v->pending_io = 1;
    if (e->is_write && v->doorbell_port != 0 && run->io.port == v->doorbell_port) {
      struct kvm_regs regs;
      if (get_regs(v, &regs) == 0) {
        e->kind = VMON_EXIT_HYPERCALL;
        e->flags = VMON_EXIT_F_DOORBELL | VMON_EXIT_F_PC;
        e->pc = regs.rip;
        e->nr = (uint32_t)regs.rax;
        e->args[0] = regs.rbx;
        e->args[1] = regs.rcx;
        e->args[2] = regs.rdx;
        e->args[3] = regs.rsi;
        e->args[4] = regs.rdi;
        e->args[5] = regs.r8;
        return;
      }
    }
    e->kind = VMON_EXIT_IO;
    return;
  }
  case KVM_EXIT_MMIO:
    e->kind = VMON_EXIT_MMIO;
    e->address_lo = (uint32_t)run->mmio.phys_addr;
    e->address_hi = (uint32_t)(run->mmio.phys_addr >> 32);
    e->size = run->mmio.len > 8 ? 8 : run->mmio.len;
    e->is_write = run->mmio.is_write != 0;
    e->data_offset = (uint32_t)offsetof(struct kvm_run, mmio.data);
    v->pending_io = 1;
    return;
  case KVM_EXIT_HLT:
    e->kind = VMON_EXIT_HALT;
    disarm(v);
    return;
  case KVM_EXIT_SHUTDOWN:
    e->kind = VMON_EXIT_SHUTDOWN;
    set_pc(v);
    return;
  case KVM_EXIT_FAIL_ENTRY:
    e->kind = VMON_EXIT_FAIL_ENTRY;
    e->code = (uint32_t)run->fail_entry.hardware_entry_failure_reason;
    e->data[0] = run->fail_entry.hardware_entry_failure_reason;
    e->data[1] = run->fail_entry.cpu;
    e->ndata = 2;
    set_pc(v);
    return;
  case KVM_EXIT_INTERNAL_ERROR: {
    e->kind = VMON_EXIT_INTERNAL_ERROR;
    e->code = run->internal.suberror;
    uint32_t n = run->internal.ndata;
    if (n > 16) n = 16;
    for (uint32_t i = 0; i < n; i++) e->data[i] = run->internal.data[i];
    e->ndata = n;
    set_pc(v);
    return;
  }
  case KVM_EXIT_SYSTEM_EVENT:
    e->kind = VMON_EXIT_SYSTEM_EVENT;
    e->code = run->system_event.type;
    set_pc(v);
    return;
  case KVM_EXIT_HYPERCALL:
    e->kind = VMON_EXIT_HYPERCALL;
    e->nr = (uint32_t)run->hypercall.nr;
    for (int i = 0; i < 6; i++) e->args[i] = run->hypercall.args[i];
    set_pc(v);
    return;
  case KVM_EXIT_DEBUG:
    e->kind = VMON_EXIT_DEBUG;
    e->code = run->debug.arch.exception;
    e->data[0] = run->debug.arch.exception;
    e->data[1] = run->debug.arch.pc;
    e->data[2] = run->debug.arch.dr6;
    e->data[3] = run->debug.arch.dr7;
    e->ndata = 4;
    set_pc(v);
    return;
  case KVM_EXIT_INTR:
    e->kind = VMON_EXIT_INTERRUPTED;
    return;
  case KVM_EXIT_UNKNOWN:
    e->kind = VMON_EXIT_UNKNOWN;
    e->code = (uint32_t)run->hw.hardware_exit_reason;
    e->data[0] = run->hw.hardware_exit_reason;
    e->ndata = 1;
    set_pc(v);
    return;
  default:
    e->kind = VMON_EXIT_UNKNOWN;
    e->code = run->exit_reason;
    set_pc(v);
    return;
  }
}

static int interrupted(struct vmon_kvm_vcpu *v) {
  v->exit.kind = VMON_EXIT_INTERRUPTED;
  v->exit.raw_reason = KVM_EXIT_INTR;
  v->exit.flags = 0;
  v->armed = 0;
  v->expired = 0;
  v->run->immediate_exit = 0;
  v->exit.counts[VMON_EXIT_INTERRUPTED]++;
  return VMON_EXIT_INTERRUPTED;
}

/*
 * Runs the vCPU until an exit or the end of its time slice and fills the exit record. Returns the
 * ExitKind code, or -errno when KVM_RUN itself failed (last error set).
 */
VMON_EXPORT int vmon_kvm_vcpu_run(struct vmon_kvm_vcpu *v) {
  if (v == NULL) return vmon_kvm__fail("run", EBADF);
  struct vmon_kvm_exit *e = &v->exit;
  if (v->slice_ns != 0) {
    if (!thread_signal_ready) {
      int r = prepare_thread_signal();
      if (r < 0) return r;
    }
    if (!v->armed) {
      int r = arm(v);
      if (r < 0) return r;
    }
  }
  for (;;) {
    if (v->expired) return interrupted(v);
    e->runs++;
    int r = ioctl(v->fd, KVM_RUN, 0);
    if (r < 0) {
      int err = errno;
      if (err != EINTR && err != EAGAIN) return vmon_kvm__fail("KVM_RUN", err);
      /* KVM completes a pending IO/MMIO before it checks for signals. */
      v->pending_io = 0;
      e->signals++;
      if (v->expired || v->slice_ns == 0) {
        if (v->slice_ns == 0) v->run->immediate_exit = 0;
        return interrupted(v);
      }
      continue; /* another signal: keep running the slice */
    }
    v->pending_io = 0;
    decode(v);
    e->counts[e->kind < VMON_EXIT_KINDS ? e->kind : VMON_EXIT_UNKNOWN]++;
    return (int)e->kind;
  }
}

/*
 * Completes a pending IO/MMIO exit without running guest code (KVM_RUN with immediate_exit), so
 * that registers can be changed. Returns 0, or -EBUSY when KVM produced another exit (a string
 * I/O continues; it was decoded into the exit record), or -errno.
 */
static int complete_pending(struct vmon_kvm_vcpu *v) {
  if (!v->pending_io) return 0;
  sigset_t set, old;
  sigemptyset(&set);
  if (thread_signal_ready) sigaddset(&set, slice_signal);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  v->run->immediate_exit = 1;
  int r = ioctl(v->fd, KVM_RUN, 0);
  int err = errno;
  v->run->immediate_exit = v->expired ? 1 : 0;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  v->exit.runs++;
  if (r < 0 && err == EINTR) {
    v->pending_io = 0;
    return 0;
  }
  if (r < 0) return vmon_kvm__fail("KVM_RUN (completing I/O)", err);
  decode(v);
  return vmon_kvm__fail("complete I/O: the string I/O continues with another exit", EBUSY);
}

/* Completes a pending IO/MMIO exit now (see complete_pending). Returns 0 or -errno. */
VMON_EXPORT int vmon_kvm_vcpu_complete_io(struct vmon_kvm_vcpu *v) { return complete_pending(v); }

/*
 * Reads the general registers into out: 18 u64 in kvm_regs order (rax rbx rcx rdx rsi rdi rsp rbp
 * r8-r15 rip rflags). out: caller-owned, 144 bytes, written during the call only. While an IO/MMIO
 * exit is pending, rip still points at the instruction. Returns 0 or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_get_regs(struct vmon_kvm_vcpu *v, uint64_t *out) {
  struct kvm_regs regs;
  int r = get_regs(v, &regs);
  if (r < 0) return r;
  _Static_assert(sizeof regs == 18 * 8, "kvm_regs is 18 u64");
  memcpy(out, &regs, sizeof regs);
  return 0;
}

/*
 * Writes the general registers from in (layout of vmon_kvm_vcpu_get_regs), completing a pending
 * IO/MMIO exit first. in: caller-owned, 144 bytes, read during the call only. Returns 0 or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_set_regs(struct vmon_kvm_vcpu *v, const uint64_t *in) {
  int r = complete_pending(v);
  if (r < 0) return r;
  struct kvm_regs regs;
  memcpy(&regs, in, sizeof regs);
  return ioctl(v->fd, KVM_SET_REGS, &regs) < 0 ? vmon_kvm__fail("KVM_SET_REGS", errno) : 0;
}

/* Flat special registers: 8 segments x 12, gdt base/limit, idt base/limit, 7 control registers. */
#define SREGS_WORDS (8 * 12 + 4 + 7)

static void seg_out(uint64_t *o, const struct kvm_segment *s) {
  o[0] = s->base;
  o[1] = s->limit;
  o[2] = s->selector;
  o[3] = s->type;
  o[4] = s->present;
  o[5] = s->dpl;
  o[6] = s->db;
  o[7] = s->s;
  o[8] = s->l;
  o[9] = s->g;
  o[10] = s->avl;
  o[11] = s->unusable;
}

static void seg_in(struct kvm_segment *s, const uint64_t *i) {
  s->base = i[0];
  s->limit = (uint32_t)i[1];
  s->selector = (uint16_t)i[2];
  s->type = (uint8_t)i[3];
  s->present = i[4] != 0;
  s->dpl = (uint8_t)(i[5] & 3);
  s->db = i[6] != 0;
  s->s = i[7] != 0;
  s->l = i[8] != 0;
  s->g = i[9] != 0;
  s->avl = i[10] != 0;
  s->unusable = i[11] != 0;
}

/*
 * Reads the special registers into out: SREGS_WORDS (107) u64, segments cs ds es fs gs ss tr ldt
 * (base limit selector type present dpl db s l g avl unusable each), gdt base, gdt limit, idt
 * base, idt limit, cr0 cr2 cr3 cr4 cr8 efer apic_base. out: caller-owned, 856 bytes, written
 * during the call only. Returns 0 or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_get_sregs(struct vmon_kvm_vcpu *v, uint64_t *out) {
  struct kvm_sregs s;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0) return vmon_kvm__fail("KVM_GET_SREGS", errno);
  const struct kvm_segment *segs[8] = {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt};
  for (int i = 0; i < 8; i++) seg_out(out + i * 12, segs[i]);
  uint64_t *o = out + 96;
  o[0] = s.gdt.base;
  o[1] = s.gdt.limit;
  o[2] = s.idt.base;
  o[3] = s.idt.limit;
  o[4] = s.cr0;
  o[5] = s.cr2;
  o[6] = s.cr3;
  o[7] = s.cr4;
  o[8] = s.cr8;
  o[9] = s.efer;
  o[10] = s.apic_base;
  return 0;
}

/*
 * Writes the special registers from in (layout of vmon_kvm_vcpu_get_sregs; the pending-interrupt
 * bitmap is kept), completing a pending IO/MMIO exit first. in: caller-owned, 856 bytes, read
 * during the call only. Returns 0 or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_set_sregs(struct vmon_kvm_vcpu *v, const uint64_t *in) {
  int r = complete_pending(v);
  if (r < 0) return r;
  struct kvm_sregs s;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0) return vmon_kvm__fail("KVM_GET_SREGS", errno);
  struct kvm_segment *segs[8] = {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss, &s.tr, &s.ldt};
  for (int i = 0; i < 8; i++) seg_in(segs[i], in + i * 12);
  const uint64_t *i = in + 96;
  s.gdt.base = i[0];
  s.gdt.limit = (uint16_t)i[1];
  s.idt.base = i[2];
  s.idt.limit = (uint16_t)i[3];
  s.cr0 = i[4];
  s.cr2 = i[5];
  s.cr3 = i[6];
  s.cr4 = i[7];
  s.cr8 = i[8];
  s.efer = i[9];
  s.apic_base = i[10];
  return ioctl(v->fd, KVM_SET_SREGS, &s) < 0 ? vmon_kvm__fail("KVM_SET_SREGS", errno) : 0;
}

/*
 * Completes the hypercall of the last exit. For KVM_EXIT_HYPERCALL the return value is
 * error != 0 ? error : value. For the port-I/O doorbell the OUT is completed first, then
 * rax = error and rdx = value (sign-extended error). Returns 0 or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_complete_hypercall(struct vmon_kvm_vcpu *v, int32_t error,
                                                 uint64_t value) {
  if (v->exit.kind != VMON_EXIT_HYPERCALL) {
    return vmon_kvm__fail("complete hypercall: the last exit was not a hypercall", EINVAL);
  }
  if (!(v->exit.flags & VMON_EXIT_F_DOORBELL)) {
    v->run->hypercall.ret = error != 0 ? (uint64_t)(int64_t)error : value;
    return 0;
  }
  int r = complete_pending(v);
  if (r < 0) return r;
  struct kvm_regs regs;
  r = get_regs(v, &regs);
  if (r < 0) return r;
  regs.rax = (uint64_t)(int64_t)error;
  regs.rdx = value;
  if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0) return vmon_kvm__fail("KVM_SET_REGS", errno);
  v->exit.flags &= ~(uint32_t)VMON_EXIT_F_DOORBELL; /* completed once */
  return 0;
}

/* Reads u64 (or u32 when wide == 0) page-table entry at gpa; 0 on success. */
static int read_pte(struct vmon_kvm_vm *vm, uint64_t gpa, int wide, uint64_t *pte) {
  uint8_t *p = vmon_kvm__gpa_to_host(vm, gpa, wide ? 8 : 4);
  if (p == NULL) return -1;
  if (wide) {
    memcpy(pte, p, 8);
  } else {
    uint32_t v32;
    memcpy(&v32, p, 4);
    *pte = v32;
  }
  return 0;
}

/* Walks the guest's page tables (guest-controlled: every table address is bounds-checked). */
static int walk(struct vmon_kvm_vm *vm, const struct kvm_sregs *s, uint64_t gva, uint64_t *gpa) {
  const uint64_t addr_mask = 0x000ffffffffff000ull;
  if (!(s->cr0 & (1ull << 31))) {
    *gpa = (s->efer & (1ull << 10)) ? gva : (gva & 0xffffffffull);
    return 0;
  }
  uint64_t pte;
  if (s->efer & (1ull << 10)) { /* long mode: 4 or 5 levels */
    int levels = (s->cr4 & (1ull << 12)) ? 5 : 4;
    uint64_t table = s->cr3 & addr_mask;
    for (int level = levels; level >= 1; level--) {
      int shift = 12 + 9 * (level - 1);
      if (read_pte(vm, table + ((gva >> shift) & 511) * 8, 1, &pte) < 0) return -1;
      if (!(pte & 1)) return -1;
      if (level == 1 || ((level == 2 || level == 3) && (pte & 0x80))) {
        uint64_t page = 1ull << shift;
        *gpa = ((pte & addr_mask) & ~(page - 1)) | (gva & (page - 1));
        return 0;
      }
      table = pte & addr_mask;
    }
    return -1;
  }
  gva &= 0xffffffffull;
  if (s->cr4 & (1ull << 5)) { /* PAE */
    if (read_pte(vm, (s->cr3 & 0xffffffe0ull) + ((gva >> 30) & 3) * 8, 1, &pte) < 0) return -1;
    if (!(pte & 1)) return -1;
    if (read_pte(vm, (pte & addr_mask) + ((gva >> 21) & 511) * 8, 1, &pte) < 0) return -1;
    if (!(pte & 1)) return -1;
    if (pte & 0x80) {
      *gpa = (pte & addr_mask & ~0x1fffffull) | (gva & 0x1fffff);
      return 0;
    }
    if (read_pte(vm, (pte & addr_mask) + ((gva >> 12) & 511) * 8, 1, &pte) < 0) return -1;
    if (!(pte & 1)) return -1;
    *gpa = (pte & addr_mask) | (gva & 0xfff);
    return 0;
  }
  /* 32-bit paging */
  if (read_pte(vm, (s->cr3 & 0xfffff000ull) + ((gva >> 22) & 1023) * 4, 0, &pte) < 0) return -1;
  if (!(pte & 1)) return -1;
  if ((pte & 0x80) && (s->cr4 & (1ull << 4))) {
    *gpa = ((pte & 0xffc00000ull) | ((pte & 0x1fe000ull) << 19)) | (gva & 0x3fffff);
    return 0;
  }
  if (read_pte(vm, (pte & 0xfffff000ull) + ((gva >> 12) & 1023) * 4, 0, &pte) < 0) return -1;
  if (!(pte & 1)) return -1;
  *gpa = (pte & 0xfffff000ull) | (gva & 0xfff);
  return 0;
}

static int translate(struct vmon_kvm_vcpu *v, const struct kvm_sregs *s, uint64_t gva,
                     uint64_t *gpa) {
  struct kvm_translation t;
  memset(&t, 0, sizeof t);
  t.linear_address = gva;
  if (ioctl(v->fd, KVM_TRANSLATE, &t) == 0 && t.valid) {
    *gpa = t.physical_address;
    return 0;
  }
  return walk(v->vm, s, gva, gpa);
}

/*
 * Copies up to len bytes at guest virtual (linear) address gva, through the vCPU's current page
 * tables, into buf. buf: caller-owned, len bytes, written during the call only. Stops at the first
 * unmapped or non-RAM byte. Returns the number of bytes copied, or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_read_virtual(struct vmon_kvm_vcpu *v, uint64_t gva, uint8_t *buf,
                                           uint32_t len) {
  struct kvm_sregs s;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0) return vmon_kvm__fail("KVM_GET_SREGS", errno);
  uint32_t done = 0;
  while (done < len) {
    uint64_t gpa;
    uint64_t at = gva + done;
    if (translate(v, &s, at, &gpa) < 0) break;
    uint32_t chunk = 4096 - (uint32_t)(at & 0xfff);
    if (chunk > len - done) chunk = len - done;
    uint8_t *p = vmon_kvm__gpa_to_host(v->vm, gpa, chunk);
    if (p == NULL) break;
    memcpy(buf + done, p, chunk);
    done += chunk;
  }
  return (int)done;
}

/*
 * Copies up to len instruction bytes at the guest's cs.base + rip into buf and stores rip in
 * *rip. buf: caller-owned, len bytes; rip: caller-owned u64; both written during the call only.
 * Returns the number of bytes copied, or -errno.
 */
VMON_EXPORT int vmon_kvm_vcpu_read_code(struct vmon_kvm_vcpu *v, uint8_t *buf, uint32_t len,
                                        uint64_t *rip) {
  struct kvm_regs regs;
  struct kvm_sregs s;
  int r = get_regs(v, &regs);
  if (r < 0) return r;
  if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0) return vmon_kvm__fail("KVM_GET_SREGS", errno);
  *rip = regs.rip;
  uint64_t linear = (s.cs.l && (s.efer & (1ull << 10))) ? regs.rip : s.cs.base + regs.rip;
  if (!(s.efer & (1ull << 10))) linear &= 0xffffffffull;
  return vmon_kvm_vcpu_read_virtual(v, linear, buf, len);
}
