"""QLinearConv: the int32 convolution of the zero-point-centered 8-bit operands (as ConvInteger,
through conv.conv), plus the int32 bias, requantized per element:
round-half-even(acc * (x_scale * w_scale / y_scale) + y_zero_point) clamped into the output
type. The weight's scale and zero point are one value or one per output channel; the
multiplier is formed in float32 and applied in float64, as the reference does.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from . import exprs as E
from .conv import conv
from .linalg import zero_point_of
from .registry import register
from .tensor import Tensor

f32, f64, i32 = DType.float32, DType.float64, DType.int32
_RANGES = {DType.uint8: (0, 255), DType.int8: (-128, 127)}


def _scalar(t: Tensor):
    return t.at((E.ZERO,) * t.rank)


def _per_channel(t: Tensor):
    """channel index -> the entry of a per-tensor or per-output-channel parameter."""
    if t.rank == 1 and not E.is_const(t.shape[0], 1):
        return lambda m: t.at((m,))
    return lambda m: _scalar(t)


@register(ops.QLinearConv)
def lower_qlinear_conv(ctx, node, inputs):
    x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias = (list(inputs) + [None])[:9]
    out = ctx.out_dtype(node)
    if x.dtype not in _RANGES or w.dtype not in _RANGES or out not in _RANGES:
        ctx.fail(node, "only 8-bit integer QLinearConv is lowered",
                 hint="quantize x, w and y to int8 or uint8")
    zx = E.const(0, i32) if x_zp is None else E.cast(_scalar(x_zp), i32)
    zw = zero_point_of(w_zp, w.shape, 0)
    acc = conv(ctx, node, x, w, None, lambda v: E.cast(v, i32) - zx,
               lambda v, idx: E.cast(v, i32) - zw(idx), i32, i32)
    ws = _per_channel(w_scale)
    lo, hi = _RANGES[out]

    def at(idx):
        m = idx[1]
        total = acc.at(idx)
        if bias is not None:
            total = E.binary("add", total, E.cast(bias.at((m,)), i32))
        mult = E.cast(_scalar(x_scale), f32) * E.cast(ws(m), f32) / E.cast(_scalar(y_scale), f32)
        y = E.unary("round", E.cast(total, f64) * E.cast(mult, f64) +
                    E.cast(_scalar(y_zp), f64))
        y = E.binary("min", E.binary("max", y, E.const(lo, f64)), E.const(hi, f64))
        return E.cast(y, out)
    return [Tensor(acc.shape, out, at)]
