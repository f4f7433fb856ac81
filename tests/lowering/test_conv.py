"""Conv, ConvTranspose and ConvInteger lowered to Loop IR, against the Graph IR interpreter
(`backend` runs the program with the Loop IR interpreter and natively)."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.errors import LoweringError
from kiln.ir.builder import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.types import TensorType
from kiln.lowering import lower_graph

from .harness import check_graph, check_op, rand

TOL = {"rtol": 1e-5, "atol": 1e-5}

# (x shape, w shape, attributes, bias)
CONV_CASES = [
    ((1, 2, 7), (3, 2, 3), {}, True),                                          # 1-D
    ((2, 3, 5, 4), (2, 3, 3, 2), {"pads": [1, 0, 2, 1]}, True),                # 2-D, pads
    ((1, 4, 7, 6), (4, 2, 3, 3), {"group": 2, "strides": [2, 3]}, False),      # groups, strides
    ((1, 3, 8, 7), (3, 1, 3, 2), {"group": 3, "dilations": [2, 3],
                                  "pads": [2, 1, 1, 2]}, True),                # depthwise
    ((1, 2, 5, 5), (1, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, True),
    ((1, 2, 6, 5), (2, 2, 2, 3), {"auto_pad": "SAME_LOWER"}, False),
    ((1, 2, 5, 6), (2, 2, 3, 3), {"auto_pad": "VALID", "strides": [1, 2]}, True),
    ((1, 2, 4, 3, 5), (2, 2, 2, 1, 3), {"pads": [1, 0, 1, 0, 1, 1]}, True),     # 3-D
    ((1, 3, 3, 3), (5, 3, 1, 1), {}, True),                                    # 1x1
    ((1, 1, 7), (2, 1, 3), {"pads": [3, 3], "strides": [2]}, False),           # pad > kernel/2
]


@pytest.mark.parametrize("xs,ws,attrs,bias", CONV_CASES, ids=[str(c[2]) for c in CONV_CASES])
def test_conv(xs, ws, attrs, bias, backend):
    ins = [rand(xs, seed=1), rand(ws, seed=2)] + ([rand((ws[0],), seed=3)] if bias else [])
    check_op(backend, "Conv", ins, attrs, **TOL)


def test_conv_constant_weights_symbolic_batch(backend):
    b = GraphBuilder("conv")
    x = b.input("x", TensorType(DType.float32, ("n", 2, 5, 5)))
    w = b.constant(rand((4, 2, 3, 3), seed=4), "w")
    bias = b.constant(rand((4,), seed=5), "b")
    b.output(b.Conv(x, w, bias, pads=[1, 1, 1, 1], strides=[2, 1]))
    check_graph(backend, b.graph, {"x": rand((3, 2, 5, 5), seed=6)}, **TOL)


def test_conv_symbolic_spatial(backend):
    x, w = rand((1, 2, 6, 5), seed=7), rand((3, 2, 3, 2), seed=8)
    for attrs in ({"pads": [1, 0, 1, 1], "strides": [2, 1]}, {"auto_pad": "SAME_UPPER",
                                                              "strides": [2, 2]}):
        check_op(backend, "Conv", [x, w], attrs, dims={0: (1, 2, "h", "w")}, **TOL)


def test_conv_float64_and_float16(backend):
    for dtype, tol in ((np.float64, 1e-10), (np.float16, 3e-3)):
        ins = [rand((1, 2, 5, 4), dtype, seed=9, low=-2, high=2),
               rand((2, 2, 2, 2), dtype, seed=10, low=-2, high=2), rand((2,), dtype, seed=11)]
        check_op(backend, "Conv", ins, {"pads": [1, 1, 0, 0]}, rtol=tol, atol=tol)


def test_conv_kernel_must_be_static():
    b = GraphBuilder("conv")
    x = b.input("x", TensorType(DType.float32, (1, 2, 5)))
    w = b.input("w", TensorType(DType.float32, (3, 2, "k")))
    b.output(b.Conv(x, w))
    with pytest.raises(LoweringError, match="kernel"):
        lower_graph(b.graph)


TRANSPOSE_CASES = [
    ((1, 2, 4), (2, 3, 3), {}),
    ((1, 2, 3, 4), (2, 2, 3, 2), {"strides": [2, 3]}),
    ((2, 4, 3, 3), (4, 1, 2, 3), {"group": 2, "strides": [2, 1], "pads": [1, 0, 0, 1]}),
    ((1, 2, 3, 3), (2, 2, 3, 3), {"dilations": [2, 1], "strides": [2, 2],
                                  "output_padding": [1, 0]}),
    ((1, 1, 3, 2), (1, 2, 2, 2), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 1, 3, 2), (1, 2, 3, 2), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    ((1, 2, 3), (2, 1, 3), {"output_shape": [9], "strides": [3]}),
    ((1, 2, 2, 2, 2), (2, 1, 2, 2, 2), {"strides": [2, 1, 2]}),              # 3-D
]


@pytest.mark.parametrize("xs,ws,attrs", TRANSPOSE_CASES, ids=[str(c[2]) for c in TRANSPOSE_CASES])
def test_conv_transpose(xs, ws, attrs, backend):
    group = attrs.get("group", 1)
    ins = [rand(xs, seed=12), rand(ws, seed=13), rand((ws[1] * group,), seed=14)]
    check_op(backend, "ConvTranspose", ins, attrs, **TOL)


def test_conv_transpose_symbolic_batch_no_bias(backend):
    check_op(backend, "ConvTranspose", [rand((2, 2, 3, 3), seed=15), rand((2, 3, 2, 2), seed=16)],
             {"strides": [2, 2]}, dims={0: ("n", 2, 3, 3)}, **TOL)


def test_conv_integer(backend):
    x = rand((1, 4, 5, 4), np.uint8, seed=17, low=0, high=255)
    w = rand((4, 2, 2, 3), np.uint8, seed=18, low=0, high=255)
    for x_zp, w_zp in ((None, None), (np.uint8(128), np.uint8(3)),
                       (np.array([7], np.uint8), np.arange(4, dtype=np.uint8))):
        check_op(backend, "ConvInteger", [x, w, x_zp, w_zp],
                 {"group": 2, "pads": [1, 0, 0, 1], "strides": [1, 2]})
