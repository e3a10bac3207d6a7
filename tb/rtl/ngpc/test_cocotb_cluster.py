"""cocotb + Verilator: the NGPC cluster at its pins (``cocotb_ngpc_cluster.py``) against the golden models."""
import json
from pathlib import Path

import numpy as np
import pytest

from models.ngpc.golden import encode_fixed
from models.ngpc.mlp import mlp_fixed
from rtl.designs import get_design
from sim.cocotb_glue import run_cocotb

HERE = Path(__file__).parent
PRESET = "hash2d-x2"


@pytest.mark.slow      # the cocotb Verilator build of the cluster costs ~3 CPU-minutes on an empty cache
def test_cluster_at_the_pins():
    config = get_design("ngpc").config(PRESET)
    enc, mlp = config.nfp.encoder, config.nfp.mlp
    rng = np.random.default_rng(9)
    tables = [rng.integers(-4096, 4096, (lv.params, enc.features)) for lv in enc.level_geometry]
    weights = [rng.integers(-16, 16, shape) for shape in mlp.layer_shapes]
    u = rng.integers(0, 1 << enc.pos_bits, (400 * config.lanes, enc.dims))
    features = encode_fixed(enc.grid_config, tables, u)
    results = mlp_fixed(mlp, weights, np.pad(features, ((0, 0), (0, mlp.inputs - features.shape[1]))))
    widest = max(i for _, i in mlp.layer_shapes)
    case = {"seed": 4, "lanes": config.lanes, "dims": enc.dims, "pos_bits": enc.pos_bits,
            "feature_bits": enc.feature_bits, "weight_bits": mlp.weight_bits, "act_bits": mlp.act_bits,
            "outputs": mlp.outputs, "tables": [t.tolist() for t in tables],
            "weights": [np.pad(w, ((0, 0), (0, widest - w.shape[1]))).tolist() for w in weights],
            "queries": u.tolist(), "results": results.tolist()}
    run_cocotb("ngpc", PRESET, "cocotb_ngpc_cluster", test_dir=HERE, extra_env={"RAMPART_NGPC_CASE": json.dumps(case)})
