"""Softmax family and the statistics-based normalizations lowered to Loop IR, against the
Graph IR interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.ir.dtypes import DType

from .compare_backends import backend, check, one_node, rand  # noqa: F401  (fixture)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family(op, backend):
    rng = np.random.default_rng(1)
    x = rand(rng, (3, 5, 2), lo=-4, hi=4)
    for axis in (0, 1, -1, -3):
        g, feeds = one_node(op, [x], {"axis": axis})
        check(g, feeds, backend, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_symbolic_large_and_empty(op, backend):
    rng = np.random.default_rng(2)
    x = rand(rng, (4, 7), lo=-50, hi=50) + np.float32(500)     # exp would overflow unshifted
    g, feeds = one_node(op, [x], {"axis": -1}, dims={0: ("n", 7)})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)
    g, feeds = one_node(op, [np.zeros((0, 3), np.float32)], {"axis": 1})
    check(g, feeds, backend)


def test_softmax_float16(backend):
    rng = np.random.default_rng(3)
    g, feeds = one_node("Softmax", [rand(rng, (3, 9), np.float16)], {"axis": 1})
    check(g, feeds, backend, rtol=2e-3, atol=1e-3)


def test_hardmax_ties_pick_the_first(backend):
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, 0, 1, 1]], np.float32)
    g, feeds = one_node("Hardmax", [x], {"axis": 1})
    check(g, feeds, backend)


def test_layer_norm(backend):
    rng = np.random.default_rng(4)
    x = rand(rng, (2, 3, 5))
    for axis in (-1, 1, -3):
        shape = x.shape[axis % 3:]
        scale, bias = rand(rng, shape), rand(rng, shape)
        g, feeds = one_node("LayerNormalization", [x, scale, bias], {"axis": axis,
                                                                      "epsilon": 1e-3},
                            outputs=3)
        check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_layer_norm_broadcast_scale_no_bias_symbolic(backend):
    rng = np.random.default_rng(5)
    x = rand(rng, (4, 3, 5))
    g, feeds = one_node("LayerNormalization", [x, rand(rng, (5,))], {"axis": 1},
                        dims={0: ("batch", 3, 5)})
    check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_layer_norm_float16_stats_in_float32(backend):
    rng = np.random.default_rng(6)
    x = rand(rng, (3, 7), np.float16)
    g, feeds = one_node("LayerNormalization", [x, rand(rng, (7,), np.float16)], outputs=3)
    check(g, feeds, backend, rtol=5e-3, atol=5e-3)


def test_layer_norm_float64_with_float32_stash(backend):
    rng = np.random.default_rng(7)
    x = rand(rng, (3, 4), np.float64)
    g, feeds = one_node("LayerNormalization", [x, rand(rng, (4,), np.float64),
                                               rand(rng, (4,), np.float64)], outputs=3)
    check(g, feeds, backend, rtol=1e-5, atol=1e-6)
    g, feeds = one_node("LayerNormalization", [x, rand(rng, (4,), np.float64)],
                        {"stash_type": DType.float64}, outputs=2)
    check(g, feeds, backend, rtol=1e-10, atol=1e-12)


def test_rms_norm(backend):
    rng = np.random.default_rng(8)
    x = rand(rng, (2, 3, 5))
    for axis, scale_shape in ((-1, (5,)), (1, (3, 5)), (1, (1, 5))):
        g, feeds = one_node("RMSNormalization", [x, rand(rng, scale_shape)],
                            {"axis": axis, "epsilon": 1e-4}, dims={0: ("n", 3, 5)})
        check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_group_norm(backend):
    rng = np.random.default_rng(9)
    x = rand(rng, (2, 6, 3, 2))
    for groups in (1, 2, 3, 6):
        g, feeds = one_node("GroupNormalization", [x, rand(rng, (6,)), rand(rng, (6,))],
                            {"num_groups": groups}, dims={0: ("n", 6, 3, 2)})
        check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_instance_norm(backend):
    rng = np.random.default_rng(10)
    for shape in ((2, 3, 5), (1, 2, 3, 3), (2, 1, 1, 2, 3)):
        x = rand(rng, shape)
        g, feeds = one_node("InstanceNormalization", [x, rand(rng, (shape[1],)),
                                                      rand(rng, (shape[1],))],
                            {"epsilon": 1e-2})
        check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_batch_norm_inference(backend):
    rng = np.random.default_rng(11)
    for shape in ((3, 4), (2, 3, 5), (2, 3, 2, 3)):
        c = shape[1]
        ins = [rand(rng, shape), rand(rng, (c,)), rand(rng, (c,)), rand(rng, (c,)),
               rand(rng, (c,), lo=0.1, hi=2.0)]
        g, feeds = one_node("BatchNormalization", ins, {"epsilon": 1e-3},
                            dims={0: ("n", *shape[1:])})
        check(g, feeds, backend, rtol=1e-5, atol=1e-5)


def test_batch_norm_training(backend):
    rng = np.random.default_rng(12)
    x = rand(rng, (3, 4, 5))
    ins = [x, rand(rng, (4,)), rand(rng, (4,)), rand(rng, (4,)), rand(rng, (4,), lo=0.1)]
    g, feeds = one_node("BatchNormalization", ins, {"training_mode": 1, "momentum": 0.7},
                        outputs=3)
    check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_mean_variance_normalization(backend):
    rng = np.random.default_rng(13)
    x = rand(rng, (2, 3, 2, 3))
    for axes in ((0, 2, 3), (1,), (-1, -2)):
        g, feeds = one_node("MeanVarianceNormalization", [x], {"axes": axes})
        check(g, feeds, backend, rtol=1e-4, atol=1e-5)


def test_lp_norm(backend):
    rng = np.random.default_rng(14)
    x = rand(rng, (3, 5, 2))
    x[1, :, 0] = 0        # a zero norm gives 0, not NaN
    for p in (1, 2):
        for axis in (0, 1, -1):
            g, feeds = one_node("LpNormalization", [x], {"axis": axis, "p": p})
            check(g, feeds, backend, rtol=1e-5, atol=1e-6)


def test_lrn(backend):
    rng = np.random.default_rng(15)
    x = rand(rng, (2, 5, 3))
    for size in (1, 2, 3, 6):
        g, feeds = one_node("LRN", [x], {"size": size, "alpha": 0.01, "beta": 0.6,
                                         "bias": 1.5})
        check(g, feeds, backend, rtol=1e-5, atol=1e-6)
