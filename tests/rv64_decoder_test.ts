/**
 * Checks the rv64 decoder against the GNU cross assembler: every supported instruction is
 * assembled, disassembled by objdump (`-M no-aliases,numeric`) and by `rv64_disasm`, and the two
 * texts must agree. Compressed instructions must decode exactly like their 32-bit expansions.
 */

import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { loadRv64 } from "../ffi/rv64/mod.ts";
import { haveCrossAssembler } from "../ffi/rv64/asm.ts";

const HAVE_AS = haveCrossAssembler();
if (!HAVE_AS) console.warn("rv64 decoder tests skipped: riscv64-linux-gnu-as is not installed");

const RMS = ["", ",rne", ",rtz", ",rdn", ",rup", ",rmm", ",dyn"];

/** 32-bit instructions, in assembler syntax. */
function baseInstructions(): string[] {
  const l: string[] = [
    "lui a0,0x12345",
    "lui t6,0xfffff",
    "auipc a1,0x1",
    "jal ra,.+2048",
    "jal zero,.-4",
    "jalr ra,0(a0)",
    "jalr zero,-8(t1)",
  ];
  for (const b of ["beq", "bne", "blt", "bge", "bltu", "bgeu"]) {
    l.push(`${b} a0,a1,.+16`, `${b} s2,t3,.-4096`);
  }
  for (const op of ["lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"]) {
    l.push(`${op} a0,-8(a1)`, `${op} t0,2047(sp)`);
  }
  for (const op of ["sb", "sh", "sw", "sd"]) l.push(`${op} a0,16(a1)`, `${op} s11,-2048(gp)`);
  for (const op of ["addi", "slti", "sltiu", "xori", "ori", "andi"]) {
    l.push(`${op} a0,a1,-5`, `${op} t2,s0,2047`);
  }
  for (const op of ["slli", "srli", "srai"]) l.push(`${op} a0,a1,0`, `${op} a2,a3,63`);
  for (
    const op of ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and"]
  ) l.push(`${op} a0,a1,a2`);
  l.push("addiw a0,a1,-1", "slliw a0,a1,31", "srliw a0,a1,3", "sraiw a0,a1,7");
  for (const op of ["addw", "subw", "sllw", "srlw", "sraw"]) l.push(`${op} t0,t1,t2`);
  for (
    const op of ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"]
  ) l.push(`${op} a0,a1,a2`);
  for (const op of ["mulw", "divw", "divuw", "remw", "remuw"]) l.push(`${op} s1,s2,s3`);
  l.push("fence iorw,iorw", "fence r,w", "fence w,r", "fence.tso", "fence.i");
  l.push("ecall", "ebreak", "sret", "mret", "wfi", "sfence.vma zero,zero", "sfence.vma a0,a1");
  for (const op of ["csrrw", "csrrs", "csrrc"]) l.push(`${op} a0,0x7c0,a1`, `${op} zero,0x5c1,t0`);
  for (const op of ["csrrwi", "csrrsi", "csrrci"]) l.push(`${op} a0,0x7c2,31`);
  for (const w of ["w", "d"]) {
    for (const sfx of ["", ".aq", ".rl", ".aqrl"]) {
      l.push(`lr.${w}${sfx} a0,(a1)`, `sc.${w}${sfx} a0,a1,(a2)`);
      for (
        const op of ["swap", "add", "xor", "and", "or", "min", "max", "minu", "maxu"]
      ) l.push(`amo${op}.${w}${sfx} a0,a1,(a2)`);
    }
  }
  l.push("flw f1,8(a0)", "fld f31,-16(sp)", "fsw f2,4(a1)", "fsd f30,-2048(a2)");
  for (const t of ["s", "d"]) {
    for (const rm of RMS) {
      for (const op of ["fadd", "fsub", "fmul", "fdiv"]) l.push(`${op}.${t} f1,f2,f3${rm}`);
      l.push(`fsqrt.${t} f4,f5${rm}`);
      for (const op of ["fmadd", "fmsub", "fnmsub", "fnmadd"]) {
        l.push(`${op}.${t} f1,f2,f3,f4${rm}`);
      }
      for (const i of ["w", "wu", "l", "lu"]) {
        l.push(`fcvt.${i}.${t} a0,f1${rm}`);
        if (t === "s" || i === "l" || i === "lu") l.push(`fcvt.${t}.${i} f1,a0${rm}`);
      }
    }
    for (const op of ["fsgnj", "fsgnjn", "fsgnjx", "fmin", "fmax"]) l.push(`${op}.${t} f1,f2,f3`);
    for (const op of ["feq", "flt", "fle"]) l.push(`${op}.${t} a0,f1,f2`);
    l.push(`fclass.${t} a0,f7`);
  }
  l.push("fcvt.d.w f1,a0", "fcvt.d.wu f1,a0", "fcvt.d.s f1,f2");
  for (const rm of RMS) l.push(`fcvt.s.d f1,f2${rm}`);
  l.push("fmv.x.w a0,f1", "fmv.w.x f1,a0", "fmv.x.d a0,f1", "fmv.d.x f1,a0");
  return l;
}

/** Compressed instructions and their 32-bit expansions. */
const COMPRESSED: [string, string][] = [
  ["c.addi4spn a0,sp,16", "addi a0,sp,16"],
  ["c.fld f8,8(a1)", "fld f8,8(a1)"],
  ["c.lw a0,4(a1)", "lw a0,4(a1)"],
  ["c.ld a5,248(s0)", "ld a5,248(s0)"],
  ["c.fsd f9,16(a2)", "fsd f9,16(a2)"],
  ["c.sw a0,124(a1)", "sw a0,124(a1)"],
  ["c.sd a4,8(a5)", "sd a4,8(a5)"],
  ["c.nop", "addi zero,zero,0"],
  ["c.addi a0,-32", "addi a0,a0,-32"],
  ["c.addiw a0,31", "addiw a0,a0,31"],
  ["c.li t0,-1", "addi t0,zero,-1"],
  ["c.addi16sp sp,-512", "addi sp,sp,-512"],
  ["c.addi16sp sp,496", "addi sp,sp,496"],
  ["c.lui a0,0x1f", "lui a0,0x1f"],
  ["c.lui a0,0xfffe0", "lui a0,0xfffe0"],
  ["c.srli a0,63", "srli a0,a0,63"],
  ["c.srai s1,1", "srai s1,s1,1"],
  ["c.andi a2,-7", "andi a2,a2,-7"],
  ["c.sub a0,a1", "sub a0,a0,a1"],
  ["c.xor a0,a1", "xor a0,a0,a1"],
  ["c.or s0,s1", "or s0,s0,s1"],
  ["c.and a3,a4", "and a3,a3,a4"],
  ["c.subw a0,a5", "subw a0,a0,a5"],
  ["c.addw a0,a5", "addw a0,a0,a5"],
  ["c.j .+2046", "jal zero,.+2046"],
  ["c.j .-2048", "jal zero,.-2048"],
  ["c.beqz a0,.+254", "beq a0,zero,.+254"],
  ["c.bnez s1,.-256", "bne s1,zero,.-256"],
  ["c.slli a0,63", "slli a0,a0,63"],
  ["c.fldsp f1,504(sp)", "fld f1,504(sp)"],
  ["c.lwsp a0,252(sp)", "lw a0,252(sp)"],
  ["c.ldsp ra,504(sp)", "ld ra,504(sp)"],
  ["c.jr ra", "jalr zero,0(ra)"],
  ["c.mv a0,a1", "add a0,zero,a1"],
  ["c.ebreak", "ebreak"],
  ["c.jalr t0", "jalr ra,0(t0)"],
  ["c.add a0,a1", "add a0,a0,a1"],
  ["c.fsdsp f2,504(sp)", "fsd f2,504(sp)"],
  ["c.swsp a0,252(sp)", "sw a0,252(sp)"],
  ["c.sdsp s0,504(sp)", "sd s0,504(sp)"],
];

interface Dumped {
  addr: number;
  word: number;
  text: string;
}

/** Assembles lines (one instruction each) and returns objdump's view of each. */
function objdump(lines: string[], rvc: boolean): Dumped[] {
  const dir = Deno.makeTempDirSync({ prefix: "vmon-rv64-dec-" });
  try {
    const src = join(dir, "t.s"), obj = join(dir, "t.o");
    Deno.writeTextFileSync(
      src,
      `.option ${rvc ? "rvc" : "norvc"}\n.rept 1024\n.word 0x13\n.endr\n${lines.join("\n")}\n`,
    );
    const as = new Deno.Command("riscv64-linux-gnu-as", {
      args: ["-march=rv64gc", "-o", obj, src],
      stderr: "piped",
    }).outputSync();
    if (!as.success) throw new Error(new TextDecoder().decode(as.stderr));
    const od = new Deno.Command("riscv64-linux-gnu-objdump", {
      args: ["-d", "-M", "no-aliases,numeric", obj],
      stdout: "piped",
    }).outputSync();
    const out: Dumped[] = [];
    for (const line of new TextDecoder().decode(od.stdout).split("\n")) {
      const m = /^\s*([0-9a-f]+):\s+([0-9a-f]{4,8})\s+(\S+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const addr = parseInt(m[1]!, 16);
      if (addr < 4096) continue; // the padding that keeps branch targets in range
      let operands = m[4]!.replace(/\s*#.*$/, "").trim();
      const mnem = m[3]!;
      if (/^(beq|bne|blt|bge|bltu|bgeu|jal)$/.test(mnem)) {
        // absolute target "1234 <sym>" -> relative ".+off"
        operands = operands.replace(/([0-9a-f]+)(\s*<[^>]*>)?$/, (_s, t: string) => {
          const off = parseInt(t, 16) - addr;
          return off >= 0 ? `.+${off}` : `.${off}`;
        });
      }
      out.push({ addr, word: parseInt(m[2]!, 16), text: operands ? `${mnem} ${operands}` : mnem });
    }
    return out;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

function disasm(word: number): string {
  const lib = loadRv64();
  const buf = new Uint8Array(96);
  lib.symbols.rv64_disasm(word, buf, buf.length);
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end));
}

Deno.test({
  name: "rv64 decoder agrees with objdump on every 32-bit instruction",
  ignore: !HAVE_AS,
  fn() {
    const lines = baseInstructions();
    const dumped = objdump(lines, false);
    assertEquals(dumped.length, lines.length, "one objdump line per instruction");
    const mismatches: string[] = [];
    for (const d of dumped) {
      const mine = disasm(d.word);
      if (mine !== d.text) {
        mismatches.push(`${d.word.toString(16)}: objdump "${d.text}" vs "${mine}"`);
      }
    }
    assertEquals(mismatches, []);
  },
});

Deno.test({
  name: "rv64 decoder expands compressed instructions like the assembler",
  ignore: !HAVE_AS,
  fn() {
    const c = objdump(COMPRESSED.map(([s]) => s), true);
    const full = objdump(COMPRESSED.map(([, e]) => e), false);
    assertEquals(c.length, COMPRESSED.length);
    assertEquals(full.length, COMPRESSED.length);
    const mismatches: string[] = [];
    c.forEach((d, i) => {
      const expected = full[i]!;
      if (d.word > 0xffff) mismatches.push(`${COMPRESSED[i]![0]} was not compressed`);
      const mine = disasm(d.word);
      if (mine !== expected.text || disasm(expected.word) !== expected.text) {
        mismatches.push(
          `${COMPRESSED[i]![0]} (${d.word.toString(16)}): "${mine}" vs "${expected.text}"`,
        );
      }
    });
    assertEquals(mismatches, []);
  },
});

Deno.test("rv64 decoder rejects reserved encodings", () => {
  const cases: [number, number][] = [
    [0x00000000, 0], // all-zero parcel (c.addi4spn with a zero immediate)
    [0xffffffff, 0],
    [0x0000707b, 0], // unknown major opcode
    [0x42051513, 0], // slli with a non-zero funct6
    [0x00005053, 0], // fadd.s with the reserved rounding mode 5
    [0x00006053, 0], // fadd.s with the reserved rounding mode 6
    [0x0000100b, 0], // custom-0 opcode
    [0x00004073, 0], // SYSTEM funct3 4
    [0x8002, 0], // c.jr with rs1 = 0
    [0x4002, 0], // c.lwsp with rd = 0
    [0x6101, 0], // c.addi16sp with a zero immediate
    [0x9c41, 0], // c.addw? no: reserved c.subw/addw slot funct2=2 with bit 12
    [0x6000, 2], // c.ld on RV64 (legal)
    [0x00005073 | (0x7c0 << 20), 4], // csrrwi (legal)
  ];
  const lib = loadRv64();
  const buf = new Uint8Array(64);
  const got = cases.map(([w]) => lib.symbols.rv64_disasm(w >>> 0, buf, buf.length));
  assertEquals(got, cases.map(([, len]) => len));
});
