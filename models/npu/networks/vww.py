"""MLPerf Tiny visual wake words (mlcommons/tiny ``benchmark/training/visual_wake_words``): MobileNetV1 with width
multiplier 0.25 on 96x96x3: conv 3x3 s2 8 ReLU, then 13 depthwise-separable blocks (dw 3x3 ReLU, pw 1x1 ReLU) with
pointwise widths 16, 32, 32, 64, 64, 128, 128 x5, 256, 256 (stride 2 in the depthwise of blocks 2, 4, 6 and 12),
average pool over the final 3x3 map, flatten, FC 2, softmax."""
from ..tflite_graph import Graph, GraphModel

#: (pointwise filters, depthwise stride) of the 13 blocks, alpha 0.25.
BLOCKS = ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (128, 1), (128, 1), (128, 1),
          (256, 2), (256, 1))


def build(seed: int = 2) -> GraphModel:
    g = Graph("vww-mobilenetv1", seed)
    x = g.input((96, 96, 3))
    x = g.conv2d(x, 8, (3, 3), (2, 2), "SAME", "RELU")
    for filters, stride in BLOCKS:
        x = g.depthwise(x, (3, 3), (stride, stride), "SAME", "RELU")
        x = g.conv2d(x, filters, (1, 1), (1, 1), "SAME", "RELU")
    x = g.avg_pool(x, x.shape[:2])
    x = g.reshape(x, (x.shape[-1],))
    g.output(g.softmax(g.fully_connected(x, 2)))
    return g.build()
