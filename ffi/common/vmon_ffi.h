/*
 * Shared conventions of vmon's C accelerator libraries (ffi/<backend>/).
 *
 * Libraries are built with -fvisibility=hidden by ffi/build.ts; only functions marked
 * VMON_EXPORT are visible to Deno.dlopen, and each of them has an entry in its backend's
 * symbols.ts. Every exported function's pointer arguments and results carry a comment saying who
 * owns the memory and for how long.
 *
 * VMON_INTERNAL marks declarations of functions shared between the files of one library: hidden
 * like everything not exported, and declared so, which lets the compiler call them directly
 * (no PLT) from other files of the library.
 */
#ifndef VMON_FFI_H
#define VMON_FFI_H

#define VMON_EXPORT __attribute__((visibility("default")))
#define VMON_INTERNAL __attribute__((visibility("hidden")))

#endif
