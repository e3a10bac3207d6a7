"""The PulseDL-II CNN accelerator: bit-exact with LiteRT's reference kernels on random pulse CNNs of the contract's
op subset (int8 and 16x8), directly (fixture ``pulsedl_nn``) and through the SoC with its firmware; illegal
descriptors stop the sequencer with their error code; the bus windows and the ADC capture do what the map says.

Expected outputs always come from LiteRT (``OpResolverType.BUILTIN_REF``), never from the compiler or the RTL."""
import numpy as np
import pytest

from drivers.pulsedl_compile import OP_CONV, OP_END, OP_MAXPOOL, CompileError, Layer, compile_tflite, execute
from drivers.pulsedl_nets import pulse_windows, random_pulse_cnn
from models.npu.reference import ReferenceModel
from rtl.pulsedl.accel import CTRL_ARM, CTRL_START, CTRL_THRESHOLD
from rtl.pulsedl.config import MAX_LAYERS, PulseDlConfig


def litert(net, windows):
    ref = ReferenceModel(net.data)
    return np.stack([ref.run_all(x.reshape(1, 1, -1, 1))[0].ravel() for x in windows])


@pytest.fixture(scope="module")
def nn():
    from drivers.pulsedl import NnRunner

    return NnRunner("16k")


@pytest.mark.parametrize("precision", ["int8", "16x8"])
def test_compiled_images_model_matches_litert(precision):
    """The compiler's requantisation parameters, checked without the RTL (execute: the sequencer's loops)."""
    for seed in range(12):
        net = random_pulse_cnn(seed, precision)
        windows = net.quantize(pulse_windows(4, seed=100 + seed))
        compiled = compile_tflite(net.data)
        got = np.stack([execute(compiled, x) for x in windows])
        np.testing.assert_array_equal(got, litert(net, windows), err_msg=f"seed {seed} {compiled.op_names}")


@pytest.mark.parametrize("precision", ["int8", "16x8"])
def test_accelerator_bit_exact_vs_litert(nn, precision):
    ops, features = set(), set()
    for seed in range(10):
        net = random_pulse_cnn(seed, precision, small=seed % 2 == 0)
        windows = net.quantize(pulse_windows(2, seed=200 + seed))
        compiled = compile_tflite(net.data, nn.config)
        nn.load(compiled)
        got = np.stack([nn.infer(x)[0] for x in windows])
        np.testing.assert_array_equal(got, litert(net, windows), err_msg=f"seed {seed} {compiled.op_names}")
        ops |= set(compiled.op_names)
        for lay in compiled.layers:
            features |= {name for name, on in (("padding", lay.pad > 0), ("stride 2", lay.stride > 1),
                                               ("relu", lay.act_min > -(1 << (15 if precision == "16x8" else 7))),
                                               ("channels > PEs", lay.out_c > nn.config.accel_pes)) if on}
    assert ops == {"CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED"}
    # an int8 ReLU usually clamps nothing (its zero point is -128), a symmetric int16 one always does
    assert features == {"padding", "stride 2", "channels > PEs"} | ({"relu"} if precision == "16x8" else set())


def test_accelerator_cycles_follow_the_schedule(nn):
    """One 1x1 convolution 64 x 1 -> 64 x 4 then END: busy cycles counted by hand from rtl/pulsedl/nn_sequencer.py.

    Per descriptor LOAD x 8, SIZES, CHECK. Per output position: FILL (one operand) and its exit; group 0: MAC
    (ceil(1 / 4) = 1 row), SETTLE, HANDOFF; group 1: MAC, SETTLE (the drain's 2 outputs, one per cycle, started at
    group 0's HANDOFF, are staged by then), HANDOFF. The drain of group 1 runs during the next position's FILL.
    LAYER_END waits for the last drain: 2 outputs staged, the second written, the pipe empty: 4 cycles."""
    net = random_pulse_cnn(0, "int8", layers=[dict(kind="conv", filters=4, k=1, stride=1, padding="VALID",
                                                   activation="NONE"), dict(kind="fc", units=2, activation="NONE")])
    compiled = compile_tflite(net.data, nn.config)
    compiled.layers = compiled.layers[:1]                       # run the convolution alone
    compiled.descriptors = np.concatenate([compiled.descriptors[:8], np.zeros(8, np.uint32)])
    nn.load(compiled)
    _, cycles = nn.infer(net.quantize(pulse_windows(1))[0])
    load = 8 + 1 + 1
    per_position = 2 + (1 + 1 + 1) + (1 + 1 + 1)
    assert nn.config.accel_pes == 2 and nn.config.accel_aus == 4
    assert cycles == 2 * load + 64 * per_position + 4


def conv_layer(**fields) -> Layer:
    """A legal 1x1 convolution 4 x 1 -> 4 x 1 (bank 0 -> 1), with ``fields`` changed."""
    base = dict(op=OP_CONV, single_rounding=False, src=0, dst=1, in_w=4, in_c=1, out_w=4, out_c=1)
    return Layer(**{**base, **fields})


def write_descriptors(nn, layers: list[Layer], end: bool = True):
    words = [w for lay in layers for w in lay.words()] + ([OP_END] + [0] * 7 if end else [])
    for i, word in enumerate(words):
        nn.bus(0x1000 + 4 * i, word)


ILLEGAL = {
    "unknown op": ([conv_layer(op=5)], 1),
    "zero channels": ([conv_layer(in_c=0)], 2),
    "pool window 9": ([conv_layer(op=OP_MAXPOOL, k=9)], 2),
    "input beyond the bank": ([conv_layer(in_w=1025)], 3),
    "output beyond the bank": ([conv_layer(out_w=1025)], 4),
    "window beyond the line buffer": ([conv_layer(in_w=16, in_c=64, k=9)], 5),
    "weights beyond the kernel registers": ([conv_layer(row_base=4096)], 6),
    "channels beyond the quantisation table": ([conv_layer(out_c=2, quant_base=255)], 7),
    "source is destination": ([conv_layer(dst=0)], 8),
    "bad second layer": ([conv_layer(), conv_layer(src=1, dst=0, op=9)], 1),
}


@pytest.mark.parametrize("case", ILLEGAL)
def test_illegal_descriptor_sets_error_and_halts(nn, case):
    layers, code = ILLEGAL[case]
    write_descriptors(nn, layers)
    status = nn.start(max_cycles=20_000)                       # raises if the sequencer is still busy
    assert status & 0b1001 == 0b1000                           # error, not busy
    assert (status >> 8 & 0xFF, status >> 16 & 0xFF) == (code, len(layers) - 1)
    write_descriptors(nn, [conv_layer()])                       # the next start runs normally
    assert nn.start(max_cycles=20_000) & 0b1100 == 0b0100


def test_table_without_end_is_an_error(nn):
    layers = [conv_layer(op=OP_MAXPOOL, k=1, src=i % 2, dst=1 - i % 2) for i in range(MAX_LAYERS)]
    write_descriptors(nn, layers, end=False)
    status = nn.start(max_cycles=20_000)
    assert (status >> 3 & 1, status >> 8 & 0xFF, status >> 16 & 0xFF) == (1, 9, MAX_LAYERS)


def test_images_written_over_the_bus_run_like_preloaded_ones(nn):
    """Descriptors, quantisation table, kernel registers and the input written through the bus windows."""
    net = random_pulse_cnn(5, "16x8", small=True)
    compiled = compile_tflite(net.data, nn.config)
    window = net.quantize(pulse_windows(1, seed=9))[0]
    nn.load(compiled)
    want, cycles = nn.infer(window)
    for name in ("top.descriptors.storage", "top.pe0.kernels", "top.pe1.kernels", "top.act0.storage"):
        element = nn.sim.element_index(name)
        nn.sim.load_memory(element, np.zeros(nn.sim.build.state[element].depth, np.uint64))
    write_descriptors(nn, compiled.layers)
    for i, word in enumerate(compiled.quant):
        nn.bus(0x2000 + 4 * i, int(word))
    row_bits = nn.config.accel_kernel_rows.bit_length() - 1
    for pe, image in enumerate(compiled.kernels):
        used = int(np.flatnonzero(image).max()) + 1
        for row in range(used):
            nn.bus(0x8000 + 4 * ((pe << row_bits) + row), int(image[row]))
    for i, x in enumerate(window):
        nn.bus(0x4000 + 4 * i, int(x) & 0xFFFF)
    assert [nn.bus(0x4000 + 4 * i) for i in range(3)] == [int(x) & 0xFFFF_FFFF for x in window[:3]]
    before = nn.bus(8)
    assert nn.start() & 0b1100 == 0b0100
    bank = 0x4000 + 0x1000 * compiled.output_bank
    got = [nn.bus(bank + 4 * i) for i in range(compiled.output_count)]
    assert got == [int(v) & 0xFFFF_FFFF for v in want]          # bank reads are sign-extended
    assert nn.bus(8) - before == cycles


def test_adc_capture_threshold_trigger_and_overflow(nn):
    sim = nn.sim
    nn.bus(0, 16)                                               # CLEAR
    nn.bus(0x10, 5)                                             # CAPTURE_LEN
    nn.bus(0x0C, 100)                                           # THRESHOLD
    nn.bus(0, CTRL_ARM | CTRL_THRESHOLD)
    assert nn.status() & 2                                      # capturing
    samples = np.asarray([5, -300, 99, 100, 3, -2, 250, 7, 8, 9, 0], np.int64)
    valid = np.ones(len(samples), np.uint32)
    valid[-1] = 0                                               # the harness holds the last value applied
    sim.run_stimulus({"adc_valid": valid, "adc_data": samples.astype(np.uint16).astype(np.uint32)}, ["busy"])
    sim.step(4)
    assert nn.status() & 0b10110 == 0                           # capture over, no network run, no overflow
    bank0 = sim.read_memory(sim.element_index("top.act0.storage"), 0, 5).astype(np.int64)
    assert list(((bank0 + (1 << 15)) % (1 << 16)) - (1 << 15)) == [100, 3, -2, 250, 7]
    assert nn.bus(0x14) == 2                                    # 8 and 9 stay in the FIFO
    depth = nn.config.adc_fifo_depth
    sim.run_stimulus({"adc_valid": np.ones(depth, np.uint32), "adc_data": np.zeros(depth, np.uint32)}, ["busy"])
    sim.poke("adc_valid", 0)
    assert nn.status() & 0b10000                                # overflow: nobody drained the FIFO
    assert nn.bus(0x14) == depth
    nn.bus(0, 16)
    assert not nn.status() & 0b10000
    nn.bus(0x10, depth)                                         # drain it for the tests that follow
    nn.bus(0, CTRL_ARM)
    sim.step(depth + 2)
    assert nn.bus(0x14) == 0 and not nn.status() & 2


def test_start_is_ignored_while_capturing(nn):
    nn.bus(0x10, 4)
    nn.bus(0, CTRL_ARM)
    nn.bus(0, CTRL_START)
    assert nn.status() & 0b11 == 0b10                           # still capturing, the network did not start
    nn.sim.run_stimulus({"adc_valid": np.asarray([1, 1, 1, 1, 0], np.uint32), "adc_data": np.zeros(5, np.uint32)},
                        ["busy"])
    nn.sim.step(2)
    assert nn.status() & 0b11 == 0


def test_compiler_refuses_what_the_accelerator_cannot_run():
    from models.npu.tflite_graph import Graph

    g = Graph("dw", seed=1)
    x = g.input((1, 64, 1))
    g.output(g.depthwise(x, kernel=(1, 3)))
    with pytest.raises(CompileError, match="DEPTHWISE_CONV_2D is not supported"):
        compile_tflite(g.build().data)
    g = Graph("shape", seed=1)
    x = g.input((4, 16, 1))
    g.output(g.conv2d(x, 2, kernel=(1, 3)))
    with pytest.raises(CompileError, match=r"input shape must be \[1, 1, W, 1\]"):
        compile_tflite(g.build().data)
    big = random_pulse_cnn(0, "int8", layers=[dict(kind="fc", units=64, activation="NONE"),
                                              dict(kind="fc", units=2, activation="NONE")])
    with pytest.raises(CompileError, match="kernel rows"):
        compile_tflite(big.data, PulseDlConfig(accel_kernel_rows=16))


@pytest.mark.slow
@pytest.mark.parametrize("pes, aus, rows", [(3, 1, 2048), (1, 2, 4096), (8, 4, 1024)])
def test_other_parallelism_is_bit_exact(pes, aus, rows):
    """PEs that do not divide the channel counts, one AU per PE, and the widest array: same outputs as LiteRT."""
    from dataclasses import replace

    from drivers.pulsedl import NnRunner

    cfg = replace(PulseDlConfig(), accel_pes=pes, accel_aus=aus, accel_kernel_rows=rows)
    runner = NnRunner(cfg)
    for precision in ("int8", "16x8"):
        for seed in range(6):
            net = random_pulse_cnn(seed, precision, small=True)
            windows = net.quantize(pulse_windows(2, seed=300 + seed))
            compiled = compile_tflite(net.data, cfg)
            runner.load(compiled)
            got = np.stack([runner.infer(x)[0] for x in windows])
            np.testing.assert_array_equal(got, litert(net, windows), err_msg=f"{precision} seed {seed}")
