"""Campaigns on a user's network: ``rampart fi run npu --model NET.tflite [--input X.npy]``.

The model workload (``npu_model``) must be the built-in workload when given the same network and input (same
workload key: same memory image, stimulus and observation), be stored so that resume and replay rebuild it, and
refuse a bad model or input with one line (exit 2) before any database exists.
"""
import numpy as np
import pytest
from click.testing import CliRunner

from faultinj.campaign import campaign_meta, resume_campaign
from faultinj.replay import replay_injection
from faultinj.spec import campaign_spec, reproduce_command
from faultinj.workload import make_workload
from faultinj.workloads.npu import _npu_conv_model
from rampart.cli import main

CONFIG = "u55-32"


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "conv.tflite"
    _npu_conv_model(0).write(path)
    return path


def test_model_workload_equals_builtin(conv_model, tmp_path):
    builtin = make_workload("npu_conv", CONFIG)
    assert make_workload("npu_model", CONFIG, args={"model": str(conv_model)}).key == builtin.key
    x = builtin.params["input"]
    np.save(tmp_path / "x.npy", x)
    assert make_workload("npu_model", CONFIG, args={"model": str(conv_model), "input": str(tmp_path / "x.npy")}).key \
        == builtin.key
    np.save(tmp_path / "y.npy", (x ^ 1).astype(np.int8))
    other = make_workload("npu_model", CONFIG, args={"model": str(conv_model), "input": str(tmp_path / "y.npy")})
    assert other.key != builtin.key and other.params["classes"] is None


def test_model_campaign_resumes_and_replays(conv_model, tmp_path):
    db = tmp_path / "m.db"
    spec = campaign_spec("npu", CONFIG, samples=24, model=str(conv_model))
    status = spec.run(db, workers=1)
    assert status.done == 24
    meta = campaign_meta(db)
    assert meta["workload"] == "npu_model" and meta["workload_args"]["model"] == str(conv_model.resolve())
    assert f"--model {conv_model.resolve()}" in reproduce_command(meta, db)
    assert resume_campaign(db, workers=1).done == 24
    assert replay_injection(db, 3).agrees


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/nothere.tflite"], "no such model file"),
    (["--model", "{tmp}/bad.tflite"], "not a valid .tflite model"),
    (["--model", "{model}", "--input", "{tmp}/f.npy"], "holds float32 values"),
    (["--model", "{model}", "--input", "{tmp}/s.npy"], "does not match the model's input"),
    (["--input", "{tmp}/f.npy"], "--input needs --model"),
    (["--model", "{model}", "-w", "npu_conv"], "not both"),
])
def test_bad_model_is_one_line(conv_model, tmp_path, args, message):
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer")
    np.save(tmp_path / "f.npy", np.zeros((1, 8, 8, 8), np.float32))
    np.save(tmp_path / "s.npy", np.zeros((3, 3), np.int8))
    args = [a.format(tmp=tmp_path, model=conv_model) for a in args]
    result = CliRunner().invoke(main, ["fi", "run", "npu", "-c", CONFIG, *args, "-n", "4", "--db",
                                       str(tmp_path / "c.db")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rampart: error:") and message in lines[0], result.output
    assert not (tmp_path / "c.db").exists()
