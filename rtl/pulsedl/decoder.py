"""RV32IM instruction decoder: instruction word -> register numbers, immediate, instruction class, ALU function."""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AluFn", "Decoder", "Op", "Opcode"]


class Opcode(enum.Enum, shape=7):
    LOAD = 0b0000011
    MISC_MEM = 0b0001111
    OP_IMM = 0b0010011
    AUIPC = 0b0010111
    STORE = 0b0100011
    OP = 0b0110011
    LUI = 0b0110111
    BRANCH = 0b1100011
    JALR = 0b1100111
    JAL = 0b1101111
    SYSTEM = 0b1110011


class Op(enum.Enum, shape=4):
    """What the CPU does with an instruction."""
    ALU = 0       #: rd <- alu(rs1, rs2 or imm)
    LUI = 1
    AUIPC = 2
    JAL = 3
    JALR = 4
    BRANCH = 5
    LOAD = 6
    STORE = 7
    MULDIV = 8    #: M extension, funct3 selects the operation
    FENCE = 9     #: a no-op on this in-order core with one memory port
    HALT = 10     #: ECALL / EBREAK: the core stops (the harness reads the result)
    ILLEGAL = 11  #: the core stops with ``trap`` set


class AluFn(enum.Enum, shape=4):
    ADD = 0
    SUB = 1
    SLL = 2
    SLT = 3
    SLTU = 4
    XOR = 5
    SRL = 6
    SRA = 7
    OR = 8
    AND = 9


_FUNCT3_FN = {0: AluFn.ADD, 1: AluFn.SLL, 2: AluFn.SLT, 3: AluFn.SLTU, 4: AluFn.XOR, 5: AluFn.SRL, 6: AluFn.OR,
              7: AluFn.AND}


class Decoder(wiring.Component):
    """Combinational. ``imm`` is the sign-extended immediate of the instruction's format; ``use_imm`` selects it
    as the ALU's second operand (OP-IMM, and the address sum of loads, stores and JALR, where ``fn`` is ADD);
    ``funct3`` is passed on for branches, loads, stores and M operations."""

    def __init__(self):
        super().__init__({
            "instr": In(32),
            "op": Out(Op), "fn": Out(AluFn), "use_imm": Out(1), "funct3": Out(3),
            "rd": Out(5), "rs1": Out(5), "rs2": Out(5), "imm": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        i = self.instr
        opcode, funct3, funct7 = i[0:7], i[12:15], i[25:32]
        sign = i[31]
        imm_i = Cat(i[20:32], sign.replicate(20))
        imm_s = Cat(i[7:12], i[25:32], sign.replicate(20))
        imm_b = Cat(0, i[8:12], i[25:31], i[7], sign.replicate(20))
        imm_u = Cat(Signal(12), i[12:32])
        imm_j = Cat(0, i[21:31], i[20], i[12:20], sign.replicate(12))
        m.d.comb += [self.rd.eq(i[7:12]), self.rs1.eq(i[15:20]), self.rs2.eq(i[20:25]), self.funct3.eq(funct3),
                     self.op.eq(Op.ILLEGAL), self.fn.eq(AluFn.ADD)]
        shift_ok = (funct7 == 0) | ((funct7 == 0b0100000) & (funct3 == 5))

        with m.Switch(opcode):
            with m.Case(Opcode.LUI):
                m.d.comb += [self.op.eq(Op.LUI), self.imm.eq(imm_u)]
            with m.Case(Opcode.AUIPC):
                m.d.comb += [self.op.eq(Op.AUIPC), self.imm.eq(imm_u)]
            with m.Case(Opcode.JAL):
                m.d.comb += [self.op.eq(Op.JAL), self.imm.eq(imm_j)]
            with m.Case(Opcode.JALR):
                with m.If(funct3 == 0):
                    m.d.comb += [self.op.eq(Op.JALR), self.imm.eq(imm_i), self.use_imm.eq(1)]
            with m.Case(Opcode.BRANCH):
                with m.If((funct3 != 2) & (funct3 != 3)):
                    m.d.comb += [self.op.eq(Op.BRANCH), self.imm.eq(imm_b)]
            with m.Case(Opcode.LOAD):
                with m.If((funct3 != 3) & (funct3 < 6)):
                    m.d.comb += [self.op.eq(Op.LOAD), self.imm.eq(imm_i), self.use_imm.eq(1)]
            with m.Case(Opcode.STORE):
                with m.If(funct3 < 3):
                    m.d.comb += [self.op.eq(Op.STORE), self.imm.eq(imm_s), self.use_imm.eq(1)]
            with m.Case(Opcode.OP_IMM):
                m.d.comb += [self.use_imm.eq(1), self.imm.eq(imm_i)]
                self._alu_fn(m, funct3, funct7, immediate=True)
                with m.If(((funct3 != 1) & (funct3 != 5)) | shift_ok):
                    m.d.comb += self.op.eq(Op.ALU)
            with m.Case(Opcode.OP):
                self._alu_fn(m, funct3, funct7, immediate=False)
                with m.If(funct7 == 1):
                    m.d.comb += self.op.eq(Op.MULDIV)
                with m.Elif((funct7 == 0) | ((funct7 == 0b0100000) & ((funct3 == 0) | (funct3 == 5)))):
                    m.d.comb += self.op.eq(Op.ALU)
            with m.Case(Opcode.MISC_MEM):
                with m.If(funct3 == 0):
                    m.d.comb += self.op.eq(Op.FENCE)
            with m.Case(Opcode.SYSTEM):
                with m.If((i[7:32] == 0) | (i[7:32] == (1 << 13))):   # ECALL, EBREAK
                    m.d.comb += self.op.eq(Op.HALT)
        return m

    def _alu_fn(self, m, funct3, funct7, *, immediate: bool):
        # a Mux chain, not a Switch: Yosys would turn a constant-valued Switch into a ROM (a memory, not logic)
        fn = AluFn.AND.value
        for value, name in sorted(_FUNCT3_FN.items(), reverse=True)[1:]:
            fn = Mux(funct3 == value, name.value, fn)
        alt = funct7[5]
        fn = Mux((funct3 == 5) & alt, AluFn.SRA.value, fn)
        if not immediate:
            fn = Mux((funct3 == 0) & alt, AluFn.SUB.value, fn)
        m.d.comb += self.fn.eq(fn)
