"""Fault-injection workloads of the NPU: Vela-compiled networks run once from external memory."""
import numpy as np

from base import RampartError, cache_root
from drivers.npu import EXT_MEMORY as NPU_EXTMEM
from drivers.npu import layout
from faultinj.workload import Workload
from rtl.common.protect import has_error_ports

__all__ = ["NPU_EXTMEM", "NPU_DONE_MARGIN", "npu_conv", "npu_cnn", "npu_network"]

#: Cycles the golden run goes on after ``done`` rises (the end state then has ``done`` high).
NPU_DONE_MARGIN = 4
_NPU_CACHE: dict = {}


def _npu_conv_model(seed: int):
    from models.npu import tflite_builder as tb

    return tb.single_layer(tb.Conv2D(8), (8, 8, 8), seed=seed)


def _npu_cnn_model(seed: int):
    from models.npu import tflite_builder as tb

    layers = (tb.Conv2D(16, (3, 3), (2, 2), activation="RELU"), tb.DepthwiseConv2D((3, 3), activation="RELU"),
              tb.Conv2D(8, (1, 1)))
    return tb.build_model(tb.ModelSpec((16, 16, 8), layers, seed))


def _npu_artifact(config, model):
    """The Vela artifact of ``model`` for ``config``'s accelerator (Vela output cached)."""
    from models.npu import vela

    return vela.compile_model(model, f"ethos-u55-{config.macs}", cache_dir=cache_root() / "vela")


def _bytes_to_words(payload: bytes) -> np.ndarray:
    padded = bytes(payload) + bytes(-len(payload) % 8)
    return np.frombuffer(padded, dtype="<u8").astype(np.uint64)


def npu_conv(config, seed: int = 0, cycles: int | None = None) -> Workload:
    """A Vela-compiled 3x3 int8 convolution 8x8x8 -> 8 (``tflite_builder.single_layer(Conv2D(8), (8, 8, 8))``,
    weights from ``seed``) on a seeded random input, run once by the NPU from external memory.

    Memory image (``top.extmem.storage``, 64-bit words) and stimulus come from :class:`drivers.npu.ExtMemLayout`: the
    COP1 payload at 0, the weights and the scratch region (input and OFM) each at the next 4 KiB boundary;
    ``basep__0..7``, ``cmd_base`` and ``cmd_len`` held constant, ``start`` pulsed at cycle 1. Observed: the OFM words
    at the end; ``error`` is a detection port (with a protection plan also ``sm_error``; ``sm_corrected`` a
    correction port), ``done`` the completion port. ``cycles`` defaults to the cycle ``done``
    first rises plus :data:`NPU_DONE_MARGIN` (found by a plain run of the build, cached per process). ``params``:
    ``model``, ``artifact``, ``input`` (int8 NHWC), ``ofm`` (byte address, bytes), ``done_cycle``, ``basep``.
    """
    return npu_network("npu_conv", config, _npu_conv_model(seed), seed, cycles)


def npu_cnn(config, seed: int = 0, cycles: int | None = None) -> Workload:
    """A Vela-compiled 3-layer int8 CNN on a 16x16x8 input: 3x3 stride-2 conv to 16 channels + ReLU, 3x3 depthwise
    + ReLU, 1x1 conv to 8 channels (weights from ``seed``); memory image, stimulus and observation as
    :func:`npu_conv` (the OFM is the 8x8x8 output; the intermediate tensors live in the scratch region)."""
    return npu_network("npu_cnn", config, _npu_cnn_model(seed), seed, cycles)


def npu_network(name: str, config, model, seed: int = 0, cycles: int | None = None) -> Workload:
    """The NPU running the Vela-compiled ``model`` (a ``tflite_builder.TfliteModel``) once from external memory, on
    a seeded random input; see :func:`npu_conv` for the memory image, stimulus, observation and ``params``."""
    if cycles is not None and cycles < 3:
        raise RampartError(f"cycles must be >= 3, not {cycles}")
    art = _npu_artifact(config, model)
    (inp,), (out,) = art.inputs, art.outputs
    if not inp.region == out.region == art.scratch_region:
        raise RampartError(f"{name}: the network's input and output are not in the scratch region")
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=inp.numel, dtype=np.int8)
    try:
        lay = layout(art, config.ext_mem_bytes)
        image = lay.image(x)
    except RampartError as e:
        raise RampartError(f"{name}: {e}") from None
    memory = tuple((NPU_EXTMEM, addr // 8, _bytes_to_words(payload)) for addr, payload in image)
    ofm_addr = lay.address(out)
    first, last = ofm_addr // 8, (ofm_addr + out.numel + 7) // 8
    regions = ((NPU_EXTMEM, first, last - first),)

    key = (name, repr(config), seed)
    if key not in _NPU_CACHE:
        _NPU_CACHE[key] = _npu_done_cycle(name, config, memory, lay.stimulus)
    done_cycle = _NPU_CACHE[key]
    if cycles is None:
        cycles = done_cycle + NPU_DONE_MARGIN
    elif cycles <= done_cycle:
        raise RampartError(f"{name} needs more than {done_cycle} cycles (done rises at {done_cycle}), not {cycles}")
    params = {"seed": seed, "model": model, "artifact": art, "input": x.reshape(inp.shape[-3:]),
              "ofm": (ofm_addr, out.numel), "done_cycle": done_cycle, "basep": list(lay.basep)}
    protected = {"detect": ("error", "sm_error"), "correct": ("sm_corrected",)} if has_error_ports(
        config.protection) else {"detect": ("error",)}
    return Workload(name, "npu", config, lay.stimulus(cycles), (), None, params, memory=memory, regions=regions,
                    complete="done", exclude_blocks=("extmem",), **protected)


def _npu_done_cycle(name: str, config, memory, stimulus, limit: int = 1 << 20) -> int:
    """First cycle at which ``done`` is high (sampled before that cycle's edge) in a plain run of the workload."""
    from sim.build import build
    from sim.harness import NativeSim

    with NativeSim(build("npu", config)) as sim:
        for element, first, values in memory:
            sim.load_memory(sim.element_index(element), values, first)
        n, chunk = 0, 4096
        while n < limit:
            inputs = stimulus(n + chunk)
            trace = sim.run_stimulus({k: v[n:] for k, v in inputs.items()}, ["done", "error"])
            if trace["error"].any():
                code = sim.peek("error_code")
                raise RampartError(f"{name}: the NPU reported an error (code {code}) in the fault-free run")
            high = np.flatnonzero(trace["done"][:, 0])
            if len(high):
                return n + int(high[0])
            n += chunk
    raise RampartError(f"{name}: the NPU did not finish within {limit} cycles")
