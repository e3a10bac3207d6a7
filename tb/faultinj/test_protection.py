# amaranth: UnusedElaboratable=no
"""faultinj.protection: the integer program finds the hand-computed optimum; a protected MAC array's campaign
classifies detections and corrections; area is measured from the netlist."""
import math

import numpy as np
import pytest

from faultinj.campaign import run_campaign
from faultinj.engine import GoldenRun
from faultinj.outcomes import Outcome
from faultinj.protection import (
    BlockData,
    Candidate,
    HardeningFactors,
    baseline_blocks,
    candidates,
    fit_model,
    optimise,
    pareto_front,
    protected_config,
    wrappable_blocks,
)
from faultinj.safety import Asil
from faultinj.workload import make_workload
from rtl.common.mac_array import MacArrayConfig
from rtl.common.protect import Option
from sim.build import build

N, H, D = Option.NONE, Option.HARDENED, Option.DMR

# Two blocks, three options each: (area, λ, λ_SPF+RF). Every one of the 9 plans, SPFM = 1 - R/T:
#   A none + B none   R 0.70 T 2.00 -> 0.650          A none + B hard  R 0.51 T 1.05 -> 0.514
#   A hard + B none   R 0.25 T 1.10 -> 0.773 (R 0.25) A hard + B hard  R 0.06 T 0.15 -> 0.600
#   A dmr  + B none   R 0.20 T 3.00 -> 0.933 area 125 A dmr  + B hard  R 0.01 T 2.05 -> 0.995 area 135
#   A none + B dmr    R 0.50 T 3.00 -> 0.833          A hard + B dmr   R 0.05 T 2.10 -> 0.976 area 262
#   A dmr  + B dmr    R 0    -> 1.000 area 275
TOY = [
    Candidate("A", N, 10, 1.0, 0.5, 0.0), Candidate("A", H, 12, 0.1, 0.05, 0.0), Candidate("A", D, 25, 2.0, 0.0, 0.0),
    Candidate("B", N, 100, 1.0, 0.2, 0.0), Candidate("B", H, 110, 0.05, 0.01, 0.0),
    Candidate("B", D, 250, 2.0, 0.0, 0.0),
]


@pytest.mark.parametrize("bounds,plan,area", [
    ({"spfm_min": 0.90}, {"A": D, "B": N}, 125),
    ({"spfm_min": 0.99}, {"A": D, "B": H}, 135),
    ({"spfm_min": 0.999}, {"A": D, "B": D}, 275),
    ({"pmhf_max": 0.3}, {"A": H, "B": N}, 112),            # only (hard, none) at 112 and cheaper plans miss R < 0.3
    ({"spfm_min": 0.97, "pmhf_max": 0.04}, {"A": D, "B": H}, 135),   # (hard, dmr) has R 0.05
])
def test_optimiser_finds_the_hand_computed_optimum(bounds, plan, area):
    sol = optimise(TOY, **bounds)
    assert sol.feasible
    assert sol.plan == plan and sol.area == pytest.approx(area)


def test_lfm_bound_and_infeasible_targets():
    # latent faults: A's DMR copy leaves 0.5 latent; LFM = 1 - L / (T - R)
    cands = [Candidate("A", N, 10, 1.0, 0.0, 0.5), Candidate("A", D, 25, 2.0, 0.0, 0.02)]
    assert optimise(cands, lfm_min=0.4).plan == {"A": N}          # LFM 0.5
    assert optimise(cands, lfm_min=0.9).plan == {"A": D}          # LFM 0.99
    assert not optimise(cands, lfm_min=0.999).feasible


def test_pareto_front_is_monotone_and_reaches_the_full_protection():
    front = pareto_front(TOY)
    areas = [s.area for s in front]
    spfms = [s.predicted.spfm for s in front]
    assert areas == sorted(areas) and spfms == sorted(spfms)
    assert front[0].plan == {"A": N, "B": N} and front[-1].predicted.spfm == 1.0
    assert {"A": D, "B": H} in [s.plan for s in front]


def test_candidates_follow_the_documented_prediction():
    block = BlockData("A", ff_bits=100, mem_bits=0, counts={Outcome.MASKED: 50, Outcome.SDC: 50})
    areas = {"A": {N: 10.0, H: 12.0, D: 25.0, Option.TMR: 40.0}}
    cands = {c.option: c for c in candidates([block], areas, factors=HardeningFactors(2.0, 0.1))}
    lam = 100 * 1e-3
    assert cands[N].fit == pytest.approx(lam) and 0.5 < cands[N].residual / lam < 0.7   # upper bound of 0.5
    assert cands[H].fit == pytest.approx(lam * 0.1)
    assert cands[D].fit == pytest.approx(2 * lam) and cands[D].residual == 0
    assert cands[Option.TMR].fit == pytest.approx(3 * lam)


def test_memory_options_predict_the_flip_flops_from_their_own_injections():
    # 100 flip-flop bits (half their injections SDC) and 1000 memory bits (all latent); parity adds a bit per byte
    block = BlockData("M", ff_bits=100, mem_bits=1000,
                      counts={Outcome.SDC: 50, Outcome.MASKED: 50, Outcome.LATENT: 400},
                      kind_counts={"ff": {Outcome.SDC: 50, Outcome.MASKED: 50}, "mem": {Outcome.LATENT: 400}})
    areas = {"M": {N: 10.0, Option.PARITY: 11.0}}
    bits = {"M": {N: (100, 1000), Option.PARITY: (104, 1125)}}
    fits = fit_model()
    cands = {c.option: c for c in candidates([block], areas, bits=bits)}
    lam_ff = 104 * fits.ff_fit_per_bit
    parity = cands[Option.PARITY]
    assert parity.fit == pytest.approx(lam_ff + 1125 * fits.mem_fit_per_bit)
    assert 0.5 < parity.residual / lam_ff < 0.7
    assert 0 < parity.latent < 0.05 * lam_ff    # the flip-flops' bound (0 of 100); memory flips: checked, not latent
    assert cands[N].latent > 0.5 * 1000 * fits.mem_fit_per_bit            # unprotected: the latent memory


def test_only_leaf_blocks_can_be_wrapped():
    npu = wrappable_blocks("npu", ["accumulators", "mac", "controller", "config_regs", "dma", "top"])
    assert D in npu["accumulators"] and D in npu["config_regs"] and D in npu["dma"]
    assert npu["mac"] == npu["controller"] == npu["top"] == (N, H)
    mac = wrappable_blocks("mac_array", ["pe_0_0", "top"])
    assert D in mac["pe_0_0"] and mac["top"] == (N, H)
    memories = wrappable_blocks("npu", ["shram", "controller", "issue"], memory_blocks=["shram", "controller"])
    assert Option.SECDED in memories["shram"] and memories["controller"] == (N, H)   # (it holds config_regs)
    assert Option.PARITY not in memories["issue"]


CONFIG = MacArrayConfig(2, 2)
PLAN = {"pe_0_0": "dmr", "pe_1_1": "tmr", "pe_1_0": "hardened"}


@pytest.fixture(scope="module")
def protected_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("protect") / "protected.db"
    run_campaign(path, "mac_array", protected_config("mac_array", CONFIG, PLAN), "mac_array_matmul",
                 samples=6000, seed=5, strata="block", workers=1, workload_cycles=600)
    return path


def test_protected_campaign_classifies_detections_and_corrections(protected_db):
    blocks = {b.name: b for b in baseline_blocks(protected_db)}
    dmr, tmr, plain = blocks["pe_0_0"].counts, blocks["pe_1_1"].counts, blocks["pe_0_1"].counts
    assert dmr[Outcome.SDC] == 0 and dmr[Outcome.DETECTED_UNRECOVERABLE] > 0
    assert tmr[Outcome.SDC] == 0 and tmr[Outcome.DETECTED_RECOVERABLE] > 0
    assert plain[Outcome.SDC] > 0 and plain[Outcome.DETECTED_UNRECOVERABLE] == plain[Outcome.DETECTED_RECOVERABLE] == 0
    # the replicas' state is injected too and belongs to the block it protects
    assert blocks["pe_0_0"].ff_bits == 2 * blocks["pe_0_1"].ff_bits
    assert blocks["pe_1_1"].ff_bits == 3 * blocks["pe_0_1"].ff_bits
    assert blocks["pe_1_0"].ff_bits == blocks["pe_0_1"].ff_bits       # hardened: same netlist


def test_flip_in_the_replica_is_detected_and_in_the_voter_copy_corrected():
    config = protected_config("mac_array", CONFIG, PLAN)
    result = build("mac_array", config)
    wl = make_workload("mac_array_matmul", config, cycles=600)
    golden = GoldenRun(result, wl)
    offsets = golden.sim.site_offsets
    index = {e.var: i for i, e in enumerate(result.state)}
    bit = 7
    sites = [offsets[index[name]] + bit for name in
             ("pe_0_0.protect_copy1.acc", "pe_0_0.protect_copy0.acc", "pe_1_1.protect_copy2.acc", "pe_0_1.acc")]
    cycle = 2   # inside the first tile's accumulation (it starts at 0 and lasts >= 6 cycles), before its readout
    outcomes, _ = golden.inject(sites, [cycle] * len(sites))
    assert [Outcome(o) for o in outcomes] == [Outcome.DETECTED_UNRECOVERABLE, Outcome.DETECTED_UNRECOVERABLE,
                                              Outcome.DETECTED_RECOVERABLE, Outcome.SDC]
    golden.close()


def test_area_is_measured_per_block_and_grows_with_protection():
    from sim.area import measure_area

    plain = measure_area("mac_array", CONFIG)
    protected = measure_area("mac_array", protected_config("mac_array", CONFIG, PLAN))
    pe = plain.blocks["pe_0_1"]
    # w8 + acc32 registers (a_out of the last column drives nothing: synthesis removes it), an 8x8 multiplier
    assert pe.ff_bits == 40 and pe.logic_cells > 100
    assert protected.blocks["pe_0_1"] == pe                  # other blocks are synthesised alone: unchanged
    assert protected.blocks["pe_1_0"] == pe                  # hardened changes no cell
    dmr, dmr0 = protected.blocks["pe_0_0"], plain.blocks["pe_0_0"]
    tmr, tmr0 = protected.blocks["pe_1_1"], plain.blocks["pe_1_1"]
    assert dmr.ff_bits == 2 * dmr0.ff_bits == 96
    # the voter reads every output of the copies, so the corner PE's unused a_out and w_out registers stay: 3 x 48
    assert tmr0.ff_bits == 32 and tmr.ff_bits == 3 * 48
    assert 2 * dmr0.logic_cells < dmr.logic_cells < 2.5 * dmr0.logic_cells    # + comparator
    assert 3 * tmr0.logic_cells < tmr.logic_cells < 4 * tmr0.logic_cells      # + voters
    assert pe.ge(ff_factor=2.0) - pe.ge() == pytest.approx(40 * 5.67)
    assert math.isclose(plain.ge(), sum(b.ge() for b in plain.blocks.values()))


def test_verification_passes_only_on_the_conservative_bound(protected_db):
    from faultinj.protection import campaign_metrics

    metrics = campaign_metrics(protected_db, PLAN)
    assert metrics.conservative.spfm < metrics.point.spfm
    # the unprotected PEs leave SDCs: this half-protected array cannot be ASIL-D
    from faultinj.safety import assess_asil

    assert not assess_asil(metrics.conservative).passed(Asil.D)
    assert np.isfinite(metrics.conservative.lfm)


def test_memory_bits_are_counted_per_block():
    from sim.area import measure_area

    secded = measure_area("sram", "256x16-secded")
    plain = measure_area("sram", "256x16")
    assert secded.total.mem_bits == 256 * 22 and plain.total.mem_bits == 256 * 16   # 16 data + 5 check + 1 parity
    assert secded.total.logic_cells > plain.total.logic_cells                        # the codec


def test_campaign_keeps_its_fit_weights(protected_db):
    """The bits that weigh a campaign's blocks are stored with it: metrics computed later (after the RTL changed)
    use them, not a rebuild; a campaign without them (older rampart) falls back to the build."""
    import json
    import sqlite3

    from faultinj.campaign import campaign_meta, campaign_state_bits, site_is_memory, state_bits_meta

    meta = campaign_meta(protected_db)
    stats = build("mac_array", protected_config("mac_array", CONFIG, PLAN)).stats
    assert {b: v["ff"] for b, v in meta["state_bits"]["blocks"].items() if v["ff"]} == stats.ff_bits
    before = campaign_metrics_point(protected_db)
    stored = json.loads(json.dumps(meta["state_bits"]))
    stored["blocks"]["pe_0_1"]["ff"] *= 10      # as if the block had been 10x larger when the campaign ran
    db = sqlite3.connect(protected_db)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'state_bits'", (json.dumps(stored),))
    try:
        blocks = {b.name: b for b in baseline_blocks(protected_db)}
        assert blocks["pe_0_1"].ff_bits == 10 * stats.ff_bits["pe_0_1"]
        assert campaign_metrics_point(protected_db) != before
        with db:
            db.execute("DELETE FROM meta WHERE key = 'state_bits'")
        assert campaign_state_bits(campaign_meta(protected_db)) == meta["state_bits"]
        assert campaign_metrics_point(protected_db) == before
    finally:
        with db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('state_bits', ?)",
                       (json.dumps(meta["state_bits"]),))
        db.close()
    # memory runs: every site's kind, against the build's state map
    result = build("sram", "256x16-secded")
    state_bits = state_bits_meta(result)
    kinds = np.concatenate([np.full(e.bits, e.kind == "mem") for e in result.state])
    assert np.array_equal(site_is_memory(state_bits, np.arange(kinds.size)), kinds) and kinds.any() and not kinds.all()


def campaign_metrics_point(db):
    from faultinj.protection import campaign_metrics

    return campaign_metrics(db, PLAN).point
