/**
 * The symbol table of the KVM layer (`ffi/kvm/*.c`) and the layout of the records it shares with
 * TypeScript. Every C prototype is in the comment above its entry.
 *
 * @module
 */

/** The FFI symbols of `libvmon-kvm`. */
export const KVM_SYMBOLS = {
  /** int vmon_kvm_last_error(char *buf, uint32_t len); */
  vmon_kvm_last_error: { parameters: ["buffer", "u32"], result: "i32" },
  /** int vmon_kvm_open(const char *path); */
  vmon_kvm_open: { parameters: ["buffer"], result: "i32" },
  /** int vmon_kvm_check_extension(int kvm_fd, int cap); */
  vmon_kvm_check_extension: { parameters: ["i32", "i32"], result: "i32" },
  /** struct vmon_kvm_vm *vmon_kvm_vm_create(int kvm_fd); */
  vmon_kvm_vm_create: { parameters: ["i32"], result: "pointer" },
  /** void vmon_kvm_vm_destroy(struct vmon_kvm_vm *vm); */
  vmon_kvm_vm_destroy: { parameters: ["pointer"], result: "void" },
  /** int vmon_kvm_vm_fd(struct vmon_kvm_vm *vm); */
  vmon_kvm_vm_fd: { parameters: ["pointer"], result: "i32" },
  /** void *vmon_kvm_vm_add_region(struct vmon_kvm_vm *vm, uint64_t gpa, uint64_t size, int readonly); */
  vmon_kvm_vm_add_region: { parameters: ["pointer", "u64", "u64", "i32"], result: "pointer" },
  /** int vmon_kvm_vm_create_irqchip(struct vmon_kvm_vm *vm); */
  vmon_kvm_vm_create_irqchip: { parameters: ["pointer"], result: "i32" },
  /** int vmon_kvm_vm_irq_line(struct vmon_kvm_vm *vm, uint32_t gsi, int level); */
  vmon_kvm_vm_irq_line: { parameters: ["pointer", "u32", "i32"], result: "i32" },
  /** struct vmon_kvm_vcpu *vmon_kvm_vcpu_create(struct vmon_kvm_vm *vm, uint32_t id); */
  vmon_kvm_vcpu_create: { parameters: ["pointer", "u32"], result: "pointer" },
  /** void vmon_kvm_vcpu_destroy(struct vmon_kvm_vcpu *v); */
  vmon_kvm_vcpu_destroy: { parameters: ["pointer"], result: "void" },
  /** struct vmon_kvm_exit *vmon_kvm_vcpu_exit_record(struct vmon_kvm_vcpu *v); */
  vmon_kvm_vcpu_exit_record: { parameters: ["pointer"], result: "pointer" },
  /** struct kvm_run *vmon_kvm_vcpu_run_area(struct vmon_kvm_vcpu *v); */
  vmon_kvm_vcpu_run_area: { parameters: ["pointer"], result: "pointer" },
  /** uint32_t vmon_kvm_vcpu_run_size(struct vmon_kvm_vcpu *v); */
  vmon_kvm_vcpu_run_size: { parameters: ["pointer"], result: "u32" },
  /** void vmon_kvm_vcpu_set_doorbell(struct vmon_kvm_vcpu *v, uint32_t port); */
  vmon_kvm_vcpu_set_doorbell: { parameters: ["pointer", "u32"], result: "void" },
  /** void vmon_kvm_vcpu_set_slice(struct vmon_kvm_vcpu *v, uint32_t us); */
  vmon_kvm_vcpu_set_slice: { parameters: ["pointer", "u32"], result: "void" },
  /** int vmon_kvm_vcpu_run(struct vmon_kvm_vcpu *v); -- the hot path: synchronous, i32 result. */
  vmon_kvm_vcpu_run: { parameters: ["pointer"], result: "i32" },
  /** int vmon_kvm_vcpu_complete_io(struct vmon_kvm_vcpu *v); */
  vmon_kvm_vcpu_complete_io: { parameters: ["pointer"], result: "i32" },
  /** int vmon_kvm_vcpu_get_regs(struct vmon_kvm_vcpu *v, uint64_t *out); */
  vmon_kvm_vcpu_get_regs: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int vmon_kvm_vcpu_set_regs(struct vmon_kvm_vcpu *v, const uint64_t *in); */
  vmon_kvm_vcpu_set_regs: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int vmon_kvm_vcpu_get_sregs(struct vmon_kvm_vcpu *v, uint64_t *out); */
  vmon_kvm_vcpu_get_sregs: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int vmon_kvm_vcpu_set_sregs(struct vmon_kvm_vcpu *v, const uint64_t *in); */
  vmon_kvm_vcpu_set_sregs: { parameters: ["pointer", "buffer"], result: "i32" },
  /** int vmon_kvm_vcpu_complete_hypercall(struct vmon_kvm_vcpu *v, int32_t error, uint64_t value); */
  vmon_kvm_vcpu_complete_hypercall: { parameters: ["pointer", "i32", "u64"], result: "i32" },
  /** int vmon_kvm_vcpu_read_virtual(struct vmon_kvm_vcpu *v, uint64_t gva, uint8_t *buf, uint32_t len); */
  vmon_kvm_vcpu_read_virtual: { parameters: ["pointer", "u64", "buffer", "u32"], result: "i32" },
  /** int vmon_kvm_vcpu_read_code(struct vmon_kvm_vcpu *v, uint8_t *buf, uint32_t len, uint64_t *rip); */
  vmon_kvm_vcpu_read_code: { parameters: ["pointer", "buffer", "u32", "buffer"], result: "i32" },
  /** double vmon_kvm_bench_loop(struct vmon_kvm_vcpu *v, uint32_t n, uint32_t in_value, uint32_t *out); */
  vmon_kvm_bench_loop: { parameters: ["pointer", "u32", "u32", "buffer"], result: "f64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Byte size of `struct vmon_kvm_exit`. */
export const EXIT_RECORD_SIZE = 376;

/** Indexes of the u32 fields of the exit record (a Uint32Array over it). */
export const EXIT_U32 = {
  kind: 0,
  rawReason: 1,
  addressLo: 2,
  addressHi: 3,
  size: 4,
  isWrite: 5,
  count: 6,
  dataOffset: 7,
  code: 8,
  ndata: 9,
  nr: 10,
  flags: 11,
} as const;

/** Indexes of the u64 fields of the exit record (a BigUint64Array over it). */
export const EXIT_U64 = {
  pc: 6,
  args: 7,
  data: 13,
  counts: 29,
  runs: 45,
  signals: 46,
} as const;

/** Bits of the exit record's `flags`. */
export const EXIT_FLAGS = { pc: 1, doorbell: 2 } as const;

/** General register names in the order of `vmon_kvm_vcpu_get_regs` (kvm_regs). */
export const REGISTER_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags",
] as const;

/** Segment register names in the order of `vmon_kvm_vcpu_get_sregs`. */
export const SEGMENT_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;

/** Number of u64 words in the flat special-register buffer. */
export const SREGS_WORDS: number = 8 * 12 + 4 + 7;

/** KVM capability numbers used by the host port (from linux/kvm.h). */
export const KVM_CAP = {
  irqchip: 0,
  readonlyMem: 81,
  immediateExit: 136,
} as const;

/** KVM internal-error suberror names (KVM_INTERNAL_ERROR_*). */
export const INTERNAL_ERROR_NAMES: Readonly<Record<number, string>> = {
  1: "emulation failure",
  2: "simultaneous exceptions",
  3: "delivery event",
  4: "unexpected exit reason",
};

/** KVM exit reason names for messages (KVM_EXIT_*). */
export const KVM_EXIT_NAMES: Readonly<Record<number, string>> = {
  0: "UNKNOWN",
  1: "EXCEPTION",
  2: "IO",
  3: "HYPERCALL",
  4: "DEBUG",
  5: "HLT",
  6: "MMIO",
  7: "IRQ_WINDOW_OPEN",
  8: "SHUTDOWN",
  9: "FAIL_ENTRY",
  10: "INTR",
  11: "SET_TPR",
  12: "TPR_ACCESS",
  16: "NMI",
  17: "INTERNAL_ERROR",
  24: "SYSTEM_EVENT",
  29: "X86_RDMSR",
  30: "X86_WRMSR",
  33: "X86_BUS_LOCK",
};
