"""A MobileNetV2-style network on 96x96x3: conv 3x3 s2 16 + HARD_SWISH, inverted residual blocks (1x1 expansion
conv RELU6 -- omitted at expansion 1 --, depthwise 3x3 RELU6, linear 1x1 projection; ADD of the block input when
stride 1 and the width is unchanged), a 1x1 conv to 128 + HARD_SWISH (MobileNetV3's head activation), MEAN over
height and width, FC 10, softmax."""
from ..tflite_graph import Graph, GraphModel, Tensor

#: (expansion t, output channels c, repeats n, first stride s), as MobileNetV2's table, scaled down.
BLOCKS = ((1, 8, 1, 1), (4, 16, 2, 2), (4, 24, 2, 2), (4, 32, 2, 2), (4, 48, 1, 1))


def build(seed: int = 4) -> GraphModel:
    g = Graph("mobilenetv2", seed)
    x = g.input((96, 96, 3))
    x = g.hard_swish(g.conv2d(x, 16, (3, 3), (2, 2), "SAME"))
    for t, c, n, s in BLOCKS:
        for i in range(n):
            stride = s if i == 0 else 1
            y = x if t == 1 else g.conv2d(x, t * x.shape[-1], (1, 1), activation="RELU6")
            y = g.depthwise(y, (3, 3), (stride, stride), "SAME", "RELU6")
            y = g.conv2d(y, c, (1, 1))
            x = g.add(x, y) if stride == 1 and x.shape == y.shape else y
    x = g.hard_swish(g.conv2d(x, 128, (1, 1)))
    x = g.reshape(g.mean(x), (128,))
    g.output(g.softmax(g.fully_connected(x, 10)))
    return g.build()


def features() -> GraphModel:
    """The network up to its head HARD_SWISH (every conv, depthwise, residual ADD and both fused HARD_SWISH tables;
    without MEAN, FC and SOFTMAX), quantised exactly as in the whole network."""
    from . import network

    g = network("mobilenetv2").graph
    last = max(i for i, node in enumerate(g.nodes) if node.kind == "hardswish")
    return g.prefix(Tensor(last, g.nodes[last].shape), "mobilenetv2-features").build()
