"""RoiAlign: every output element (roi, channel, bin row, bin column) is one Reduce over the
bin's sampling grid of bilinear taps into the roi's image, as kiln/ir/ops/image.py defines it.

The grid size is sampling_ratio, or ceil(roi size / bins) per roi read at run time (a Reduce
whose bounds are loaded values). Sample positions are computed in the rois' dtype in the
reference's order of operations (so they floor to the same pixels), the taps summed in float64.
A sample outside [-1, size] contributes 0; a position is clamped to >= 0, and a low corner at
the last pixel or beyond reads that pixel with weight 1. Average mode divides by the grid size;
max mode takes the largest weighted corner of each valid sample (0 for an invalid one), and the
largest of those. The batch index is clamped into the batch (the interpreter reports it).
"""

from __future__ import annotations

import math

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Reduce
from . import exprs as E
from .registry import register
from .tensor import Tensor

f64, i64 = DType.float64, DType.int64


def _axis_taps(pos, limit, dt):
    """(low, high, low weight, high weight, valid) of one sample position along an axis."""
    valid = E.binary("and", E.ge(pos, E.const(-1.0, dt)),
                     E.le(pos, E.cast(limit, dt)))
    pos = E.binary("max", pos, E.const(0.0, dt))
    low = E.cast(E.unary("floor", pos), i64)
    last = E.sub(limit, 1)
    edge = E.ge(low, last)
    low_c = E.select(edge, last, low)
    high = E.select(edge, last, E.add(low, 1))
    frac = E.select(edge, E.const(0.0, dt), pos - E.cast(low, dt))
    one = E.const(1.0, dt)
    # clamp for the loads: an invalid sample may sit far outside
    low_c = E.clamp(low_c, 0, last)
    high = E.clamp(high, 0, last)
    return low_c, high, E.cast(one - frac, f64), E.cast(frac, f64), valid


@register(ops.RoiAlign)
def lower_roi_align(ctx, node, inputs):
    x, rois, batch_indices = inputs
    a = ctx.attrs(node)
    dt = rois.dtype if rois.dtype in (DType.float32, DType.float64) else DType.float32
    n, channels, height, width = x.shape
    ph, pw = a.output_height, a.output_width
    shift = 0.5 if a.coordinate_transformation_mode == "half_pixel" else 0.0
    shape = (rois.shape[0], channels, Const(ph), Const(pw))
    dtype = ctx.out_dtype(node)

    def coord(r, k):
        v = E.cast(rois.at((r, Const(k))), dt)
        return v * E.const(a.spatial_scale, dt) - E.const(shift, dt)

    def at(idx):
        r, c, i, j = idx
        b = E.clamp(E.index(batch_indices.at((r,))), 0, E.sub(n, 1))
        x0, y0, x1, y1 = (coord(r, k) for k in range(4))
        roi_w, roi_h = x1 - x0, y1 - y0
        if not shift:
            roi_w = E.binary("max", roi_w, E.const(1.0, dt))
            roi_h = E.binary("max", roi_h, E.const(1.0, dt))
        bin_h, bin_w = roi_h / E.const(ph, dt), roi_w / E.const(pw, dt)
        if a.sampling_ratio > 0:
            gh = gw = Const(a.sampling_ratio)
        else:
            gh = E.cast(E.unary("ceil", roi_h / E.const(ph, dt)), i64)
            gw = E.cast(E.unary("ceil", roi_w / E.const(pw, dt)), i64)
        sy, sx = ctx.fresh_var("sy"), ctx.fresh_var("sx")

        def position(start, k, s, bin_size, grid):
            return start + E.cast(k, dt) * bin_size + \
                (E.cast(s, dt) + E.const(0.5, dt)) * bin_size / E.cast(grid, dt)
        yl, yh, wyl, wyh, vy = _axis_taps(position(y0, i, sy, bin_h, gh), height, dt)
        xl, xh, wxl, wxh, vx = _axis_taps(position(x0, j, sx, bin_w, gw), width, dt)

        def pixel(yy, xx):
            return E.cast(x.at((b, c, yy, xx)), f64)
        corners = [wyl * wxl * pixel(yl, xl), wyl * wxh * pixel(yl, xh),
                   wyh * wxl * pixel(yh, xl), wyh * wxh * pixel(yh, xh)]
        valid = E.binary("and", vy, vx)
        zero = E.const(0.0, f64)
        axes = ((sy, E.ZERO, gh), (sx, E.ZERO, gw))
        count = E.mul(gh, gw)
        if a.mode == "avg":
            total = Reduce("add", zero, axes,
                           E.select(valid, corners[0] + corners[1] + corners[2] + corners[3], zero))
            value = total / E.cast(E.maximum(count, 1), f64)
        else:
            best = E.binary("max", E.binary("max", corners[0], corners[1]),
                            E.binary("max", corners[2], corners[3]))
            value = Reduce("max", E.const(-math.inf, f64), axes, E.select(valid, best, zero))
        some = E.binary("and", E.gt(gh, 0), E.gt(gw, 0))
        return E.cast(E.select(some, value, zero), dtype)
    return [Tensor(shape, dtype, at)]
