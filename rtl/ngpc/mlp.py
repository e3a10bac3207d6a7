"""The NGPC MLP engine: tiny-cuda-nn's fully fused MLP (no biases, ReLU), every layer unrolled, one query per cycle.

Each :class:`MlpLayer` holds its weights on chip in registers (all of them are read every cycle) and computes all its
outputs in one cycle, ``outputs * inputs`` multipliers and one adder tree per output, then registers them: the
engine has ``config.macs`` multipliers per lane and a latency of one cycle per layer. The arithmetic is specified by
:mod:`models.ngpc.mlp` (bit-exact). Weights are written one row (an output neuron's ``inputs`` weights, input 0 in
the low bits) per cycle through the ``weights`` port.
"""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.ngpc.mlp import MlpConfig
from rtl.ngpc.encoder import PipelineControl

__all__ = ["MLP_BLOCK_MAP", "MlpEngine", "MlpLayer", "WeightWriteSignature"]

#: Fault-injection blocks of the MLP engine (layers up to 9): the weight registers (``w_<row>``, the on-chip weight
#: storage) and the rest of each layer, its activation registers (``mlp_array``).
MLP_BLOCK_MAP: dict[str, str] = {"control": "control"}
MLP_BLOCK_MAP.update({f"layer_{k}": "mlp_array" for k in range(9)})
MLP_BLOCK_MAP.update({f"layer_{k}.w_{j}": "mlp_weights" for k in range(9) for j in range(128)})


def WeightWriteSignature(config: MlpConfig) -> wiring.Signature:
    widest = max(i for _, i in config.layer_shapes)
    return wiring.Signature({
        "en": Out(1), "layer": Out(max(1, len(config.layer_shapes).bit_length())),
        "row": Out(max(o for o, _ in config.layer_shapes).bit_length()),
        "data": Out(widest * config.weight_bits)})


class MlpLayer(wiring.Component):
    def __init__(self, config: MlpConfig, index: int, relu: bool):
        self._config, self._relu = config, relu
        self.n_out, self.n_in = config.layer_shapes[index]
        ww = WeightWriteSignature(config).members
        super().__init__({"en": In(1), "a": In(signed(config.act_bits)).array(self.n_in),
                          "wr_en": In(1), "wr_row": In(ww["row"].shape), "wr_data": In(ww["data"].shape),
                          "y": Out(signed(config.act_bits)).array(self.n_out)})

    def elaborate(self, platform):
        m = Module()
        cfg, wb = self._config, self._config.weight_bits
        lo, hi = -(1 << (cfg.act_bits - 1)), (1 << (cfg.act_bits - 1)) - 1
        for j in range(self.n_out):
            row = Signal(self.n_in * wb, name=f"w_{j}")
            with m.If(self.wr_en & (self.wr_row == j)):
                m.d.sync += row.eq(self.wr_data[:self.n_in * wb])
            acc = Signal(signed(cfg.act_bits + wb + self.n_in.bit_length() + 1), name=f"acc_{j}")
            m.d.comb += acc.eq(sum(self.a[i] * row.word_select(i, wb).as_signed() for i in range(self.n_in))
                               + (1 << (cfg.weight_frac - 1)))
            scaled = acc >> cfg.weight_frac
            low = 0 if self._relu else lo
            with m.If(self.en):
                m.d.sync += self.y[j].eq(Mux(scaled > hi, hi, Mux(scaled < low, low, scaled)))
        return m


class MlpEngine(wiring.Component):
    """``inputs`` stream of ``inputs`` activations (input 0 lowest), ``outputs`` stream of ``outputs`` values."""

    def __init__(self, config: MlpConfig):
        self.config = config
        ab = config.act_bits
        super().__init__({"inputs": In(stream.Signature(config.inputs * ab)),
                          "outputs": Out(stream.Signature(config.outputs * ab)),
                          "weights": In(WeightWriteSignature(config))})

    @property
    def latency(self) -> int:
        return len(self.config.layer_shapes)

    def elaborate(self, platform):
        m = Module()
        cfg, ab = self.config, self.config.act_bits
        m.submodules.control = control = PipelineControl(self.latency)
        m.d.comb += [control.in_valid.eq(self.inputs.valid), control.out_ready.eq(self.outputs.ready),
                     self.inputs.ready.eq(control.en), self.outputs.valid.eq(control.out_valid)]
        a = [self.inputs.payload.word_select(i, ab).as_signed() for i in range(cfg.inputs)]
        last = len(cfg.layer_shapes) - 1
        for k in range(last + 1):
            m.submodules[f"layer_{k}"] = layer = MlpLayer(cfg, k, relu=k < last)
            m.d.comb += [layer.en.eq(control.en), layer.wr_en.eq(self.weights.en & (self.weights.layer == k)),
                         layer.wr_row.eq(self.weights.row), layer.wr_data.eq(self.weights.data)]
            m.d.comb += [layer.a[i].eq(a[i]) for i in range(layer.n_in)]
            a = list(layer.y)
        m.d.comb += [self.outputs.payload.word_select(j, ab).eq(a[j]) for j in range(cfg.outputs)]
        return m
