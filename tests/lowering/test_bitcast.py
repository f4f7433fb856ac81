"""BitCast against the Graph IR interpreter: inputs, computed values (written to a temp first),
constants, views; float <-> int of each width, signed <-> unsigned, bool -> uint8."""

import numpy as np
import pytest

from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType

from .harness import check_graph, check_op, rand


@pytest.mark.parametrize("src,to", [
    (np.float32, DType.int32), (np.int32, DType.float32), (np.float64, DType.int64),
    (np.int64, DType.float64), (np.uint32, DType.int32), (np.int8, DType.uint8),
    (np.uint16, DType.int16), (np.float16, DType.uint16), (np.int16, DType.float16),
    (np.bool_, DType.uint8),
])
def test_bitcast(backend, src, to):
    x = rand((3, 5), src, seed=1, low=-100, high=100)
    check_op(backend, "BitCast", [x], {"to": to})


def test_bitcast_scalar_and_empty(backend):
    check_op(backend, "BitCast", [np.array(1.5, np.float32)], {"to": DType.int32})
    check_op(backend, "BitCast", [np.zeros((0, 3), np.float32)], {"to": DType.uint32})


def test_bitcast_of_computed_and_transposed_values(backend):
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, 3, 4))
    y = b.BitCast(b.Neg(x), to=DType.int32)
    z = b.BitCast(b.Transpose(x, perm=[1, 0]), to=DType.uint32)
    w = b.Add(b.BitCast(x, to=DType.int32), b.constant(np.array(1, np.int32)))
    b.output(y, z, w)
    check_graph(backend, b.graph, {"x": rand((3, 4), seed=2)})
