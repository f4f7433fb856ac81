"""Compress with a condition known only at run time: the kept count is a computed size.

compress.py lowers Compress when the condition is known when compiling (an index mapping
through a table of kept positions). Otherwise it comes here: the number of kept slices n is a
computed size (dynamic_shape.py) bounded by the condition's length, kernel `compress_count`
counts the true entries, and kernel `compress` walks the condition in order with a running
output position, copying each kept slice (or element, without an axis). Serial: the output order
is the condition's order.

The condition may be shorter than the axis (the rest is dropped); a longer one is bad input that
native code could not report, so its length must be provably at most the axis size (both
static, or the same symbolic size); otherwise the LoweringError asks for its value (the ONNX
backend then fixes it to the fed value, and compress.py applies).
"""

from __future__ import annotations

from ..loops.expr import Const, Reduce
from ..loops.stmt import Assign, If, Local, Loop, Store
from ..loops.stmt import loop_nest as plain_nest
from . import exprs as E
from .dynamic_shape import computed_size
from .tensor import Tensor, kernel, widen
from .views import reshape_index


def lower_compress_at_run_time(ctx, node, x: Tensor, cond: Tensor, axis: int | None):
    length = cond.shape[0] if cond.rank == 1 else None
    size = E.product(x.shape) if axis is None else x.shape[axis]
    fits = length is not None and (E.same(length, size) or (
        isinstance(length, Const) and isinstance(size, Const) and length.value <= size.value))
    if not fits:
        ctx.fail(node, "input 'condition' must be known when compiling unless its length is "
                 "at most the size it selects from (both static, or the same symbolic size)",
                 hint="make it a constant, or give the model static sizes")
    n, count = computed_size(ctx, node, "compress_n", length)
    j = ctx.fresh_var("j")
    kept = E.select(widen(cond.at((j,))), Const(1), Const(0))
    ctx.emit(kernel(ctx.fresh_name("compress_count", kernel=True),
                    [Store(count, (E.ZERO,), Reduce("add", Const(0), ((j, E.ZERO, length),),
                                                    kept))]))
    shape = (n,) if axis is None else tuple(n if d == axis else e for d, e in enumerate(x.shape))
    out = ctx.buffer_for(node.outputs[0], shape, x.dtype)
    j, k = ctx.fresh_var("j"), ctx.fresh_var("k")
    if axis is None:
        copy = [Store(out, (k,), x.at(reshape_index(x.shape, (size,), (j,))))]
    else:
        rest = [d for d in range(x.rank) if d != axis]
        idx = ctx.index_vars(len(rest))

        def at(pos):
            full = list(idx)
            full.insert(axis, pos)
            return tuple(full)
        copy = plain_nest(zip(idx, [x.shape[d] for d in rest]),
                          [Store(out, at(k), x.at(at(j)))])
    body = [If(widen(cond.at((j,))), [*copy, Assign(k, E.add(k, 1))])]
    ctx.emit(kernel(ctx.fresh_name("compress", kernel=True),
                    [Local(k, Const(0)), Loop(j, E.ZERO, length, body)]))
    return [Tensor.of(out)]
