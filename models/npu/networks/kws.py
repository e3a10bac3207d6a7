"""MLPerf Tiny keyword spotting DS-CNN (mlcommons/tiny ``benchmark/training/keyword_spotting``): 49x10x1 MFCCs ->
conv 10x4 stride 2 SAME, 64 filters, ReLU -> 4 x (depthwise 3x3 SAME ReLU, conv 1x1 64 ReLU) -> average pool
(24, 5) (``final_pool_size = (int(49/2), int(10/2))``, stride = pool, VALID: the 25x5 map's last row is dropped, as
in Keras) -> flatten -> FC 12 -> softmax."""
from ..tflite_graph import Graph, GraphModel

FILTERS = 64


def build(seed: int = 1) -> GraphModel:
    g = Graph("kws-dscnn", seed)
    x = g.input((49, 10, 1))
    x = g.conv2d(x, FILTERS, (10, 4), (2, 2), "SAME", "RELU")
    for _ in range(4):
        x = g.depthwise(x, (3, 3), (1, 1), "SAME", "RELU")
        x = g.conv2d(x, FILTERS, (1, 1), (1, 1), "SAME", "RELU")
    x = g.avg_pool(x, (24, 5))
    x = g.reshape(x, (FILTERS,))
    g.output(g.softmax(g.fully_connected(x, 12)))
    return g.build()
