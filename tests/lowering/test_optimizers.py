"""Momentum, Adagrad and Adam lowered against the Graph IR interpreter: several tensors of
different shapes (rank 0, size 0, odd sizes), f32 and f64, first step (T = 0) and a later one."""

import numpy as np
import pytest

from .harness import check_op, rand

SHAPES = [[(7,)], [(3, 5), ()], [(2,), (0, 3), (1, 1, 3)]]


def tensors(shapes, groups, dtype, positive_last):
    out = []
    for g in range(groups):
        for k, s in enumerate(shapes):
            x = rand(s, dtype, seed=10 * g + k)
            out.append(np.abs(x) + 0.1 if positive_last and g == groups - 1 else x)
    return out


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("t", [0, 5])
def test_momentum(backend, shapes, mode, t):
    attrs = {"alpha": 0.9, "beta": 0.5, "norm_coefficient": 0.01, "mode": mode}
    ins = [np.array(0.1, np.float32), np.array(t, np.int64),
           *tensors(shapes, 3, np.float32, False)]
    check_op(backend, "Momentum", ins, attrs, outputs=2 * len(shapes), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("t", [0, 3])
def test_adagrad(backend, shapes, t):
    attrs = {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.001}
    ins = [np.array(0.2, np.float64), np.array(t, np.int64),
           *tensors(shapes, 3, np.float64, True)]
    check_op(backend, "Adagrad", ins, attrs, outputs=2 * len(shapes), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("t", [0, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam(backend, shapes, t, dtype):
    attrs = {"alpha": 0.8, "beta": 0.95, "epsilon": 1e-4, "norm_coefficient": 0.01,
             "norm_coefficient_post": 0.02}
    ins = [np.array(0.05, np.float32), np.array(t, np.int64), *tensors(shapes, 4, dtype, True)]
    check_op(backend, "Adam", ins, attrs, outputs=3 * len(shapes), rtol=1e-5, atol=1e-6)
