# amaranth: UnusedElaboratable=no
"""NeuroCoreUart on the native harness: protocol round trips and a fuzz of corrupted frames and line noise.

Every valid command must be ACKed and take effect; every corrupted frame must be NAKed (or ignored) and change
nothing; the core must still run bit-exactly against the golden model afterwards.
"""
import numpy as np
import pytest

from drivers.neurocore import NakError, NeuroCoreHost, decode_words, weight_words
from drivers.transport import SimTransport
from models.snn.golden import GoldenCore
from models.snn.params import NeuronParams, StdpParams, SynapseParams
from rtl.neurocore.config import GlobalReg, NeuronField, Region
from rtl.neurocore.protocol import (
    ID_BYTES,
    VERSION,
    Op,
    Status,
    crc16,
    decode_frames,
    encode_frame,
    op_info,
    region_size,
    word_bytes,
)
from rtl.neurocore.uart_top import PRESETS, NeuroCoreUart, NeuroCoreUartConfig

CFG = PRESETS["16x16-sim"]
CORE = CFG.core
GLOBAL_BITS = {GlobalReg.W_EXP: 3, GlobalReg.D_X: 13, GlobalReg.D_Y: 13, GlobalReg.A_PRE: CORE.trace_bits,
               GlobalReg.A_POST: CORE.trace_bits, GlobalReg.A_PLUS: 8, GlobalReg.A_MINUS: 8, GlobalReg.S_PLUS: 4,
               GlobalReg.S_MINUS: 4, GlobalReg.W_MIN: 8, GlobalReg.W_MAX: 8, GlobalReg.TRACE_MODE: 1,
               GlobalReg.RESET_MODE: 1, GlobalReg.LEARN: 1, GlobalReg.X_TAR: CORE.trace_bits, GlobalReg.W_DECAY: 4,
               GlobalReg.THETA_PLUS: 16, GlobalReg.D_THETA: 13, GlobalReg.THETA_PERIOD: 4, GlobalReg.TICK: 15}
# the parameters and the adaptive threshold: host-written, untouched while the core is idle
PARAM_FIELDS = [NeuronField.THETA, NeuronField.V_RESET, NeuronField.V_REST, NeuronField.BIAS, NeuronField.D_V,
                NeuronField.D_I, NeuronField.T_REF, NeuronField.A]


def test_config_checks():
    with pytest.raises(TypeError, match="config must be a NeuroCoreUartConfig"):
        NeuroCoreUart(CORE)
    with pytest.raises(ValueError, match="divisor must be at least 2"):
        NeuroCoreUartConfig(CORE, divisor=1)
    with pytest.raises(ValueError, match="must exceed one byte time"):
        NeuroCoreUartConfig(CORE, divisor=100, timeout_cycles=1000)
    assert crc16(encode_frame(Op.ID)[1:]) == 0
    assert PRESETS["16x16"].divisor == 217   # 115200 baud at 25 MHz


class Model:
    """What the core's host-visible memories should hold after the valid commands so far."""

    def __init__(self):
        nb = CORE.neuron_bits
        self.weights = [0] * region_size(CORE, Region.WEIGHT)
        self.neuron = {(NeuronField.THETA << nb) | i: 1 << 10 for i in range(CORE.n_neurons)}   # reset values
        self.globals = {GlobalReg.D_X: 256, GlobalReg.D_Y: 256, GlobalReg.A_PRE: 128, GlobalReg.A_POST: 128,
                        GlobalReg.S_PLUS: 8, GlobalReg.S_MINUS: 8, GlobalReg.W_MIN: 0x80, GlobalReg.W_MAX: 0x7F}
        self.trace = [0] * CORE.n_sources

    def neuron_value(self, index):
        return self.neuron.get(index, 0)


def random_valid(rng, model: Model):
    """(frame, expected response payload or None for 'just ACK', update of the model to apply on ACK)."""
    nb = CORE.neuron_bits
    choice = rng.integers(9)
    if choice == 0:
        start = int(rng.integers(0, len(model.weights) - 1))
        n = int(rng.integers(1, min(40, len(model.weights) - start) + 1))
        words = [int(rng.integers(0, 1 << 36)) for _ in range(n)]
        payload = start.to_bytes(2, "little") + b"".join(w.to_bytes(5, "little") for w in words)

        def apply():
            model.weights[start:start + n] = words
        return encode_frame(Op.WR_WEIGHT, payload), None, apply
    if choice == 1:
        field = PARAM_FIELDS[rng.integers(len(PARAM_FIELDS))]
        first = int(rng.integers(0, 16))
        n = int(rng.integers(1, 17 - first))
        bits = CORE.field_width(field)[0]
        vals = [int(rng.integers(0, 1 << 32)) for _ in range(n)]
        start = (field << nb) | first
        payload = start.to_bytes(2, "little") + b"".join(v.to_bytes(4, "little") for v in vals)

        def apply():
            for i, v in enumerate(vals):
                model.neuron[start + i] = v & ((1 << bits) - 1)
        return encode_frame(Op.WR_NEURON, payload), None, apply
    if choice == 2:
        reg = GlobalReg(int(rng.integers(0, len(GlobalReg))))
        value = int(rng.integers(0, 1 << 16))
        payload = int(reg).to_bytes(2, "little") + value.to_bytes(4, "little")

        def apply():
            model.globals[reg] = value & ((1 << GLOBAL_BITS[reg]) - 1)
        return encode_frame(Op.WR_GLOBAL, payload), None, apply
    if choice == 3:
        start = int(rng.integers(0, CORE.n_sources))
        n = int(rng.integers(1, CORE.n_sources - start + 1))
        vals = [int(rng.integers(0, 256)) for _ in range(n)]
        payload = start.to_bytes(2, "little") + b"".join(v.to_bytes(1, "little") for v in vals)

        def apply():
            model.trace[start:start + n] = vals
        return encode_frame(Op.WR_TRACE, payload), None, apply
    if choice == 4:
        start = int(rng.integers(0, len(model.weights)))
        n = int(rng.integers(0, min(30, len(model.weights) - start) + 1))
        expected = b"".join(w.to_bytes(5, "little") for w in model.weights[start:start + n])
        return encode_frame(Op.RD_WEIGHT, start.to_bytes(2, "little") + n.to_bytes(2, "little")), expected, None
    if choice == 5:
        idx = [int((PARAM_FIELDS[rng.integers(len(PARAM_FIELDS))] << nb) | rng.integers(0, 16))
               for _ in range(rng.integers(1, 12))]
        expected = b"".join(model.neuron_value(i).to_bytes(4, "little") for i in idx)
        return encode_frame(Op.GATHER_NEURON, b"".join(i.to_bytes(2, "little") for i in idx)), expected, None
    if choice == 6:
        expected = b"".join(model.globals.get(GlobalReg(r), 0).to_bytes(4, "little") for r in range(len(GlobalReg)))
        return encode_frame(Op.RD_GLOBAL, (0).to_bytes(2, "little") + len(GlobalReg).to_bytes(2, "little")), \
            expected, None
    if choice == 7:
        learn = int(rng.integers(0, 2))

        def apply():
            model.globals[GlobalReg.LEARN] = learn
        return encode_frame(Op.LEARN, bytes([learn])), None, apply
    return encode_frame(Op.STATUS), bytes(12), None   # idle core: no overflow, no steps run


def corrupted(rng, frame: bytes):
    """(bytes, the NAK code it must get or None for 'any number of NAKs, no ACK')."""
    kind = rng.integers(8)
    if kind == 7:   # a break: the line held low for ~3 bytes (the receiver's frame error), then half a frame
        return b"BREAK" + frame[:len(frame) // 2], None
    if kind == 0:   # one flipped bit anywhere (sync, header, payload or checksum)
        pos = int(rng.integers(0, len(frame)))
        bad = bytearray(frame)
        bad[pos] ^= 1 << int(rng.integers(8))
        return bytes(bad), (None if pos in (0, 2, 3) else Status.NAK_CRC if pos > 1 else None)
    if kind == 1:   # truncated: the core must time out
        return frame[:int(rng.integers(1, len(frame)))], Status.NAK_TIMEOUT
    if kind == 2:   # line noise
        return rng.integers(0, 256, int(rng.integers(1, 40)), dtype=np.uint8).tobytes(), None
    if kind == 3:   # unknown opcode with a good checksum
        ops = sorted(set(range(128)) - {int(o) for o in Op})
        return encode_frame(int(rng.choice(ops)), b"\x00\x00"), Status.NAK_OPCODE
    if kind == 4:   # longer than the buffer
        return encode_frame(Op.WR_WEIGHT, bytes(CFG.max_payload + 1)), Status.NAK_LENGTH
    if kind == 5:   # not a whole number of words
        return encode_frame(Op.WR_WEIGHT, bytes(2 + 5 * int(rng.integers(0, 4)) + int(rng.integers(1, 5)))), \
            Status.NAK_LENGTH
    start = region_size(CORE, Region.WEIGHT) - int(rng.integers(0, 3))   # runs off the end of the region
    return encode_frame(Op.WR_WEIGHT, start.to_bytes(2, "little") + bytes(5 * 3)), Status.NAK_RANGE


def exchange(t: SimTransport, data: bytes, idle: int):
    if data.startswith(b"BREAK"):
        t.drive(np.zeros(30 * CFG.divisor, dtype=np.uint8))
        data = data[5:]
    t.write(data)
    t.run_idle(idle)
    frames, rest = decode_frames(t.pending())
    assert rest == b"", "a truncated response"
    return frames


@pytest.fixture(scope="module")
def transport():
    t = SimTransport(CFG)
    yield t
    t.close()


def test_id_and_status(transport):
    frames = exchange(transport, encode_frame(Op.ID), 800)
    assert len(frames) == 1
    op, status, payload = frames[0]
    assert (op, status, len(payload)) == (Op.ID, Status.ACK, ID_BYTES)
    assert payload[0] == VERSION and int.from_bytes(payload[1:3], "little") == 16 and payload[5] == 4
    info = op_info(CORE)
    assert info[Op.RD_WEIGHT].wb == word_bytes(CORE, Region.WEIGHT) == 5


def check_state(t: SimTransport, model: Model):
    """Read back every host-written memory through the protocol and compare with the model."""
    core = NeuroCoreHost(t, timeout=0.01)
    words = core._read(Op.RD_WEIGHT, Region.WEIGHT, 0, len(model.weights))
    assert words == model.weights
    nb = CORE.neuron_bits
    for f in PARAM_FIELDS:
        got = core._read(Op.RD_NEURON, Region.NEURON, f << nb, 16)
        assert got == [model.neuron_value((f << nb) | i) for i in range(16)], f"neuron field {f.name}"
    got = core._read(Op.RD_GLOBAL, Region.GLOBAL, 0, len(GlobalReg))
    assert got == [model.globals.get(GlobalReg(r), 0) for r in range(len(GlobalReg))]
    assert core._read(Op.RD_TRACE, Region.TRACE_X, 0, CORE.n_sources) == model.trace


def test_fuzz(transport):
    """300 valid commands interleaved with 300 corrupted frames / noise bursts; then the core still works."""
    t = transport
    rng = np.random.default_rng(2026)
    model = Model()
    quiet = 2 * CFG.timeout_cycles   # after garbage: long enough for any stalled frame to time out
    naks = {}
    for it in range(300):
        frame, expected, apply = random_valid(rng, model)
        frames = exchange(t, frame, 400 + (len(expected or b"") + 20) * 10 * CFG.divisor)
        assert len(frames) == 1, f"iteration {it}: {frames}"
        op, status, payload = frames[0]
        assert (op, status) == (frame[1], Status.ACK), f"iteration {it}: {frames}"
        if expected is not None:
            assert payload == expected, f"iteration {it}: read back {payload.hex()}"
        if apply is not None:
            apply()
        # then something bad, built from another valid frame
        bad_frame, _, _ = random_valid(rng, model)
        data, code = corrupted(rng, bad_frame)
        frames = exchange(t, data, quiet)
        assert all(s != Status.ACK for _, s, _ in frames), f"iteration {it}: garbage was ACKed: {frames}"
        if code is not None:
            assert [s for _, s, _ in frames] == [code], f"iteration {it}: expected {code!r}, got {frames}"
        for _, s, _ in frames:
            naks[Status(s).name] = naks.get(Status(s).name, 0) + 1
        if it % 50 == 49:
            check_state(t, model)
    check_state(t, model)
    print(f"NAKs during the fuzz: {naks}; simulated {t.cycles} cycles")
    assert {"NAK_CRC", "NAK_LENGTH", "NAK_OPCODE", "NAK_TIMEOUT", "NAK_RANGE"} <= set(naks)

    # the core still works: a fresh network through the host API, 40 steps with STDP, bit-exact
    core = NeuroCoreHost(t)
    golden = GoldenCore(CORE.core_config)
    rng = np.random.default_rng(5)
    w = rng.integers(-60, 100, size=(CORE.n_sources, CORE.n_neurons))
    mask = rng.random(w.shape) < 0.7
    params = NeuronParams(theta=rng.integers(600, 3000, 16), v_reset=rng.integers(-400, 100, 16), d_v=300,
                          d_i=rng.integers(200, 4097, 16), t_ref=1, bias=20)
    stdp = StdpParams(d_x=300, d_y=500, a_pre=100, a_post=90, a_plus=60, a_minus=30, s_plus=6, s_minus=7,
                      w_min=-50, w_max=110)
    # the fuzz wrote random adaptive thresholds and a random tick: back to the golden model's power-on values
    core._write(Op.WR_NEURON, Region.NEURON, NeuronField.A << CORE.neuron_bits, [0] * CORE.n_neurons)
    core.write_globals({GlobalReg.TICK: 0})
    for dev in (core, golden):
        dev.set_weights(w)
        dev.set_plastic(mask)
        dev.set_neuron_params(params)
        dev.set_synapse_params(SynapseParams(w_exp=3))
        dev.enable_stdp(stdp)
        dev.reset_state()
    inputs = rng.random((40, CORE.n_inputs)) < 0.4
    np.testing.assert_array_equal(core.run(40, inputs), golden.run(40, inputs))
    np.testing.assert_array_equal(core.weights(), golden.weights())
    np.testing.assert_array_equal(core.membrane(), golden.membrane())


def test_host_errors(transport):
    core = NeuroCoreHost(transport)
    with pytest.raises(NakError, match="NAK_RANGE"):
        core.command(Op.RD_WEIGHT, region_size(CORE, Region.WEIGHT).to_bytes(2, "little") + b"\x01\x00")
    with pytest.raises(NakError, match="NAK_LENGTH"):
        core.command(Op.RUN, b"\x02\x00\x00\x00")   # two steps but one step's inputs
    with pytest.raises(ValueError, match="plasticity mask is all zero"):
        core.set_plastic(np.zeros((CORE.n_sources, CORE.n_neurons), dtype=bool))
        core.enable_stdp(StdpParams(a_plus=1))
    w, mask = decode_words(CORE, weight_words(CORE, np.full((32, 16), -3), np.ones((32, 16))))
    assert (w == -3).all() and mask.all()
