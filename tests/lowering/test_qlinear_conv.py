"""QLinearConv against the Graph IR interpreter: uint8/int8 mixes, per-tensor and per-channel
weight scales and zero points, bias, groups, strides, pads, dilations, 1-D and 2-D, saturation."""

import numpy as np
import pytest

from .harness import check_op, rand

f32 = np.float32


def q(shape, dtype, seed):
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    return rand(shape, dtype, seed=seed, low=lo, high=hi)


@pytest.mark.parametrize("xd,wd,yd", [(np.uint8, np.uint8, np.uint8), (np.int8, np.int8, np.int8),
                                      (np.uint8, np.int8, np.uint8)])
@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_conv_2d(backend, xd, wd, yd, per_channel):
    x, w = q((1, 4, 6, 7), xd, 1), q((6, 2, 3, 2), wd, 2)
    ws = np.linspace(0.002, 0.004, 6).astype(f32) if per_channel else f32(0.003)
    wz = q((6,), wd, 3) // 8 if per_channel else np.array(q((), wd, 3) // 8, wd)
    bias = rand((6,), np.int32, seed=4, low=-500, high=500)
    ins = [x, f32(0.05), np.array(q((), xd, 5) // 4, xd), w, ws, wz, f32(0.2),
           np.array(q((), yd, 6) // 2, yd), bias]
    attrs = {"group": 2, "strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]}
    check_op(backend, "QLinearConv", [np.asarray(v) for v in ins], attrs)


def test_qlinear_conv_1d_no_bias_saturates(backend):
    x, w = q((2, 3, 9), np.uint8, 7), q((2, 3, 3), np.uint8, 8)
    ins = [x, f32(0.5), np.uint8(10), w, f32(0.5), np.uint8(3), f32(0.01), np.uint8(128)]
    check_op(backend, "QLinearConv", [np.asarray(v) for v in ins], {"auto_pad": "SAME_UPPER"})


def test_qlinear_conv_symbolic_batch(backend):
    x, w = q((3, 2, 5, 5), np.uint8, 9), q((3, 2, 3, 3), np.int8, 10)
    ins = [x, f32(0.1), np.uint8(7), w, f32(0.02), np.int8(0), f32(0.3), np.uint8(100)]
    check_op(backend, "QLinearConv", [np.asarray(v) for v in ins], {"pads": [1, 1, 1, 1]},
             dims={0: ("n", 2, 5, 5)})
