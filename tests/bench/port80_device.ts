/**
 * The exits benchmark's device: port 0x80, reads answer a constant, writes are counted. A plain
 * TypeScript plugin, so the benchmark measures the whole path: exit decoded, routed over the
 * bus to a plugin, vCPU resumed.
 *
 * @module
 */

import { definePlugin, PLUGIN_API_VERSION } from "../../mod.ts";

export default definePlugin({
  name: "port80",
  kind: "device",
  apiVersion: PLUGIN_API_VERSION,
  description: "Benchmark device on port 0x80",
  setup(host) {
    const writes = host.metrics.counter("writes");
    const reg = host.bus.registerPio(0x80, 1, {
      read: () => 0x5a,
      write: () => writes.add(),
    });
    return { dispose: () => reg.unregister() };
  },
});
