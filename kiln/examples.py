"""Built-in example models, built in code with seeded random weights (no downloads)."""

from __future__ import annotations

import numpy as np

from .ir import GraphBuilder, tensor
from .ir.dtypes import DType


def small_cnn(seed: int = 0, classes: int = 10):
    """A small image classifier: two conv blocks, global pooling, a linear layer and softmax.

    Input `image` is f32[batch,3,32,32]; output `probs` is f32[batch,classes].
    """
    rng = np.random.default_rng(seed)

    def weight(*shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    b = GraphBuilder("small_cnn")
    x = b.input("image", tensor(DType.float32, "batch", 3, 32, 32))
    w1, b1 = b.constant(weight(8, 3, 3, 3), "conv1.weight"), b.constant(np.zeros(8, np.float32), "conv1.bias")
    w2, b2 = b.constant(weight(16, 8, 3, 3), "conv2.weight"), b.constant(np.full(16, 0.1, np.float32), "conv2.bias")
    wf = b.constant(weight(classes, 16), "fc.weight")
    bf = b.constant(np.zeros(classes, np.float32), "fc.bias")
    h = b.Relu(b.Conv(x, w1, b1, pads=[1, 1, 1, 1], name="conv1"), name="relu1")
    h = b.MaxPool(h, kernel_shape=[2, 2], strides=[2, 2], name="pool1")
    h = b.Relu(b.Conv(h, w2, b2, pads=[1, 1, 1, 1], name="conv2"), name="relu2")
    h = b.Flatten(b.GlobalAveragePool(h, name="gap"), axis=1, name="flatten")
    logits = b.Gemm(h, wf, bf, transB=1, name="fc")
    b.output(b.Softmax(logits, axis=-1, outputs=["probs"], name="softmax"))
    return b.graph
