"""sim.area.measure_ecp5: ECP5 cell counts (Yosys synth_ecp5, hierarchy kept) per functional block."""
from sim.area import Ecp5Area, measure_ecp5


def test_ecp5_counts_grow_with_the_memory_code_and_carry_cells_count_twice():
    plain = measure_ecp5("sram", "256x16")
    secded = measure_ecp5("sram", "256x16-secded")
    p, s = plain.summary(), secded.summary()
    assert p["bram"] == s["bram"] == 1              # 256 x 16 (22 with the code) fits one DP16KD
    assert p["dsp"] == 0 and p["ff"] > 0
    assert s["lut"] > p["lut"] + 20                  # the SECDED encoder and decoder are logic
    assert Ecp5Area.luts(plain.total()) == p["lut"]
    cells = plain.total()
    assert p["lut"] == cells["LUT4"] + 2 * cells["CCU2C"]


def test_scaffolding_blocks_can_be_left_out():
    area = measure_ecp5("mac_array", "4x4")
    whole = area.summary()
    without = area.summary(exclude=("pe_0_0",))
    assert whole["dsp"] == 16 and without["dsp"] == 15      # one 8x8 multiplier per PE
    assert without["ff"] == whole["ff"] - area.blocks["pe_0_0"]["TRELLIS_FF"]


def test_one_instance_alone_matches_its_share_of_the_whole():
    whole = measure_ecp5("mac_array", "4x4")
    alone = measure_ecp5("mac_array", "4x4", instance="pe_1_1")
    assert set(alone.blocks) == {"pe_1_1"}
    assert alone.blocks["pe_1_1"] == whole.blocks["pe_1_1"]       # the hierarchy is kept: same cells
