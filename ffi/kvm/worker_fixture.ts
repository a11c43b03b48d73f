/**
 * Test fixture: a Worker that opens the KVM library itself, creates a VM with one vCPU and runs
 * a HLT, then posts what happened. Used by `load_test.ts`.
 *
 * @module
 */

import { loadKvm } from "./mod.ts";

const lib = loadKvm();
const s = lib.symbols;
const fd = s.vmon_kvm_open(new TextEncoder().encode("/dev/kvm\0"));
let result: Record<string, unknown> = { fd };
if (fd >= 0) {
  const vm = s.vmon_kvm_vm_create(fd);
  const ram = s.vmon_kvm_vm_add_region(vm, 0n, 0x10000n, 0);
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ram!, 0x10000))[0xfff0] = 0xf4; // hlt
  const vcpu = s.vmon_kvm_vcpu_create(vm, 0);
  // The reset state runs at CS base 0xffff0000, IP 0xfff0: move CS base to 0.
  const sregs = new BigUint64Array(107);
  s.vmon_kvm_vcpu_get_sregs(vcpu, sregs);
  sregs[0] = 0n;
  sregs[2] = 0n;
  s.vmon_kvm_vcpu_set_sregs(vcpu, sregs);
  s.vmon_kvm_vcpu_set_slice(vcpu, 100_000);
  const kind = s.vmon_kvm_vcpu_run(vcpu);
  s.vmon_kvm_vcpu_destroy(vcpu);
  s.vmon_kvm_vm_destroy(vm);
  result = { fd, kind, same: loadKvm() === lib };
}
(self as unknown as { postMessage(message: unknown): void }).postMessage(result);
