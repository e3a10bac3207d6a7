"""The ``npu_cnn`` workload: a Vela-compiled 3-layer int8 CNN (conv stride 2, depthwise, 1x1 conv) run by the NPU
from external memory. Checked: the golden run's OFM is bit-exact against LiteRT's reference kernels (through
models.npu.reference), the fast engine agrees with the plain native reference path on a fault sample, and the
workload is a distinct, registered identity."""
import numpy as np
import pytest

from faultinj.engine import ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.plan import fault_space
from faultinj.workload import get_workload, make_workload
from sim.build import build


def golden_ofm(workload, golden) -> np.ndarray:
    (_, first, _), = workload.regions
    addr, n = workload.params["ofm"]
    return np.frombuffer(golden.memory.tobytes()[addr - 8 * first:][:n], dtype=np.int8)


def check_bit_exact(config: str):
    from models.npu.reference import ReferenceModel

    npu = build("npu", config)
    workload = make_workload("npu_cnn", config)
    golden = golden_run(npu, workload)
    want = ReferenceModel(workload.params["model"]).run(workload.params["input"]).reshape(-1)
    np.testing.assert_array_equal(golden_ofm(workload, golden), want)
    assert workload.cycles == workload.params["done_cycle"] + 4
    return npu, workload, golden


def test_npu_cnn_is_registered_and_distinct():
    assert get_workload("npu_cnn")[0] == "npu"
    assert make_workload("npu_cnn", "u55-32").key != make_workload("npu_conv", "u55-32").key


def test_npu_cnn_bit_exact_and_fast_equals_reference():
    """u55-32 (the build the other NPU FI tests share): bit-exact OFM; 3 faults per sampled block agree."""
    npu, workload, golden = check_bit_exact("u55-32")
    space = fault_space(npu, workload.cycles, "block")
    rng = np.random.default_rng(7)
    pairs = [space.decode(h, rng.choice(int(size), 3, replace=False)) for h, size in enumerate(space.sizes)]
    sites = np.concatenate([s for s, _ in pairs])
    cycles = np.concatenate([c for _, c in pairs])
    fast, _ = golden.inject(sites, cycles)
    reference = ReferenceRun(npu, workload)
    slow = [int(reference.outcome(int(s), int(c))) for s, c in zip(sites, cycles, strict=True)]
    assert fast.tolist() == slow, [(Outcome(f).name, Outcome(r).name) for f, r in zip(fast, slow, strict=True)]


@pytest.mark.slow
def test_npu_cnn_bit_exact_u55_128():
    npu, workload, golden = check_bit_exact("u55-128")
    space = fault_space(npu, workload.cycles, "none")
    outcomes, _ = golden.inject(*space.decode(0, np.random.default_rng(1).integers(0, space.total, 50)))
    assert len(outcomes) == 50
