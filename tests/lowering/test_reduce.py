"""Reduce*, ArgMax/ArgMin and CumSum/CumProd lowered to Loop IR, against the Graph IR
interpreter (`backend` runs the program with the Loop IR interpreter and natively)."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir.builder import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import TensorType
from kiln.loops.expr import Reduce
from kiln.lowering import lower_graph

from .harness import check_graph, check_op, one_node_graph, rand

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
AXES = [([1], 1), ([-1, 0], 0), ([0, 2], 1), ([-2], 0), (None, 1), (None, 0)]


def reduce_op(backend, op, x, axes, attrs=None, **kw):
    """check_op with `axes` (a list, or None for an absent operand) as a constant operand."""
    if axes is None:
        return check_op(backend, op, [x], attrs, **kw)
    return check_op(backend, op, [x, np.array(axes, np.int64)], attrs, consts=(1,), **kw)


def _positive(op, x):
    """ReduceLogSum of a negative sum is NaN: feed it positive numbers."""
    return np.abs(x) + 0.5 if op == "ReduceLogSum" else x


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_axes_and_keepdims(op, backend):
    x = _positive(op, rand((3, 5, 2), seed=1, low=-1.5, high=1.5))
    for axes, keep in AXES:
        reduce_op(backend, op, x, axes, {"keepdims": keep}, rtol=2e-5)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceLogSumExp"])
def test_reduce_symbolic_batch(op, backend):
    x = rand((4, 3, 7), seed=2)
    for axes, keep in ([-1], 0), ([0], 1), (None, 0):
        reduce_op(backend, op, x, axes, {"keepdims": keep}, dims={0: ("n", 3, 7)}, rtol=2e-5)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_empty_axes(op, backend):
    """An empty axes operand reduces everything, or nothing with noop_with_empty_axes=1 (the
    elementwise steps still apply: ReduceL2 of nothing is |x|)."""
    x = _positive(op, rand((2, 3), seed=3))
    for noop in (0, 1):
        reduce_op(backend, op, x, [], {"noop_with_empty_axes": noop, "keepdims": 0})


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_over_nothing_gives_the_identity(op, backend):
    reduce_op(backend, op, np.zeros((2, 0, 3), np.float32), [1], {"keepdims": 1})


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceL2"])
def test_reduce_scalar(op, backend):
    reduce_op(backend, op, np.array(-1.5, np.float32), None)


@pytest.mark.parametrize("op,dtype", [("ReduceSum", np.int32), ("ReduceMean", np.int64),
                                      ("ReduceMax", np.int64), ("ReduceMin", np.int32),
                                      ("ReduceProd", np.int64), ("ReduceL2", np.int32),
                                      ("ReduceSumSquare", np.int64), ("ReduceL1", np.int32)])
def test_reduce_integers(op, dtype, backend):
    x = rand((3, 5), dtype, seed=4, low=-6, high=6)
    for axes in ([1], [0], None):
        reduce_op(backend, op, x, axes, {"keepdims": 0})


def test_reduce_integer_mean_over_nothing_is_zero(backend):
    reduce_op(backend, "ReduceMean", np.zeros((3, 0), np.int32), [1], {"keepdims": 0})


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_bool(op, backend):
    x = np.array([[True, False, True], [False, False, False], [True, True, True]])
    for axes in ([1], [0]):
        reduce_op(backend, op, x, axes, {"keepdims": 0})


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceL2", "ReduceLogSumExp"])
def test_reduce_float16_accumulates_in_float32(op, backend):
    reduce_op(backend, op, rand((3, 11), np.float16, seed=5, low=-2, high=2), [1],
              {"keepdims": 0}, rtol=1e-3, atol=1e-3)


def test_reduce_log_sum_exp_is_stable(backend):
    x = np.array([[1000.0, 999.0, -np.inf], [-np.inf, -np.inf, -np.inf],
                  [-1000.0, -1001.0, 3.0]], np.float32)
    g, feeds = one_node_graph("ReduceLogSumExp", [x, np.array([1], np.int64)],
                              {"keepdims": 0}, consts=(1,))
    check_graph(backend, g, feeds)
    want = interpret(g, feeds)[0]
    assert np.isfinite(want[0]) and want[1] == -np.inf


def test_reduce_is_a_reduce_expression():
    """The reduced element is a Loop IR Reduce over the input's at (fusable), not a kernel of
    its own accumulating into memory."""
    g, _ = one_node_graph("ReduceSum", [np.zeros((3, 4), np.float32), np.array([1], np.int64)],
                          {"keepdims": 0}, consts=(1,))
    program = lower_graph(g)
    assert len(program.kernels) == 1
    [store] = program.kernels[0].stores()
    assert isinstance(store.value, Reduce)


def test_reduce_axes_must_be_known_when_compiling():
    b = GraphBuilder("dynamic_axes")
    x = b.input("x", TensorType(DType.float32, (2, 3)))
    axes = b.input("axes", TensorType(DType.int64, (1,)))
    b.output(b.ReduceSum(x, axes))
    with pytest.raises(LoweringError, match="known when compiling"):
        lower_graph(b.graph)


# --- ArgMax / ArgMin ----------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce(op, backend):
    x = rand((3, 5, 2), np.int64, seed=6, low=0, high=2).astype(np.float32)     # many ties
    for axis in (0, 1, -1):
        for keep in (0, 1):
            for last in (0, 1):
                check_op(backend, op, [x], {"axis": axis, "keepdims": keep,
                                            "select_last_index": last})


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_integers_and_symbolic_batch(op, backend):
    check_op(backend, op, [rand((4, 7), np.int32, seed=7)], {"axis": 1, "keepdims": 0},
             dims={0: ("n", 7)})


def test_arg_max_finds_the_first_nan(backend):
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, 1.0]], np.float32)
    check_op(backend, "ArgMax", [x], {"axis": 1})


# --- CumSum / CumProd ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
def test_scan(op, backend):
    x = rand((3, 5, 2), seed=8, low=0.5, high=1.5)
    for axis in (0, 1, -1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                check_op(backend, op, [x, np.array(axis, np.int64)],
                         {"exclusive": exclusive, "reverse": reverse}, consts=(1,))


def test_cumsum_integers_symbolic_and_one_element_axis(backend):
    check_op(backend, "CumSum", [rand((4, 7), np.int32, seed=9), np.array([1], np.int32)],
             {"reverse": 1}, consts=(1,), dims={0: ("n", 7)})
    check_op(backend, "CumSum", [rand((1,), seed=9), np.array(0, np.int64)], consts=(1,))
