"""The NeuroCore system model against the Verilated ``neurocore_uart`` design: one RUN frame, cycles from the end of
the command frame to the last response byte on the tx pin, predicted vs measured."""
import numpy as np

from drivers.neurocore import NeuroCoreHost
from drivers.transport import SimTransport
from models.system.neurocore import NeuroCoreShape, SnnWorkload, predict_snn
from rtl.neurocore.protocol import Op, encode_frame
from rtl.neurocore.uart_top import PRESETS


def test_run_frame_cycles_match_the_rtl():
    cfg = PRESETS["16x16-sim"]
    c = cfg.core
    t = SimTransport(cfg)
    host = NeuroCoreHost(t)
    rng = np.random.default_rng(5)
    host.set_weights(rng.integers(-20, 90, size=(c.n_sources, c.n_neurons)))
    host.set_neuron_params(theta=900, bias=15, d_v=300, d_i=900)
    steps = 40
    inputs = rng.random((steps, c.n_inputs)) < 0.3
    payload = steps.to_bytes(2, "little") + np.packbits(inputs, axis=1, bitorder="little").tobytes()
    t.write(encode_frame(Op.RUN, payload))
    start, got = t.cycles, b""
    want = 5 + steps * (c.n_neurons // 8) + 2
    while len(got) < want:
        t.run_idle(cfg.divisor)
        got += t.pending()
        assert t.cycles - start < 10**6
    measured = t.cycles - start
    raster = np.unpackbits(np.frombuffer(got[5:-2], dtype=np.uint8).reshape(steps, -1), axis=1,
                           bitorder="little")[:, :c.n_neurons]
    assert raster.sum() > steps, "the network must be active for the check to mean anything"
    shape = NeuroCoreShape(c.n_neurons, c.n_inputs, c.lanes)
    w = SnnWorkload(steps, neuron_spikes=raster.sum() / steps, input_spikes=inputs.sum() / steps)
    clock = 25e6
    p = predict_snn(shape, w, baud=clock / cfg.divisor, clock_hz=clock)
    frame_in = (4 + 2 + steps * (c.n_inputs // 8) + 2) * 10 * cfg.divisor
    predicted = p.cycles - frame_in
    assert abs(predicted - measured) / measured < 0.03, (predicted, measured)
    t.close()
