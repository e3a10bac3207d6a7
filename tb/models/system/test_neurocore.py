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


def test_uart_time_follows_the_protocol():
    shape = NeuroCoreShape(16, 16, 4)
    steps, baud, clock = 10, 1_000_000, 10e6          # divisor 10: 100 cycles per byte
    p = predict_snn(shape, SnnWorkload(steps), baud=baud, clock_hz=clock)
    byte = 100
    frame = (4 + 2 + steps * 2 + 2) * byte + (5 + 2) * byte     # RUN with 2 input bytes per step; response framing
    per_step = step_cycles(shape, 0, 0, 0, False) + 2 + 1 + 3 + 2 * byte   # engine + input load + 2 raster bytes
    assert p.cycles == frame + steps * per_step
    assert p.steps_per_second == pytest.approx(steps * clock / p.cycles)
    assert p.engine_cycles == steps * (per_step - 2 * byte)


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
