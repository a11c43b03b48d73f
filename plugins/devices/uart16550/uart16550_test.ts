import { deepStrictEqual as assertEquals, equal } from "node:assert/strict";
import {
  createTestDeviceHost,
  setupTestDevice,
  type TestDeviceHost,
} from "../../../testing/mod.ts";
import uart16550 from "./mod.ts";
import { Iir, Lsr } from "./uart.ts";

const COM1 = 0x3f8;
const [THR, IER, IIR, LCR, MCR, LSR, MSR, SCR] = [0, 1, 2, 3, 4, 5, 6, 7];

async function pcUart(options: Record<string, unknown> = {}) {
  const host = createTestDeviceHost({ hasPio: true });
  // deno-lint-ignore no-explicit-any
  const dev = await uart16550.setup(
    host,
    { input: true, console: true, polled: false, ...options } as any,
  );
  const rd = (reg: number) => host.pioRead(COM1 + reg, 1);
  const wr = (reg: number, v: number) => host.pioWrite(COM1 + reg, 1, v);
  return { host, dev, rd, wr };
}

function irqLevel(host: TestDeviceHost, n = 4): boolean {
  return host.irq(n).level;
}

Deno.test("uart16550: placement and description on a PIO platform", async () => {
  const { host, dev } = await pcUart();
  assertEquals(host.pioRanges, [{ base: 0x3f8, size: 8 }]);
  assertEquals([...host.allocatedIrqs.keys()], [4]);
  const d = host.descriptions[0]!;
  assertEquals(d.compatible, ["ns16550a"]);
  assertEquals(d.pio, { base: 0x3f8, size: 8 });
  assertEquals(d.irqs, [4]);
  dev.dispose();
  dev.dispose();
  assertEquals(host.pioRanges, []);
});

Deno.test("uart16550: DLAB switches RBR/IER to the divisor latch", async () => {
  const { rd, wr } = await pcUart();
  wr(IER, 0x05);
  wr(LCR, 0x83);
  wr(THR, 0x01);
  wr(IER, 0x02);
  equal(rd(THR), 0x01);
  equal(rd(IER), 0x02);
  equal(rd(LCR), 0x83);
  wr(LCR, 0x03);
  equal(rd(IER), 0x05);
  wr(SCR, 0x5a);
  equal(rd(SCR), 0x5a);
});

Deno.test("uart16550: output is batched until a newline or the next timer turn", async () => {
  const { host, wr, rd } = await pcUart();
  for (const c of "ab") wr(THR, c.charCodeAt(0));
  equal(host.outputText(), "");
  equal(rd(LSR) & (Lsr.THRE | Lsr.TEMT), Lsr.THRE | Lsr.TEMT);
  host.advance(0);
  equal(host.outputText(), "ab");
  for (const c of "cd\nef") wr(THR, c.charCodeAt(0));
  equal(host.outputText(), "abcd\n");
  equal(host.consoleWrites, 2);
  host.advance(0);
  equal(host.outputText(), "abcd\nef");
  equal(host.counters().tx_bytes, 7);
});

Deno.test("uart16550: dispose flushes pending output", async () => {
  const { host, wr, dev } = await pcUart();
  wr(THR, 0x41);
  dev.dispose();
  equal(host.outputText(), "A");
});

Deno.test("uart16550: FIFO holds 16 bytes and input beyond waits in a backlog", async () => {
  const { host, rd, wr } = await pcUart();
  wr(IIR, 0xc7); // enable + clear, trigger 14
  equal(rd(IIR), Iir.FIFO | Iir.NONE);
  const text = "0123456789abcdefghij";
  host.input(text);
  equal(rd(LSR) & Lsr.DR, Lsr.DR);
  let got = "";
  while (rd(LSR) & Lsr.DR) got += String.fromCharCode(rd(THR));
  equal(got, text);
  equal(rd(LSR) & Lsr.OE, 0);
  equal(host.counters().rx_bytes, 20);
});

Deno.test("uart16550: trigger level and character timeout interrupts", async () => {
  const { host, rd, wr } = await pcUart();
  wr(IIR, 0x81); // FIFO, trigger 8
  wr(IER, 0x01);
  host.input("abc");
  equal(irqLevel(host), false);
  equal(rd(IIR), Iir.FIFO | Iir.NONE);
  host.advance(5);
  equal(irqLevel(host), true);
  equal(rd(IIR), Iir.FIFO | Iir.TIMEOUT);
  equal(rd(THR), 0x61);
  // Reading restarts the timeout.
  equal(irqLevel(host), false);
  host.advance(5);
  equal(rd(IIR), Iir.FIFO | Iir.TIMEOUT);
  rd(THR);
  rd(THR);
  host.advance(5);
  equal(irqLevel(host), false);
  host.input("12345678");
  equal(irqLevel(host), true);
  equal(rd(IIR), Iir.FIFO | Iir.RDA);
  for (let i = 0; i < 8; i++) rd(THR);
  equal(irqLevel(host), false);
});

Deno.test("uart16550: THR empty interrupt is acknowledged by reading IIR", async () => {
  const { host, rd, wr } = await pcUart();
  equal(irqLevel(host), false);
  wr(IER, 0x02);
  equal(irqLevel(host), true);
  equal(rd(IIR), Iir.THRE);
  equal(irqLevel(host), false);
  equal(rd(IIR), Iir.NONE);
  wr(THR, 0x41);
  equal(irqLevel(host), true);
  wr(IER, 0x00);
  equal(irqLevel(host), false);
});

Deno.test("uart16550: loopback, overrun and interrupt priorities", async () => {
  const { host, rd, wr } = await pcUart();
  wr(IIR, 0x01); // FIFO, trigger 1
  wr(MCR, 0x10); // loopback, all modem outputs low
  rd(MSR);
  wr(IER, 0x0f);
  // THRE is pending first (lowest but only source).
  equal(rd(IIR), Iir.FIFO | Iir.THRE);
  for (let i = 0; i < 17; i++) wr(THR, 0x30 + i);
  equal(host.outputText(), "");
  host.advance(0);
  equal(host.outputText(), "", "loopback data never reaches the console");
  // Line status (overrun) beats received data.
  equal(rd(IIR), Iir.FIFO | Iir.RLS);
  equal(irqLevel(host), true);
  const lsr = rd(LSR);
  equal(lsr & Lsr.OE, Lsr.OE);
  equal(rd(LSR) & Lsr.OE, 0, "reading LSR clears OE");
  equal(rd(IIR), Iir.FIFO | Iir.RDA);
  let got = 0;
  while (rd(LSR) & Lsr.DR) {
    equal(rd(THR), 0x30 + got);
    got++;
  }
  equal(got, 16);
  equal(host.counters().rx_overruns, 1);
  // THRE (re-armed by the last write) beats modem status.
  wr(MCR, 0x10 | 0x01); // DTR -> DSR changes
  equal(rd(IIR), Iir.FIFO | Iir.THRE);
  equal(rd(IIR), Iir.FIFO | Iir.MS);
  const msr = rd(MSR);
  equal(msr, 0x20 | 0x02, "DSR with its delta");
  equal(rd(IIR), Iir.FIFO | Iir.NONE);
  equal(irqLevel(host), false);
  // Modem outputs map to inputs in loopback: RTS->CTS, OUT1->RI, OUT2->DCD.
  wr(MCR, 0x10 | 0x0f);
  equal(rd(MSR) & 0xf0, 0xf0);
  wr(MCR, 0x00);
  equal(rd(MSR) & 0xf0, 0xb0, "connected terminal outside loopback");
});

Deno.test("uart16550: without FIFOs a second byte overruns the holding register", async () => {
  const { rd, wr, host } = await pcUart();
  wr(MCR, 0x10);
  wr(THR, 0x41);
  wr(THR, 0x42);
  equal(rd(LSR) & (Lsr.OE | Lsr.DR), Lsr.OE | Lsr.DR);
  equal(rd(THR), 0x42);
  equal(rd(LSR) & Lsr.DR, 0);
  equal(host.counters().rx_overruns, 1);
});

Deno.test("uart16550: MMIO placement with a register shift", async () => {
  const host = createTestDeviceHost({ hasPio: false, mmioRegShift: 2 });
  const dev = await setupTestDevice(uart16550, host, { input: false });
  const d = host.descriptions[0]!;
  const base = d.mmio!.base;
  equal(d.mmio!.size, 0x100);
  assertEquals(d.props, { "clock-frequency": 3686400, "reg-shift": 2, "reg-io-width": 1 });
  equal(d.console, true);
  equal(d.irqs?.length, 1);
  host.mmioWrite(base + 7 * 4, 4, 0x77);
  equal(host.mmioRead(base + 7 * 4, 4), 0x77);
  equal(host.mmioRead(base + 7, 1), 0, "unaligned register offsets read 0");
  host.mmioWrite(base, 1, 0x0a);
  equal(host.outputText(), "\n");
  equal(host.input("x"), false, "input option off: no subscription");
  dev.dispose();
});

Deno.test("uart16550: polled mode allocates no interrupt line", async () => {
  const { host } = await pcUart({ polled: true });
  equal(host.allocatedIrqs.size, 0);
  equal(host.descriptions[0]!.irqs, undefined);
});

Deno.test("uart16550: explicit base and a 16-bit port access splits into bytes", async () => {
  const host = createTestDeviceHost({ hasPio: true });
  await setupTestDevice(uart16550, host, { base: 0x2f8, irq: 3, console: false });
  host.pioWrite(0x2f8 + LCR, 1, 0x80);
  host.pioWrite(0x2f8, 2, 0x0102);
  equal(host.pioRead(0x2f8, 2), 0x0102);
  equal(host.pioRead(0x2f8 + 1, 1), 0x01);
  equal(host.allocatedIrqs.has(3), true);
});
