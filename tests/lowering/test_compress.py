"""Compress against the Graph IR interpreter: a constant condition, with and without an axis,
shorter than the axis, all false."""

import numpy as np
import pytest

from .harness import check_op, rand


@pytest.mark.parametrize("axis,cond", [
    (0, [0, 1, 1]), (1, [1, 0, 1, 1, 0, 0, 1]), (-1, [0, 1]), (2, [1, 1, 0, 1, 1]),
    (None, [1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1]), (1, [0, 0, 0]),
])
def test_compress(backend, axis, cond):
    x = rand((3, 7, 5), seed=1)
    attrs = {} if axis is None else {"axis": axis}
    check_op(backend, "Compress", [x, np.array(cond, bool)], attrs, consts=[1])


def test_compress_int_none_kept(backend):
    x = rand((4, 3), np.int32, seed=2)
    check_op(backend, "Compress", [x, np.array([0, 0], bool)], consts=[1])
