"""Reduce*, ArgMax/ArgMin and CumSum/CumProd lowered to Loop IR, against the Graph IR
interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir.builder import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.types import TensorType
from kiln.loops.expr import Reduce
from kiln.lowering import lower_graph

from .compare_backends import backend, check, one_node, rand  # noqa: F401  (fixture)

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"]
AXES = [([1], 1), ([-1, 0], 0), ([0, 2], 1), ([-2], 0), (None, 1), (None, 0)]


def _positive(op, x):
    """ReduceLogSum of a negative sum is NaN: feed it positive numbers."""
    return np.abs(x) + 0.5 if op == "ReduceLogSum" else x


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_axes_and_keepdims(op, backend):
    rng = np.random.default_rng(1)
    x = _positive(op, rand(rng, (3, 5, 2), lo=-1.5, hi=1.5))
    for axes, keep in AXES:
        consts = {1: np.array(axes, np.int64)} if axes is not None else None
        g, feeds = one_node(op, [x], {"keepdims": keep}, consts=consts)
        check(g, feeds, backend, rtol=2e-5)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceLogSumExp"])
def test_reduce_symbolic_batch(op, backend):
    rng = np.random.default_rng(2)
    x = rand(rng, (4, 3, 7))
    for axes, keep in ([-1], 0), ([0], 1), (None, 0):
        consts = {1: np.array(axes, np.int64)} if axes is not None else None
        g, feeds = one_node(op, [x], {"keepdims": keep}, consts=consts, dims={0: ("n", 3, 7)})
        check(g, feeds, backend, rtol=2e-5)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_empty_axes(op, backend):
    """An empty axes operand reduces everything, or nothing with noop_with_empty_axes=1 (the
    elementwise steps still apply: ReduceL2 of nothing is |x|)."""
    rng = np.random.default_rng(3)
    x = _positive(op, rand(rng, (2, 3)))
    for noop in (0, 1):
        g, feeds = one_node(op, [x], {"noop_with_empty_axes": noop, "keepdims": 0},
                            consts={1: np.zeros(0, np.int64)})
        check(g, feeds, backend)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_over_nothing_gives_the_identity(op, backend):
    x = np.zeros((2, 0, 3), np.float32)
    g, feeds = one_node(op, [x], {"keepdims": 1}, consts={1: np.array([1], np.int64)})
    check(g, feeds, backend)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceL2"])
def test_reduce_scalar(op, backend):
    g, feeds = one_node(op, [np.array(-1.5, np.float32)])
    check(g, feeds, backend)


@pytest.mark.parametrize("op,dtype", [("ReduceSum", np.int32), ("ReduceMean", np.int64),
                                      ("ReduceMax", np.int64), ("ReduceMin", np.int32),
                                      ("ReduceProd", np.int64), ("ReduceL2", np.int32),
                                      ("ReduceSumSquare", np.int64), ("ReduceL1", np.int32)])
def test_reduce_integers(op, dtype, backend):
    rng = np.random.default_rng(4)
    x = rand(rng, (3, 5), dtype)
    for axes in ([1], [0], None):
        consts = {1: np.array(axes, np.int64)} if axes is not None else None
        g, feeds = one_node(op, [x], {"keepdims": 0}, consts=consts)
        check(g, feeds, backend)


def test_reduce_integer_mean_over_nothing_is_zero(backend):
    g, feeds = one_node("ReduceMean", [np.zeros((3, 0), np.int32)], {"keepdims": 0},
                        consts={1: np.array([1], np.int64)})
    check(g, feeds, backend)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_bool(op, backend):
    x = np.array([[True, False, True], [False, False, False], [True, True, True]])
    for axes in ([1], [0]):
        g, feeds = one_node(op, [x], {"keepdims": 0}, consts={1: np.array(axes, np.int64)})
        check(g, feeds, backend)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceL2", "ReduceLogSumExp"])
def test_reduce_float16_accumulates_in_float32(op, backend):
    rng = np.random.default_rng(5)
    x = rand(rng, (3, 11), np.float16)
    g, feeds = one_node(op, [x], {"keepdims": 0}, consts={1: np.array([1], np.int64)})
    check(g, feeds, backend, rtol=1e-3, atol=1e-3)


def test_reduce_log_sum_exp_is_stable(backend):
    x = np.array([[1000.0, 999.0, -np.inf], [-np.inf, -np.inf, -np.inf],
                  [-1000.0, -1001.0, 3.0]], np.float32)
    g, feeds = one_node("ReduceLogSumExp", [x], {"keepdims": 0},
                        consts={1: np.array([1], np.int64)})
    got = check(g, feeds, backend)
    assert np.isfinite(got[0][0]) and got[0][1] == -np.inf


def test_reduce_is_a_reduce_expression():
    """The reduced element is a Loop IR Reduce over the input's at (fusable), not a kernel of
    its own accumulating into memory."""
    g, _ = one_node("ReduceSum", [np.zeros((3, 4), np.float32)], {"keepdims": 0},
                    consts={1: np.array([1], np.int64)})
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
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, size=(3, 5, 2)).astype(np.float32)     # many ties
    for axis in (0, 1, -1):
        for keep in (0, 1):
            for last in (0, 1):
                g, feeds = one_node(op, [x], {"axis": axis, "keepdims": keep,
                                              "select_last_index": last})
                check(g, feeds, backend)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_integers_and_symbolic_batch(op, backend):
    rng = np.random.default_rng(7)
    x = rand(rng, (4, 7), np.int32)
    g, feeds = one_node(op, [x], {"axis": 1, "keepdims": 0}, dims={0: ("n", 7)})
    check(g, feeds, backend)


def test_arg_max_finds_the_first_nan(backend):
    x = np.array([[1.0, np.nan, 3.0, np.nan], [2.0, 5.0, 5.0, 1.0]], np.float32)
    g, feeds = one_node("ArgMax", [x], {"axis": 1})
    check(g, feeds, backend)


# --- CumSum / CumProd ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
def test_scan(op, backend):
    rng = np.random.default_rng(8)
    x = rand(rng, (3, 5, 2), lo=0.5, hi=1.5)
    for axis in (0, 1, -1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                g, feeds = one_node(op, [x], {"exclusive": exclusive, "reverse": reverse},
                                    consts={1: np.array(axis, np.int64)})
                check(g, feeds, backend)


def test_cumsum_integers_symbolic_and_one_element_axis(backend):
    rng = np.random.default_rng(9)
    x = rand(rng, (4, 7), np.int32)
    g, feeds = one_node("CumSum", [x], {"reverse": 1}, consts={1: np.array([1], np.int32)},
                        dims={0: ("n", 7)})
    check(g, feeds, backend)
    g, feeds = one_node("CumSum", [rand(rng, (1,))], consts={1: np.array(0, np.int64)})
    check(g, feeds, backend)
