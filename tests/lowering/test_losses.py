"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against the Graph IR interpreter: every
reduction, class weights, ignore_index (also on every target), spatial dims, i32 and i64
targets, float16 and float64, the optional log_prob output, a symbolic batch."""

import numpy as np
import pytest

from .harness import check_op, rand


def targets(shape, classes, dtype=np.int64, seed=0, ignore=None):
    t = np.random.default_rng(seed).integers(0, classes, shape).astype(dtype)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return t


@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [None, 2, -1])
def test_loss(backend, op, reduction, weighted, ignore):
    x = rand((3, 5, 4), seed=1)
    ins = [x, targets((3, 4), 5, seed=2, ignore=ignore)]
    if weighted:
        ins.append(rand((5,), seed=3, low=0.1, high=2))
    attrs = {"reduction": reduction}
    if ignore is not None:
        attrs["ignore_index"] = ignore
    check_op(backend, op, ins, attrs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_softmax_cross_entropy_log_prob_output(backend, reduction):
    x = rand((4, 3), seed=4)
    check_op(backend, "SoftmaxCrossEntropyLoss", [x, targets((4,), 3, np.int32, seed=5)],
             {"reduction": reduction}, outputs=2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
@pytest.mark.parametrize("op", ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"])
def test_loss_dtypes_and_2d_spatial(backend, dtype, op):
    x = rand((2, 4, 3, 5), dtype, seed=6)
    check_op(backend, op, [x, targets((2, 3, 5), 4, seed=7), rand((4,), dtype, seed=8, low=0.5)])


def test_loss_symbolic_batch(backend):
    x = rand((5, 3), seed=9)
    check_op(backend, "SoftmaxCrossEntropyLoss", [x, targets((5,), 3, seed=10)],
             dims={0: ("n", 3), 1: ("n",)}, rtol=1e-5, atol=1e-6)
