"""Selection along an axis: TopK.

TopK is one kernel: per row (every index but the axis), a serial insertion of the row's elements
in index order into the K output slots, kept sorted (best first). An element goes before the
first kept element it beats strictly, so ties keep the lower index first; the kept elements
after it shift down one slot and the last falls off when K are kept. NaN counts as larger than
every number (NumPy's order): first for largest, last for smallest. O(n*K) per row.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Var
from ..loops.stmt import Assign, If, Local, Loop, Store
from . import exprs as E
from .reduce import normalize_axis, outer_kinds
from .registry import register
from .tensor import Tensor, kernel, widen


def _beats(x, y, largest: bool):
    """x goes strictly before y."""
    if not x.dtype.is_float:
        return E.gt(x, y) if largest else E.lt(x, y)
    nan_x, nan_y = E.unary("isnan", x), E.unary("isnan", y)
    if largest:
        return E.binary("or", E.gt(x, y), E.binary("and", nan_x, E.unary("not", nan_y)))
    return E.binary("or", E.lt(x, y), E.binary("and", nan_y, E.unary("not", nan_x)))


@register(ops.TopK)
def lower_topk(ctx, node, inputs):
    x = inputs[0]
    a = ctx.attrs(node)
    axis = normalize_axis(ctx, node, a.axis, x.rank)
    k = ctx.static_scalar(node, 1)
    shape = list(x.shape)
    shape[axis] = k
    values = ctx.buffer_for(node.outputs[0], tuple(shape), x.dtype)
    indices = ctx.buffer_for(node.outputs[1], tuple(shape), DType.int64) \
        if len(node.outputs) > 1 else ctx.new_buffer("topk_indices", shape, DType.int64)
    largest = bool(a.largest)
    n = x.shape[axis]
    outer = [d for d in range(x.rank) if d != axis]
    vars_ = ctx.index_vars(len(outer))

    def at_axis(j):
        idx = list(vars_)
        idx.insert(axis, j)
        return tuple(idx)

    count = ctx.fresh_var("count")
    pos = ctx.fresh_var("pos")
    i, j, t = ctx.fresh_var("i"), ctx.fresh_var("j"), ctx.fresh_var("t")
    v = Var(ctx.fresh_name("v"), x.dtype)
    wv = widen(v)
    kept = widen(values[at_axis(j)])
    after = E.binary("and", E.lt(j, count), E.unary("not", _beats(wv, kept, largest)))
    find = Loop(j, E.ZERO, k, [If(after, [Assign(pos, E.add(j, 1))])])
    dst = E.sub(E.sub(k, 1), t)           # K-1 down to 1
    shift = Loop(t, E.ZERO, E.sub(k, 1), [If(E.gt(dst, pos), [
        Store(values, at_axis(dst), values[at_axis(E.sub(dst, 1))]),
        Store(indices, at_axis(dst), indices[at_axis(E.sub(dst, 1))])])])
    insert = If(E.lt(pos, k), [shift, Store(values, at_axis(pos), v),
                               Store(indices, at_axis(pos), i)])
    body = [Local(count, E.ZERO),
            Loop(i, E.ZERO, n, [Local(v, x.at(at_axis(i))), Local(pos, E.ZERO), find, insert,
                                Assign(count, E.minimum(E.add(count, 1), k))])]
    kinds = outer_kinds([x.shape[d] for d in outer], x.shape)
    for var, d, kind in reversed(list(zip(vars_, outer, kinds))):
        body = [Loop(var, E.ZERO, x.shape[d], body, kind)]
    ctx.emit(kernel(ctx.fresh_name("topk", kernel=True), body))
    return [Tensor.of(values), Tensor.of(indices)][:len(node.outputs)]
