# amaranth: UnusedElaboratable=no
"""WeightDecoder: Vela mlw streams from ``ethosu.mlw_codec.encode`` and real Vela compiles, decoded in Verilator (bulk)
and Amaranth pysim (a few), compared exactly with the input and with ``ethosu.mlw_codec.decode``; corrupted streams
must end with ``error`` or ``done`` within a bounded number of cycles."""
import itertools

import numpy as np
import pytest
from ethosu import mlw_codec

from models.npu import cmdstream as cs
from models.npu.tflite_builder import Conv2D, DepthwiseConv2D, FullyConnected, single_layer
from models.npu.vela import compile_model
from rtl.common.stream import simulate, stream_get, stream_put
from rtl.npu.weight_decoder import DecodeError, WeightDecoder, WeightDecoderConfig
from sim.build import build
from sim.harness import NativeSim

TB = "npu_weight_decoder_tb"
OUTPUTS = ["o_stream__valid", "o_stream__payload", "done", "error", "error_code", "fed"]


# ---------------------------------------------------------------------------------------------------------------
# Stimulus


def _draw(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """int8 weights of one statistical ``kind``; together the kinds reach every coding mode (see test_mode_coverage)."""
    if kind == "full":
        return rng.integers(-128, 128, n)
    if kind == "small":
        return rng.integers(-2, 3, n)
    if kind == "sparse":
        return rng.integers(-128, 128, n) * (rng.random(n) < 0.1)
    if kind == "vsparse":
        return rng.integers(-3, 4, n) * (rng.random(n) < 0.03)
    if kind == "pal":
        return rng.choice([-100, -7, 0, 3, 50, 127], n)
    if kind == "pal20":
        return rng.choice(rng.integers(-128, 128, 20), n)
    if kind == "normal":
        return np.round(rng.normal(0, 10, n)).clip(-128, 127).astype(np.int64)
    if kind == "normal3":
        return np.round(rng.normal(0, 3, n)).clip(-128, 127).astype(np.int64)
    if kind == "laplace":
        return np.round(rng.laplace(0, 20, n)).clip(-128, 127).astype(np.int64)
    if kind == "zero":
        return np.zeros(n, dtype=np.int64)
    if kind == "const":
        return np.full(n, rng.integers(-128, 128))
    if kind == "pos":
        return rng.integers(0, 128, n)
    if kind == "blocks":  # runs of 8 equal values, half of them zero (like padded ublocks)
        return np.repeat(rng.integers(-128, 128, n // 8 + 1) * (rng.random(n // 8 + 1) < 0.5), 8)[:n]
    raise ValueError(kind)


KINDS = ("full", "small", "sparse", "vsparse", "pal", "pal20", "normal", "normal3", "laplace", "zero", "const", "pos",
         "blocks")
MIXES = (("full", "zero"), ("small", "full", "sparse"), ("zero", "full", "zero", "pal"), ("normal3", "sparse"))


def _cases(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    cases = [np.array([v]) for v in (0, 1, -1, 127, -128)]
    for kind in KINDS:
        for n in (2, 7, 40, 300, 1500):
            cases.append(_draw(rng, kind, n))
    for mix in MIXES:  # multi-slice streams: parameter changes, zero runs on/off, NEWPAL mid-stream
        for n in (100, 500):
            cases.append(np.concatenate([_draw(rng, kind, n) for kind in mix]))
    return cases


def _encode(weights) -> bytes:
    return bytes(mlw_codec.encode([int(w) for w in weights]))


def _golden(stream: bytes) -> list[int]:
    return list(mlw_codec.decode(bytearray(stream)))


def _beats(stream: bytes, in_width: int) -> np.ndarray:
    per = in_width // 8
    padded = stream + bytes(-len(stream) % per)
    return np.frombuffer(padded, dtype=f"<u{per}").astype(np.uint64)


def _slice_headers(stream: bytes) -> tuple[int, int, int, bool]:
    """(ZDIV, WDIV, WTRUNC, has palette) of the first slice."""
    bits = int.from_bytes(stream[:8], "little")
    field = lambda lo, n: (bits >> lo) & ((1 << n) - 1)  # noqa: E731
    return field(0, 3), field(18, 3), field(21, 1), field(28, 5) != 0


# ---------------------------------------------------------------------------------------------------------------
# Native harness


class NativeDecoder:
    """The ``npu_weight_decoder_tb`` wrapper in Verilator: load a stream, run until done/error, return the weights."""

    def __init__(self, preset: str):
        self.build = build(TB, preset)
        self.config = self.build.config.decoder
        self.sim = NativeSim(self.build)
        self.memory = self.sim.element_index("top.stream")
        self.depth = self.build.state[self.memory].depth

    def run(self, stream: bytes, *, ready: np.ndarray | None = None, max_cycles: int | None = None):
        """-> (weights, done, error_code, cycles to done/error, input beats accepted, beats offered)."""
        beats = _beats(stream, self.config.in_width)
        assert len(beats) <= self.depth
        if max_cycles is None:   # a bound for any stream: each zero run is at most 8x the stream's bits
            max_cycles = 16 * 8 * len(stream) * 8 + 4000
        self.sim.reset()
        self.sim.load_memory(self.memory, beats)
        chunk = min(max_cycles, 4 * len(stream) * 8 + 2000)   # enough for any valid stream; corrupt ones loop
        if ready is None:
            ready = np.ones(chunk, dtype=np.uint64)
        outs, done_at = [], 0
        while True:   # whole chunks in C until done/error shows up or max_cycles is used up
            part = self.sim.run_stimulus({"length": np.full(chunk, len(beats), dtype=np.uint64),
                                          "o_stream__ready": np.resize(ready, chunk).astype(np.uint64)}, OUTPUTS)
            outs.append(part)
            done_at += chunk
            if (part["done"] | part["error"]).any() or done_at >= max_cycles:
                break
        # a few more cycles: after done/error the rest of the input is drained at one beat per cycle
        outs.append(self.sim.run_stimulus({"length": np.full(len(beats) + 8, len(beats), dtype=np.uint64),
                                           "o_stream__ready": np.zeros(len(beats) + 8, dtype=np.uint64)}, OUTPUTS))
        out = {name: np.concatenate([p[name] for p in outs]) for name in OUTPUTS}
        ready = np.concatenate([np.resize(ready, chunk).astype(np.uint64)] * (len(outs) - 1))
        valid, payload = out["o_stream__valid"][:, 0], out["o_stream__payload"][:, 0]
        ended = np.flatnonzero(out["done"][:, 0] | out["error"][:, 0])
        if len(ended) == 0:
            raise AssertionError(f"decoder still running after {done_at} cycles")
        end = int(ended[0])
        width = self.config.weight_width
        fire = (valid[:end] & ready[:end].astype(np.uint32)) == 1
        if self.config.wide:
            weights = _wide_weights(out["o_stream__payload"][:end][fire], self.config)
        else:
            taken = payload[:end][fire].astype(np.int64)
            weights = (((taken + (1 << (width - 1))) & ((1 << width) - 1)) - (1 << (width - 1))).tolist()
        # once ended, the rest of the input is drained: a producer never hangs
        fed = int(out["fed"][-1, 0])
        return weights, bool(out["done"][end, 0]), DecodeError(int(out["error_code"][end, 0])), end, fed, len(beats)


def _wide_weights(words: np.ndarray, config: WeightDecoderConfig) -> list[int]:
    """The weights of the wide decoder's beats (payload words: ``out_lanes`` weights, ``first``, ``count``), checking
    that every beat is aligned to its place in the stream."""
    lanes, width = config.out_lanes, config.weight_width
    lb = lanes.bit_length() - 1
    weights = []
    for row in words:
        bits = sum(int(w) << (32 * i) for i, w in enumerate(row))
        first = (bits >> (lanes * width)) & (lanes - 1)
        count = (bits >> (lanes * width + lb)) & ((1 << (lb + 1)) - 1)
        assert count >= 1 and first == len(weights) % lanes and first + count <= lanes, (first, count, len(weights))
        for lane in range(first, first + count):
            w = (bits >> (lane * width)) & ((1 << width) - 1)
            weights.append(w - (1 << width) if w >> (width - 1) else w)
    return weights


@pytest.fixture(scope="module")
def byte_dec():
    return NativeDecoder("byte")


@pytest.fixture(scope="module")
def word_dec():
    return NativeDecoder("word")


@pytest.fixture(scope="module")
def wide_dec():
    return NativeDecoder("wide")


# ---------------------------------------------------------------------------------------------------------------
# Construction


def test_config_checks():
    assert WeightDecoderConfig() == WeightDecoderConfig(in_width=8, weight_width=8, rem_lanes=2, fifo_depth=32)
    with pytest.raises(ValueError, match=r"in_width must be 8, 16, 32 or 64, not 12"):
        WeightDecoderConfig(in_width=12)
    with pytest.raises(ValueError, match=r"out_lanes must be 1, 2, 4 or 8, not 3"):
        WeightDecoderConfig(out_lanes=3)
    with pytest.raises(ValueError, match=r"fifo_depth of the wide decoder must be a power of two, not 24"):
        WeightDecoderConfig(out_lanes=4, fifo_depth=24)
    wide = WeightDecoder(config=WeightDecoderConfig(in_width=64, out_lanes=4))
    assert len(wide.o_stream.payload.data) == 4 and wide.o_stream.payload.data[0].shape().signed
    with pytest.raises(ValueError, match=r"weight_width must be 8 or 9, not 7"):
        WeightDecoderConfig(weight_width=7)
    with pytest.raises(ValueError, match=r"rem_lanes must be 1..4, not 0"):
        WeightDecoderConfig(rem_lanes=0)
    with pytest.raises(ValueError, match=r"fifo_depth must be at least 24, not 8"):
        WeightDecoderConfig(fifo_depth=8)
    with pytest.raises(TypeError, match=r"in_width must be an integer, not True"):
        WeightDecoderConfig(in_width=True)
    with pytest.raises(TypeError, match=r"config must be a WeightDecoderConfig, not 8"):
        WeightDecoder(config=8)
    dut = WeightDecoder(config=WeightDecoderConfig(in_width=32, weight_width=9))
    assert len(dut.i_stream.payload.data) == 32 and len(dut.o_stream.payload) == 9
    assert dut.o_stream.payload.shape().signed


def test_mode_coverage():
    """The random cases reach every ZDIV, WDIV, WTRUNC and palette/direct combination class the encoder uses."""
    seen = {_slice_headers(_encode(w)) for w in _cases(1)}
    assert {z for z, _, _, _ in seen} == {0, 1, 2, 3, 6}
    assert {w for _, w, _, _ in seen} == {0, 1, 2, 3, 4, 5, 7}
    assert {t for _, _, t, _ in seen} == {0, 1}
    assert {p for _, _, _, p in seen} == {False, True}
    assert (6, 7, 0, False) in seen and (6, 7, 0, True) in seen    # uncompressed direct (wide) and palette
    assert any(z != 6 and w == 7 for z, w, _, _ in seen)          # zero runs + uncompressed weights


# ---------------------------------------------------------------------------------------------------------------
# Amaranth pysim


def _pysim(dut, stream: bytes, *, ready_every: int = 1, max_cycles: int = 20000):
    out, status = [], {}

    beats = _beats(stream, len(dut.i_stream.payload.data))

    async def feed(ctx):
        for i, beat in enumerate(beats):
            await stream_put(ctx, dut.i_stream, {"data": int(beat), "last": int(i == len(beats) - 1)})

    async def sink(ctx):
        cycle = 0
        while True:
            ctx.set(dut.o_stream.ready, cycle % ready_every == 0)
            _, _, valid, ready, payload, done, error, code = await ctx.tick().sample(
                dut.o_stream.valid, dut.o_stream.ready, dut.o_stream.payload, dut.done, dut.error, dut.error_code)
            cycle += 1
            if valid and ready:
                out.append(payload)
            if done or error:
                status.update(done=done, error=error, code=code)
                return

    simulate(dut, sink, background=(feed,), max_cycles=max_cycles)
    return out, status


@pytest.mark.parametrize("kind,n,ready_every", [("full", 30, 1), ("sparse", 60, 3), ("pal", 25, 2),
                                                ("blocks", 40, 1), ("zero", 20, 1)])
def test_pysim_decodes(kind, n, ready_every):
    weights = _draw(np.random.default_rng(n), kind, n).tolist()
    stream = _encode(weights)
    out, status = _pysim(WeightDecoder(), stream, ready_every=ready_every)
    assert status == {"done": 1, "error": 0, "code": DecodeError.NONE}
    assert out == weights == _golden(stream)


@pytest.mark.parametrize("config", [WeightDecoderConfig(rem_lanes=1), WeightDecoderConfig(in_width=16, rem_lanes=3),
                                    WeightDecoderConfig(in_width=32, rem_lanes=4, fifo_depth=24)])
def test_pysim_other_configs(config):
    rng = np.random.default_rng(config.rem_lanes)
    for kind in ("full", "sparse", "normal3"):
        weights = _draw(rng, kind, 50).tolist()
        stream = _encode(weights)
        out, status = _pysim(WeightDecoder(config=config), stream, ready_every=2)
        assert status["done"] and out == weights, kind


def test_pysim_start_clears_a_stream_in_progress():
    dut = WeightDecoder()
    first, second = _encode([5, -6, 7] * 20), _encode([1, 0, 0, -2])
    out, status = {}, {}

    async def feed(ctx):
        for byte in first[:5]:   # abandon the first stream mid-slice
            await stream_put(ctx, dut.i_stream, {"data": byte, "last": 0})
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for i, byte in enumerate(second):
            await stream_put(ctx, dut.i_stream, {"data": byte, "last": int(i == len(second) - 1)})

    async def bench(ctx):
        out["w"] = [await stream_get(ctx, dut.o_stream) for _ in range(4)]
        for _ in range(10):
            await ctx.tick()
        status.update(done=ctx.get(dut.done), error=ctx.get(dut.error))

    simulate(dut, feed, bench, max_cycles=2000)
    assert out["w"] == [1, 0, 0, -2] and status == {"done": 1, "error": 0}


# ---------------------------------------------------------------------------------------------------------------
# Verilator bulk


@pytest.mark.parametrize("preset", ["byte", "word", "wide"])
def test_native_random_streams(preset, request):
    dec = request.getfixturevalue(f"{preset}_dec")
    rng = np.random.default_rng(7)
    cases = _cases(2 if preset == "byte" else 3)
    for i, weights in enumerate(cases):
        stream = _encode(weights)
        ready = None if i % 2 == 0 else (rng.random(4096) < 0.6).astype(np.uint64)
        out, done, code, cycles, fed, beats = dec.run(stream, ready=ready)
        assert (done, code) == (True, DecodeError.NONE), f"case {i}: {code}"
        assert out == weights.tolist() == _golden(stream), f"case {i}"
        assert fed == beats
    assert len(cases) == 78


def test_native_large_multi_slice_stream(word_dec):
    # > 32768 coded symbols: the encoder splits into slices of at most 32768 (SLICELEN is 15 bits)
    weights = _draw(np.random.default_rng(11), "small", 40000)
    stream = _encode(weights)
    out, done, code, cycles, _, _ = word_dec.run(stream)
    assert done and out == weights.tolist()
    assert cycles < 1.2 * len(weights)


def test_native_sections_after_eos(byte_dec):
    """Slices may follow an end-of-stream marker (a new section, as regor emits every 128 Ki weights)."""
    rng = np.random.default_rng(17)
    parts = [_draw(rng, kind, 200) for kind in ("sparse", "full", "pal")]
    stream = b"".join(_encode(p) for p in parts)
    out, done, code, *_ = byte_dec.run(stream)
    assert done and out == np.concatenate(parts).tolist() == _golden(stream)


def test_nine_bit_weights(word_dec):
    """weight_width=9 decodes the full -255..255 range (pysim); the int8 build reports such a weight as BAD_INDEX."""
    weights = [255, -255, 0, 0, 17, -200, 128] * 3
    stream = _encode(weights)
    out, status = _pysim(WeightDecoder(config=WeightDecoderConfig(weight_width=9)), stream)
    assert status == {"done": 1, "error": 0, "code": DecodeError.NONE}
    assert out == weights == _golden(stream)
    out, done, code, *_ = word_dec.run(stream)
    assert (done, code) == (False, DecodeError.BAD_INDEX) and out == []


def test_native_first_weight_latency(word_dec, byte_dec):
    """First weight ``first_weight_latency(palette size)`` cycles after the first beat is offered."""
    for weights, dec in itertools.product(([5, -3, 7, 1], list(range(-60, 60, 7)), [0] * 10),
                                          (word_dec, byte_dec)):
        stream = _encode(weights)
        size = (int.from_bytes(stream[:5], "little") >> 28) & 31
        palette = size + 1 if size else 0
        beats = _beats(stream, dec.config.in_width)
        dec.sim.reset()
        dec.sim.load_memory(dec.memory, beats)
        out = dec.sim.run_stimulus({"length": np.full(100, len(beats), dtype=np.uint64),
                                    "o_stream__ready": np.ones(100, dtype=np.uint64)}, OUTPUTS)
        first = int(np.flatnonzero(out["o_stream__valid"][:, 0])[0])
        assert first == WeightDecoder(config=dec.config).first_weight_latency(palette), (weights, palette)


def test_native_throughput_dense(word_dec, byte_dec):
    """1 weight per cycle once running (word input); byte input is bounded by 8 input bits per cycle."""
    rng = np.random.default_rng(5)
    for kind in ("full", "normal", "sparse", "blocks", "zero"):
        weights = _draw(rng, kind, 3000)
        stream = _encode(weights)
        _, done, _, cycles, _, _ = word_dec.run(stream)
        assert done and cycles < 1.1 * len(weights) + 100, (kind, cycles)
        _, done, _, cycles, _, _ = byte_dec.run(stream)
        assert done and cycles < max(1.1 * len(weights), 1.1 * len(stream)) + 100, (kind, cycles)


def test_native_wide_throughput(wide_dec):
    """The wide decoder (64-bit input, 8 lanes): at least 2 weights per cycle on dense and sparse streams (first beat
    to done, headers included), and long zero runs fill whole 8-lane beats (over 7 weights per cycle)."""
    rng = np.random.default_rng(5)
    for kind in ("full", "normal", "laplace", "sparse", "blocks", "pal20"):
        weights = _draw(rng, kind, 3000)
        stream = _encode(weights)
        out, done, _, cycles, _, _ = wide_dec.run(stream)
        assert done and out == weights.tolist(), kind
        assert len(weights) / cycles >= 2.0, (kind, cycles)
    weights = np.zeros(8000, dtype=np.int64)
    weights[[0, 4000, 7999]] = 5
    out, done, _, cycles, _, _ = wide_dec.run(_encode(weights))
    assert done and out == weights.tolist() and cycles < 8000 / 7, cycles


def test_native_wide_large_multi_slice_stream(wide_dec):
    weights = _draw(np.random.default_rng(11), "small", 40000)
    stream = _encode(weights)
    out, done, code, cycles, _, _ = wide_dec.run(stream)
    assert done and out == weights.tolist() == _golden(stream)
    assert cycles < len(weights) / 2


def test_native_wide_error_codes(wide_dec):
    stream = _encode(_draw(np.random.default_rng(3), "sparse", 200))
    for corrupt, expected in [
        (_set_bits(stream, 0, 3, 4), DecodeError.BAD_ZDIV),
        (_set_bits(stream, 18, 3, 6), DecodeError.BAD_WDIV),
        (_set_bits(stream, 22, 1, 0), DecodeError.NO_PALETTE),
        (stream[:len(stream) // 2], DecodeError.TRUNCATED),
        (stream[:-16], DecodeError.TRUNCATED),
    ]:
        out, done, code, cycles, fed, beats = wide_dec.run(corrupt, max_cycles=20000)
        assert (done, code) == (False, expected)
        assert fed == beats
    out, done, code, *_ = wide_dec.run(_encode([100, -100, 0, 3] * 5))
    assert done and out == [100, -100, 0, 3] * 5
    out, done, code, *_ = wide_dec.run(b"\xff" * 16)
    assert (out, done, code) == ([], True, DecodeError.NONE)


# ---------------------------------------------------------------------------------------------------------------
# Malformed streams


def _set_bits(stream: bytes, lo: int, n: int, value: int) -> bytes:
    bits = int.from_bytes(stream, "little")
    bits = (bits & ~(((1 << n) - 1) << lo)) | (value << lo)
    return bits.to_bytes(len(stream), "little")


def test_native_error_codes(byte_dec):
    stream = _encode(_draw(np.random.default_rng(3), "sparse", 200))
    assert _slice_headers(stream)[0] != 6
    for corrupt, expected in [
        (_set_bits(stream, 0, 3, 4), DecodeError.BAD_ZDIV),
        (_set_bits(stream, 0, 3, 5), DecodeError.BAD_ZDIV),
        (_set_bits(stream, 18, 3, 6), DecodeError.BAD_WDIV),
        (_set_bits(stream, 22, 1, 0), DecodeError.NO_PALETTE),
        (stream[:len(stream) // 2], DecodeError.TRUNCATED),
        (stream[:2], DecodeError.TRUNCATED),
        (stream[:-16], DecodeError.TRUNCATED),   # everything but the EOS/padding beat
    ]:
        out, done, code, cycles, fed, beats = byte_dec.run(corrupt, max_cycles=20000)
        assert (done, code) == (False, expected)
        assert fed == beats                      # the rest of the input was drained
    # an EOS alone (all 0xFF) is an empty but well-formed stream
    out, done, code, *_ = byte_dec.run(b"\xff" * 16)
    assert (out, done, code) == ([], True, DecodeError.NONE)


@pytest.mark.parametrize("preset", ["byte", "word", "wide"])
def test_native_corrupted_streams_terminate(preset, request):
    """Random byte flips and truncations end with error or done, never a hang (the run is bounded)."""
    dec = request.getfixturevalue(f"{preset}_dec")
    rng = np.random.default_rng(13)
    cases = _cases(4)
    outcomes = {"done": 0, "error": 0}
    for trial in range(300):
        weights = cases[int(rng.integers(len(cases)))]
        stream = bytearray(_encode(weights))
        for _ in range(int(rng.integers(1, 4))):
            stream[int(rng.integers(len(stream)))] ^= int(rng.integers(1, 256))
        if trial % 3 == 0:
            stream = stream[:int(rng.integers(1, len(stream) + 1))]
        _, done, code, cycles, fed, beats = dec.run(bytes(stream))   # bounded by 16*8*bits + 4000 cycles
        assert done or code != DecodeError.NONE
        assert fed == beats
        outcomes["done" if done else "error"] += 1
    assert outcomes["error"] > 100


# ---------------------------------------------------------------------------------------------------------------
# Real Vela streams


def _vela_streams(art) -> list[bytes]:
    """Each kernel op's weight stream (WEIGHT_BASE/LENGTH in WEIGHT_REGION, after replaying the DMAs before it)."""
    cmds = art.commands()
    mem = {art.weight_region: bytearray(art.weight_data), art.scratch_region: bytearray(art.scratch_size)}
    streams = []
    for k in cs.kicks(cmds):
        if k.name == "NPU_OP_DMA_START":
            src_r, dst_r = k.reg("DMA0_SRC_REGION"), k.reg("DMA0_DST_REGION")
            src, dst, n = k.reg("DMA0_SRC"), k.reg("DMA0_DST"), k.reg("DMA0_LEN")
            if not (dst_r >> 8) & 1:
                mem[dst_r & 7][dst:dst + n] = mem[src_r & 7][src:src + n]
        elif k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE"):
            base, length = k.reg("WEIGHT_BASE"), k.reg("WEIGHT_LENGTH")
            streams.append(bytes(mem[k.reg("WEIGHT_REGION")][base:base + length]))
    return streams


REAL_MODELS = {
    "conv3x3": lambda: single_layer(Conv2D(16, (3, 3), (1, 1), "SAME", "RELU"), (8, 8, 3), seed=1),
    "conv3x3_16to24": lambda: single_layer(Conv2D(24, (3, 3), (1, 1), "SAME"), (8, 8, 16), seed=2),
    "depthwise": lambda: single_layer(DepthwiseConv2D((3, 3), (1, 1), "SAME"), (10, 10, 12), seed=6),
    "fc": lambda: single_layer(FullyConnected(10), (64,), seed=8),
}


@pytest.fixture(scope="module")
def vela_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vela_cache")


@pytest.mark.parametrize("accelerator", ["ethos-u55-32", "ethos-u55-128"])
def test_native_real_vela_streams(accelerator, vela_cache, byte_dec, word_dec, wide_dec):
    """WEIGHT_BASE..+WEIGHT_LENGTH of every op is fed unmodified (0xFF padding included) and decodes exactly."""
    total = {"weights": 0, "cycles_word": 0, "cycles_byte": 0, "cycles_wide": 0}
    for name, make in REAL_MODELS.items():
        art = compile_model(make(), accelerator, cache_dir=vela_cache)
        streams = _vela_streams(art)
        assert streams, name
        for stream in streams:
            golden = _golden(stream)
            for dec, key in ((word_dec, "cycles_word"), (byte_dec, "cycles_byte"), (wide_dec, "cycles_wide")):
                out, done, code, cycles, fed, beats = dec.run(stream)
                assert (done, code) == (True, DecodeError.NONE), name
                assert out == golden, name
                total[key] += cycles
            total["weights"] += len(golden)
    # decode rate on real layers (weights per cycle, first beat to done, including headers and drains)
    assert total["weights"] / total["cycles_word"] > 0.95, total
    assert total["weights"] / total["cycles_byte"] > 0.95, total
    assert total["weights"] / total["cycles_wide"] > 2.0, total


@pytest.mark.parametrize("accelerator,lanes", [("ethos-u55-128", 8), ("ethos-u55-32", 4)])
def test_npu_decoder_argmax_nine_bit_stream(accelerator, lanes, vela_cache, wide_dec):
    """Vela's ARG_MAX depthwise (uint8 weight 128 per channel: the 9-bit ``weight - zero point`` range) decodes
    exactly with the NPU's decoder configuration (64-bit input, ``WEIGHT_BITS`` = 9, one lane per OFM ublock
    channel; pysim); the int8 build of the same wide decoder reports BAD_INDEX on it, which is what the NPU did."""
    from models.npu.op_matrix import rows_by_name
    from rtl.npu.kernel_op import WEIGHT_BITS

    art = compile_model(rows_by_name()["arg_max_int8_c"].builder(0), accelerator, cache_dir=vela_cache)
    (stream,) = _vela_streams(art)
    golden = _golden(stream)
    assert 128 in golden and max(golden) == 128
    config = WeightDecoderConfig(in_width=64, weight_width=WEIGHT_BITS, out_lanes=lanes)
    beats, status = _pysim(WeightDecoder(config=config), stream)
    assert status == {"done": 1, "error": 0, "code": DecodeError.NONE}
    words = np.array([[v >> (32 * i) & 0xFFFFFFFF for i in range(4)] for v in (b.as_value().value for b in beats)])
    assert _wide_weights(words, config) == golden
    out, done, code, *_ = wide_dec.run(stream)
    assert (done, code) == (False, DecodeError.BAD_INDEX)
