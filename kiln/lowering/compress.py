"""Compress: keeps the slices (or, without an axis, the flattened elements) where a condition is
true. The output size depends on the condition's values, so the condition must be known when
compiling (a constant, or fixed to its fed value by the ONNX backend's specializing model, as for
Reshape's shape); the output is then an index mapping through a constant table of kept
positions.

NonZero, Unique and NonMaxSuppression, whose sizes depend on the data itself, have sizes that
their kernels compute at run time instead (dynamic_shape.py); Compress could do the same for a
condition known only at run time.
"""

from __future__ import annotations

import numpy as np

from ..ir import ops
from ..loops.expr import Const
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor
from .views import reshape_index


@register(ops.Compress)
def lower_compress(ctx, node, inputs):
    x = inputs[0]
    cond = ctx.static_ints(node, 1)
    kept = np.flatnonzero(np.array(cond, dtype=bool)).astype(np.int64)
    axis = ctx.attrs(node).axis
    if axis is None:
        shape = (Const(len(kept)),)
        source = lambda i: reshape_index(x.shape, (E.product(x.shape),), (i,))  # noqa: E731
        flat = True
    else:
        if not -x.rank <= axis < x.rank:
            ctx.fail(node, f"axis {axis} is out of range for rank {x.rank}")
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
