"""DFT against the Graph IR interpreter: forward, inverse, one-sided both ways, real and complex
input, dft_length shorter and longer than the signal, another axis."""

import numpy as np
import pytest

from .harness import check_op, rand

I64 = np.int64


@pytest.mark.parametrize("inverse,onesided", [(0, 0), (1, 0), (0, 1)])
@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("length", [None, 5, 11])
def test_dft(backend, inverse, onesided, parts, length):
    x = rand((2, 7, parts), seed=1)
    ins = [x, None if length is None else np.array(length, I64)]
    check_op(backend, "DFT", ins, {"inverse": inverse, "onesided": onesided}, consts=[1],
             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length", [None, 8, 9, 4])
def test_irfft(backend, length):
    x = rand((3, 5, 2), seed=2)
    ins = [x, None if length is None else np.array(length, I64)]
    check_op(backend, "DFT", ins, {"inverse": 1, "onesided": 1}, consts=[1], rtol=1e-4,
             atol=1e-4)


@pytest.mark.parametrize("axis", [1, -3])
def test_dft_axis(backend, axis):
    x = rand((3, 6, 4, 2), seed=3)
    check_op(backend, "DFT", [x, None, np.array(axis, I64)], consts=[2], rtol=1e-4, atol=1e-4)


def test_dft_float64(backend):
    check_op(backend, "DFT", [rand((4, 13, 2), np.float64, seed=4)], rtol=1e-9, atol=1e-9)
