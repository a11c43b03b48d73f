import { deepStrictEqual, strictEqual } from "node:assert/strict";
import type { HostPacketEndpoint, HostPortInstance } from "./api/mod.ts";
import { PacketEndpoints } from "./net.ts";

/** A backend that has already stopped before it started, with no event after its registration. */
function deadOnArrival(message: string | undefined): HostPacketEndpoint {
  return {
    description: "test backend",
    receive: () => 0,
    send: () => true,
    flush: () => {},
    poll: () => 7, // the event of its stop came before the endpoint was registered
    wait: () => new Promise<number>(() => {}),
    error: () => message === undefined ? undefined : "it stopped",
    startError: () => message,
    stats: () => ({ rxFrames: 0, rxDropped: 0, txFrames: 0, txDropped: 0, kicks: 0 }),
    close: () => {},
  };
}

function endpoints(host: HostPacketEndpoint) {
  const failures: string[] = [];
  const eps = new PacketEndpoints({
    wake: () => {},
    warn: () => {},
    fail: (m) => failures.push(m),
  });
  const port = { openPacketEndpoint: () => host } as unknown as HostPortInstance;
  const ep = eps.open({ instance: port, name: "test" }, { kind: "user" }, "dev");
  let events = 0;
  ep.onEvent(() => events++);
  return { eps, failures, events: () => events };
}

Deno.test("packet endpoints: a backend that failed to start before it was registered fails the machine once", () => {
  const { eps, failures, events } = endpoints(
    deadOnArrival("Cannot start the user network (passt): x"),
  );
  eps.poll();
  eps.poll();
  deepStrictEqual(failures, ["Cannot start the user network (passt): x"]);
  strictEqual(events(), 0, "its device hears nothing");
  eps.closeAll();
});

Deno.test("packet endpoints: a backend that started fails nothing", () => {
  const { eps, failures } = endpoints(deadOnArrival(undefined));
  eps.poll();
  deepStrictEqual(failures, []);
  eps.closeAll();
});
