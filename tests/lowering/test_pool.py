"""MaxPool (with Indices), AveragePool, LpPool and the global pools lowered to Loop IR, against
the Graph IR interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from .compare_backends import backend, check, one_node, rand  # noqa: F401  (fixture)

# (x shape, attributes)
POOL_CASES = [
    ((1, 2, 7), {"kernel_shape": [3]}),
    ((2, 1, 5, 6), {"kernel_shape": [2, 3], "strides": [2, 2]}),
    ((1, 2, 5, 5), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ((1, 1, 6, 7), {"kernel_shape": [3, 2], "pads": [2, 0, 1, 1], "strides": [2, 3]}),
    ((1, 1, 7, 6), {"kernel_shape": [2, 2], "dilations": [2, 3]}),
    ((1, 2, 5, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 1, 6, 5), {"kernel_shape": [2, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                    "ceil_mode": 1}),
    ((1, 1, 5, 5), {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 1, 4, 5), {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER"}),
    ((1, 1, 5, 6), {"kernel_shape": [3, 3], "auto_pad": "VALID", "strides": [1, 2]}),
    ((1, 1, 3, 4, 5), {"kernel_shape": [2, 2, 3], "pads": [1, 0, 1, 0, 1, 1]}),     # 3-D
]
IDS = [str(c[1]) for c in POOL_CASES]


@pytest.mark.parametrize("shape,attrs", POOL_CASES, ids=IDS)
def test_max_pool_with_indices(shape, attrs, backend):
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, size=shape).astype(np.float32)        # ties inside windows
    g, feeds = one_node("MaxPool", [x], attrs, outputs=2)
    check(g, feeds, backend)


def test_max_pool_column_major_indices_and_integers(backend):
    rng = np.random.default_rng(2)
    x = rng.integers(-3, 4, size=(1, 2, 5, 4)).astype(np.float32)
    g, feeds = one_node("MaxPool", [x], {"kernel_shape": [2, 3], "pads": [1, 1, 0, 1],
                                         "storage_order": 1}, outputs=2)
    check(g, feeds, backend)
    g, feeds = one_node("MaxPool", [rand(rng, (1, 2, 5, 4), np.int8)],
                        {"kernel_shape": [3, 2], "pads": [1, 1, 1, 1]})
    check(g, feeds, backend)


@pytest.mark.parametrize("shape,attrs", POOL_CASES, ids=IDS)
def test_average_pool(shape, attrs, backend):
    rng = np.random.default_rng(3)
    x = rand(rng, shape)
    for include in (0, 1):
        g, feeds = one_node("AveragePool", [x], {**attrs, "count_include_pad": include})
        check(g, feeds, backend, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(p, backend):
    rng = np.random.default_rng(4)
    x = rand(rng, (1, 2, 5, 6))
    for attrs in ({"kernel_shape": [2, 3]}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                             "strides": [2, 2]}):
        g, feeds = one_node("LpPool", [x], {**attrs, "p": p})
        check(g, feeds, backend, rtol=1e-5, atol=1e-5)


def test_pool_symbolic_batch_and_spatial(backend):
    rng = np.random.default_rng(5)
    x = rand(rng, (2, 2, 6, 5))
    dims = {0: ("n", 2, "h", "w")}
    for op, attrs in (("MaxPool", {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1],
                                   "strides": [2, 1]}),
                      ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2],
                                       "ceil_mode": 1}),
                      ("AveragePool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER",
                                       "strides": [2, 2]})):
        g, feeds = one_node(op, [x], attrs, dims=dims)
        check(g, feeds, backend, rtol=1e-5, atol=1e-6)


def test_pool_float16(backend):
    rng = np.random.default_rng(6)
    x = rand(rng, (1, 2, 5, 5), np.float16)
    for op in ("MaxPool", "AveragePool"):
        g, feeds = one_node(op, [x], {"kernel_shape": [2, 3], "pads": [1, 1, 0, 1]})
        check(g, feeds, backend, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pool(op, backend):
    rng = np.random.default_rng(7)
    for shape in ((2, 3, 5), (1, 2, 3, 4), (1, 1, 2, 1, 3), (2, 3)):
        attrs = {"p": 3} if op == "GlobalLpPool" and len(shape) == 4 else {}
        g, feeds = one_node(op, [rand(rng, shape)], attrs, dims={0: ("n", *shape[1:])})
        check(g, feeds, backend, rtol=1e-5, atol=1e-5)
