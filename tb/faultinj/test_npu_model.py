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


def test_classifier_records_top1(tmp_path):
    """A network with one score vector out is a classifier: every stored injection has top1 (0/1), and for SDCs it
    says whether the argmax of the faulty output (recomputed here by a plain faulty run) differs from the golden."""
    import sqlite3

    from faultinj.engine import load_image
    from models.npu import tflite_builder as tb
    from sim.build import build
    from sim.harness import NativeSim

    path = tmp_path / "fc.tflite"
    tb.build_model(tb.ModelSpec((4, 4, 8), (tb.Conv2D(8, activation="RELU"), tb.FullyConnected(10)), 2)).write(path)
    workload = make_workload("npu_model", CONFIG, args={"model": str(path)})
    assert workload.params["classes"] == 10 and workload.classifier[0][1] == 10
    db = tmp_path / "fc.db"
    campaign_spec("npu", CONFIG, samples=400, model=str(path), seed=4).run(db, workers=1)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT site, cycle, outcome, top1 FROM injections").fetchall()
    assert rows and all(t in (0, 1) for *_, t in rows)
    assert all(t == 0 for _, _, o, t in rows if o != 1)
    sdc = [(s, c, t) for s, c, o, t in rows if o == 1]
    assert sdc
    (name, first, count), = workload.regions
    offset, classes = workload.classifier[0]
    result = build("npu", CONFIG)

    def top1(sim):
        data = sim.read_memory(sim.element_index(name), first, count).astype("<u8").tobytes()
        return int(np.argmax(np.frombuffer(data[offset:offset + classes], dtype=np.int8)))

    with NativeSim(result) as sim:
        load_image(sim, workload)
        sim.run_stimulus(workload.inputs, [])
        golden = top1(sim)
    for site, cycle, flag in sdc[:8]:
        with NativeSim(result) as sim:
            load_image(sim, workload)
            sim.run_stimulus({k: v[:cycle] for k, v in workload.inputs.items()}, [])
            sim.flip(site)
            sim.run_stimulus({k: v[cycle:] for k, v in workload.inputs.items()}, [])
            assert flag == int(top1(sim) != golden)


def test_model_over_the_fi_memory_gets_a_larger_memory_model(conv_model, tmp_path):
    """A network that does not fit the FI model's external memory (the autoencoder: 270 KB of weights) runs on the
    same NPU with a larger external-memory model (scaffolding: the chip is unchanged), not refused; a network that
    fits keeps the preset."""
    import dataclasses

    from models.npu.networks import network
    from rtl.designs import get_design

    preset = get_design("npu").config(CONFIG)
    path = tmp_path / "autoencoder.tflite"
    path.write_bytes(network("autoencoder").data)
    big = campaign_spec("npu", CONFIG, model=str(path), samples=10).config
    assert big.ext_mem_kib > preset.ext_mem_kib
    assert dataclasses.replace(big, ext_mem_kib=preset.ext_mem_kib) == preset
    assert campaign_spec("npu", CONFIG, model=str(conv_model), samples=10).config == preset
