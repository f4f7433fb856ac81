"""The ATen op table: every torch.ops.aten overload (and FX's operator.* on SymInts) kiln
converts, mapped to its converter. One module per op family holds the converters:

    aten_elementwise.py  arithmetic, comparisons, logic, math functions, where, clamp, casts
    aten_shape.py        views, movement, split/cat, pad, SymInt arithmetic
    aten_index.py        select, index, gather, embedding, scatter and index_put
    aten_nn.py           convolution, matmul family, norms, softmax, pooling, attention
    aten_reduce.py       reductions and tensor creation

IGNORED ops are checks torch leaves in exported graphs; they produce nothing.
"""

from __future__ import annotations

import torch

from . import aten_elementwise, aten_index, aten_nn, aten_reduce, aten_shape

aten = torch.ops.aten

ATEN_CONVERTERS = {
    **aten_elementwise.CONVERTERS,
    **aten_shape.CONVERTERS,
    **aten_index.CONVERTERS,
    **aten_nn.CONVERTERS,
    **aten_reduce.CONVERTERS,
}

IGNORED = {
    aten._assert_tensor_metadata.default, aten._assert_scalar.default,
    aten.sym_constrain_range_for_size.default, aten.sym_constrain_range.default,
    aten._assert_async.msg,
}


def supported_ops() -> list[str]:
    """The names of every ATen overload kiln converts (`aten.relu.default`, ...)."""
    return sorted(str(op) for op in ATEN_CONVERTERS if isinstance(op, torch._ops.OpOverload))
