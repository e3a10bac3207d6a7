"""rtl.designs: every design is described by its package's descriptor, and the documented imports work."""
import pytest

from base import RampartError
from rtl.designs import PACKAGES, Design, Kind, designs, get_design, resolve


def test_documented_imports():
    from rtl.npu import Npu, NpuConfig
    from rtl.npu.top import Npu as TopNpu

    assert Npu is TopNpu and get_design("npu").make is Npu and isinstance(get_design("npu").config(), NpuConfig)


def test_each_package_exports_one_descriptor_and_accelerators_come_first():
    import importlib

    for package in PACKAGES:
        assert isinstance(importlib.import_module(package).DESCRIPTOR, Design)
    kinds = [d.kind for d in designs().values()]
    assert {"npu", "neurocore", "neurocore_uart", "mac_array"} <= set(designs())
    assert get_design("npu").kind == Kind.ACCELERATOR and get_design("npu_mac").kind == Kind.UNIT
    assert kinds.index(Kind.ACCELERATOR) == 0


def test_descriptor_references_resolve():
    for design in designs().values():
        for name in design.workloads:
            assert callable(design.workload(name))
        for ref in (design.board_adapter, design.golden, design.driver):
            if ref is not None:
                assert resolve(ref) is not None, ref


def test_block_of_longest_prefix_then_first_level_instance():
    d = Design("x", "x", dict, {"a": {}}, "a", dict, blocks={"compute": "compute", "compute.mac": "mac",
                                                             "shram": "shram"})
    assert d.block_of("compute.mac.acc_3") == "mac"
    assert d.block_of("compute.macro.r") == "compute"          # a prefix ends at a dot
    assert d.block_of("compute.r") == "compute"
    assert d.block_of("shram") == "shram"                       # a memory at the top, mapped by name
    assert d.block_of("dma.state") == "dma"                     # unmapped: first-level instance
    assert d.block_of("counter") == "top"


def test_build_assigns_blocks_from_the_descriptor():
    from sim.build import build

    result = build("npu", "u55-32")
    entry = get_design("npu")
    assert all(e.block == entry.block_of(e.var) for e in result.state)
    assert set(result.stats.ff_bits) | set(result.stats.mem_bits) <= set(result.blocks())


def test_unknown_design_workload_and_preset_are_one_line_errors():
    with pytest.raises(RampartError, match="unknown design 'nope'"):
        get_design("nope")
    with pytest.raises(RampartError, match="has no workload 'nope'"):
        get_design("npu").workload("nope")
    with pytest.raises(RampartError, match="unknown config 'u55-7'"):
        get_design("npu").config("u55-7")
