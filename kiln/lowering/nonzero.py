"""NonZero: the indices of the non-zero elements, shape [rank, n], n known only at run time.

With an input known when compiling, the node is a constant (dynamic_shape.fold_if_static).
Otherwise n is a computed size (dynamic_shape.py): kernel `nonzero_count` counts the non-zero
elements into n's count buffer, then kernel `nonzero` walks the input again in row-major order
with a running column k and stores each non-zero element's index as column k of the output.
The output's row stride is n itself (read in the second kernel's prologue, after the first
kernel wrote it), so the result is the compact [rank, n] array in the first rank*n elements of
its upper-bound allocation (rank * number of elements). Two passes over the input, both serial:
the order of the columns is the order of the elements, which a parallel loop would lose.

A rank-0 input gives [0, n] with n 0 or 1 (ONNX's rule); NaN counts as non-zero, -0.0 as zero.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Reduce
from ..loops.stmt import Assign, If, Local, Store
from ..loops.stmt import loop_nest as plain_nest
from . import exprs as E
from .dynamic_shape import computed_size, fold_if_static
from .registry import register
from .tensor import Tensor, kernel, widen


def is_nonzero(value):
    """value != 0 (NaN included; -0.0 is zero), in the value's compute dtype."""
    v = widen(value)
    if v.dtype is DType.bool:
        return v
    return E.ne(v, E.const(0, v.dtype))


@register(ops.NonZero)
def lower_nonzero(ctx, node, inputs):
    folded = fold_if_static(ctx, node, inputs)
    if folded is not None:
        return folded
    x = inputs[0]
    n, count = computed_size(ctx, node, "nonzero_n", E.product(x.shape))
    axes = [ctx.fresh_var("r") for _ in x.shape]
    hits = Reduce("add", Const(0), tuple((v, E.ZERO, d) for v, d in zip(axes, x.shape)),
                  E.select(is_nonzero(x.at(tuple(axes))), Const(1), Const(0)))
    ctx.emit(kernel(ctx.fresh_name("nonzero_count", kernel=True),
                    [Store(count, (E.ZERO,), hits)]))

    out = ctx.buffer_for(node.outputs[0], (Const(x.rank), n), DType.int64)
    idx = ctx.index_vars(x.rank)
    column = ctx.fresh_var("k")
    store = [Store(out, (Const(d), column), i) for d, i in enumerate(idx)]
    body = [If(is_nonzero(x.at(tuple(idx))), [*store, Assign(column, E.add(column, 1))])]
    ctx.emit(kernel(ctx.fresh_name("nonzero", kernel=True),
                    [Local(column, Const(0)), *plain_nest(zip(idx, x.shape), body)]))
    return [Tensor.of(out)]
