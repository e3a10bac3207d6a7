"""The NeuroCore in the system model: the engine formula equals the RTL's, the UART link time is the protocol's."""
import numpy as np
import pytest

from models.system.neurocore import PRESETS, NeuroCoreShape, SnnWorkload, predict_snn, step_cycles
from rtl.neurocore.config import PRESETS as RTL_PRESETS
from rtl.neurocore.config import step_cycles as rtl_step_cycles


@pytest.mark.parametrize("name", sorted(RTL_PRESETS))
def test_step_cycles_equal_the_rtl_formula(name):
    cfg = RTL_PRESETS[name]
    shape = PRESETS[name]
    assert (shape.n_neurons, shape.n_inputs, shape.lanes) == (cfg.n_neurons, cfg.n_inputs, cfg.lanes)
    rng = np.random.default_rng(3)
    for _ in range(200):
        n_pending, n_now = (int(v) for v in rng.integers(0, cfg.n_sources + 1, 2))
        groups = int(rng.integers(0, cfg.groups + 1))
        learn, integrated = bool(rng.integers(2)), bool(rng.integers(2))
        assert step_cycles(shape, n_pending, n_now, groups, learn, integrated=integrated) == \
            rtl_step_cycles(cfg, n_pending, n_now, groups, learn, integrated=integrated)


def test_uart_bound_run_is_the_bytes_on_the_line():
    shape = NeuroCoreShape(16, 16, 4)                 # 2 input bytes and 2 raster bytes per step
    steps = 10
    p = predict_snn(shape, SnnWorkload(steps), baud=1_000_000, clock_hz=10e6)   # divisor 10: 100 cycles a byte
    frame_in = (4 + 2 + steps * 2 + 2) * 100
    assert p.cycles == frame_in + (5 + steps * 2 + 2) * 100
    assert p.engine_cycles == steps * (step_cycles(shape, 0, 0, 0, False) + 2 + 1 + 3)
    assert p.steps_per_second == pytest.approx(steps * 10e6 / p.cycles)


def test_engine_bound_run_overlaps_all_but_one_raster_byte():
    shape = NeuroCoreShape(16, 16, 4)
    steps = 10
    p = predict_snn(shape, SnnWorkload(steps), baud=10e6, clock_hz=10e6)          # divisor 1: 10 cycles a byte
    engine = step_cycles(shape, 0, 0, 0, False) + 2 + 1 + 3                        # 24 > one byte
    # header: 4 bytes before the first step starts; per step: the engine, then the first raster byte's shift;
    # after the last step: its last raster byte and the 2-byte CRC
    assert p.cycles == (4 + 2 + steps * 2 + 2) * 10 + 4 * 10 + steps * (engine + 10) + 3 * 10


def test_faster_uart_gives_more_steps_per_second_up_to_the_engine():
    shape = PRESETS["256x256"]
    w = SnnWorkload(200, neuron_spikes=10, input_spikes=10, learn=True)
    rates = [predict_snn(shape, w, baud=b).steps_per_second for b in (9600, 115_200, 3_000_000)]
    assert rates[0] < rates[1] < rates[2] < predict_snn(shape, w).engine_steps_per_second


def test_long_runs_split_into_frames_like_the_host_driver():
    shape = PRESETS["256x256"]       # 32 input bytes per step: (512 - 2) // 32 = 15 steps per frame
    one = predict_snn(shape, SnnWorkload(15), baud=115_200)
    two = predict_snn(shape, SnnWorkload(16), baud=115_200)
    assert two.link_cycles - one.link_cycles > (4 + 2 + 2 + 5 + 2) * 10 * 217
