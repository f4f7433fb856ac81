"""Unique against the Graph IR interpreter (Loop IR interpreter and native code): sorted and
unsorted, all four outputs, with and without an axis (negative too), all-equal, all-distinct,
NaN / -0.0, bfloat16, size-0 inputs and slices, a symbolic input size, a constant input (folded
when compiling), and only some outputs kept."""

import numpy as np
import pytest

from kiln.ir.dtypes import DType

from .harness import check_op, rand


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("shape,dtype", [((3, 4), np.int32), ((17,), np.float32),
                                         ((2, 3, 2), np.int64), ((6,), np.bool_)])
def test_unique_flat(backend, sorted_, shape, dtype):
    x = rand(shape, dtype, seed=len(shape), low=-2, high=2)
    check_op(backend, "Unique", [x], {"sorted": sorted_}, outputs=4)


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unique_axis(backend, sorted_, axis):
    x = rand((4, 5, 3), np.int32, seed=3, low=0, high=1)
    x[2] = x[0]
    x[:, 3] = x[:, 1]
    x[..., 2] = x[..., 0]
    check_op(backend, "Unique", [x], {"sorted": sorted_, "axis": axis}, outputs=4)


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("x,attrs", [
    (np.full((3, 3), 7, np.int32), {}),
    (np.arange(10, 0, -1, dtype=np.int64), {}),
    (np.array([2.0, np.nan, 1.0, np.nan, -0.0, 0.0, 2.0], np.float32), {}),
    (np.zeros((0,), np.float32), {}),
    (np.zeros((0, 3), np.float32), {"axis": 1}),
    (np.zeros((3, 0), np.float32), {"axis": 0}),
    (np.array([5.0], np.float32), {}),
], ids=["all_equal", "all_distinct", "nan_negzero", "size_0", "no_slices", "empty_slices",
        "length_1"])
def test_unique_edges(backend, sorted_, x, attrs):
    check_op(backend, "Unique", [x], {"sorted": sorted_, **attrs}, outputs=4)


def test_unique_bfloat16(backend):
    x = rand((9,), np.float32, seed=5, low=-2, high=2).round().astype(DType.bfloat16.np)
    check_op(backend, "Unique", [x], outputs=4)


def test_unique_symbolic_input(backend):
    x = rand((6, 2), np.int32, seed=6, low=0, high=1)
    check_op(backend, "Unique", [x], {"axis": 0}, dims={0: ("n", 2)}, outputs=4)


def test_unique_constant_input_folds(backend):
    program = check_op(backend, "Unique", [rand((8,), np.int32, seed=7, low=0, high=3)],
                       consts=[0], outputs=4)
    assert not program.computed


@pytest.mark.parametrize("outputs", [1, 3])
def test_unique_some_outputs(backend, outputs):
    x = rand((12,), np.int32, seed=8, low=0, high=4)
    check_op(backend, "Unique", [x], {"sorted": 0}, outputs=outputs)


@pytest.mark.parametrize("sorted_", [0, 1])
def test_unique_many_merge_passes(backend, sorted_):
    """257 elements: nine merge passes, the last run of each pass shorter than the others."""
    x = rand((257,), np.float32, seed=9, low=-20, high=20).round()
    x[::17] = np.nan
    check_op(backend, "Unique", [x], {"sorted": sorted_}, outputs=4)
    y = rand((37, 3), np.int8, seed=10, low=0, high=2)
    check_op(backend, "Unique", [y], {"sorted": sorted_, "axis": 0}, outputs=4)
