"""The two-level build cache: a sources-key miss whose netlist is unchanged reuses the Verilated library."""
import pytest

from sim import build as build_module
from sim.build import build

DESIGN, CONFIG = "mac_array", "4x4"


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAMPART_CACHE", str(tmp_path))
    return tmp_path


def test_unchanged_netlist_is_not_verilated_again(private_cache, monkeypatch):
    first = build(DESIGN, CONFIG)
    assert first.directory.is_symlink() and first.library.exists()
    monkeypatch.setattr(build_module, "_source_digest", lambda: "an edit elsewhere in rtl/")

    def no_verilator(*_args, **_kwargs):
        raise AssertionError("Verilator ran although the netlist did not change")

    monkeypatch.setattr(build_module, "_verilate", no_verilator)
    again = build(DESIGN, CONFIG)
    assert again.directory != first.directory
    assert again.directory.resolve() == first.directory.resolve()
    assert again.key == first.key and again.state == first.state


def test_changed_netlist_builds_its_own_folder(private_cache):
    small, large = build(DESIGN, "4x4"), build(DESIGN, "8x8")
    assert small.directory.resolve() != large.directory.resolve()
    assert small.state_bits < large.state_bits


def test_rtl_edited_after_import_bypasses_the_sources_key(private_cache, monkeypatch):
    import rtl

    first = build(DESIGN, CONFIG)
    links_before = sorted(p.name for p in private_cache.iterdir() if p.is_symlink())
    monkeypatch.setattr(rtl, "SOURCES_AT_IMPORT", "digest of an older checkout")
    again = build(DESIGN, CONFIG)
    assert again.directory == first.directory.resolve()
    assert sorted(p.name for p in private_cache.iterdir() if p.is_symlink()) == links_before


def test_optimisation_level_is_part_of_both_keys(monkeypatch):
    from sim import toolchain

    netlist = "module top; endmodule"
    assert build_module.netlist_key(netlist, "Os") != build_module.netlist_key(netlist, "O3")
    assert build_module.build_key(DESIGN, CONFIG, "Os") != build_module.build_key(DESIGN, CONFIG, "O3")
    before = build_module.netlist_key(netlist, "O3"), build_module.build_key(DESIGN, CONFIG, "O3")
    # other compiler flags under the same level name must not find the old library either
    monkeypatch.setitem(toolchain.VERILATOR_OPT_LEVELS, "O3", ("OPT_FAST=-O2", "OPT_GLOBAL=-O2"))
    assert (build_module.netlist_key(netlist, "O3"), build_module.build_key(DESIGN, CONFIG, "O3")) != before


def test_unknown_optimisation_level_is_a_clear_error():
    from base import RampartError

    with pytest.raises(RampartError, match="unknown Verilator optimisation level 'O9'"):
        build(DESIGN, CONFIG, opt="O9")
