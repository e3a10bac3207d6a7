"""Fault-injection workloads of the NPU: Vela-compiled networks run from external memory, once, or twice (the
``second`` argument of every factory: ``rampart fi run --second-inference``).

Second inference: faults are injected during the first inference only (the workload's ``fault_window``); when it
has finished (``done`` high for :data:`NPU_DONE_MARGIN` cycles) the host starts the same network again, on a
second scratch arena right after the first (its own input: the same one, or ``second_input``; its own
intermediate tensors and output), so the first output is not overwritten. The first output is checked when the
second inference starts (a difference is SDC), the second at the end (a difference is DELAYED), and the run ends
when the second inference is done: see :mod:`faultinj.outcomes` for how that separates what a single inference
calls LATENT.
"""
import numpy as np

from base import RampartError, cache_root
from drivers.npu import EXT_MEMORY as NPU_EXTMEM
from drivers.npu import REGION_ALIGN, layout, read_input_file, read_model_file
from faultinj.workload import Workload
from rtl.common.protect import has_error_ports

__all__ = ["NPU_EXTMEM", "NPU_DONE_MARGIN", "npu_conv", "npu_cnn", "npu_network", "npu_model",
           "fi_memory_config"]

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


def npu_conv(config, seed: int = 0, cycles: int | None = None, second: bool = False,
             second_input=None) -> Workload:
    """A Vela-compiled 3x3 int8 convolution 8x8x8 -> 8 (``tflite_builder.single_layer(Conv2D(8), (8, 8, 8))``,
    weights from ``seed``) on a seeded random input, run once by the NPU from external memory.

    Memory image (``top.extmem.storage``, 64-bit words) and stimulus come from :class:`drivers.npu.ExtMemLayout`: the
    COP1 payload at 0, the weights and the scratch region (input and OFM) each at the next 4 KiB boundary;
    ``basep__0..7``, ``cmd_base`` and ``cmd_len`` held constant, ``start`` pulsed at cycle 1. Observed: the OFM words
    at the end; ``error`` is a detection port (with a protection plan also ``sm_error``; ``sm_corrected`` a
    correction port), ``done`` the completion port. ``cycles`` defaults to the cycle ``done``
    first rises plus :data:`NPU_DONE_MARGIN` (found by a plain run of the build, cached per process). ``params``:
    ``model``, ``artifact``, ``input`` (int8 NHWC), ``ofm`` (byte address, bytes), ``done_cycle``, ``basep``.
    ``second``: run the network a second time after the first (module docstring) on ``second_input`` (a .npy
    path; None: the same input); ``cycles`` is then the length of both, and ``params`` add ``second_start`` (the
    cycle the host starts it), ``second_done`` and ``ofm2``.
    """
    return npu_network("npu_conv", config, _npu_conv_model(seed), seed, cycles, second, second_input)


def npu_cnn(config, seed: int = 0, cycles: int | None = None, second: bool = False,
            second_input=None) -> Workload:
    """A Vela-compiled 3-layer int8 CNN on a 16x16x8 input: 3x3 stride-2 conv to 16 channels + ReLU, 3x3 depthwise
    + ReLU, 1x1 conv to 8 channels (weights from ``seed``); memory image, stimulus and observation as
    :func:`npu_conv` (the OFM is the 8x8x8 output; the intermediate tensors live in the scratch region)."""
    return npu_network("npu_cnn", config, _npu_cnn_model(seed), seed, cycles, second, second_input)


def npu_network(name: str, config, model, seed: int = 0, cycles: int | None = None, second: bool = False,
                second_input=None) -> Workload:
    """The NPU running the Vela-compiled ``model`` (a ``tflite_builder.TfliteModel``) from external memory on a
    seeded random input; see :func:`npu_conv` for the memory image, stimulus, observation, ``second`` and
    ``params``."""
    art = _npu_artifact(config, model)
    (inp,), _ = art.inputs, art.outputs
    x = np.random.default_rng(seed).integers(-128, 128, size=inp.numel, dtype=np.int8)
    x2 = _second(second, second_input, x, inp.shape)
    return _network_workload(name, config, art, x, seed, cycles, {"model": model}, x2)


def _second(second: bool, second_input, x: np.ndarray, shape) -> np.ndarray | None:
    """The second inference's input (flat int8), or None for a single inference."""
    from drivers.npu import _check_input

    if second_input is not None and not second:
        raise RampartError("a second input needs a second inference (--second-inference)")
    if not second:
        return None
    if second_input is None:
        return x.reshape(-1)
    return _check_input(read_input_file(second_input), tuple(shape)).reshape(-1)


def npu_model(config, model, input=None, seed: int = 0, cycles: int | None = None, second: bool = False,
              second_input=None) -> Workload:
    """A user's int8 .tflite network (``model``: its path) compiled by Vela for ``config``'s MACs per cycle and run
    once from external memory on ``input`` (a .npy path holding one int8 array of the model's input shape; None: a
    uniformly random input from ``seed``). Memory image, stimulus and observation as :func:`npu_conv`: the output
    tensor's bytes are compared at the end (SDC), ``error`` is the detection port, ``done`` the completion port.
    ``params`` as :func:`npu_conv` plus ``output_shape`` and ``classes`` (the number of classes when the output is
    one score vector, i.e. a classifier; else None: the campaign then records whether an SDC changed the top-1
    class). ``second``, ``second_input``: as :func:`npu_conv`."""
    from drivers.npu import _check_input
    from models.npu import vela
    from models.npu.graph import interpreter

    data = read_model_file(model)
    it = interpreter(data)      # a model LiteRT rejects: one line
    ins, outs = it.get_input_details(), it.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        raise RampartError(f"{model}: only single-input, single-output models are supported ({len(ins)} inputs, "
                           f"{len(outs)} outputs)")
    if ins[0]["dtype"] != np.int8 or outs[0]["dtype"] != np.int8:
        raise RampartError(f"{model}: only int8 inputs and outputs are supported")
    in_shape = tuple(int(v) for v in ins[0]["shape"])
    out_shape = tuple(int(v) for v in outs[0]["shape"])
    if input is None:
        x = np.random.default_rng(seed).integers(-128, 128, size=in_shape, dtype=np.int8)
    else:
        x = _check_input(read_input_file(input), in_shape)
    art = vela.compile_cached(data, f"u55-{config.macs}")
    (inp,), (out,) = art.inputs, art.outputs
    if inp.nbytes != x.size or out.nbytes != int(np.prod(out_shape)):
        raise RampartError(f"{model}: Vela's input/output tensors do not match the model's (int8 tensors only)")
    scores = [d for d in out_shape if d != 1]
    classes = scores[0] if len(scores) == 1 and scores[0] > 1 else None
    x = x.reshape(-1)
    return _network_workload("npu_model", config, art, x, seed, cycles,
                             {"model": str(model), "output_shape": out_shape, "classes": classes},
                             _second(second, second_input, x, in_shape))



def fi_memory_config(config, model_data: bytes, second: bool):
    """``config``, or the same NPU with a larger external-memory model (the next power of two in KiB) when the
    Vela-compiled ``model_data`` does not fit it (``second``: with the second inference's scratch arena after the
    first). The external memory is scaffolding (``exclude_blocks``: never a fault site) kept in the netlist, so
    snapshots and golden runs cover it; a larger one costs one more build and larger snapshots, not fault sites."""
    from dataclasses import replace

    from drivers.npu import memory_needed
    from models.npu import vela

    art = vela.compile_cached(model_data, f"u55-{config.macs}")
    need = memory_needed(art) + (-(-art.scratch_size // REGION_ALIGN) * REGION_ALIGN if second else 0)
    if need <= config.ext_mem_bytes:
        return config
    kib = config.ext_mem_kib
    while kib * 1024 < need:
        kib *= 2
    return replace(config, ext_mem_kib=kib)


def _network_workload(name: str, config, art, x: np.ndarray, seed: int, cycles: int | None, params: dict,
                      x2: np.ndarray | None = None) -> Workload:
    """The workload of Vela artifact ``art`` run on the int8 input ``x`` (flat), and again on ``x2`` unless None
    (module docstring); ``params`` extended."""
    import dataclasses

    if cycles is not None and cycles < 3:
        raise RampartError(f"cycles must be >= 3, not {cycles}")
    (inp,), (out,) = art.inputs, art.outputs
    if not inp.region == out.region == art.scratch_region:
        raise RampartError(f"{name}: the network's input and output are not in the scratch region")
    try:
        lay = layout(art, config.ext_mem_bytes)
        image = lay.image(x)
        lay2 = None
        if x2 is not None:
            arena = lay.scratch_addr + -(-art.scratch_size // REGION_ALIGN) * REGION_ALIGN
            if arena + art.scratch_size > config.ext_mem_bytes:
                raise RampartError(f"two inferences need {arena + art.scratch_size:,} bytes of external memory; the "
                                   f"NPU model has {config.ext_mem_bytes:,}")
            basep = list(lay.basep)
            basep[art.scratch_region] = arena
            lay2 = dataclasses.replace(lay, scratch_addr=arena, basep=tuple(basep))
            image = (*image, (lay2.address(inp), np.asarray(x2).astype(np.int8).tobytes()))
    except RampartError as e:
        raise RampartError(f"{name}: {e}") from None
    memory = tuple((NPU_EXTMEM, addr // 8, _bytes_to_words(payload)) for addr, payload in image)
    classes = params.get("classes")

    def region(lay_):
        addr = lay_.address(out)
        first, last = addr // 8, (addr + out.numel + 7) // 8
        return (NPU_EXTMEM, first, last - first), (None if not classes else (addr - 8 * first, out.numel)), addr

    out1, top1, ofm_addr = region(lay)
    key = (name, repr(config), hash(art.cmd_data), hash(art.weight_data), x.tobytes())
    if key not in _NPU_CACHE:
        _NPU_CACHE[key] = _npu_done_cycle(name, config, memory, lay.stimulus)
    done_cycle = _NPU_CACHE[key]
    params = {"seed": seed, **params, "artifact": art, "input": x.reshape(inp.shape[-3:]),
              "ofm": (ofm_addr, out.numel), "done_cycle": done_cycle, "basep": list(lay.basep)}
    # a protection plan's safety mechanisms (rtl/common/protect) report on their own ports
    ports = ({"detect": ("error", "sm_error"), "correct": ("sm_corrected",)} if has_error_ports(config.protection)
             else {"detect": ("error",)})
    common = dict(memory=memory, complete="done", exclude_blocks=("extmem",), **ports)
    if lay2 is None:
        if cycles is None:
            cycles = done_cycle + NPU_DONE_MARGIN
        elif cycles <= done_cycle:
            raise RampartError(f"{name} needs more than {done_cycle} cycles (done rises at {done_cycle}), not {cycles}")
        return Workload(name, "npu", config, lay.stimulus(cycles), (), None, params, regions=(out1,),
                        classifier=(top1,) if classes else (), **common)

    start2 = done_cycle + NPU_DONE_MARGIN

    def stimulus(n: int) -> dict[str, np.ndarray]:
        first, again = lay.stimulus(n), lay2.stimulus(n, start_at=start2 + 1)
        return {port: np.where(np.arange(n) < start2, first[port], again[port]) if port != "start"
                else first[port] | again[port] for port in first}

    key2 = (*key, x2.tobytes())
    if key2 not in _NPU_CACHE:
        _NPU_CACHE[key2] = _npu_done_cycle(name, config, memory, stimulus, after=start2 + 1)
    done2 = _NPU_CACHE[key2]
    if cycles is None:
        cycles = done2 + NPU_DONE_MARGIN
    elif cycles <= done2:
        raise RampartError(f"{name} needs more than {done2} cycles for two inferences (done rises again at "
                           f"{done2}), not {cycles}")
    out2, top2, ofm2 = region(lay2)
    from faultinj.outcomes import Outcome

    params.update(second_start=start2, second_done=done2, ofm2=(ofm2, out.numel), second_input=x2)
    return Workload(name, "npu", config, stimulus(cycles), (), None, params, regions=(out1, out2),
                    region_outcomes=(Outcome.SDC, Outcome.DELAYED), region_at=(start2, None),
                    classifier=(top1, top2) if classes else (), fault_window=start2, **common)


def _npu_done_cycle(name: str, config, memory, stimulus, limit: int = 1 << 23, after: int = 0) -> int:
    """First cycle at which ``done`` rises (is high, sampled before that cycle's edge, after being low at some
    cycle ``>= after``; with ``after == 0``: the first cycle it is high) in a plain run of the workload."""
    from sim.build import build
    from sim.harness import NativeSim

    with NativeSim(build("npu", config)) as sim:
        for element, first, values in memory:
            sim.load_memory(sim.element_index(element), values, first)
        n, chunk, low_seen = 0, 4096, after == 0
        while n < limit:
            inputs = stimulus(n + chunk)
            trace = sim.run_stimulus({k: v[n:] for k, v in inputs.items()}, ["done", "error"])
            if trace["error"].any():
                code = sim.peek("error_code")
                raise RampartError(f"{name}: the NPU reported an error (code {code}) in the fault-free run")
            done = trace["done"][:, 0].astype(bool)
            cycle = np.arange(n, n + len(done))
            if not low_seen:
                low = np.flatnonzero(~done & (cycle >= after))
                if len(low):
                    low_seen = True
                    done[:low[0]] = False
                else:
                    done[:] = False
            high = np.flatnonzero(done)
            if low_seen and len(high):
                return n + int(high[0])
            n += chunk
    raise RampartError(f"{name}: the NPU did not finish within {limit} cycles")
