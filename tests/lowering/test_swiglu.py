"""SwiGLU against the Graph IR interpreter: odd sizes, rank 0, size 0, alpha, narrow and wide
floats, a symbolic dim."""

import numpy as np
import pytest

from kiln.ir.dtypes import DType

from .harness import check_op, rand


@pytest.mark.parametrize("shape", [(3, 7), (), (0, 5), (2, 1, 9)])
@pytest.mark.parametrize("alpha", [1.0, 1.702])
def test_swiglu(backend, shape, alpha):
    check_op(backend, "SwiGLU", [rand(shape, seed=1), rand(shape, seed=2)], {"alpha": alpha})


@pytest.mark.parametrize("dtype", [np.float16, DType.bfloat16.np, np.float64])
def test_swiglu_dtypes(backend, dtype):
    check_op(backend, "SwiGLU", [rand((4, 5), dtype, seed=3), rand((4, 5), dtype, seed=4)])


def test_swiglu_symbolic(backend):
    check_op(backend, "SwiGLU", [rand((6, 3), seed=5), rand((6, 3), seed=6)],
             dims={0: ("n", 3), 1: ("n", 3)})
