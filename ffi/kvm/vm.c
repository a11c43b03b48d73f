/*
 * The VM half of vmon's KVM layer: /dev/kvm, the VM, guest RAM slots and the in-kernel irqchip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kvm_internal.h"

_Static_assert(sizeof(struct vmon_kvm_exit) == 376, "exit record layout is shared with symbols.ts");
_Static_assert(offsetof(struct vmon_kvm_exit, pc) == 48, "exit record layout");
_Static_assert(offsetof(struct vmon_kvm_exit, args) == 56, "exit record layout");
_Static_assert(offsetof(struct vmon_kvm_exit, data) == 104, "exit record layout");
_Static_assert(offsetof(struct vmon_kvm_exit, counts) == 232, "exit record layout");

/* Identity map page and TSS pages for real-mode emulation on Intel: below 4 GiB, above RAM. */
#define VMON_KVM_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define VMON_KVM_TSS_ADDR 0xfffbd000ULL

static __thread int last_err;
static __thread char last_msg[256];

int vmon_kvm__fail(const char *what, int err) {
  last_err = err;
  snprintf(last_msg, sizeof last_msg, "%s: %s", what, strerror(err));
  return -err;
}

/*
 * Copies the last failure of this thread ("KVM_CREATE_VM: Invalid argument") into buf.
 * buf: caller-owned, len bytes, written during the call only. Returns the errno (positive), 0 if
 * nothing failed yet.
 */
VMON_EXPORT int vmon_kvm_last_error(char *buf, uint32_t len) {
  if (buf != NULL && len > 0) snprintf(buf, len, "%s", last_msg);
  return last_err;
}

/*
 * Opens the KVM device at path and checks the API version. path: caller-owned NUL-terminated
 * string, read during the call only. Returns the fd, or -errno (ENOENT, EACCES, ...) with the
 * last error set; -EPROTO when the API version is not 12 (the version is in the message).
 */
VMON_EXPORT int vmon_kvm_open(const char *path) {
  if (path == NULL) return vmon_kvm__fail("open", EINVAL);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return vmon_kvm__fail("open", errno);
  int version = ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    int err = version < 0 ? errno : EPROTO;
    close(fd);
    vmon_kvm__fail("KVM_GET_API_VERSION", err);
    if (version >= 0) snprintf(last_msg, sizeof last_msg, "KVM API version %d, expected %d",
                               version, KVM_API_VERSION);
    return -err;
  }
  return fd;
}

/* KVM_CHECK_EXTENSION on the system fd: returns the capability's value (0 = absent). */
VMON_EXPORT int vmon_kvm_check_extension(int kvm_fd, int cap) {
  int r = ioctl(kvm_fd, KVM_CHECK_EXTENSION, cap);
  return r < 0 ? 0 : r;
}

/*
 * Creates a VM on the opened KVM fd; the VM takes ownership of kvm_fd (closed on destroy, also on
 * failure). Returns the VM (owned by the caller until vmon_kvm_vm_destroy) or NULL with the last
 * error set.
 */
VMON_EXPORT struct vmon_kvm_vm *vmon_kvm_vm_create(int kvm_fd) {
  struct vmon_kvm_vm *vm = calloc(1, sizeof *vm);
  if (vm == NULL) {
    close(kvm_fd);
    vmon_kvm__fail("calloc", ENOMEM);
    return NULL;
  }
  vm->kvm_fd = kvm_fd;
  vm->vm_fd = -1;
  vm->run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (vm->run_size < (int)sizeof(struct kvm_run)) {
    vmon_kvm__fail("KVM_GET_VCPU_MMAP_SIZE", vm->run_size < 0 ? errno : EINVAL);
    goto fail;
  }
  for (;;) {
    vm->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd >= 0 || errno != EINTR) break;
  }
  if (vm->vm_fd < 0) {
    vmon_kvm__fail("KVM_CREATE_VM", errno);
    goto fail;
  }
  /* Needed for real mode on Intel hosts; harmless elsewhere. Failures are not fatal. */
  if (vmon_kvm_check_extension(kvm_fd, KVM_CAP_SET_IDENTITY_MAP_ADDR)) {
    uint64_t addr = VMON_KVM_IDENTITY_MAP_ADDR;
    (void)ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr);
  }
  if (vmon_kvm_check_extension(kvm_fd, KVM_CAP_SET_TSS_ADDR)) {
    (void)ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VMON_KVM_TSS_ADDR);
  }
  return vm;
fail:
  if (vm->vm_fd >= 0) close(vm->vm_fd);
  close(kvm_fd);
  free(vm);
  return NULL;
}

/* Destroys the VM: closes its fds and unmaps every RAM region. All vCPUs must be destroyed. */
VMON_EXPORT void vmon_kvm_vm_destroy(struct vmon_kvm_vm *vm) {
  if (vm == NULL) return;
  if (vm->vm_fd >= 0) close(vm->vm_fd);
  if (vm->kvm_fd >= 0) close(vm->kvm_fd);
  for (uint32_t i = 0; i < vm->nregions; i++) munmap(vm->regions[i].host, vm->regions[i].size);
  free(vm->cpuid);
  free(vm);
}

/* The VM's file descriptor (for capability checks). */
VMON_EXPORT int vmon_kvm_vm_fd(struct vmon_kvm_vm *vm) { return vm == NULL ? -1 : vm->vm_fd; }

uint8_t *vmon_kvm__gpa_to_host(struct vmon_kvm_vm *vm, uint64_t gpa, uint64_t len) {
  for (uint32_t i = 0; i < vm->nregions; i++) {
    struct vmon_kvm_region *r = &vm->regions[i];
    if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa)) {
      return r->host + (gpa - r->gpa);
    }
  }
  return NULL;
}

/*
 * Allocates size bytes of guest RAM (zeroed, mmap'ed once here) and maps it at guest-physical
 * gpa as a new memory slot; readonly != 0 makes it KVM_MEM_READONLY (guest writes become MMIO
 * exits). gpa and size must be 4 KiB aligned and the range must not overlap another region.
 * Returns the host address of the RAM, owned by the VM until vmon_kvm_vm_destroy (TypeScript wraps
 * it zero-copy and must drop the wrapper before destroy), or NULL with the last error set.
 */
VMON_EXPORT void *vmon_kvm_vm_add_region(struct vmon_kvm_vm *vm, uint64_t gpa, uint64_t size,
                                         int readonly) {
  if (vm == NULL) return NULL;
  if (size == 0 || (gpa & 0xfff) != 0 || (size & 0xfff) != 0 || gpa + size < gpa) {
    vmon_kvm__fail("add region", EINVAL);
    snprintf(last_msg, sizeof last_msg,
             "add region: address 0x%llx and size 0x%llx must be non-empty and 4 KiB aligned",
             (unsigned long long)gpa, (unsigned long long)size);
    return NULL;
  }
  if (vm->nregions >= VMON_KVM_MAX_REGIONS) {
    vmon_kvm__fail("add region", ENOSPC);
    snprintf(last_msg, sizeof last_msg, "add region: more than %d regions",
             VMON_KVM_MAX_REGIONS);
    return NULL;
  }
  for (uint32_t i = 0; i < vm->nregions; i++) {
    struct vmon_kvm_region *r = &vm->regions[i];
    if (gpa < r->gpa + r->size && r->gpa < gpa + size) {
      vmon_kvm__fail("add region", EEXIST);
      snprintf(last_msg, sizeof last_msg,
               "add region: 0x%llx-0x%llx overlaps the region at 0x%llx-0x%llx",
               (unsigned long long)gpa, (unsigned long long)(gpa + size - 1),
               (unsigned long long)r->gpa, (unsigned long long)(r->gpa + r->size - 1));
      return NULL;
    }
  }
  if (readonly && !vmon_kvm_check_extension(vm->kvm_fd, KVM_CAP_READONLY_MEM)) {
    vmon_kvm__fail("add region", ENOTSUP);
    snprintf(last_msg, sizeof last_msg, "add region: this KVM has no read-only memory slots");
    return NULL;
  }
  void *host = mmap(NULL, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (host == MAP_FAILED) {
    vmon_kvm__fail("mmap guest RAM", errno);
    return NULL;
  }
  /* Slots are numbered by creation; removal is not supported, so numbers stay unique. */
  uint32_t slot = vm->nregions;
  struct kvm_userspace_memory_region region = {
      .slot = slot,
      .flags = readonly ? KVM_MEM_READONLY : 0,
      .guest_phys_addr = gpa,
      .memory_size = size,
      .userspace_addr = (uint64_t)(uintptr_t)host,
  };
  if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    int err = errno;
    munmap(host, size);
    vmon_kvm__fail("KVM_SET_USER_MEMORY_REGION", err);
    return NULL;
  }
  vm->regions[vm->nregions++] = (struct vmon_kvm_region){
      .slot = slot, .flags = region.flags, .gpa = gpa, .size = size, .host = host};
  return host;
}

/*
 * Creates the in-kernel PIC, IOAPIC and local APICs (before any vCPU). Returns 0, or -errno
 * (-EEXIST if vCPUs already exist, -ENOTTY/-EINVAL where unsupported).
 */
VMON_EXPORT int vmon_kvm_vm_create_irqchip(struct vmon_kvm_vm *vm) {
  if (vm == NULL) return -EINVAL;
  if (vm->irqchip) return 0;
  if (vm->nvcpus > 0) return vmon_kvm__fail("KVM_CREATE_IRQCHIP after vCPU creation", EEXIST);
  if (!vmon_kvm_check_extension(vm->kvm_fd, KVM_CAP_IRQCHIP)) {
    return vmon_kvm__fail("KVM_CREATE_IRQCHIP", ENOTTY);
  }
  if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
    return vmon_kvm__fail("KVM_CREATE_IRQCHIP", errno);
  }
  vm->irqchip = 1;
  return 0;
}

/* Sets interrupt line gsi (0-23 on the IOAPIC; 0-15 also on the PIC) to level. Returns 0 or -errno. */
VMON_EXPORT int vmon_kvm_vm_irq_line(struct vmon_kvm_vm *vm, uint32_t gsi, int level) {
  if (vm == NULL || !vm->irqchip) return vmon_kvm__fail("KVM_IRQ_LINE without an irqchip", EINVAL);
  struct kvm_irq_level irq = {.irq = gsi, .level = level ? 1 : 0};
  if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0) return vmon_kvm__fail("KVM_IRQ_LINE", errno);
  return 0;
}
