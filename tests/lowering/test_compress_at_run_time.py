"""Compress with a condition fed at run time (its kept count computed by a kernel) against the
Graph IR interpreter: with and without an axis, shorter than the axis, all false, all true,
size 0, symbolic sizes; a condition that might be longer than the axis is a LoweringError."""

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.lowering import lower_graph

from .harness import check_op, rand


@pytest.mark.parametrize("axis,length", [(0, 3), (1, 7), (-1, 5), (2, 4), (None, 105),
                                         (None, 20), (1, 0)])
def test_compress_fed_condition(backend, axis, length):
    x = rand((3, 7, 5), seed=1)
    attrs = {} if axis is None else {"axis": axis}
    for seed in range(2):
        cond = rand((length,), np.bool_, seed=seed)
        check_op(backend, "Compress", [x, cond], attrs)


@pytest.mark.parametrize("value", [False, True])
def test_compress_all_or_nothing(backend, value):
    x = rand((4, 3), np.int32, seed=2)
    check_op(backend, "Compress", [x, np.full(4, value)], {"axis": 0})
    check_op(backend, "Compress", [x, np.full(12, value)])


def test_compress_symbolic_sizes(backend):
    x = rand((6, 2), np.float32, seed=3)
    cond = rand((6,), np.bool_, seed=4)
    check_op(backend, "Compress", [x, cond], {"axis": 0}, dims={0: ("n", 2), 1: ("n",)})


def test_compress_empty_input(backend):
    check_op(backend, "Compress", [np.zeros((0, 3), np.float32), np.zeros(0, bool)], {"axis": 0})


def test_condition_perhaps_longer_than_the_axis_is_a_clear_error():
    b = GraphBuilder("compress")
    x = b.input("x", tensor(DType.float32, "n", 2))
    c = b.input("c", tensor(DType.bool, "m"))
    b.output(b.Compress(x, c, axis=0))
    with pytest.raises(LoweringError, match="input 'condition'") as e:
        lower_graph(b.graph)
    assert e.value.node.op.name == "Compress"
