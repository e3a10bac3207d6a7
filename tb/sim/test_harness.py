"""Native harness: state map, snapshots, bit flips, digests, tracing, build cache and build errors."""
import numpy as np
import pytest

from base import RampartError
from sim.build import _verilate, build
from sim.crosscheck import native_trace, random_stimulus
from sim.harness import NativeSim

DESIGN, CONFIG = "mac_array", "4x4"


@pytest.fixture(scope="module")
def mac():
    return build(DESIGN, CONFIG)


def _stimulus(result, cycles, seed):
    stimulus = random_stimulus(result.ports, cycles, seed)
    stimulus["en"] = np.ones(cycles, dtype=np.uint64)
    stimulus["clear"] = (np.arange(cycles) % 97 == 0).astype(np.uint64)
    return stimulus


def test_state_map_counts_every_flip_flop(mac):
    rows = cols = 4
    acc = 32
    # each PE: 8-bit a, 8-bit w, acc-bit accumulator; plus the cols*acc readout register
    assert mac.state_bits == rows * cols * (8 + 8 + acc) + cols * acc
    assert {e.kind for e in mac.state} == {"ff"}
    assert set(mac.blocks()) == {"top"} | {f"pe_{r}_{c}" for r in range(rows) for c in range(cols)}


def test_build_is_cached(mac):
    again = build(DESIGN, CONFIG)
    assert again.directory == mac.directory
    assert again.library.stat().st_mtime == mac.library.stat().st_mtime


def test_snapshot_restore_replays_identically(mac):
    with NativeSim(mac) as sim:
        native_trace(sim, _stimulus(mac, 300, 1), ["out"])
        snap = sim.snapshot()
        stimulus = _stimulus(mac, 500, 2)
        first = native_trace(sim, stimulus, ["out"])
        first_digest = sim.digest()
        sim.restore(snap)
        second = native_trace(sim, stimulus, ["out"])
        assert second == first
        assert sim.digest() == first_digest


def test_run_stimulus_takes_packed_input(mac):
    stimulus = _stimulus(mac, 400, 6)
    with NativeSim(mac) as sim:
        snap = sim.snapshot()
        from_dict = sim.run_stimulus(stimulus, ["out"])["out"]
        sim.restore(snap)
        packed = sim.pack_inputs(stimulus)
        assert np.array_equal(sim.run_stimulus(packed, ["out"])["out"], from_dict)
        ids, words = packed
        with pytest.raises(RampartError, match="its ports need"):
            sim.run_stimulus((ids, words[:, 1:]), ["out"])
        with pytest.raises(RampartError, match="not an input port"):
            sim.run_stimulus((sim.output_ids(["out"])[0], words), ["out"])


def test_flip_changes_exactly_that_bit_of_the_digest_input(mac):
    rng = np.random.default_rng(3)
    with NativeSim(mac) as sim:
        native_trace(sim, _stimulus(mac, 200, 4), ["out"])
        for site in rng.choice(sim.num_sites, size=64, replace=False):
            before = np.frombuffer(sim.state_bytes(), dtype=np.uint8)
            digest = sim.digest()
            sim.flip(int(site))
            after = np.frombuffer(sim.state_bytes(), dtype=np.uint8)
            changed = np.flatnonzero(np.unpackbits(before ^ after, bitorder="little"))
            assert changed.tolist() == [sim.digest_bit_offset(int(site))]
            assert sim.digest() != digest
            sim.flip(int(site))
            assert sim.digest() == digest
            element, word, bit = sim.site(int(site))
            value = sim.get_bit(element, word, bit)
            sim.set_bit(element, word, bit, value)
            assert sim.digest() == digest
            sim.set_bit(element, word, bit, 1 - value)
            assert sim.get_bit(element, word, bit) == 1 - value and sim.digest() != digest
            sim.set_bit(element, word, bit, value)
            name = mac.state[element].hier_name
            assert sim.site_index(name, word, bit) == site
            assert sim.site_index(name.split(".", 1)[1], word, bit) == site   # a unique dotted suffix


def test_site_index_refuses_what_is_not_one_bit(mac):
    with NativeSim(mac) as sim:
        with pytest.raises(RampartError, match="0 matches"):
            sim.site_index("no_such_register", 0, 0)
        with pytest.raises(RampartError, match="matches, need exactly one"):
            sim.site_index("acc", 0, 0)   # every PE has one
        width = mac.state[sim.element_index("top.pe_0_0.acc")].width
        with pytest.raises(RampartError, match=f"no bit {width} of word 0"):
            sim.site_index("top.pe_0_0.acc", 0, width)


def test_flipped_accumulator_bit_reaches_the_output(mac):
    with NativeSim(mac) as sim:
        sim.poke("en", 0)
        sim.poke("rsel", 0)
        sim.step(2)
        golden = sim.peek("out")
        element = sim.element_index("top.pe_0_0.acc")
        sim.flip_bit(element, 0, 5)
        sim.step(1)  # the readout register samples row 0 on the next edge
        assert sim.peek("out") ^ golden == 1 << 5


def test_fst_trace_is_written(tmp_path):
    result = build(DESIGN, CONFIG, trace=True)
    path = tmp_path / "run.fst"
    with NativeSim(result, trace=path) as sim:
        sim.poke("en", 1)
        sim.step(20)
    assert path.stat().st_size > 100


def test_unknown_design_and_config_are_clear_errors():
    with pytest.raises(RampartError, match="unknown design 'nope'"):
        build("nope")
    with pytest.raises(RampartError, match="unknown config '9x9'"):
        build(DESIGN, "9x9")


def test_verilator_failure_names_the_log(tmp_path):
    (tmp_path / "top.v").write_text("module top(input clk; endmodule\n")
    (tmp_path / "public.vlt").write_text("`verilator_config\n")
    with pytest.raises(RampartError, match=r"Verilator build failed: .*\(log: .*verilator.log\)"):
        _verilate(tmp_path, trace=False)


def test_memory_load_read_and_flips_through_secded():
    from rtl.common.sram import SramConfig

    result = build("sram", "256x16-secded")
    config = SramConfig(256, 16, result.config.protection)
    memory = next(i for i, e in enumerate(result.state) if e.kind == "mem")
    assert result.state[memory].depth == 256 and result.state[memory].width == 16 + config.check_width
    rng = np.random.default_rng(5)
    data = rng.integers(0, 1 << 16, 256)
    with NativeSim(result) as sim:
        sim.load_memory(memory, [config.encode_int(int(d)) for d in data])
        assert [config.decode_int(int(w))[0] for w in sim.read_memory(memory)] == data.tolist()

        def read(addr):
            sim.poke("addr", addr)
            sim.poke("re", 1)
            sim.step(1)
            sim.poke("re", 0)
            return sim.peek("rdata"), sim.peek("corrected"), sim.peek("error")

        assert read(17) == (data[17], 0, 0)
        # one flipped stored bit (through the fault-injection path) is corrected, two are flagged
        base = int(sim.site_offsets[memory]) + 17 * result.state[memory].width
        sim.flip(base + 3)
        assert read(17) == (data[17], 1, 0)
        sim.flip(base + 9)
        assert read(17)[2] == 1
