"""Det against the Graph IR interpreter: batches, 1x1, singular and pivoting-needing matrices."""

import numpy as np
import pytest

from .harness import check_op, rand


@pytest.mark.parametrize("shape", [(3, 3), (1, 1), (2, 5, 5), (2, 3, 4, 4), (7, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_det(backend, shape, dtype):
    check_op(backend, "Det", [rand(shape, dtype, seed=1)], rtol=1e-4, atol=1e-5)


def test_det_singular_and_zero_pivot(backend):
    x = np.array([[[0, 1, 2], [1, 0, 3], [4, -3, 8]],       # needs a row swap
                  [[1, 2, 3], [2, 4, 6], [0, 1, 1]],        # singular
                  [[0, 0, 1], [0, 1, 0], [1, 0, 0]]], np.float32)
    check_op(backend, "Det", [x], rtol=1e-5, atol=1e-5)


def test_det_float16(backend):
    check_op(backend, "Det", [rand((2, 4, 4), np.float16, seed=2)], rtol=1e-2, atol=1e-2)


def test_det_parallel_batch(backend):
    check_op(backend, "Det", [rand((2100, 4, 4), seed=3)], rtol=1e-4, atol=1e-4)
