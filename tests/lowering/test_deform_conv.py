"""DeformConv against the Graph IR interpreter: 2-D with offsets that land between pixels and
outside the image, mask and bias, groups and offset groups, strides/pads/dilations, 1-D, 3-D,
float64."""

import numpy as np
import pytest

from .harness import check_op, rand


def case(x_shape, w_shape, out_spatial, og=1, with_mask=False, with_bias=False, seed=0,
         dtype=np.float32):
    taps = int(np.prod(w_shape[2:]))
    nd = len(x_shape) - 2
    n = x_shape[0]
    x = rand(x_shape, dtype, seed=seed)
    w = rand(w_shape, dtype, seed=seed + 1)
    offset = rand((n, og * taps * nd, *out_spatial), dtype, seed=seed + 2, low=-2.5, high=2.5)
    b = rand((w_shape[0],), dtype, seed=seed + 3) if with_bias else None
    mask = rand((n, og * taps, *out_spatial), dtype, seed=seed + 4, low=0, high=1) \
        if with_mask else None
    return [x, w, offset, b, mask] if with_mask else [x, w, offset, b]


def test_deform_conv_2d(backend):
    check_op(backend, "DeformConv", case((1, 2, 5, 6), (3, 2, 2, 2), (4, 5)), rtol=1e-5,
             atol=1e-5)


def test_deform_conv_mask_bias_groups(backend):
    ins = case((2, 4, 6, 5), (6, 2, 3, 2), (3, 3), og=2, with_mask=True, with_bias=True, seed=5)
    attrs = {"group": 2, "offset_group": 2, "strides": [2, 1], "pads": [1, 0, 0, 0],
             "dilations": [1, 2]}
    check_op(backend, "DeformConv", ins, attrs, rtol=1e-5, atol=1e-5)


def test_deform_conv_1d_float64(backend):
    check_op(backend, "DeformConv", case((1, 3, 7), (2, 3, 3), (7,), seed=9, dtype=np.float64),
             {"pads": [1, 1]}, rtol=1e-12, atol=1e-12)


def test_deform_conv_3d(backend):
    check_op(backend, "DeformConv", case((1, 1, 3, 4, 3), (2, 1, 2, 2, 2), (2, 3, 2), seed=12,
                                         with_mask=True), rtol=1e-5, atol=1e-5)


def test_deform_conv_symbolic_batch(backend):
    ins = case((3, 2, 5, 5), (2, 2, 3, 3), (3, 3), with_bias=True, seed=20)
    check_op(backend, "DeformConv", ins, rtol=1e-5, atol=1e-5,
             dims={0: ("n", 2, 5, 5), 2: ("n", 18, 3, 3)})
