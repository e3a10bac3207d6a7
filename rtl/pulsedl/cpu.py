"""The RV32IM core: multi-cycle, one instruction at a time, no interrupts, no CSRs.

Every instruction takes a FETCH cycle (the instruction word at ``pc`` into the instruction register) and an
EXECUTE cycle (decode, register read, ALU, write-back and the next ``pc``), so most instructions take 2 cycles.
Loads and stores add one MEMORY cycle per bus wait state (the data memory answers in one: 3 cycles), divisions
wait in DIVIDE for the divider (35 cycles in all); multiplications are single-cycle. ECALL and EBREAK stop the core
(``halted``); an illegal instruction, a misaligned load/store or jump target stops it with ``trap`` set.
"""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.alu import Alu, BranchCompare
from rtl.pulsedl.bus import BUS
from rtl.pulsedl.config import IMEM_BASE
from rtl.pulsedl.decoder import Decoder, Op
from rtl.pulsedl.lsu import LoadStoreUnit
from rtl.pulsedl.memories import FETCH
from rtl.pulsedl.muldiv import Divider, Multiplier
from rtl.pulsedl.regfile import RegisterFile

__all__ = ["Cpu", "FetchUnit"]


class FetchUnit(wiring.Component):
    """The program counter and the instruction register. ``load_ir`` latches the word at ``pc``; ``pc_we`` moves
    ``pc`` to ``next_pc``."""

    def __init__(self, reset_pc: int = IMEM_BASE):
        self._reset_pc = reset_pc
        super().__init__({"load_ir": In(1), "pc_we": In(1), "next_pc": In(32),
                          "pc": Out(32, init=reset_pc), "ir": Out(32), "imem": Out(FETCH)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.imem.adr.eq(self.pc[2:])
        with m.If(self.load_ir):
            m.d.sync += self.ir.eq(self.imem.data)
        with m.If(self.pc_we):
            m.d.sync += self.pc.eq(self.next_pc)
        return m


class Cpu(wiring.Component):
    """Members: ``imem`` (instruction port), ``dbus`` (data bus master), ``halted``, ``trap``, ``instret``
    (instructions retired, modulo 2^32)."""

    def __init__(self):
        super().__init__({"imem": Out(FETCH), "dbus": Out(BUS), "halted": Out(1), "trap": Out(1),
                          "instret": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fetch = fetch = FetchUnit()
        m.submodules.decoder = dec = Decoder()
        m.submodules.regfile = rf = RegisterFile()
        m.submodules.alu = alu = Alu()
        m.submodules.branch = branch = BranchCompare()
        m.submodules.multiplier = mul = Multiplier()
        m.submodules.divider = div = Divider()
        m.submodules.lsu = lsu = LoadStoreUnit()
        wiring.connect(m, wiring.flipped(self.imem), fetch.imem)
        wiring.connect(m, wiring.flipped(self.dbus), lsu.bus)

        pc, imm = fetch.pc, dec.imm
        pc_plus_4 = (pc + 4)[:32]
        pc_plus_imm = (pc + imm)[:32]
        m.d.comb += [
            dec.instr.eq(fetch.ir),
            rf.rs1.eq(dec.rs1), rf.rs2.eq(dec.rs2), rf.rd.eq(dec.rd),
            alu.a.eq(rf.rdata1), alu.b.eq(rf.rdata2), alu.fn.eq(dec.fn),
            branch.a.eq(rf.rdata1), branch.b.eq(rf.rdata2), branch.funct3.eq(dec.funct3),
            mul.a.eq(rf.rdata1), mul.b.eq(rf.rdata2), mul.funct3.eq(dec.funct3),
            div.a.eq(rf.rdata1), div.b.eq(rf.rdata2), div.funct3.eq(dec.funct3),
            lsu.addr.eq(alu.result), lsu.store_data.eq(rf.rdata2), lsu.funct3.eq(dec.funct3),
            lsu.write.eq(dec.op == Op.STORE),
            fetch.next_pc.eq(pc_plus_4),
        ]
        with m.If(dec.use_imm):
            m.d.comb += alu.b.eq(imm)

        def retire():
            m.d.comb += fetch.pc_we.eq(1)
            m.d.sync += self.instret.eq(self.instret + 1)
            m.next = "FETCH"

        def stop(trap):
            m.d.sync += [self.halted.eq(1), self.trap.eq(trap)]
            m.next = "HALTED"

        with m.FSM(name="state"):
            with m.State("FETCH"):
                m.d.comb += fetch.load_ir.eq(1)
                m.next = "EXECUTE"
            with m.State("EXECUTE"):
                self._execute(m, dec, rf, alu, branch, mul, div, lsu, fetch, pc_plus_4, pc_plus_imm, retire, stop)
            with m.State("MEMORY"):
                m.d.comb += lsu.req.eq(1)
                with m.If(lsu.done):
                    m.d.comb += [rf.wdata.eq(lsu.load_data), rf.we.eq(dec.op == Op.LOAD)]
                    retire()
            with m.State("DIVIDE"):
                with m.If(div.done):
                    m.d.comb += [rf.wdata.eq(div.result), rf.we.eq(1)]
                    retire()
            with m.State("HALTED"):
                pass
        return m

    @staticmethod
    def _execute(m, dec, rf, alu, branch, mul, div, lsu, fetch, pc_plus_4, pc_plus_imm, retire, stop):
        jalr_target = alu.result & ~1
        with m.Switch(dec.op):
            with m.Case(Op.ALU):
                m.d.comb += [rf.wdata.eq(alu.result), rf.we.eq(1)]
                retire()
            with m.Case(Op.LUI):
                m.d.comb += [rf.wdata.eq(dec.imm), rf.we.eq(1)]
                retire()
            with m.Case(Op.AUIPC):
                m.d.comb += [rf.wdata.eq(pc_plus_imm), rf.we.eq(1)]
                retire()
            with m.Case(Op.JAL, Op.JALR):
                target = Signal(32)
                m.d.comb += target.eq(pc_plus_imm)
                with m.If(dec.op == Op.JALR):
                    m.d.comb += target.eq(jalr_target)
                with m.If(target[1]):
                    stop(trap=1)
                with m.Else():
                    m.d.comb += [rf.wdata.eq(pc_plus_4), rf.we.eq(1), fetch.next_pc.eq(target)]
                    retire()
            with m.Case(Op.BRANCH):
                with m.If(branch.taken & pc_plus_imm[1]):
                    stop(trap=1)
                with m.Else():
                    with m.If(branch.taken):
                        m.d.comb += fetch.next_pc.eq(pc_plus_imm)
                    retire()
            with m.Case(Op.LOAD, Op.STORE):
                with m.If(lsu.misaligned):
                    stop(trap=1)
                with m.Else():
                    m.d.comb += lsu.req.eq(1)
                    m.next = "MEMORY"
            with m.Case(Op.MULDIV):
                with m.If(dec.funct3[2]):
                    m.d.comb += div.start.eq(1)
                    m.next = "DIVIDE"
                with m.Else():
                    m.d.comb += [rf.wdata.eq(mul.result), rf.we.eq(1)]
                    retire()
            with m.Case(Op.FENCE):
                retire()
            with m.Case(Op.HALT):
                stop(trap=0)
            with m.Default():
                stop(trap=1)
