"""The neural-graphics processing cluster (NGPC-N): N neural-fields processors (lanes) side by side.

* :class:`QueryDispatcher`: a skid buffer holding one batch of N queries (one per lane), then a lock-step fork: every
  lane sees the batch on the same cycle and the batch leaves when every lane takes it.
* N :class:`~rtl.ngpc.nfp.NeuralFieldsProcessor` lanes (``lane_<i>``), each with its own table SRAMs and MLP
  weights (the same model is written to every lane: the write ports are broadcast, as the paper loads one scene's
  tables per frame).
* :class:`ResultCollector`: joins the N lanes' results into one batch (valid when every lane has its result), then a
  skid buffer.

The lanes are identical pipelines driven by the same valid and ready signals, so they stay in lock step: at steady
state the cluster takes one batch of N queries per cycle (one query per cycle per lane) and returns one batch of N
results per cycle. Latency: the NFP's plus one cycle in each skid buffer. A host pads a frame's last batch.
"""
from dataclasses import dataclass, field, replace

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.ngpc.mlp import MlpConfig
from rtl.common.stream import SkidBuffer
from rtl.ngpc.encoder import TableWriteSignature
from rtl.ngpc.mlp import WeightWriteSignature
from rtl.ngpc.nfp import NFP_BLOCK_MAP, NFP_PRESETS, NeuralFieldsProcessor, NfpConfig

__all__ = ["CLUSTER_PRESETS", "ClusterConfig", "NgpcCluster", "QueryDispatcher", "ResultCollector",
           "cluster_block_map"]

MAX_LANES = 64


@dataclass(frozen=True)
class ClusterConfig:
    nfp: NfpConfig = field(default_factory=lambda: NFP_PRESETS["hash2d-w16"])
    lanes: int = 1      #: the scaling factor N

    def __post_init__(self):
        if not 1 <= self.lanes <= MAX_LANES:
            raise ValueError(f"lanes must be in 1..{MAX_LANES}, not {self.lanes}")

    @property
    def query_bits(self) -> int:
        return self.nfp.encoder.dims * self.nfp.encoder.pos_bits

    @property
    def result_bits(self) -> int:
        return self.nfp.mlp.outputs * self.nfp.mlp.act_bits

    @property
    def latency(self) -> int:
        return SkidBuffer.latency + self.nfp.latency + SkidBuffer.latency

    @property
    def macs_per_lane(self) -> int:
        return self.nfp.mlp.macs


def cluster_block_map(lanes: int = MAX_LANES) -> dict[str, str]:
    """Fault-injection blocks: every lane's NFP blocks, the dispatcher's and collector's buffers."""
    blocks = {"dispatcher": "query_buffer", "collector": "result_buffer"}
    for lane in range(lanes):
        blocks |= {f"lane_{lane}.{k}": v for k, v in NFP_BLOCK_MAP.items()}
    return blocks


class QueryDispatcher(wiring.Component):
    """``batch`` (N queries, lane 0 lowest) -> ``lanes[i]``, buffered, all lanes on the same cycle."""

    def __init__(self, lanes: int, query_bits: int):
        self._lanes, self._bits = lanes, query_bits
        super().__init__({"batch": In(stream.Signature(lanes * query_bits)),
                          "lanes": Out(stream.Signature(query_bits)).array(lanes)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = SkidBuffer(shape=self._lanes * self._bits)
        wiring.connect(m, wiring.flipped(self.batch), buffer.i_stream)
        all_ready = 1
        for i, lane in enumerate(self.lanes):
            m.d.comb += [lane.valid.eq(buffer.o_stream.valid),
                         lane.payload.eq(buffer.o_stream.payload.word_select(i, self._bits))]
            all_ready &= lane.ready
        m.d.comb += buffer.o_stream.ready.eq(all_ready)
        return m


class ResultCollector(wiring.Component):
    """``lanes[i]`` -> ``batch`` (N results, lane 0 lowest), taken from every lane on the same cycle, buffered."""

    def __init__(self, lanes: int, result_bits: int):
        self._lanes, self._bits = lanes, result_bits
        super().__init__({"lanes": In(stream.Signature(result_bits)).array(lanes),
                          "batch": Out(stream.Signature(lanes * result_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.buffer = buffer = SkidBuffer(shape=self._lanes * self._bits)
        all_valid = 1
        for i, lane in enumerate(self.lanes):
            m.d.comb += [buffer.i_stream.payload.word_select(i, self._bits).eq(lane.payload),
                         lane.ready.eq(buffer.i_stream.ready & buffer.i_stream.valid)]
            all_valid &= lane.valid
        m.d.comb += buffer.i_stream.valid.eq(all_valid)
        wiring.connect(m, buffer.o_stream, wiring.flipped(self.batch))
        return m


class NgpcCluster(wiring.Component):
    """``query`` stream of N-query batches, ``results`` stream of N-result batches (lane ``i`` in field ``i``),
    ``table`` and ``weights`` write ports broadcast to every lane."""

    def __init__(self, config: ClusterConfig):
        self.config = config
        nfp = config.nfp
        super().__init__({
            "query": In(stream.Signature(config.lanes * config.query_bits)),
            "results": Out(stream.Signature(config.lanes * config.result_bits)),
            "table": In(TableWriteSignature(nfp.encoder)),
            "weights": In(WeightWriteSignature(nfp.mlp)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.dispatcher = dispatcher = QueryDispatcher(cfg.lanes, cfg.query_bits)
        m.submodules.collector = collector = ResultCollector(cfg.lanes, cfg.result_bits)
        wiring.connect(m, wiring.flipped(self.query), dispatcher.batch)
        wiring.connect(m, collector.batch, wiring.flipped(self.results))
        for i in range(cfg.lanes):
            m.submodules[f"lane_{i}"] = lane = NeuralFieldsProcessor(cfg.nfp)
            wiring.connect(m, dispatcher.lanes[i], lane.query)
            wiring.connect(m, lane.outputs, collector.lanes[i])
            m.d.comb += [lane.table.en.eq(self.table.en), lane.table.level.eq(self.table.level),
                         lane.table.addr.eq(self.table.addr), lane.table.data.eq(self.table.data),
                         lane.weights.en.eq(self.weights.en), lane.weights.layer.eq(self.weights.layer),
                         lane.weights.row.eq(self.weights.row), lane.weights.data.eq(self.weights.data)]
        return m


#: An NFP sized for the ULX3S-85F: the 2-D hash encoder with 8-bit features feeding a 16-wide MLP with 8-bit
#: activations and 4-bit weights (its 512 multipliers are LUT logic: the FPGA has 156 18x18 DSPs). One lane needs
#: 104,639 LUTs, 125% of the 85F's (BENCHMARKS.md ngpc_synth).
_SYNTH_NFP = NfpConfig(replace(NFP_PRESETS["hash2d-w16"].encoder, feature_bits=8),
                       MlpConfig(inputs=16, width=16, outputs=16, weight_bits=4, weight_frac=3, act_bits=8))
#: The same with 2-bit weights (-2..1 in steps of 1/2; each multiplier selects and negates): one lane fits the 85F
#: (64,746 LUTs, 77%).
_SYNTH_NFP_W2 = replace(_SYNTH_NFP, mlp=replace(_SYNTH_NFP.mlp, weight_bits=2, weight_frac=1))

#: Cluster presets: N lanes of the small 2-D hash NFP (fast simulation), 3-D lanes, and the FPGA-sized ``fpga-xN``
#: and ``fpga-w2-x1`` (the one that fits).
CLUSTER_PRESETS = {
    "hash2d-x1": ClusterConfig(NFP_PRESETS["hash2d-w16"], 1),
    "hash2d-x2": ClusterConfig(NFP_PRESETS["hash2d-w16"], 2),
    "hash2d-x4": ClusterConfig(NFP_PRESETS["hash2d-w16"], 4),
    "hash3d-x2": ClusterConfig(NFP_PRESETS["hash3d-w16"], 2),
    "fpga-x1": ClusterConfig(_SYNTH_NFP, 1),
    "fpga-x2": ClusterConfig(_SYNTH_NFP, 2),
    "fpga-w2-x1": ClusterConfig(_SYNTH_NFP_W2, 1),
}
