"""MaxPool (with Indices), AveragePool, LpPool and the global pools lowered to Loop IR, against
the Graph IR interpreter (`backend` runs the program with the Loop IR interpreter and natively)."""

from __future__ import annotations

import numpy as np
import pytest

from .harness import check_op, rand

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
    x = rand(shape, np.int32, seed=1).astype(np.float32)        # ties inside windows
    check_op(backend, "MaxPool", [x], attrs, outputs=2)


def test_max_pool_column_major_indices_and_integers(backend):
    x = rand((1, 2, 5, 4), np.int32, seed=2).astype(np.float32)
    check_op(backend, "MaxPool", [x], {"kernel_shape": [2, 3], "pads": [1, 1, 0, 1],
                                       "storage_order": 1}, outputs=2)
    check_op(backend, "MaxPool", [rand((1, 2, 5, 4), np.int8, seed=3, low=-128, high=127)],
             {"kernel_shape": [3, 2], "pads": [1, 1, 1, 1]})


@pytest.mark.parametrize("shape,attrs", POOL_CASES, ids=IDS)
def test_average_pool(shape, attrs, backend):
    x = rand(shape, seed=4)
    for include in (0, 1):
        check_op(backend, "AveragePool", [x], {**attrs, "count_include_pad": include},
                 rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(p, backend):
    x = rand((1, 2, 5, 6), seed=5)
    for attrs in ({"kernel_shape": [2, 3]}, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                             "strides": [2, 2]}):
        check_op(backend, "LpPool", [x], {**attrs, "p": p}, rtol=1e-5, atol=1e-5)


def test_pool_symbolic_batch_and_spatial(backend):
    x = rand((2, 2, 6, 5), seed=6)
    dims = {0: ("n", 2, "h", "w")}
    for op, attrs in (("MaxPool", {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1],
                                   "strides": [2, 1]}),
                      ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2],
                                       "ceil_mode": 1}),
                      ("AveragePool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER",
                                       "strides": [2, 2]})):
        check_op(backend, op, [x], attrs, dims=dims, rtol=1e-5, atol=1e-6)


def test_pool_float16(backend):
    x = rand((1, 2, 5, 5), np.float16, seed=7, low=-2, high=2)
    for op in ("MaxPool", "AveragePool"):
        check_op(backend, op, [x], {"kernel_shape": [2, 3], "pads": [1, 1, 0, 1]}, rtol=2e-3,
                 atol=2e-3)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"])
def test_global_pool(op, backend):
    for shape in ((2, 3, 5), (1, 2, 3, 4), (1, 1, 2, 1, 3), (2, 3)):
        attrs = {"p": 3} if op == "GlobalLpPool" and len(shape) == 4 else {}
        check_op(backend, op, [rand(shape, seed=8)], attrs, dims={0: ("n", *shape[1:])},
                 rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,attrs", POOL_CASES, ids=IDS)
def test_max_pool_values_only(shape, attrs, backend):
    """Y alone: a float32 2-D pool reads a padded, phase-split copy of x (contiguous taps)."""
    prog = check_op(backend, "MaxPool", [rand(shape, seed=7)], attrs)
    assert _reduces(prog) == (len(shape) != 4)


def _reduces(prog) -> bool:
    """Does any store of the program compute a Reduce (the plain windowed form)?"""
    from kiln.loops.expr import Reduce, children
    from kiln.loops.stmt import Store, walk

    def has(e):
        return isinstance(e, Reduce) or any(has(c) for c in children(e))
    return any(has(s.value) for k in prog.kernels for s in walk(k.body) if isinstance(s, Store))


def test_average_pool_reads_a_phase_split_copy(backend):
    prog = check_op(backend, "AveragePool", [rand((1, 3, 11, 10), seed=8)],
                    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                     "count_include_pad": 1}, rtol=1e-5, atol=1e-6)
    assert len(prog.kernels) == 1 and not _reduces(prog)     # the copy and the pool: one kernel


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_large_window_keeps_the_reduce_form(op, backend):
    """A window of more than MAX_UNROLLED_TAPS taps (onnx's 60x80 dilated MaxPool case, here
    9x8) is not written out tap by tap: it stays a Reduce, and still matches."""
    from kiln.lowering.pool import MAX_UNROLLED_TAPS
    attrs = {"kernel_shape": [9, 8], "strides": [3, 2], "pads": [1, 2, 1, 2]}
    assert 9 * 8 > MAX_UNROLLED_TAPS
    prog = check_op(backend, op, [rand((1, 2, 23, 21), seed=9)], attrs, rtol=1e-5, atol=1e-6)
    assert _reduces(prog)
