/**
 * The virtio-net device model (virtio 1.2 section 5.1): a receive queue and a transmit queue,
 * the 12-byte `virtio_net_hdr`, `MAC`, `STATUS` (link up while the backend runs) and mergeable
 * receive buffers. Packets move between the guest's buffers and a packet endpoint of the host
 * (`DeviceHost.net`): the endpoint's packets carry the same 12-byte header.
 *
 * Everything the guest supplies is checked: a receive chain with readable buffers or no room for
 * the header, a transmit chain with writable buffers, a length outside Ethernet's limits or a
 * header asking for an offload that was not negotiated is counted (`rx_malformed`,
 * `tx_malformed`), returned unused and dropped; structurally broken chains are the transport's
 * (`malformed_chains`).
 *
 * @module
 */

import {
  type Counter,
  type DescriptorChain,
  type GuestMemoryAccess,
  type Logger,
  MAX_FRAME_SIZE,
  PACKET_HEADER_SIZE,
  type PacketEndpoint,
  type SnapshotValue,
  type VirtioActivation,
  type VirtioDevice,
  VirtioDeviceId,
  type Virtqueue,
  VmonError,
} from "../../../mod.ts";

/** Feature bits of virtio-net this device offers. */
export const NetFeature = {
  /** The device has a MAC address in config space. */
  MAC: 1n << 5n,
  /** The driver can merge receive buffers (packets larger than one buffer). */
  MRG_RXBUF: 1n << 15n,
  /** The config space has a link status. */
  STATUS: 1n << 16n,
} as const;

/** Bits of the config space's `status`. */
export const NetLinkStatus = { LINK_UP: 1 } as const;

/** Queue indices. */
export const NetQueue = { RX: 0, TX: 1 } as const;

/** Entries per queue. */
export const NET_QUEUE_SIZE = 256;

/** The smallest Ethernet frame a guest may send (its header). */
export const MIN_FRAME_SIZE = 14;

/**
 * Version of the state layout {@linkcode VirtioNet.saveState} returns (bumped whenever it
 * changes; a snapshot of another version is refused with one line).
 */
export const NET_STATE_VERSION = 1;

const HDR = PACKET_HEADER_SIZE;
const CONFIG_SIZE = 12; // mac[6], status u16, max_virtqueue_pairs u16, mtu u16

/** Counters the device updates. */
export interface NetCounters {
  /** Packets delivered to the guest. */
  readonly rxPackets?: Counter;
  /** Their Ethernet bytes. */
  readonly rxBytes?: Counter;
  /** Packets from the host the guest had no room for (too large for its buffers, no driver). */
  readonly rxDropped?: Counter;
  /** Receive chains of the wrong shape, returned unused. */
  readonly rxMalformed?: Counter;
  /** Packets sent by the guest. */
  readonly txPackets?: Counter;
  /** Their Ethernet bytes. */
  readonly txBytes?: Counter;
  /** Packets sent while no backend runs (`none`, or passt stopped), dropped. */
  readonly txDropped?: Counter;
  /** Transmit chains of the wrong shape (lengths, writable buffers, offloads), dropped. */
  readonly txMalformed?: Counter;
  /** Times the backend's thread ended a running vCPU slice to deliver packets. */
  readonly backendKicks?: Counter;
  /** Packets the backend dropped (runts or oversized from the host, write errors). */
  readonly backendDropped?: Counter;
}

/** Options of {@linkcode VirtioNet}. */
export interface VirtioNetOptions {
  /** The MAC address (6 bytes). */
  readonly mac: Uint8Array;
  /** The packet endpoint, or undefined for a device without a backend (link down). */
  readonly endpoint?: PacketEndpoint;
  /** For warnings. */
  readonly log?: Logger;
  /** Counters. */
  readonly counters?: NetCounters;
  /** Guest memory, to check the buffers a restored state names (a snapshot file is hostile). */
  readonly memory?: GuestMemoryAccess;
}

/**
 * Parses a MAC address `aa:bb:cc:dd:ee:ff` (or with `-`).
 *
 * @example
 * ```ts
 * import { parseMac } from "./net.ts";
 * if (parseMac("02:76:6d:6f:6e:00")?.[1] !== 0x76) throw new Error();
 * if (parseMac("01:00:00:00:00:00") !== undefined) throw new Error("multicast accepted");
 * ```
 *
 * @param text The address.
 * @returns The 6 bytes, or undefined when it is not a unicast MAC address.
 */
export function parseMac(text: string): Uint8Array | undefined {
  const m =
    /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i
      .exec(text.trim());
  if (!m) return undefined;
  const bytes = Uint8Array.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
  if (bytes[0]! & 1) return undefined; // multicast
  return bytes;
}

/** Formats 6 bytes as `aa:bb:cc:dd:ee:ff`. */
export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** The virtio-net device model. */
export class VirtioNet implements VirtioDevice {
  /** Device id 1. */
  readonly deviceId: number = VirtioDeviceId.NET;
  /** MAC, STATUS and MRG_RXBUF. */
  readonly features: bigint = NetFeature.MAC | NetFeature.STATUS | NetFeature.MRG_RXBUF;
  /** Receive and transmit queues. */
  readonly queueMaxSizes: readonly number[] = [NET_QUEUE_SIZE, NET_QUEUE_SIZE];
  /** mac, status, max_virtqueue_pairs, mtu. */
  readonly configSize = CONFIG_SIZE;
  /** The layout of {@linkcode VirtioNet.saveState}. */
  readonly stateVersion: number = NET_STATE_VERSION;
  #config = new Uint8Array(CONFIG_SIZE);
  #endpoint: PacketEndpoint | undefined;
  #options: VirtioNetOptions;
  #activation: VirtioActivation | undefined;
  #mergeable = false;
  /** A received packet (header + frame) waiting for receive buffers: its length, or 0. */
  #held = 0;
  #rxBuf = new Uint8Array(HDR + MAX_FRAME_SIZE);
  /** Receive chains taken from the queue and not used yet. */
  #rxChains: DescriptorChain[] = [];
  /** Used entries were added to the receive queue since the last interrupt decision. */
  #rxUsed = false;
  #txBuf = new Uint8Array(HDR + MAX_FRAME_SIZE);
  /** A transmit chain whose packet the backend could not take yet (its queue was full). */
  #txHeld: { head: number; packet: Uint8Array } | undefined;
  #warnings = 0;
  /** The backend's counters as last added to ours. */
  #backendSeen = { kicks: 0, dropped: 0 };
  /** Restored with another link state than the backend has now: tell the driver at activation. */
  #announceLink = false;

  /** @param options MAC, endpoint, logger and counters. */
  constructor(options: VirtioNetOptions) {
    this.#options = options;
    this.#endpoint = options.endpoint;
    this.#config.set(options.mac.subarray(0, 6), 0);
    this.#setLink(options.endpoint !== undefined && options.endpoint.error() === undefined);
    options.endpoint?.onEvent(() => this.#onEvent());
  }

  /** True while the link is up (a backend runs). */
  get linkUp(): boolean {
    return (this.#config[6]! & NetLinkStatus.LINK_UP) !== 0;
  }

  #setLink(up: boolean): void {
    this.#config[6] = up ? NetLinkStatus.LINK_UP : 0;
  }

  /** Reads config space (little-endian). */
  readConfig(offset: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (this.#config[offset + i] ?? 0);
    return v;
  }

  /** Config space is read-only for the driver (the MAC is the device's). */
  writeConfig(): void {}

  /** Starts using the queues. */
  activate(activation: VirtioActivation): void {
    this.#activation = activation;
    this.#mergeable = (activation.features & NetFeature.MRG_RXBUF) !== 0n;
    if (this.#announceLink) {
      this.#announceLink = false;
      activation.configChanged();
    }
    // After a restore: a transmit chain held for a full backend goes to the new backend now (its
    // queue is empty, so no event would come for it).
    if (this.#txHeld !== undefined) this.#drainTx();
    this.#drainRx();
  }

  /** The driver added receive buffers or packets to send. */
  notify(index: number): void {
    if (index === NetQueue.RX) this.#drainRx();
    else if (index === NetQueue.TX) this.#drainTx();
  }

  /** Forgets the queues and the chains taken from them. */
  reset(): void {
    this.#activation = undefined;
    this.#announceLink = false;
    this.#rxChains = [];
    this.#txHeld = undefined;
    if (this.#held) this.#options.counters?.rxDropped?.add();
    this.#held = 0;
  }

  /**
   * Snapshot state (the transport saves its registers, features and ring positions): the MAC,
   * the link state, the chains taken from the queues and not returned yet (their head and
   * buffers, as they were checked when taken), a received packet waiting for buffers, and a
   * transmit packet waiting for room in the backend. The backend itself is referenced through
   * the options and opened again at restore; packets inside it are not saved (dropped).
   */
  saveState(): SnapshotValue {
    const held = this.#txHeld;
    return {
      mac: this.#config.slice(0, 6),
      linkUp: this.linkUp,
      rxPacket: this.#rxBuf.slice(0, this.#held),
      rxChains: this.#rxChains.map((c) => [c.head, ...c.writable.flatMap((b) => [b.addr, b.len])]),
      txHeld: held === undefined ? null : { head: held.head, packet: held.packet.slice() },
    };
  }

  /**
   * Loads what {@linkcode VirtioNet.saveState} returned, before the transport activates the
   * restored queues. Everything is checked (the file may be hostile): a state that does not fit
   * this device is refused with one line.
   */
  restoreState(state: SnapshotValue): void {
    const bad = (what: string): never => {
      throw new VmonError(`Cannot restore virtio-net: the saved state is malformed: ${what}`);
    };
    const st = state as Readonly<Record<string, SnapshotValue>> | null;
    if (st === null || typeof st !== "object" || Array.isArray(st)) return bad("not an object");
    const mac = st.mac;
    if (!(mac instanceof Uint8Array) || mac.length !== 6) return bad("mac");
    if (formatMac(mac) !== formatMac(this.#config.subarray(0, 6))) {
      throw new VmonError(
        `Cannot restore virtio-net: the snapshot's MAC is ${formatMac(mac)}, this device has ${
          formatMac(this.#config.subarray(0, 6))
        }`,
      );
    }
    if (typeof st.linkUp !== "boolean") return bad("linkUp");
    const rx = st.rxPacket;
    if (!(rx instanceof Uint8Array) || rx.length > this.#rxBuf.length) return bad("rxPacket");
    const isCount = (n: unknown): n is number =>
      typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
    const chains = st.rxChains;
    if (!Array.isArray(chains) || chains.length > NET_QUEUE_SIZE) return bad("rxChains");
    const rxChains = (chains as readonly SnapshotValue[]).map((c, i): DescriptorChain => {
      if (!Array.isArray(c) || c.length < 3 || c.length % 2 !== 1 || !c.every(isCount)) {
        return bad(`receive chain ${i}`);
      }
      const [head, ...flat] = c as readonly number[];
      const writable = [];
      let writableLength = 0;
      for (let k = 0; k < flat.length; k += 2) {
        const addr = flat[k]!, len = flat[k + 1]!;
        if (this.#options.memory !== undefined && !this.#options.memory.contains(addr, len)) {
          return bad(`receive chain ${i} has a buffer outside RAM`);
        }
        writable.push({ addr, len });
        writableLength += len;
      }
      if (head! >= NET_QUEUE_SIZE || writableLength < HDR) return bad(`receive chain ${i}`);
      return { head: head!, readable: [], writable, readableLength: 0, writableLength };
    });
    let txHeld: { head: number; packet: Uint8Array } | undefined;
    const tx = st.txHeld as Readonly<Record<string, SnapshotValue>> | null;
    if (tx !== null) {
      const packet = tx?.packet;
      if (
        typeof tx !== "object" || !isCount(tx.head) || tx.head >= NET_QUEUE_SIZE ||
        !(packet instanceof Uint8Array) || packet.length < HDR + MIN_FRAME_SIZE ||
        packet.length > HDR + MAX_FRAME_SIZE
      ) {
        return bad("txHeld");
      }
      txHeld = { head: tx.head, packet: packet.slice() };
    }
    this.#rxBuf.set(rx);
    this.#held = rx.length;
    this.#rxChains = rxChains;
    this.#txHeld = txHeld;
    this.#announceLink = st.linkUp !== this.linkUp;
  }

  /** Closes the endpoint. */
  dispose(): void {
    this.#syncBackendCounters();
    this.#endpoint?.close();
  }

  /** Adds what the backend counted since the last look to the device's counters. */
  #syncBackendCounters(): void {
    const ep = this.#endpoint;
    const c = this.#options.counters;
    if (!ep || !c) return;
    const s = ep.stats();
    const dropped = s.rxDropped + s.txDropped;
    c.backendKicks?.add(s.kicks - this.#backendSeen.kicks);
    c.backendDropped?.add(dropped - this.#backendSeen.dropped);
    this.#backendSeen = { kicks: s.kicks, dropped };
  }

  #warn(message: string): void {
    if (this.#warnings++ < 16) this.#options.log?.warn(message);
  }

  /** The endpoint's event: packets arrived, room to send again, or the backend stopped. */
  #onEvent(): void {
    const ep = this.#endpoint;
    if (!ep) return;
    this.#syncBackendCounters();
    const error = ep.error();
    if (error !== undefined && this.linkUp) {
      this.#setLink(false);
      this.#options.log?.warn(`The network backend stopped: ${error}; the link is down`);
      this.#activation?.configChanged();
    }
    const a = this.#activation;
    if (a === undefined) {
      // No driver: a NIC without a driver drops what arrives.
      while (ep.receive(this.#rxBuf) > 0) this.#options.counters?.rxDropped?.add();
      return;
    }
    a.guard(() => {
      this.#drainTx();
      this.#drainRx();
    });
  }

  /** Moves received packets into the guest's receive buffers while there are both. */
  #drainRx(): void {
    const a = this.#activation;
    const q = a?.queues[NetQueue.RX];
    const ep = this.#endpoint;
    if (!a || !q || !ep) return;
    this.#rxUsed = false;
    for (;;) {
      if (this.#held === 0) {
        this.#held = ep.receive(this.#rxBuf);
        if (this.#held === 0) break;
      }
      if (this.#deliver(a.memory, q, this.#held) === "wait") break;
      this.#held = 0;
    }
    if (this.#rxUsed) a.signalUsed(q);
  }

  /** Takes the next receive chain of the right shape (others are returned unused). */
  #nextRxChain(q: Virtqueue): DescriptorChain | undefined {
    for (;;) {
      const c = q.pop();
      if (c === undefined) return undefined;
      if (c.readableLength === 0 && c.writableLength >= HDR) return c;
      this.#options.counters?.rxMalformed?.add();
      this.#warn(
        `Receive chain ${c.head} dropped: ${
          c.readableLength > 0 ? "it has device-readable buffers" : "it has no room for the header"
        }`,
      );
      q.pushUsed(c.head, 0);
      this.#rxUsed = true;
    }
  }

  /**
   * Delivers the packet of `len` bytes in #rxBuf into one chain or, with mergeable buffers, as
   * many chains as it needs. "wait": not enough buffers yet (the packet and the chains taken so
   * far are kept for the next notification); "dropped": it can never fit.
   */
  #deliver(memory: GuestMemoryAccess, q: Virtqueue, len: number): "done" | "wait" | "dropped" {
    const chains = this.#rxChains;
    const c = this.#options.counters;
    // How many of the held chains the packet needs (mergeable), or the first one.
    let take = 0;
    let room = 0;
    for (;;) {
      while (take < chains.length && room < len && (this.#mergeable || take === 0)) {
        room += chains[take++]!.writableLength;
      }
      if (room >= len || (!this.#mergeable && take === 1)) break;
      const next = this.#nextRxChain(q);
      if (next === undefined) {
        if (chains.length < q.size) return "wait";
        break; // every buffer of the queue is held and the packet still does not fit
      }
      chains.push(next);
    }
    if (room < len) {
      // Larger than the buffers the guest gives: drop it, keep the buffers for the next packet.
      c?.rxDropped?.add();
      return "dropped";
    }
    // The header: no offloads were negotiated, so only num_buffers is set.
    this.#rxBuf.fill(0, 0, HDR);
    this.#rxBuf[10] = take & 0xff;
    this.#rxBuf[11] = take >> 8;
    let at = 0;
    for (let i = 0; i < take; i++) {
      const chain = chains[i]!;
      const n = Math.min(len - at, chain.writableLength);
      let left = n;
      for (const b of chain.writable) {
        if (left === 0) break;
        const k = Math.min(b.len, left);
        memory.write(b.addr, this.#rxBuf.subarray(at, at + k));
        at += k;
        left -= k;
      }
      q.pushUsed(chain.head, n);
    }
    chains.splice(0, take);
    this.#rxUsed = true;
    c?.rxPackets?.add();
    c?.rxBytes?.add(len - HDR);
    return "done";
  }

  /** Sends every packet the guest queued, as far as the backend takes them. */
  #drainTx(): void {
    const a = this.#activation;
    const q = a?.queues[NetQueue.TX];
    if (!a || !q) return;
    const ep = this.#endpoint;
    const c = this.#options.counters;
    let used = false;
    const held = this.#txHeld;
    if (held !== undefined) {
      if (ep !== undefined && !ep.send(held.packet)) return; // still full: wait for the event
      this.#txHeld = undefined;
      q.pushUsed(held.head, 0);
      used = true;
      c?.txPackets?.add();
      c?.txBytes?.add(held.packet.length - HDR);
    }
    for (let chain = q.pop(); chain; chain = q.pop()) {
      used = true;
      const packet = this.#txProblem(chain) ?? this.#gather(a.memory, chain);
      if (typeof packet === "string" || packet[0] !== 0 || packet[1] !== 0) {
        // flags and gso_type must be 0: no offload was negotiated
        const problem = typeof packet === "string" ? packet : "its header asks for an offload";
        c?.txMalformed?.add();
        this.#warn(`Transmit chain ${chain.head} dropped: ${problem}`);
        q.pushUsed(chain.head, 0);
        continue;
      }
      if (ep === undefined || !this.linkUp) {
        c?.txDropped?.add();
        q.pushUsed(chain.head, 0);
        continue;
      }
      if (!ep.send(packet)) {
        // The backend's queue is full: keep this chain (a copy of its packet) until its event.
        this.#txHeld = { head: chain.head, packet: packet.slice() };
        break;
      }
      q.pushUsed(chain.head, 0);
      c?.txPackets?.add();
      c?.txBytes?.add(packet.length - HDR);
    }
    ep?.flush();
    if (used) a.signalUsed(q);
  }

  /** Why a transmit chain cannot be sent, or undefined. */
  #txProblem(chain: DescriptorChain): string | undefined {
    if (chain.writableLength > 0) return "it has device-writable buffers";
    const frame = chain.readableLength - HDR;
    if (frame < MIN_FRAME_SIZE || frame > MAX_FRAME_SIZE) {
      return `its frame has ${
        Math.max(0, frame)
      } bytes (${MIN_FRAME_SIZE} to ${MAX_FRAME_SIZE} allowed)`;
    }
    return undefined;
  }

  /** The chain's bytes (header + frame) in one array: a view of RAM or a copy in #txBuf. */
  #gather(memory: GuestMemoryAccess, chain: DescriptorChain): Uint8Array {
    const b = chain.readable;
    const len = chain.readableLength;
    return b.length === 1 && this.#inOneRegion(memory, b[0]!.addr, len)
      ? memory.view(b[0]!.addr, len)
      : this.#copy(memory, chain);
  }

  #copy(memory: GuestMemoryAccess, chain: DescriptorChain): Uint8Array {
    let at = 0;
    for (const b of chain.readable) {
      if (b.len === 0) continue;
      if (this.#inOneRegion(memory, b.addr, b.len)) {
        this.#txBuf.set(memory.view(b.addr, b.len), at);
      } else {
        this.#txBuf.set(memory.read(b.addr, b.len), at);
      }
      at += b.len;
    }
    return this.#txBuf.subarray(0, at);
  }

  #inOneRegion(memory: GuestMemoryAccess, addr: number, len: number): boolean {
    return memory.regions.some((r) => addr >= r.gpa && addr + len <= r.gpa + r.size);
  }
}
