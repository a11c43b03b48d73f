/*
 * Shared conventions of vmon's C accelerator libraries (ffi/<backend>/).
 *
 * Libraries are built with -fvisibility=hidden by ffi/build.ts; only functions marked
 * VMON_EXPORT are visible to Deno.dlopen. Every exported function's pointer arguments carry a
 * comment saying who owns the memory and for how long.
 */
#ifndef VMON_FFI_H
#define VMON_FFI_H

#define VMON_EXPORT __attribute__((visibility("default")))

#endif
