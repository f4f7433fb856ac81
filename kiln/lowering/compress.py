"""Compress: keeps the slices (or, without an axis, the flattened elements) where a condition is
true. The output size depends on the condition's values. When the condition is known when
compiling (a constant, or fixed to its fed value by the ONNX backend's specializing model, as for
Reshape's shape), the output is an index mapping through a constant table of kept positions;
otherwise the kept count is computed at run time (dynamic_shape_compress.py).

NonZero, Unique and NonMaxSuppression compute their sizes at run time the same way
(dynamic_shape.py).
"""

from __future__ import annotations

import numpy as np

from ..ir import ops
from ..loops.expr import Const
from . import exprs as E
from .context import constant_tensor
from .dynamic_shape import static_array
from .dynamic_shape_compress import lower_compress_at_run_time
from .registry import register
from .tensor import Tensor
from .views import reshape_index


@register(ops.Compress)
def lower_compress(ctx, node, inputs):
    x = inputs[0]
    axis = ctx.attrs(node).axis
    if axis is not None and not -x.rank <= axis < x.rank:
        ctx.fail(node, f"axis {axis} is out of range for rank {x.rank}")
    cond = static_array(ctx, inputs[1])
    if cond is None:            # known only at run time: a computed size
        return lower_compress_at_run_time(ctx, node, x, inputs[1],
                                          None if axis is None else axis % x.rank)
    kept = np.flatnonzero(cond.reshape(-1).astype(bool)).astype(np.int64)
    if axis is None:
        shape = (Const(len(kept)),)
        source = lambda i: reshape_index(x.shape, (E.product(x.shape),), (i,))  # noqa: E731
        flat = True
    else:
        axis %= x.rank
        shape = tuple(Const(len(kept)) if d == axis else n for d, n in enumerate(x.shape))
        flat = False
    if len(kept) == 0:
        return [Tensor.fill(shape, E.const(0, x.dtype))]
    table = constant_tensor(ctx, kept, "compress_kept")

    def at(idx):
        if flat:
            return x.at(source(table.at((idx[0],))))
        where = list(idx)
        where[axis] = table.at((idx[axis],))
        return x.at(tuple(where))
    return [Tensor(shape, x.dtype, at)]
