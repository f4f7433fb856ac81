"""TopK against the Graph IR interpreter: odd sizes, ties (lower index first), NaNs, both
directions, every axis, K = 0 and K = n."""

import numpy as np
import pytest

from .harness import check_op, rand

I64 = np.int64


@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis,k", [(-1, 3), (0, 5), (1, 1), (1, 7), (2, 0)])
def test_topk(backend, largest, axis, k):
    x = rand((5, 7, 3), seed=1)
    check_op(backend, "TopK", [x, np.array([k], I64)], {"axis": axis, "largest": largest},
             consts=[1], outputs=2)


@pytest.mark.parametrize("largest", [0, 1])
def test_topk_ties_and_nans(backend, largest):
    x = np.array([[1, 3, 3, 1, np.nan, 2, 3, np.nan, -1, 1, 2]], np.float32)
    check_op(backend, "TopK", [x, np.array([8], I64)], {"largest": largest}, consts=[1],
             outputs=2)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.uint8])
def test_topk_dtypes(backend, dtype):
    x = rand((4, 13), dtype, seed=2, low=0, high=5)
    check_op(backend, "TopK", [x, np.array([6], I64)], {"largest": 1}, consts=[1], outputs=2)
    check_op(backend, "TopK", [x, np.array([4], I64)], {"largest": 0, "axis": 0}, consts=[1],
             outputs=2)


def test_topk_parallel_rows_and_symbolic_batch(backend):
    x = rand((1100, 31), seed=3)                    # enough elements for a parallel row loop
    check_op(backend, "TopK", [x, np.array([5], I64)], consts=[1], outputs=2)
    check_op(backend, "TopK", [rand((6, 9), seed=4), np.array([4], I64)], consts=[1],
             outputs=2, dims={0: ("n", 9)})
