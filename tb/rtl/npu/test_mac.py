# amaranth: UnusedElaboratable=no
"""MacBlock vs numpy dot products: Verilator for volume (random handshakes, zero points, padding, overflow), pysim."""
import numpy as np
import pytest

from rtl.common.stream import simulate, stream_get, stream_put
from rtl.npu.mac import U55_PRESETS, MacBlock, MacBlockConfig
from sim.build import build
from sim.harness import NativeSim


def _golden(act, pad, last, weight, zp, fired, acc_width):
    """Expected results (one int64 array of accumulators per completed block) for the beats that fired."""
    centred = np.where(pad[:, :, None], 0, act.astype(np.int64) - zp[:, None, None])
    dots = np.einsum("cpi,coi->cpo", centred, weight.astype(np.int64)).reshape(len(act), -1)
    out, acc = [], np.zeros(dots.shape[1], dtype=np.int64)
    for c in np.flatnonzero(fired):
        acc = acc + dots[c]
        if last[c]:
            wrapped = (acc + (1 << (acc_width - 1))) % (1 << acc_width) - (1 << (acc_width - 1))
            out.append(wrapped)
            acc = np.zeros_like(acc)
    return out


def _stimulus(cfg: MacBlockConfig, cycles: int, rng, *, extreme_run: int = 0):
    p, d, n = cfg.positions, cfg.ublock_d, cfg.ifm_depth
    act = rng.integers(-128, 128, size=(cycles, p, n), dtype=np.int8)
    weight = rng.integers(-128, 128, size=(cycles, d, n), dtype=np.int8)
    pad = rng.random((cycles, p)) < 0.15
    last = rng.random(cycles) < 0.08
    zp = np.where(rng.random(cycles) < 0.9, rng.integers(-128, 128, cycles),
                  rng.choice([-32768, 32767, -129, 128], cycles))
    zp = np.repeat(zp[::16], 16)[:cycles]  # IFM_ZERO_POINT changes now and then, not every beat
    a_valid = rng.random(cycles) < 0.85
    w_valid = rng.random(cycles) < 0.85
    o_ready = rng.random(cycles) < 0.7
    if extreme_run:  # one long block of the largest-magnitude products: overflows 32-bit accumulators
        s = slice(cycles - extreme_run - 40, cycles - 40)
        act[s], weight[s], pad[s], last[s], zp[s] = 127, -128, False, False, -128
        a_valid[s] = w_valid[s] = o_ready[s] = True
        last[s.stop - 1] = True
        # the beat before the run ends whatever block was open, so the run is one block by itself
        last[s.start - 1] = a_valid[s.start - 1] = w_valid[s.start - 1] = o_ready[s.start - 1] = True
    last[-40] = True
    a_valid[-39:] = w_valid[-39:] = False  # drain
    o_ready[-39:] = True
    return act, pad, last, weight, zp, a_valid, w_valid, o_ready


def _run_native(preset_or_config, cycles: int, seed: int, extreme_run: int = 0):
    result = build("npu_mac", preset_or_config)
    cfg = result.config
    rng = np.random.default_rng(seed)
    act, pad, last, weight, zp, a_valid, w_valid, o_ready = _stimulus(cfg, cycles, rng, extreme_run=extreme_run)
    p = cfg.positions
    flags = (pad.astype(np.uint32) << np.arange(p, dtype=np.uint32)).sum(axis=1) | (last.astype(np.uint32) << p)
    act_words = np.concatenate([act.reshape(cycles, -1).view(np.uint32), flags[:, None].astype(np.uint32)], axis=1)
    stimulus = {
        "act_stream__valid": a_valid.astype(np.uint32), "act_stream__payload": act_words,
        "weight_stream__valid": w_valid.astype(np.uint32),
        "weight_stream__payload": np.ascontiguousarray(weight.reshape(cycles, -1)).view(np.uint32),
        "acc_stream__ready": o_ready.astype(np.uint32),
        "ifm_zero_point": (zp & 0xFFFF).astype(np.uint32),
    }
    with NativeSim(result) as sim:
        sim.reset()
        trace = sim.run_stimulus(stimulus, ["act_stream__ready", "weight_stream__ready", "acc_stream__valid",
                                            "acc_stream__payload"])
    fired = a_valid & trace["act_stream__ready"][:, 0].astype(bool)
    assert np.array_equal(fired, w_valid & trace["weight_stream__ready"][:, 0].astype(bool))
    taken = np.flatnonzero(o_ready & trace["acc_stream__valid"][:, 0].astype(bool))
    want = _golden(act, pad, last, weight, zp, fired, cfg.acc_width)
    assert len(taken) == len(want)
    aw = cfg.acc_width
    for c, w in zip(taken, want, strict=True):
        bits = sum(int(x) << (32 * i) for i, x in enumerate(trace["acc_stream__payload"][c]))
        got = [(bits >> (aw * k)) & ((1 << aw) - 1) for k in range(cfg.accumulators)]
        got = [g - (1 << aw) if g >> (aw - 1) else g for g in got]
        assert got == w.tolist(), f"block ending before cycle {c}"
    return cfg, int(fired.sum()), want


U55_32_ACC40 = MacBlockConfig(1, 1, 4, acc_width=40)  # U55-32 geometry with Vela's INT40 accumulators


@pytest.mark.parametrize("config", ["u55-256", U55_32_ACC40], ids=["u55-256", "u55-32-acc40"])
def test_native_random_blocks(config):
    cfg, beats, blocks = _run_native(config, 6000, seed=11)
    assert beats > 3000 and len(blocks) > 200
    assert cfg.macs_per_cycle == (256 if config == "u55-256" else 32)


@pytest.mark.parametrize("config", ["u55-256", U55_32_ACC40], ids=["u55-256", "u55-32-acc40"])
def test_native_accumulator_overflow(config):
    """8230 beats of 8 x (127 - -128) x -128 exceed int32: 32-bit accumulators wrap, 40-bit ones do not."""
    cfg, _, blocks = _run_native(config, 9000, seed=12, extreme_run=8230)
    exact = 8230 * 8 * 255 * -128
    assert exact < -(1 << 31)
    want = exact if cfg.acc_width == 40 else exact + (1 << 32)
    assert [want] * cfg.accumulators in [b.tolist() for b in blocks]


def test_config_validation():
    with pytest.raises(ValueError, match="acc_width must be 32 or 40"):
        MacBlockConfig(acc_width=24)
    with pytest.raises(ValueError, match="ublock_h must be an integer in 1..4"):
        MacBlockConfig(ublock_h=0)
    with pytest.raises(TypeError, match="config must be a MacBlockConfig"):
        MacBlock(U55_PRESETS)
    assert {k: v.macs_per_cycle for k, v in U55_PRESETS.items()} == {
        "u55-32": 32, "u55-64": 64, "u55-128": 128, "u55-256": 256}


def test_pysim_small():
    cfg = MacBlockConfig(1, 2, 2, ifm_depth=4)
    dut = MacBlock(cfg)
    rng = np.random.default_rng(3)
    cycles = 30
    act = rng.integers(-128, 128, size=(cycles, 2, 4), dtype=np.int8)
    weight = rng.integers(-128, 128, size=(cycles, 2, 4), dtype=np.int8)
    pad = rng.random((cycles, 2)) < 0.3
    last = np.zeros(cycles, dtype=bool)
    last[[0, 4, 11, 20, 29]] = True
    zp = np.full(cycles, -7)
    want = _golden(act, pad, last, weight, zp, np.ones(cycles, dtype=bool), 32)

    async def feed_act(ctx):
        ctx.set(dut.ifm_zero_point, -7)
        for c in range(cycles):
            pad_bits = int(pad[c, 0]) | int(pad[c, 1]) << 1
            await stream_put(ctx, dut.act_stream, {"data": act[c].tolist(), "pad": pad_bits, "last": int(last[c])})

    async def feed_weight(ctx):
        for c in range(cycles):
            if rng.random() < 0.3:
                await ctx.tick()
            await stream_put(ctx, dut.weight_stream, weight[c].tolist())

    async def drain(ctx):
        for w in want:
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick()
            got = await stream_get(ctx, dut.acc_stream)
            assert [int(x) for x in got] == w.tolist()

    simulate(dut, feed_act, feed_weight, drain, max_cycles=500)
