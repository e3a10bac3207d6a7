"""Real-size int8 networks for the NPU, built without TensorFlow (``rampart run npu NAME``).

Each is architecture-identical to its reference (the MLPerf Tiny models follow the training scripts of
github.com/mlcommons/tiny, ``benchmark/training/*``; batch norms folded into the preceding convolution, dropout
dropped, as the int8 TFLite export does), with deterministic random weights (He-normal, per-channel gains as a folded
batch norm gives) quantised post-training on random calibration inputs, except ``digits-pool``, trained on
scikit-learn's digits. :data:`NETWORKS` maps the built-in name to a :class:`Network`; :func:`network` builds (once
per process) and returns the :class:`~models.npu.tflite_graph.GraphModel`.

==================  =============================================================================================
name                architecture
==================  =============================================================================================
kws-dscnn           MLPerf Tiny keyword spotting DS-CNN: 49x10x1 -> conv 10x4 s2 64 -> 4 x (dw 3x3, pw 64) ->
                    avg pool 24x5 -> FC 12 -> softmax
vww-mobilenetv1     MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25, 96x96x3, 13 dw/pw blocks -> avg pool 3x3
                    -> FC 2 -> softmax
resnet8             MLPerf Tiny image classification ResNet-8: 32x32x3, 3 stacks of 16/32/64 filters, residual ADD,
                    1x1 stride-2 shortcuts -> avg pool 8x8 -> FC 10 -> softmax
autoencoder         MLPerf Tiny anomaly detection FC autoencoder 640-128x4-8-128x4-640 (FULLY_CONNECTED only)
mobilenetv2         MobileNetV2-style: 96x96x3, inverted residual blocks (1x1 expand RELU6, dw 3x3 RELU6, linear
                    1x1 project, ADD), HARD_SWISH stem and head, MEAN -> FC 10 -> softmax
digits-pool         8x8 digits CNN with real pooling: conv 3x3 16 -> max pool 2x2 -> conv 3x3 32 -> avg pool 4x4 ->
                    FC 10 -> softmax; trained in numpy on scikit-learn's digits
==================  =============================================================================================
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from ..tflite_graph import GraphModel

__all__ = ["NETWORKS", "Network", "mac_body", "network", "network_names"]


@dataclass(frozen=True)
class Network:
    name: str
    description: str
    build: Callable[[], GraphModel]
    ops: tuple[str, ...]            # TFLite operators the graph uses (besides CONV_2D / DEPTHWISE / FC)

    @property
    def mac_ops_only(self) -> bool:
        """Only CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (the NPU's compute unit runs these today)."""
        return not self.ops


def _registry() -> dict[str, Network]:
    from . import autoencoder, digits_pool, kws, mobilenetv2, resnet8, vww

    nets = (
        Network("kws-dscnn", "MLPerf Tiny KWS DS-CNN (49x10x1)", kws.build, ("AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX")),
        Network("vww-mobilenetv1", "MLPerf Tiny VWW MobileNetV1 0.25 (96x96x3)", vww.build,
                ("AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX")),
        Network("resnet8", "MLPerf Tiny ResNet-8 (32x32x3)", resnet8.build,
                ("ADD", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX")),
        Network("autoencoder", "MLPerf Tiny FC autoencoder 640-128x4-8-128x4-640", autoencoder.build, ()),
        Network("mobilenetv2", "MobileNetV2-style inverted residuals (96x96x3)", mobilenetv2.build,
                ("ADD", "HARD_SWISH", "MEAN", "RESHAPE", "SOFTMAX")),
        Network("digits-pool", "digits CNN with pooling and FC + softmax (8x8x1, trained)", digits_pool.build,
                ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX")),
    )
    return {n.name: n for n in nets}


NETWORKS: dict[str, Network] = _registry()


def network_names() -> tuple[str, ...]:
    return tuple(NETWORKS)


@cache
def network(name: str) -> GraphModel:
    """The built network ``name`` (a key of :data:`NETWORKS`), built once per process."""
    return NETWORKS[name].build()


@cache
def mac_body(name: str) -> GraphModel:
    """The part of network ``name`` up to its first operator other than CONV_2D / DEPTHWISE_CONV_2D /
    FULLY_CONNECTED (:meth:`~models.npu.tflite_graph.Graph.mac_prefix`), quantised exactly as in the whole network."""
    whole = network(name)
    body = whole.graph.mac_prefix()
    return whole if body is whole.graph else body.build()
