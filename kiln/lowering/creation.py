"""Ops whose elements come from shapes and attributes, not from input data: Shape, Size, Range,
ConstantOfShape and EyeLike. Their `at` is pure index arithmetic, so they are registered lazy and
fold to constants at constant indices: Reshape(x, Concat(Shape(x)[:1], [-1])) lowers with the
symbolic batch size in its shape and no kernel for the shape computation.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const
from . import exprs as E
from .registry import register
from .tensor import Tensor


def _pick(values: list, i):
    """values[i] for an index expression i (a Select chain unless i is a constant)."""
    if not values:
        return E.ZERO       # an empty shape: never read
    if isinstance(i, Const):
        return values[i.value]
    out = values[-1]
    for k in range(len(values) - 2, -1, -1):
        out = E.select(E.eq(i, k), values[k], out)
    return out


@register(ops.Shape, lazy=True)
def lower_shape(ctx, node, inputs):
    t = inputs[0]
    a = ctx.attrs(node)

    def clamp(k):
        k = k + t.rank if k < 0 else k
        return min(max(k, 0), t.rank)
    lo, hi = clamp(a.start), clamp(t.rank if a.end is None else a.end)
    dims = list(t.shape[lo:hi])
    return [Tensor((Const(len(dims)),), DType.int64, lambda idx: _pick(dims, idx[0]))]


@register(ops.Size, lazy=True)
def lower_size(ctx, node, inputs):
    return [Tensor.fill((), E.product(inputs[0].shape))]


@register(ops.ConstantOfShape, lazy=True)
def lower_constant_of_shape(ctx, node, inputs):
    shape = tuple(E.index(v) for v in ctx.static_values(node, 0))
    value = ctx.attrs(node).value
    if value is None:
        value = np.zeros(1, np.float32)
    return [Tensor.fill(shape, E.const(value.reshape(-1)[0], DType.from_numpy(value.dtype)))]


@register(ops.EyeLike, lazy=True)
def lower_eye_like(ctx, node, inputs):
    t = inputs[0]
    dtype = ctx.out_dtype(node)
    k = ctx.attrs(node).k

    def at(idx):
        return E.cast(E.eq(E.sub(idx[1], idx[0]), k), dtype)
    return [Tensor(t.shape, dtype, at)]


@register(ops.Range, lazy=True)
def lower_range(ctx, node, inputs):
    dtype = ctx.out_dtype(node)
    if dtype.is_int:
        start, limit, delta = (ctx.static_scalar(node, i) for i in range(3))
        if E.is_const(delta, 0):
            ctx.fail(node, "Range delta is 0")
        start, limit, delta = (E.index(v) for v in (start, limit, delta))
        length = E.maximum(E.ceildiv(E.sub(limit, start), delta), 0)
        return [Tensor((length,), dtype,
                       lambda idx: E.cast(E.add(start, E.mul(idx[0], delta)), dtype))]
    # float ranges: computed in float64 (float32 and float64) or in stash_type (16-bit floats)
    narrow = dtype in (DType.float16, DType.bfloat16)
    wide = ctx.attrs(node).stash_type if narrow else DType.float64
    values = []
    for i in range(3):
        v = ctx.static_scalar(node, i)
        if not isinstance(v, Const):
            ctx.fail(node, "a float Range needs constant start, limit and delta")
        values.append(float(np.asarray(v.value, dtype.np).astype(wide.np if narrow else
                                                                  np.float64)))
    start, limit, delta = values
    if delta == 0:
        ctx.fail(node, "Range delta is 0")
    length = max(int(math.ceil((limit - start) / delta)), 0)

    def at(idx):
        i = E.cast(idx[0], wide)
        return E.cast(E.const(start, wide) + i * E.const(delta, wide), dtype)
    return [Tensor((Const(length),), dtype, at)]
