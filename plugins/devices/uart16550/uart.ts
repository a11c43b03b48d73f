/**
 * The 16550A register model: eight byte registers (THR/RBR, IER, IIR/FCR, LCR, MCR, LSR, MSR,
 * SCR, plus the divisor latch behind DLAB), 16-byte FIFOs with trigger levels, the character
 * timeout, loopback mode and the interrupt priority scheme of the National Semiconductor data
 * sheet. Transmission is instantaneous: a byte written to THR leaves at once, so THRE and TEMT
 * read as set outside loopback.
 *
 * @module
 */

import { type Counter, type IrqLine, type Timers, VmonError } from "../../../mod.ts";

/** Register indices (the offset divided by the register stride). */
export const Reg = {
  /** Receiver buffer (read) / transmitter holding (write) / divisor latch low (DLAB). */
  RBR: 0,
  /** Interrupt enable / divisor latch high (DLAB). */
  IER: 1,
  /** Interrupt identification (read) / FIFO control (write). */
  IIR: 2,
  /** Line control. */
  LCR: 3,
  /** Modem control. */
  MCR: 4,
  /** Line status. */
  LSR: 5,
  /** Modem status. */
  MSR: 6,
  /** Scratch. */
  SCR: 7,
} as const;

/** IER bits. */
export const Ier = { RDA: 0x01, THRE: 0x02, RLS: 0x04, MS: 0x08 } as const;

/** IIR values (bit 0 clear means an interrupt is pending). */
export const Iir = {
  NONE: 0x01,
  RLS: 0x06,
  RDA: 0x04,
  TIMEOUT: 0x0c,
  THRE: 0x02,
  MS: 0x00,
  FIFO: 0xc0,
} as const;

/** FCR bits. */
export const Fcr = { ENABLE: 0x01, CLEAR_RX: 0x02, CLEAR_TX: 0x04, DMA: 0x08 } as const;

/** LCR bits. */
export const Lcr = { DLAB: 0x80, BREAK: 0x40 } as const;

/** MCR bits. */
export const Mcr = { DTR: 0x01, RTS: 0x02, OUT1: 0x04, OUT2: 0x08, LOOP: 0x10 } as const;

/** LSR bits. */
export const Lsr = {
  DR: 0x01,
  OE: 0x02,
  PE: 0x04,
  FE: 0x08,
  BI: 0x10,
  THRE: 0x20,
  TEMT: 0x40,
  FIFOERR: 0x80,
} as const;

/** MSR bits. */
export const Msr = {
  DCTS: 0x01,
  DDSR: 0x02,
  TERI: 0x04,
  DDCD: 0x08,
  CTS: 0x10,
  DSR: 0x20,
  RI: 0x40,
  DCD: 0x80,
} as const;

const FIFO_SIZE = 16;
const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** Bytes of host input held back while the RX FIFO is full (like a pty's buffer). */
const BACKLOG_LIMIT = 64 * 1024;
/** Output is flushed at a newline or when this many bytes wait. */
const OUTPUT_BATCH = 256;

/** What the model needs from its surroundings. */
export interface UartEnv {
  /** The interrupt line, or undefined when the device runs polled. */
  readonly irq?: IrqLine;
  /** Receives transmitted bytes (batched). */
  readonly output: (bytes: Uint8Array) => void;
  /** Timers for the character timeout and the output flush. */
  readonly timers: Timers;
  /** The input clock in Hz (1843200 on a PC); sets the character time. */
  readonly clockHz: number;
  /** Counters: transmitted and received bytes, overruns, dropped host input. */
  readonly counters?: {
    readonly tx?: Counter;
    readonly rx?: Counter;
    readonly overruns?: Counter;
    readonly dropped?: Counter;
  };
}

/** A 16550A UART. `read`/`write` take a register index 0-7. */
export class Uart16550 {
  #env: UartEnv;
  #ier = 0;
  #lcr = 0x03;
  #mcr = 0;
  #lsr = Lsr.THRE | Lsr.TEMT;
  #msr = 0;
  #scr = 0;
  #dll = 0x0c;
  #dlm = 0;
  #fifoEnabled = false;
  #trigger = 1;
  #rx: number[] = [];
  #thrPending = false;
  #timeoutPending = false;
  #timeoutTimer: number | undefined;
  #backlog: number[] = [];
  #out: number[] = [];
  #flushTimer: number | undefined;
  #irqLevel = false;

  /** @param env Interrupt line, output sink, timers and counters. */
  constructor(env: UartEnv) {
    this.#env = env;
    this.#msr = this.#modemInputs();
  }

  /** The current divisor latch value. */
  get divisor(): number {
    return this.#dlm << 8 | this.#dll;
  }

  /** Bytes waiting in the receive FIFO. */
  get rxCount(): number {
    return this.#rx.length;
  }

  /** Host input held back until the FIFO has room. */
  get backlog(): number {
    return this.#backlog.length;
  }

  /** The level the model drives on its interrupt line. */
  get irqLevel(): boolean {
    return this.#irqLevel;
  }

  /** Reads register `reg` (0-7). */
  read(reg: number): number {
    switch (reg) {
      case Reg.RBR:
        if (this.#lcr & Lcr.DLAB) return this.#dll;
        return this.#readRbr();
      case Reg.IER:
        if (this.#lcr & Lcr.DLAB) return this.#dlm;
        return this.#ier;
      case Reg.IIR: {
        const id = this.#pendingId();
        // Reading IIR while THRE is the reported source acknowledges it.
        if (id === Iir.THRE) {
          this.#thrPending = false;
          this.#update();
        }
        return id | (this.#fifoEnabled ? Iir.FIFO : 0);
      }
      case Reg.LCR:
        return this.#lcr;
      case Reg.MCR:
        return this.#mcr;
      case Reg.LSR: {
        const v = this.#lsrValue();
        // Reading LSR clears the error bits.
        this.#lsr &= ~(Lsr.OE | Lsr.PE | Lsr.FE | Lsr.BI);
        this.#update();
        return v;
      }
      case Reg.MSR: {
        const v = this.#msr;
        this.#msr &= 0xf0;
        this.#update();
        return v;
      }
      case Reg.SCR:
        return this.#scr;
      default:
        return 0xff;
    }
  }

  /** Writes `value` (low 8 bits) to register `reg` (0-7). */
  write(reg: number, value: number): void {
    value &= 0xff;
    switch (reg) {
      case Reg.RBR:
        if (this.#lcr & Lcr.DLAB) this.#dll = value;
        else this.#transmit(value);
        return;
      case Reg.IER:
        if (this.#lcr & Lcr.DLAB) {
          this.#dlm = value;
          return;
        }
        {
          const old = this.#ier;
          this.#ier = value & 0x0f;
          if (this.#ier & Ier.THRE && !(old & Ier.THRE) && this.#lsrValue() & Lsr.THRE) {
            this.#thrPending = true;
          }
          if (!(this.#ier & Ier.THRE)) this.#thrPending = false;
          this.#update();
        }
        return;
      case Reg.IIR:
        this.#writeFcr(value);
        return;
      case Reg.LCR:
        this.#lcr = value;
        return;
      case Reg.MCR: {
        const wasLoop = (this.#mcr & Mcr.LOOP) !== 0;
        this.#mcr = value & 0x1f;
        if (wasLoop !== ((this.#mcr & Mcr.LOOP) !== 0)) this.#feedBacklog();
        this.#setModemInputs(this.#modemInputs());
        this.#update();
        return;
      }
      case Reg.LSR:
        return; // Factory test register: writes ignored.
      case Reg.MSR:
        return;
      case Reg.SCR:
        this.#scr = value;
        return;
    }
  }

  /**
   * Host input (the user typed): bytes go into the RX FIFO while it has room; the rest waits in
   * a backlog (up to 64 KiB, beyond that they are dropped and counted). In loopback mode the
   * receiver is disconnected from the outside, so input waits in the backlog.
   */
  receive(bytes: Uint8Array): void {
    const room = Math.max(0, BACKLOG_LIMIT - this.#backlog.length);
    const take = Math.min(room, bytes.length);
    for (let i = 0; i < take; i++) this.#backlog.push(bytes[i]!);
    if (take < bytes.length) this.#env.counters?.dropped?.add(bytes.length - take);
    this.#feedBacklog();
  }

  /** Sends buffered output now. */
  flush(): void {
    if (this.#flushTimer !== undefined) {
      this.#env.timers.clear(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#out.length === 0) return;
    const bytes = Uint8Array.from(this.#out);
    this.#out = [];
    this.#env.output(bytes);
  }

  /**
   * The register state for a snapshot. Buffered output is sent first (it left the guest
   * already); input waiting in the backlog is part of the state.
   */
  saveState(): Record<string, number | boolean | Uint8Array> {
    this.flush();
    return {
      ier: this.#ier,
      lcr: this.#lcr,
      mcr: this.#mcr,
      lsr: this.#lsr,
      msr: this.#msr,
      scr: this.#scr,
      dll: this.#dll,
      dlm: this.#dlm,
      fifoEnabled: this.#fifoEnabled,
      trigger: this.#trigger,
      rx: Uint8Array.from(this.#rx),
      thrPending: this.#thrPending,
      timeoutPending: this.#timeoutPending,
      backlog: Uint8Array.from(this.#backlog),
      irqLevel: this.#irqLevel,
    };
  }

  /**
   * Loads what {@linkcode Uart16550.saveState} returned. The interrupt line's level is restored
   * with the interrupt controller, so it is not driven here. Throws when the state is malformed.
   */
  restoreState(state: Readonly<Record<string, unknown>>): void {
    const byte = (k: string): number => {
      const v = state[k];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 255) {
        throw new VmonError(`Cannot restore the UART: "${k}" is malformed`);
      }
      return v;
    };
    const flag = (k: string): boolean => {
      const v = state[k];
      if (typeof v !== "boolean") {
        throw new VmonError(`Cannot restore the UART: "${k}" is malformed`);
      }
      return v;
    };
    const bytes = (k: string, max: number): number[] => {
      const v = state[k];
      if (!(v instanceof Uint8Array) || v.length > max) {
        throw new VmonError(`Cannot restore the UART: "${k}" is malformed`);
      }
      return [...v];
    };
    const next = {
      ier: byte("ier"),
      lcr: byte("lcr"),
      mcr: byte("mcr"),
      lsr: byte("lsr"),
      msr: byte("msr"),
      scr: byte("scr"),
      dll: byte("dll"),
      dlm: byte("dlm"),
      fifoEnabled: flag("fifoEnabled"),
      trigger: byte("trigger"),
      rx: bytes("rx", FIFO_SIZE),
      thrPending: flag("thrPending"),
      timeoutPending: flag("timeoutPending"),
      backlog: bytes("backlog", BACKLOG_LIMIT),
      irqLevel: flag("irqLevel"),
    };
    this.#ier = next.ier;
    this.#lcr = next.lcr;
    this.#mcr = next.mcr;
    this.#lsr = next.lsr;
    this.#msr = next.msr;
    this.#scr = next.scr;
    this.#dll = next.dll;
    this.#dlm = next.dlm;
    this.#fifoEnabled = next.fifoEnabled;
    this.#trigger = next.trigger;
    this.#rx = next.rx;
    this.#thrPending = next.thrPending;
    this.#timeoutPending = next.timeoutPending;
    this.#backlog = next.backlog;
    this.#irqLevel = next.irqLevel;
    this.#armTimeout();
  }

  /** Flushes output and cancels timers. */
  dispose(): void {
    this.flush();
    if (this.#timeoutTimer !== undefined) this.#env.timers.clear(this.#timeoutTimer);
    this.#timeoutTimer = undefined;
  }

  // -------------------------------------------------------------------------------------------

  #loop(): boolean {
    return (this.#mcr & Mcr.LOOP) !== 0;
  }

  #lsrValue(): number {
    let v = this.#lsr & ~(Lsr.DR | Lsr.FIFOERR);
    if (this.#rx.length > 0) v |= Lsr.DR;
    return v;
  }

  #readRbr(): number {
    const b = this.#rx.shift();
    this.#timeoutPending = false;
    this.#feedBacklog();
    this.#armTimeout();
    this.#update();
    return b ?? 0;
  }

  #transmit(value: number): void {
    this.#thrPending = false;
    this.#env.counters?.tx?.add();
    if (this.#loop()) {
      this.#push(value);
    } else {
      this.#out.push(value);
      if (value === 0x0a || this.#out.length >= OUTPUT_BATCH) this.flush();
      else if (this.#flushTimer === undefined) {
        this.#flushTimer = this.#env.timers.setTimeout(() => {
          this.#flushTimer = undefined;
          this.flush();
        }, 0);
      }
    }
    // The byte left at once: the holding register is empty again.
    if (this.#ier & Ier.THRE) this.#thrPending = true;
    this.#update();
  }

  /** Puts one received byte into the FIFO (or the single holding register); overrun if full. */
  #push(value: number): void {
    const cap = this.#fifoEnabled ? FIFO_SIZE : 1;
    if (this.#rx.length >= cap) {
      this.#lsr |= Lsr.OE;
      this.#env.counters?.overruns?.add();
      if (!this.#fifoEnabled) this.#rx[0] = value; // 16450 mode: the old byte is overwritten.
    } else {
      this.#rx.push(value);
      this.#env.counters?.rx?.add();
    }
    this.#armTimeout();
  }

  #feedBacklog(): void {
    if (this.#loop()) return;
    const cap = this.#fifoEnabled ? FIFO_SIZE : 1;
    let moved = false;
    while (this.#backlog.length > 0 && this.#rx.length < cap) {
      this.#rx.push(this.#backlog.shift()!);
      this.#env.counters?.rx?.add();
      moved = true;
    }
    if (moved) {
      this.#armTimeout();
      this.#update();
    }
  }

  /** Four character times at the current divisor, in milliseconds (at least 1). */
  #charTimeoutMs(): number {
    const divisor = this.divisor || 1;
    const bitsPerChar = 10;
    const baud = this.#env.clockHz / (16 * divisor);
    return Math.max(1, Math.ceil(4 * bitsPerChar / baud * 1000));
  }

  #armTimeout(): void {
    if (this.#timeoutTimer !== undefined) {
      this.#env.timers.clear(this.#timeoutTimer);
      this.#timeoutTimer = undefined;
    }
    if (!this.#fifoEnabled || this.#rx.length === 0) return;
    this.#timeoutTimer = this.#env.timers.setTimeout(() => {
      this.#timeoutTimer = undefined;
      if (this.#rx.length > 0) {
        this.#timeoutPending = true;
        this.#update();
      }
    }, this.#charTimeoutMs());
  }

  #writeFcr(value: number): void {
    const enable = (value & Fcr.ENABLE) !== 0;
    if (enable !== this.#fifoEnabled) {
      // Changing the FIFO mode clears both FIFOs.
      this.#rx = [];
      this.#fifoEnabled = enable;
      this.#timeoutPending = false;
    }
    if (enable) {
      if (value & Fcr.CLEAR_RX) {
        this.#rx = [];
        this.#timeoutPending = false;
      }
      this.#trigger = TRIGGER_LEVELS[value >> 6 & 3] ?? 1;
    } else {
      this.#trigger = 1;
    }
    // The transmit FIFO is always empty (instant transmission), so CLEAR_TX has nothing to do.
    this.#feedBacklog();
    this.#armTimeout();
    this.#update();
  }

  #modemInputs(): number {
    if (this.#loop()) {
      let v = 0;
      if (this.#mcr & Mcr.RTS) v |= Msr.CTS;
      if (this.#mcr & Mcr.DTR) v |= Msr.DSR;
      if (this.#mcr & Mcr.OUT1) v |= Msr.RI;
      if (this.#mcr & Mcr.OUT2) v |= Msr.DCD;
      return v;
    }
    // A connected terminal: carrier, data set ready and clear to send.
    return Msr.CTS | Msr.DSR | Msr.DCD;
  }

  #setModemInputs(inputs: number): void {
    const old = this.#msr & 0xf0;
    let delta = this.#msr & 0x0f;
    const changed = old ^ inputs;
    if (changed & Msr.CTS) delta |= Msr.DCTS;
    if (changed & Msr.DSR) delta |= Msr.DDSR;
    if (changed & Msr.DCD) delta |= Msr.DDCD;
    if (old & Msr.RI && !(inputs & Msr.RI)) delta |= Msr.TERI; // trailing edge of ring
    this.#msr = inputs | delta;
  }

  /** The highest-priority pending interrupt's IIR id, or NONE. */
  #pendingId(): number {
    const ier = this.#ier;
    if (ier & Ier.RLS && this.#lsr & (Lsr.OE | Lsr.PE | Lsr.FE | Lsr.BI)) return Iir.RLS;
    if (ier & Ier.RDA) {
      if (this.#rx.length > 0 && (!this.#fifoEnabled || this.#rx.length >= this.#trigger)) {
        return Iir.RDA;
      }
      if (this.#timeoutPending && this.#rx.length > 0) return Iir.TIMEOUT;
    }
    if (ier & Ier.THRE && this.#thrPending) return Iir.THRE;
    if (ier & Ier.MS && this.#msr & 0x0f) return Iir.MS;
    return Iir.NONE;
  }

  #update(): void {
    const level = this.#pendingId() !== Iir.NONE;
    if (level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.#env.irq?.set(level);
    }
  }
}
