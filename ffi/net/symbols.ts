/**
 * The FFI symbol table of the packet backends (C sources in this folder).
 *
 * @module
 */

/** Symbols exported by the net library, with their C prototypes. */
export const NET_SYMBOLS = {
  /**
   * `vmon_net *vmon_net_open_tap(const char *ifname, char *err, int errlen)`: `ifname` and `err`
   * are caller-owned and used during the call only.
   */
  vmon_net_open_tap: { parameters: ["buffer", "buffer", "i32"], result: "pointer" },
  /**
   * `vmon_net *vmon_net_open_passt(const char *path, const char *args, int nargs, int wait,
   * char *err, int errlen)`: strings caller-owned, used during the call only.
   */
  vmon_net_open_passt: {
    parameters: ["buffer", "buffer", "i32", "i32", "buffer", "i32"],
    result: "pointer",
  },
  /**
   * `int vmon_net_start(vmon_net *n, void (*kick)(void *), void *kick_arg)`: `kick_arg` must stay
   * valid until `vmon_net_close`.
   */
  vmon_net_start: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  /** `int vmon_net_recv(vmon_net *n, uint8_t *buf, uint32_t cap)`: buf caller-owned. */
  vmon_net_recv: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  /** `int vmon_net_send(vmon_net *n, const uint8_t *buf, uint32_t len)`: buf copied. */
  vmon_net_send: { parameters: ["pointer", "buffer", "u32"], result: "i32" },
  /** `void vmon_net_flush(vmon_net *n)` */
  vmon_net_flush: { parameters: ["pointer"], result: "void" },
  /** `uint32_t vmon_net_poll(vmon_net *n)` */
  vmon_net_poll: { parameters: ["pointer"], result: "u32" },
  /**
   * `uint32_t vmon_net_wait(vmon_net *n, uint32_t seen, int timeout_ms)`: blocks, so it runs on
   * a thread of Deno's pool (`nonblocking`); the endpoint outlives the call.
   */
  vmon_net_wait: { parameters: ["pointer", "u32", "i32"], result: "u32", nonblocking: true },
  /** `int vmon_net_error(vmon_net *n, char *buf, int len)`: buf caller-owned. */
  vmon_net_error: { parameters: ["pointer", "buffer", "i32"], result: "i32" },
  /** `uint64_t *vmon_net_counters(vmon_net *n)`: owned by the endpoint until close. */
  vmon_net_counters: { parameters: ["pointer"], result: "pointer" },
  /** `const char *vmon_net_ifname(vmon_net *n)`: owned by the endpoint until close. */
  vmon_net_ifname: { parameters: ["pointer"], result: "pointer" },
  /** `int vmon_net_ready(vmon_net *n)`: 1 once the backend is ready. */
  vmon_net_ready: { parameters: ["pointer"], result: "i32" },
  /** `int vmon_net_pid(vmon_net *n)` */
  vmon_net_pid: { parameters: ["pointer"], result: "i32" },
  /** `void vmon_net_close(vmon_net *n)` */
  vmon_net_close: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Counter names in the order of the C array (`NC_*` in net.h). */
export const NET_COUNTER_NAMES = [
  "rxFrames",
  "rxBytes",
  "rxDropped",
  "txFrames",
  "txBytes",
  "txDropped",
  "kicks",
] as const;
