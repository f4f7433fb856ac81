"""DynamicQuantizeLinear and QLinearMatMul against the Graph IR interpreter."""

import numpy as np
import pytest

from .harness import check_op, rand


@pytest.mark.parametrize("shape,low,high", [
    ((3, 7), -3, 3), ((5,), 0.5, 4), ((2, 3, 5), -6, -1), ((), -2, 2), ((0, 3), -1, 1),
])
def test_dynamic_quantize_linear(backend, shape, low, high):
    x = rand(shape, seed=1, low=low, high=high)
    check_op(backend, "DynamicQuantizeLinear", [x], outputs=3)


def test_dynamic_quantize_linear_all_zero(backend):
    check_op(backend, "DynamicQuantizeLinear", [np.zeros((4, 3), np.float32)], outputs=3)


def _q(shape, dtype, seed):
    return rand(shape, dtype, seed=seed, low=np.iinfo(dtype).min, high=np.iinfo(dtype).max)


@pytest.mark.parametrize("adt,bdt,ydt", [(np.uint8, np.uint8, np.uint8),
                                         (np.int8, np.int8, np.int8),
                                         (np.uint8, np.int8, np.uint8)])
@pytest.mark.parametrize("per_axis", [False, True])
def test_qlinear_matmul(backend, adt, bdt, ydt, per_axis):
    m, k, n = 3, 5, 7
    a, b = _q((m, k), adt, 1), _q((k, n), bdt, 2)
    f = np.float32
    if per_axis:
        a_s, a_z = np.array([0.02, 0.03, 0.05], f), _q((m,), adt, 3)
        b_s, b_z = np.linspace(0.01, 0.04, n).astype(f), _q((n,), bdt, 4)
    else:
        a_s, a_z = np.array(0.02, f), _q((), adt, 3)
        b_s, b_z = np.array([0.03], f), _q((1,), bdt, 4)
    y_s, y_z = np.array(3.0, f), _q((), ydt, 5)
    check_op(backend, "QLinearMatMul", [a, a_s, a_z, b, b_s, b_z, y_s, y_z])


def test_qlinear_matmul_batched(backend):
    f = np.float32
    a, b = _q((2, 3, 4), np.uint8, 6), _q((4, 5), np.uint8, 7)
    check_op(backend, "QLinearMatMul", [a, np.array(0.05, f), np.array(113, np.uint8), b,
                                        np.array(0.01, f), np.array(98, np.uint8),
                                        np.array(0.7, f), np.array(120, np.uint8)])
