"""Rendering through the Verilated NFP (drivers.ngpc_render, `rampart ngpc render`): the RTL image and every raw
output equal the golden model's, query for query; the CLI writes its images and refuses bad input in one line."""
import numpy as np
import pytest
from click.testing import CliRunner

from drivers.ngpc_render import render_scene
from rampart.cli import main

#: Small engines for the fast tier (the scenes' own presets, gia2d-w64 and scene3d-w32, in the slow tier).
SMALL = {"gia": "hash2d-w16", "nsdf": "hash3d-w16", "nerf": "hash3d-w16"}


@pytest.mark.parametrize("scene", ["gia", "nsdf", "nerf"])
def test_rtl_render_is_the_golden_render(scene):
    result = render_scene(scene, SMALL[scene], size=16, steps=40)
    assert result.rtl_equals_golden
    assert np.array_equal(result.rtl, result.golden)
    assert result.psnr["rtl_vs_golden"] == float("inf")
    assert result.queries >= 16 * 16
    assert result.queries_per_cycle == 1.0                 # the NFP never stalls while the output is taken
    # the comparison can fail: the float network's image is not bit-identical to the fixed-point one
    assert not np.array_equal(result.rtl, result.float_)
    # 40 training steps on a 16-wide engine: a rough field, so a sphere-traced silhouette moves by whole pixels
    assert result.psnr["rtl_vs_float"] > {"gia": 25, "nsdf": 18, "nerf": 25}[scene]


@pytest.mark.slow
@pytest.mark.parametrize("scene", ["gia", "nsdf", "nerf"])
def test_scene_presets_render_bit_exact(scene):
    result = render_scene(scene, None, size=32)
    assert result.rtl_equals_golden
    assert result.psnr["rtl_vs_float"] > {"gia": 35, "nsdf": 20, "nerf": 30}[scene]


def test_cli_render_writes_images(tmp_path):
    out = tmp_path / "gia.png"
    result = CliRunner().invoke(main, ["ngpc", "render", "gia", "-o", str(out), "--size", "16", "-c", "hash2d-w16",
                                       "--steps", "40"])
    assert result.exit_code == 0, result.output
    assert "PSNR RTL vs golden  inf dB (bit-exact" in result.output
    assert "PSNR RTL vs float" in result.output and "queries/s" in result.output
    for name in ("gia.png", "gia_float.png", "gia_truth.png", "gia_diff.png", "gia_side.png"):
        assert (tmp_path / name).stat().st_size > 0
    from PIL import Image
    assert Image.open(out).size == (16, 16)


@pytest.mark.parametrize("args,message", [
    (["ngpc", "render", "video", "-o", "x.png"], "Invalid value for '{gia|nsdf|nerf}'"),
    (["ngpc", "render", "gia", "-o", "{tmp}/x.png", "-c", "hash3d-w16", "--steps", "1"], "scene gia is 2-D"),
    (["ngpc", "render", "nerf", "-o", "{tmp}/x.png", "-c", "nope"], "unknown config 'nope'"),
    (["ngpc", "render", "gia", "-o", "{tmp}/missing/x.png"], "folder"),
    (["ngpc", "render", "gia", "-o", "{tmp}/x.png", "--size", "0"], "--size"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    result = CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rampart: error: ") and message in lines[0], result.output
    assert not list(tmp_path.glob("*.png"))


def test_cli_bad_toml_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "hash2d-w16"\nencoder = "x"\n')
    result = CliRunner().invoke(main, ["ngpc", "render", "gia", "-o", str(tmp_path / "x.png"), "-c", str(bad)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"rampart: error: {bad}: invalid config: encoder must be a table of NgpcConfig "
                                     "fields, not 'x'")
