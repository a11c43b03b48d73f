/*
 * The exit contract shared by vmon's C backends (ffi/kvm, ffi/rv64) and TypeScript: one place for
 * every code that crosses FFI in an exit record.
 *
 * Each enum below mirrors one table of core/api/ (and nothing else does): ffi/exits_test.ts
 * parses this file and fails unless the two agree exactly, both names and values. The naming
 * rule: the C name is the prefix followed by the TypeScript key in upper snake case (a capital
 * letter after a lower-case letter or digit starts a new word), e.g. ExitKind.FailEntry is
 * VMON_EXIT_FAIL_ENTRY and PagingTrapCode.PtWrite is VMON_PAGING_PT_WRITE.
 *
 *   enum vmon_exit_kind    VMON_EXIT_*          ExitKind        (core/api/exits.ts)
 *   enum vmon_system_event VMON_SYSTEM_EVENT_*  SystemEventType (core/api/exits.ts)
 *   enum vmon_paging_trap  VMON_PAGING_*        PagingTrapCode  (core/api/paging.ts)
 *
 * C-only values live outside those enums (VMON_EXIT_NONE, VMON_EXIT_KINDS).
 */
#ifndef VMON_EXITS_H
#define VMON_EXITS_H

/* Exit kinds: the value a backend's run function returns and stores in its exit record. */
enum vmon_exit_kind {
  VMON_EXIT_IO = 1,              /* port I/O (x86) */
  VMON_EXIT_MMIO = 2,            /* access outside RAM, or a store to a read-only region */
  VMON_EXIT_HALT = 3,            /* HLT / WFI with no interrupt pending */
  VMON_EXIT_SHUTDOWN = 4,        /* triple fault or equivalent: the guest is dead */
  VMON_EXIT_FAIL_ENTRY = 5,      /* the hardware refused to enter the guest */
  VMON_EXIT_INTERNAL_ERROR = 6,  /* the backend could not continue */
  VMON_EXIT_SYSTEM_EVENT = 7,    /* reset, poweroff or crash (code: enum vmon_system_event) */
  VMON_EXIT_HYPERCALL = 8,       /* hypercall or SBI call */
  VMON_EXIT_INTERRUPTED = 9,     /* time slice / instruction budget ended, or a kick */
  VMON_EXIT_DEBUG = 10,          /* breakpoint, single step */
  VMON_EXIT_PAGING = 11,         /* a trap for the paging strategy (code: enum vmon_paging_trap) */
  VMON_EXIT_UNKNOWN = 12,        /* an exit the backend does not know */
};

/* C only: "no exit yet" inside a backend; never returned to TypeScript. */
#define VMON_EXIT_NONE 0
/* C only: length of per-kind count arrays (every kind is below it). */
#define VMON_EXIT_KINDS 16
_Static_assert(VMON_EXIT_UNKNOWN < VMON_EXIT_KINDS, "every exit kind fits the count arrays");

/* System event types (exit code of VMON_EXIT_SYSTEM_EVENT); equal to KVM_SYSTEM_EVENT_*. */
enum vmon_system_event {
  VMON_SYSTEM_EVENT_SHUTDOWN = 1,
  VMON_SYSTEM_EVENT_RESET = 2,
  VMON_SYSTEM_EVENT_CRASH = 3,
};

/* Paging traps (exit code of VMON_EXIT_PAGING). */
enum vmon_paging_trap {
  VMON_PAGING_WRITE_PROTECTED = 1, /* store to a write-protected guest page; not performed */
  VMON_PAGING_SFENCE = 2,          /* sfence.vma executed (addr = va, data = asid) */
  VMON_PAGING_SATP = 3,            /* satp written (addr = old satp, data = new satp) */
  VMON_PAGING_PT_WRITE = 4,        /* store/AMO/SC to a shadowed page-table page; not performed
                                      (addr = gpa, size, data = the bytes it would store) */
};

#endif
