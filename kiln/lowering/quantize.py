"""Quantized ops that are not elementwise: DynamicQuantizeLinear and QLinearMatMul.

DynamicQuantizeLinear: one kernel writes the scale and zero point (a reduction over all of x
for its min and max, both taken with 0), then y is elementwise over x reading them from memory.

QLinearMatMul: the int32 product of the zero-point-centered 8-bit operands (as MatMulInteger),
requantized per element: round-half-even(acc * (a_scale * b_scale / y_scale) + y_zero_point),
saturated to the output type. The multiplier is float32, the rest float64 (NumPy's promotion
of the reference). Scales and zero points are per tensor, per row of a or per column of b.
Float8 operands are not lowered.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Reduce, Var
from ..loops.stmt import Local, Store
from . import exprs as E
from .linalg import matmul, zero_point_of
from .registry import register
from .tensor import Tensor, broadcast_index, kernel

f32, f64, i32 = DType.float32, DType.float64, DType.int32
_RANGES = {DType.uint8: (0, 255), DType.int8: (-128, 127)}


def _min(a, b):
    return E.binary("min", a, b)


def _max(a, b):
    return E.binary("max", a, b)


def _param(p: Tensor, out_axis: int):
    """out index -> the entry of a scale that is per tensor, or a vector along output axis
    `out_axis` (rows of a, columns of b)."""
    if p.rank == 1 and not E.is_const(p.shape[0], 1):
        return lambda idx: p.at((idx[out_axis],))
    return lambda idx: p.at((E.ZERO,) * p.rank)


@register(ops.QLinearMatMul)
def lower_qlinear_matmul(ctx, node, inputs):
    a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp = inputs
    out = ctx.out_dtype(node)
    if a.dtype not in _RANGES or b.dtype not in _RANGES or out not in _RANGES:
        ctx.fail(node, "only 8-bit integer QLinearMatMul is lowered",
                 hint="float8 operands have no native lowering")
    za = zero_point_of(a_zp, a.shape, -2 if a.rank > 1 else -1)
    zb = zero_point_of(b_zp, b.shape, -1)
    acc = matmul(ctx, a, b, lambda idx: E.cast(a.at(idx), i32) - za(idx),
                 lambda idx: E.cast(b.at(idx), i32) - zb(idx), i32, i32)
    rank = acc.rank
    sa = _param(a_scale, rank - 2 if a.rank > 1 else rank - 1)
    sb = _param(b_scale, rank - 1)
    lo, hi = _RANGES[out]

    def at(idx):
        mult = E.cast(sa(idx), f32) * E.cast(sb(idx), f32) / E.cast(
            y_scale.at(broadcast_index(y_scale.shape, acc.shape, idx)), f32)
        zp = E.cast(y_zp.at(broadcast_index(y_zp.shape, acc.shape, idx)), f64)
        y = E.unary("round", E.cast(acc.at(idx), f64) * E.cast(mult, f64) + zp)
        y = _min(_max(y, E.const(lo, f64)), E.const(hi, f64))
        return E.cast(y, out)
    return [Tensor(acc.shape, out, at)]


@register(ops.DynamicQuantizeLinear)
def lower_dynamic_quantize_linear(ctx, node, inputs):
    x = inputs[0]
    u8 = DType.uint8
    axes = tuple((ctx.fresh_var("r"), E.ZERO, d) for d in x.shape)
    v = E.cast(x.at(tuple(var for var, _, _ in axes)), f32)
    hi = Reduce("max", E.const(0.0, f32), axes, v) if axes else _max(v, E.const(0.0, f32))
    axes2 = tuple((ctx.fresh_var("r"), E.ZERO, d) for d in x.shape)
    v2 = E.cast(x.at(tuple(var for var, _, _ in axes2)), f32)
    lo = Reduce("min", E.const(0.0, f32), axes2, v2) if axes2 else \
        _min(v2, E.const(0.0, f32))
    outs = list(node.outputs) + [None] * (3 - len(node.outputs))
    scale_buf = ctx.buffer_for(outs[1], (), f32) if outs[1] is not None else \
        ctx.new_buffer("y_scale", (), f32)
    zp_buf = ctx.buffer_for(outs[2], (), u8) if outs[2] is not None else \
        ctx.new_buffer("y_zero_point", (), u8)
    lo_var, hi_var = Var(ctx.fresh_name("lo"), f32), Var(ctx.fresh_name("hi"), f32)
    span = hi_var - lo_var
    scale = E.select(E.eq(span, E.const(0.0, f32)), E.const(1.0, f32), span) / E.const(255.0, f32)
    zp = E.unary("round", _min(_max(E.const(0.0, f32) - lo_var / scale_buf[()],
                                              E.const(0.0, f32)), E.const(255.0, f32)))
    ctx.emit(kernel(ctx.fresh_name("dynamic_quantize_params", kernel=True), [
        Local(lo_var, lo), Local(hi_var, hi), Store(scale_buf, (), scale),
        Store(zp_buf, (), E.cast(zp, u8))]))
    s, z = scale_buf[()], E.cast(zp_buf[()], f32)

    def at(idx):
        y = E.unary("round", E.cast(x.at(idx), f32) / s) + z
        return E.cast(_min(_max(y, E.const(0.0, f32)), E.const(255.0, f32)), u8)
    return [Tensor(x.shape, u8, at), Tensor.of(scale_buf), Tensor.of(zp_buf)][:len(node.outputs)]
