# amaranth: UnusedElaboratable=no
"""rtl.common.protect.memory: parity / SECDED stand in for a Memory the design already wired up; stored words match
the plain-Python reference codes, single flips are detected (parity) or corrected (SECDED), double flips detected,
and the scrubber finds a flip in a word no port reads (Amaranth simulator)."""
import pytest
from amaranth import Module
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from rtl.common.protect import protect_hierarchy
from rtl.common.protect.memory import ProtectedMemory, check_bits, granule_width
from rtl.common.sram import Protection, parity_encode_int, secded_encode_int

DEPTH = 10   # not a power of two: addresses 10..15 are outside the memory


def _memory(granularity=8):
    mem = Memory(shape=16, depth=DEPTH, init=[])
    return mem, mem.write_port(granularity=granularity), mem.read_port(domain="comb")


def _simulate(pm, bench):
    m = Module()
    m.submodules.pm = pm
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _reference(protection, data, granule=8, granules=2):
    enc = parity_encode_int if protection is Protection.PARITY else secded_encode_int
    width = granule + check_bits(protection, granule)
    return sum(enc(data >> (i * granule) & ((1 << granule) - 1), granule) << (i * width) for i in range(granules))


@pytest.mark.parametrize("protection", [Protection.PARITY, Protection.SECDED])
def test_words_are_stored_as_the_reference_code_and_read_back(protection):
    mem, wr, rd = _memory()
    pm = ProtectedMemory(mem, protection, scrub=False)
    assert granule_width(mem) == 8 and pm.granules == 2

    async def bench(ctx):
        ctx.set(wr.addr, 3)
        ctx.set(wr.data, 0xABCD)
        ctx.set(wr.en, 0b11)
        await ctx.tick()
        ctx.set(wr.addr, 4)                  # a byte-strobed write: only the high granule
        ctx.set(wr.data, 0x12FF)
        ctx.set(wr.en, 0b10)
        await ctx.tick()
        ctx.set(wr.en, 0)
        assert ctx.get(pm.stored.data[3]) == _reference(protection, 0xABCD)
        assert ctx.get(pm.stored.data[4]) == _reference(protection, 0x1200)
        for addr, value in ((3, 0xABCD), (4, 0x1200), (15, 0)):
            ctx.set(rd.addr, addr)
            assert ctx.get(rd.data) == value
            assert not ctx.get(pm.sm_error) and not ctx.get(pm.sm_corrected)

    _simulate(pm, bench)


@pytest.mark.parametrize("protection", [Protection.PARITY, Protection.SECDED])
@pytest.mark.parametrize("bit", [0, 7, 8, 12, 16])     # data bits of both granules and a check bit
def test_single_flip_is_detected_or_corrected(protection, bit):
    mem, wr, rd = _memory()
    pm = ProtectedMemory(mem, protection, scrub=False)

    async def bench(ctx):
        ctx.set(wr.addr, 2)
        ctx.set(wr.data, 0x5A3C)
        ctx.set(wr.en, 0b11)
        await ctx.tick()
        ctx.set(wr.en, 0)
        ctx.set(rd.addr, 7)                  # not reading the word yet: no flag
        ctx.set(pm.stored.data[2], ctx.get(pm.stored.data[2]) ^ (1 << bit))
        assert not ctx.get(pm.sm_error) and not ctx.get(pm.sm_corrected)
        ctx.set(rd.addr, 2)
        if protection is Protection.PARITY:
            assert ctx.get(pm.sm_error) and not ctx.get(pm.sm_corrected)
        else:
            assert ctx.get(rd.data) == 0x5A3C
            assert ctx.get(pm.sm_corrected) and not ctx.get(pm.sm_error)

    _simulate(pm, bench)


def test_secded_double_flip_in_a_granule_is_an_error():
    mem, wr, rd = _memory()
    pm = ProtectedMemory(mem, Protection.SECDED, scrub=False)

    async def bench(ctx):
        ctx.set(pm.stored.data[1], ctx.get(pm.stored.data[1]) ^ 0b101)
        ctx.set(rd.addr, 1)
        assert ctx.get(pm.sm_error) and not ctx.get(pm.sm_corrected)

    _simulate(pm, bench)


@pytest.mark.parametrize("protection", [Protection.PARITY, Protection.SECDED])
def test_scrubber_finds_a_flip_no_port_reads(protection):
    mem, wr, rd = _memory()
    pm = ProtectedMemory(mem, protection)

    async def bench(ctx):
        ctx.set(rd.addr, 0)
        await ctx.tick()
        ctx.set(pm.stored.data[DEPTH - 1], 1 << 3)
        seen = []
        for _ in range(DEPTH + 1):
            seen.append(ctx.get(pm.sm_error) or ctx.get(pm.sm_corrected))
            await ctx.tick()
        assert sum(seen) == 1   # found once per pass of the scrubber

    _simulate(pm, bench)


def test_refuses_what_it_cannot_protect():
    mem = Memory(shape=8, depth=4, init=[1, 0, 0, 0])
    mem.read_port(domain="comb")
    with pytest.raises(ValueError, match="initialised to zero"):
        ProtectedMemory(mem, "parity")
    mem = Memory(shape=8, depth=4, init=[])
    mem.read_port()
    with pytest.raises(ValueError, match="combinational read ports"):
        ProtectedMemory(mem, "secded")


def test_protect_hierarchy_codes_every_memory_of_the_instance():
    from amaranth.back import rtlil
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl.common.fifo import MemoryFIFO

    class Unit(wiring.Component):
        def __init__(self):
            super().__init__({"addr": In(2), "data": Out(8), "err": Out(1), "cor": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.ram = ram = Memory(shape=8, depth=4, init=[])
            rd = ram.read_port(domain="comb")
            m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
            m.submodules.fifo = MemoryFIFO(width=12, depth=4)
            return m

    class Top(wiring.Component):
        def __init__(self):
            super().__init__({"addr": In(2), "data": Out(8), "sm_error": Out(1), "sm_corrected": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.unit = unit = Unit()
            m.d.comb += [unit.addr.eq(self.addr), self.data.eq(unit.data)]
            protect_hierarchy(m, {"unit": "secded"}, self.sm_error, self.sm_corrected)
            return m

    text = rtlil.convert(Top(), name="top")
    widths = sorted(line.split()[2] for line in text.splitlines() if line.strip().startswith("memory "))
    assert widths == ["13", "18"]     # SECDED: 8 + 4 + 1 and 12 + 5 + 1 bits
