"""MaxUnpool against the Graph IR interpreter: indices from MaxPool (1-D, 2-D, 3-D, strides and
pads, odd sizes), an explicit output_shape, repeated indices, a symbolic batch."""

import numpy as np
import pytest

from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType

from .harness import check_graph, check_op, rand


def pool_then_unpool(shape, attrs, output_shape=False, dims=None):
    b = GraphBuilder("unpool")
    x = b.input("x", TensorType(DType.float32, dims or shape))
    y, i = b.add(get_op("MaxPool"), [x], attrs, outputs=2)
    ins = [y, i]
    if output_shape:
        ins.append(b.constant(np.array(shape, np.int64), "shape"))
    out, = b.add(get_op("MaxUnpool"), ins, attrs)
    b.output(out)
    return b.graph, {"x": rand(shape, seed=len(shape))}


@pytest.mark.parametrize("shape,attrs,output_shape", [
    ((2, 3, 9), {"kernel_shape": [2], "strides": [2]}, True),        # 9 pools to 4: 8 != 9
    ((2, 3, 8), {"kernel_shape": [2], "strides": [2]}, False),
    ((1, 2, 5, 7), {"kernel_shape": [2, 2], "strides": [2, 2]}, True),
    ((1, 2, 6, 4), {"kernel_shape": [2, 2], "strides": [2, 2]}, False),
    ((1, 1, 7, 6), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 0]}, True),
    ((1, 1, 7, 6), {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 0]}, False),
    ((1, 2, 4, 5, 3), {"kernel_shape": [2, 2, 2], "strides": [2, 2, 1]}, True),
])
def test_unpool_after_max_pool(backend, shape, attrs, output_shape):
    graph, feeds = pool_then_unpool(shape, attrs, output_shape)
    check_graph(backend, graph, feeds)


def test_unpool_symbolic_batch(backend):
    graph, feeds = pool_then_unpool((3, 2, 6, 6), {"kernel_shape": [2, 2], "strides": [2, 2]},
                                    dims=("n", 2, 6, 6))
    check_graph(backend, graph, feeds)


def test_unpool_repeated_indices_last_wins(backend):
    x = rand((1, 1, 2, 2), seed=3)
    i = np.array([[[[0, 5], [5, 15]]]], np.int64)
    check_op(backend, "MaxUnpool", [x, i], {"kernel_shape": [2, 2], "strides": [2, 2]})


def test_unpool_float64(backend):
    x = rand((2, 1, 3), np.float64, seed=4)
    i = np.array([[[0, 3, 4]], [[7, 10, 11]]], np.int64)
    check_op(backend, "MaxUnpool", [x, i], {"kernel_shape": [2], "strides": [2]})


def test_unpool_empty_batch(backend):
    check_op(backend, "MaxUnpool", [np.zeros((0, 2, 3), np.float32), np.zeros((0, 2, 3), np.int64)],
             {"kernel_shape": [2], "strides": [2]})
