"""MLPerf Tiny image classification ResNet-8 (mlcommons/tiny ``benchmark/training/image_classification/
keras_model.py``, ``resnet_v1_eembc`` with 16 filters): 32x32x3 -> conv 3x3 16 ReLU -> three stacks of two 3x3
convs (the second without activation) added to the shortcut, then ReLU: stack 1 (16 filters) with an identity
shortcut, stacks 2 and 3 (32, 64 filters) strided by 2 in the first conv, with a 1x1 stride-2 conv shortcut ->
average pool 8x8 -> flatten -> FC 10 -> softmax."""
from ..tflite_graph import Graph, GraphModel


def build(seed: int = 3) -> GraphModel:
    g = Graph("resnet8", seed)
    x = g.input((32, 32, 3))
    x = g.conv2d(x, 16, activation="RELU")
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = g.conv2d(x, filters, (3, 3), (stride, stride), "SAME", "RELU")
        y = g.conv2d(y, filters)
        if stride != 1:
            x = g.conv2d(x, filters, (1, 1), (stride, stride), "SAME")
        x = g.add(x, y, "RELU")
    x = g.avg_pool(x, (8, 8))
    x = g.reshape(x, (64,))
    g.output(g.softmax(g.fully_connected(x, 10)))
    return g.build()
