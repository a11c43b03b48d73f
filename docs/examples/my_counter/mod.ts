import { definePlugin } from "@vmon/vmon";
import type { AccessSize, Registration } from "@vmon/vmon";

export default definePlugin({
  name: "my-counter", // what users type: --device my-counter
  kind: "device",
  apiVersion: 1, // the plugin API version this was written for
  description: "A counter device", // shown by `vmon plugins`
  options: {
    base: { type: "integer", description: "Port or MMIO address; 0: platform picks", default: 0 },
    step: { type: "integer", description: "Added per write to register 4", default: 1, min: 1 },
  },
  setup(host, options) {
    const bumps = host.metrics.counter("bumps", "Writes to the step register");
    let count = 0;
    const handler = {
      read(offset: number, size: AccessSize): number {
        const reg = offset & ~3;
        const value = reg === 0 ? count : reg === 4 ? options.step : 0;
        return (value >>> ((offset & 3) * 8)) & (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);
      },
      write(offset: number, size: AccessSize, value: number): void {
        if (offset === 0 && size === 4) count = value >>> 0;
        else if (offset === 4) (count = (count + options.step) >>> 0), bumps.add();
      },
    };
    let registration: Registration;
    if (host.platform.hasPio) {
      const base = options.base || 0x540;
      registration = host.bus.registerPio(base, 8, handler);
    } else {
      const base = host.platform.allocateMmio(0x1000, options.base || undefined);
      registration = host.bus.registerMmio(base, 0x1000, handler);
      host.platform.describe({
        node: "my-counter",
        compatible: ["vmon,my-counter"],
        mmio: { base, size: 0x1000 },
      });
    }
    return { dispose: () => registration.unregister() };
  },
});
