"""MLPerf Tiny anomaly detection autoencoder (mlcommons/tiny ``benchmark/training/anomaly_detection``): 640 inputs
-> 4 x FC 128 ReLU -> FC 8 ReLU -> 4 x FC 128 ReLU -> FC 640 (linear). FULLY_CONNECTED only."""
from ..tflite_graph import Graph, GraphModel

WIDTHS = (128, 128, 128, 128, 8, 128, 128, 128, 128)


def build(seed: int = 5) -> GraphModel:
    g = Graph("autoencoder", seed)
    x = g.input((640,))
    for units in WIDTHS:
        x = g.fully_connected(x, units, "RELU")
    g.output(g.fully_connected(x, 640))
    return g.build()
