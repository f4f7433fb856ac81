"""Scatter lowerings (ScatterElements, ScatterND, TensorScatter) against the Graph IR interpreter:
odd sizes, negative indices, duplicate indices (last write wins / combined in order)."""

import numpy as np
import pytest

from .harness import check_op, rand

I64 = np.int64
REDUCTIONS = ["none", "add", "mul", "max", "min"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scatter_elements(backend, reduction, axis):
    data = rand((5, 7), seed=1)
    n = data.shape[axis]
    rng = np.random.default_rng(2)
    indices = rng.integers(-n, n, size=(3, 7) if axis == 0 else (5, 4)).astype(I64)
    indices.flat[0] = indices.flat[1] = -1          # duplicates, negative
    updates = rand(indices.shape, seed=3)
    check_op(backend, "ScatterElements", [data, indices, updates],
             {"axis": axis, "reduction": reduction})


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.bool_])
def test_scatter_elements_dtypes(backend, dtype):
    data = rand((3, 5), dtype, seed=4)
    indices = np.array([[1, 1, -3, 0, 2]], I64)
    updates = rand((1, 5), dtype, seed=5)
    for reduction in ("none", "add", "max"):
        check_op(backend, "ScatterElements", [data, indices, updates],
                 {"axis": 0, "reduction": reduction})


def test_scatter_elements_int32_indices_rank1(backend):
    data = rand((11,), seed=6)
    indices = np.array([10, -1, 3, 3, 0], np.int32)
    check_op(backend, "ScatterElements", [data, indices, rand((5,), seed=7)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_scatter_nd(backend, reduction):
    data = rand((4, 5, 3), seed=8)
    indices = np.array([[[0, 1], [-1, 4]], [[0, 1], [2, -5]]], I64)    # a duplicate tuple
    updates = rand((2, 2, 3), seed=9)
    check_op(backend, "ScatterND", [data, indices, updates], {"reduction": reduction})


@pytest.mark.parametrize("k", [1, 3])
def test_scatter_nd_slices_and_elements(backend, k):
    data = rand((3, 2, 5), seed=10)
    indices = np.array([[2, 0, 4], [-3, 1, 0], [1, 1, 1]], I64)[:, :k]
    updates = rand((3,) + data.shape[k:], seed=11)
    check_op(backend, "ScatterND", [data, indices, updates])


@pytest.mark.parametrize("mode,starts", [("linear", [0, 3, 1]), ("circular", [4, 6, -1])])
@pytest.mark.parametrize("axis", [-2, 1])
def test_tensor_scatter(backend, mode, starts, axis):
    cache = rand((3, 7, 2), seed=12)
    update = rand((3, 3, 2), seed=13)
    check_op(backend, "TensorScatter", [cache, update, np.array(starts, I64)],
             {"mode": mode, "axis": axis})


def test_tensor_scatter_without_indices(backend):
    cache = rand((2, 3, 5, 4), seed=14)
    check_op(backend, "TensorScatter", [cache, rand((2, 3, 2, 4), seed=15)])


def test_scatter_with_symbolic_sizes(backend):
    data = rand((6, 4), seed=16)
    indices = np.array([[0, -1, 2, 5], [5, 1, -6, 0]], I64)
    check_op(backend, "ScatterElements", [data, indices, rand((2, 4), seed=17)],
             {"reduction": "add"}, dims={0: ("n", 4), 1: ("m", 4), 2: ("m", 4)})
    nd_idx = np.array([[1], [-2], [1]], I64)
    check_op(backend, "ScatterND", [data, nd_idx, rand((3, 4), seed=18)],
             dims={0: ("n", 4), 1: ("k", 1), 2: ("k", 4)})
    check_op(backend, "TensorScatter", [rand((2, 7, 3), seed=19), rand((2, 2, 3), seed=20),
                                        np.array([1, 5], I64)], dims={0: ("b", 7, 3),
                                                                     1: ("b", 2, 3)})
