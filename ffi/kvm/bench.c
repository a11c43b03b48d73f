/*
 * The reference for the exits benchmark: KVM_RUN in a pure C loop, answering port-I/O exits
 * without leaving C.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvm_internal.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/*
 * Runs the vCPU until n port-I/O exits happened: each IN reads in_value (its low `size` bytes,
 * for every repetition of a string IN), each OUT is counted. Stops early at any other exit or
 * error. The slice timer is not used. out: caller-owned u32[3], written during the call only:
 * [0] port-I/O exits handled, [1] OUTs among them, [2] the KVM exit reason that stopped the
 * loop early (0xffffffff if it ran to n; 0xfffffffe if KVM_RUN failed). Returns the elapsed
 * host time in nanoseconds.
 */
VMON_EXPORT double vmon_kvm_bench_loop(struct vmon_kvm_vcpu *v, uint32_t n, uint32_t in_value,
                                       uint32_t *out) {
  struct kvm_run *run = v->run;
  uint32_t ios = 0, outs = 0, stop = 0xffffffffu;
  vmon_kvm_vcpu_set_slice(v, (uint32_t)(v->slice_ns / 1000)); /* ends any armed slice */
  double start = now_ns();
  while (ios < n) {
    if (ioctl(v->fd, KVM_RUN, 0) < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      stop = 0xfffffffeu;
      break;
    }
    if (run->exit_reason != KVM_EXIT_IO) {
      stop = run->exit_reason;
      break;
    }
    ios++;
    if (run->io.direction == KVM_EXIT_IO_OUT) {
      outs++;
    } else {
      uint64_t bytes = (uint64_t)run->io.size * run->io.count;
      if (run->io.data_offset < v->run_size && bytes <= v->run_size - run->io.data_offset) {
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        for (uint32_t i = 0; i < run->io.count; i++) {
          memcpy(data + (size_t)i * run->io.size, &in_value, run->io.size > 4 ? 4 : run->io.size);
        }
      }
    }
  }
  double elapsed = now_ns() - start;
  v->pending_io = run->exit_reason == KVM_EXIT_IO || run->exit_reason == KVM_EXIT_MMIO;
  v->exit.runs += ios;
  if (out != NULL) {
    out[0] = ios;
    out[1] = outs;
    out[2] = stop;
  }
  return elapsed;
}
