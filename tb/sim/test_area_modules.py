"""sim.area.area_of_rtlil: per-module synthesis with a per-module cache gives the whole design's counts."""
import json
import subprocess
from collections import Counter

import pytest
from amaranth.back import rtlil

import sim.area as area
from faultinj.protection import protected_config
from rtl.designs import get_design

PLAN = {"pe_0_0": "dmr", "pe_1_1": "tmr"}


def _rtlil(plan=None, config="4x4"):
    entry = get_design("mac_array")
    cfg = entry.config(config)
    return rtlil.convert(entry.make(protected_config("mac_array", cfg, plan) if plan else cfg), name="top")


def _whole_design_counts(text: str, tmp_path) -> dict[str, dict]:
    """The reference: one Yosys run of the whole design with ``hierarchy -top top`` (the flow before per-module
    synthesis), counted per module the same way."""
    (tmp_path / "top.il").write_text(text)
    (tmp_path / "area.ys").write_text("read_rtlil top.il\n" + area.AREA_SCRIPT_NO_ABC.format(out="stat.json"))
    subprocess.run([area._yosys(), "-q", "-s", "area.ys"], cwd=tmp_path, check=True, capture_output=True)
    out = {}
    for name, data in json.loads((tmp_path / "stat.json").read_text())["modules"].items():
        name = name.lstrip("\\")
        cells = data.get("num_cells_by_type", {})
        out[name[len("top."):] if name.startswith("top.") else ""] = {
            "gates": {c: n for c, n in cells.items() if c.startswith("$_") and not area._is_ff(c)},
            "ff_bits": sum(n for c, n in cells.items() if area._is_ff(c))}
    return out


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RAMPART_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    calls = []
    real = area._synthesise_modules

    def recording(names, modules, script):
        calls.append(sorted(names))
        return real(names, modules, script)

    monkeypatch.setattr(area, "_synthesise_modules", recording)
    return calls


def test_per_module_counts_equal_the_whole_design_run(fresh_cache, tmp_path):
    text = _rtlil(PLAN)
    mine = area.area_of_rtlil(text, abc=False)
    ref = _whole_design_counts(text, tmp_path)
    assert set(mine) == set(ref) and len(ref) > 16
    for path in ref:
        assert Counter(mine[path]["gates"]) == Counter(ref[path]["gates"]), path
        assert mine[path]["ff_bits"] == ref[path]["ff_bits"], path
    assert any(ref[p]["ff_bits"] for p in ref) and any(ref[p]["gates"] for p in ref)


def test_a_protected_variant_synthesises_only_the_modules_it_changed(fresh_cache):
    plain = area.area_of_rtlil(_rtlil(), abc=False)
    modules = area._rtlil_modules(_rtlil())
    distinct = {area._module_key(n, modules, area.AREA_SCRIPT_NO_ABC) for n in modules}
    # one Yosys run, each distinct module once (interior PEs are the same module under different paths)
    assert len(fresh_cache) == 1 and len(fresh_cache[0]) == len(distinct) < len(plain)
    assert plain["pe_1_1"] == plain["pe_2_2"]
    again = area.area_of_rtlil(_rtlil(), abc=False)
    assert again == plain and len(fresh_cache) == 1                          # all cached
    protected = area.area_of_rtlil(_rtlil(PLAN), abc=False)
    changed = set(fresh_cache[1])
    assert "top" in changed                                    # the top instantiates the wrappers
    assert not any(n.startswith(("top.pe_0_1", "top.pe_1_0", "top.pe_2_2")) for n in changed)
    assert any(n.startswith("top.pe_0_0") for n in changed) and any(n.startswith("top.pe_1_1") for n in changed)
    assert len(changed) < len(protected) / 2
    # the DMR copies are one module (here already cached as an interior PE): at most one synthesis, counted twice
    copies = [n for n in area._rtlil_modules(_rtlil(PLAN)) if n.startswith("top.pe_0_0.")]
    assert len(copies) == 2 and sum(n.startswith("top.pe_0_0.") for n in changed) <= 1
    assert protected[copies[0][4:]] == protected[copies[1][4:]]
    assert protected["pe_0_1"] == plain["pe_0_1"]


def test_the_same_module_under_another_path_is_a_cache_hit():
    modules = area._rtlil_modules(_rtlil())
    renamed = {n.replace("top.pe_0_1", "top.copy.pe_0_1"): t.replace("\\top.pe_0_1", "\\top.copy.pe_0_1")
               for n, t in modules.items()}
    key = area._module_key("top.pe_0_1", modules, area.AREA_SCRIPT)
    assert area._module_key("top.copy.pe_0_1", renamed, area.AREA_SCRIPT) == key
    assert area._module_key("top.pe_0_3", modules, area.AREA_SCRIPT) != key   # last column: its a_out is pruned
    assert area._module_key("top.pe_0_1", modules, area.AREA_SCRIPT_NO_ABC) != key
