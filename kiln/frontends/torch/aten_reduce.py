"""Reductions (sum, mean, amax/amin, max/min.dim, argmax/argmin, any/all, prod, var, norms,
cumprod, sort) and tensor
creation (full, zeros/ones/empty(_like), arange, scalar_tensor): a scalar Expanded to the size.

A reduction computes in the node's result dtype (torch sums booleans and small ints as int64);
`dims` None or [] means every dim.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import UnsupportedOpError
from ...ir.dtypes import DType

aten = torch.ops.aten


def _axes(cx, x, dims):
    rank = cx.rank(x)
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return list(range(rank))
    dims = [dims] if isinstance(dims, int) else dims
    return [d + rank if d < 0 else d for d in dims]


def reduce(kiln_op: str, logical: bool = False):
    """sum/mean/amax/... (x, dims, keepdim, *): the kiln reduction over `dims`."""
    def convert(cx, x, dims=None, keepdim=False, *_):
        dtype = cx.out_dtype()
        v = cx.tensor(x, DType.int32 if logical else dtype)
        axes = _axes(cx, x, dims)
        if not axes:      # a 0-d input: nothing to reduce
            return cx.b.Identity(v, name=cx.node.name)
        rank = cx.rank(x)
        if kiln_op == "ReduceMean" and keepdim and rank > 2 and sorted(axes) == \
                list(range(2, rank)) and dtype.is_float:
            # the mean over every spatial dim ([N, C, 1, 1]) that ends a CNN: global pooling,
            # which the fuser folds into the convolution before it
            return cx.b.GlobalAveragePool(v, name=cx.node.name)
        y = getattr(cx.b, kiln_op)(v, cx.ints(axes), keepdims=int(bool(keepdim)),
                                   name=cx.name("reduce") if logical else cx.node.name)
        return cx.cast(y, DType.bool) if logical else y
    return convert


def reduce_all(kiln_op: str, logical: bool = False):
    """sum.default / any.default ...: (x, *) over every dim."""
    convert = reduce(kiln_op, logical)
    return lambda cx, x, *_: convert(cx, x, None, False)


def max_dim(kiln_op: str, arg_op: str):
    """max.dim / min.dim: (values, indices)."""
    def convert(cx, x, dim, keepdim=False, *_):
        v = cx.tensor(x)
        axis = _axes(cx, x, dim)[0]
        values = getattr(cx.b, kiln_op)(v, cx.ints([axis]), keepdims=int(bool(keepdim)),
                                        name=cx.node.name)
        indices = getattr(cx.b, arg_op)(v, axis=axis, keepdims=int(bool(keepdim)),
                                        name=cx.name("indices"))
        return (values, indices)
    return convert


def arg_reduce(arg_op: str):
    def convert(cx, x, dim=None, keepdim=False, *_):
        v = cx.tensor(x)
        if dim is None:
            v = cx.b.Reshape(v, cx.ints([-1]), name=cx.name("flat"))
            return getattr(cx.b, arg_op)(v, axis=0, keepdims=0, name=cx.node.name)
        return getattr(cx.b, arg_op)(v, axis=_axes(cx, x, dim)[0], keepdims=int(bool(keepdim)),
                                     name=cx.node.name)
    return convert


def vector_norm(cx, x, ord=2, dims=None, keepdim=False, *_):
    """linalg_vector_norm: ReduceL2 / ReduceL1, max |x| for ord inf, (sum |x|^p)^(1/p)."""
    v = cx.tensor(x, cx.out_dtype())
    dtype = v.type.dtype
    axes, keep = cx.ints(_axes(cx, x, dims)), int(bool(keepdim))
    if ord == 2:
        return cx.b.ReduceL2(v, axes, keepdims=keep, name=cx.node.name)
    if ord == 1:
        return cx.b.ReduceL1(v, axes, keepdims=keep, name=cx.node.name)
    absolute = cx.b.Abs(v, name=cx.name("abs"))
    if ord in (float("inf"), float("-inf")):
        op = cx.b.ReduceMax if ord > 0 else cx.b.ReduceMin
        return op(absolute, axes, keepdims=keep, name=cx.node.name)
    if ord == 0:
        raise UnsupportedOpError(f"node '{cx.node.name}': the 0-norm is not supported",
                                 ops=[str(cx.node.target)])
    powered = cx.b.Pow(absolute, cx.tensor(ord, dtype), name=cx.name("pow"))
    total = cx.b.ReduceSum(powered, axes, keepdims=keep, name=cx.name("sum"))
    return cx.b.Pow(total, cx.tensor(1 / ord, dtype), name=cx.node.name)


def cumprod(cx, x, dim, *_):
    v = cx.tensor(x, cx.out_dtype())
    axis = _axes(cx, x, dim)[0]
    return cx.b.CumProd(v, cx.const(np.asarray(axis, np.int64), "axis"), name=cx.node.name)


def sort(cx, x, dim=-1, descending=False, *_):
    """sort (stable: ties keep their order, as TopK does) as TopK of every element."""
    v = cx.tensor(x)
    axis = _axes(cx, x, dim)[0]
    size = cx.fake(x).shape[axis] if cx.rank(x) else 1
    k = cx.ints([int(size)]) if isinstance(size, int) or size.node.expr.is_Integer else \
        cx.dim_size(v, axis)
    values, indices = cx.b.TopK(v, k, axis=axis, largest=int(bool(descending)), sorted=1,
                                outputs=[cx.node.name, f"{cx.node.name}_indices"])
    return (values, indices)


def sort_stable(cx, x, stable=None, dim=-1, descending=False, *_):
    return sort(cx, x, dim, descending)


def var(cx, x, dims=None, correction=None, keepdim=False, *_):
    """var.correction: sum((x - mean)^2) / (N - correction), N the reduced element count."""
    v = cx.tensor(x, cx.out_dtype())
    axes = cx.ints(_axes(cx, x, dims))
    shape = cx.fake(x).shape
    sizes = [shape[a] for a in _axes(cx, x, dims)]
    if not all(isinstance(d, int) or d.node.expr.is_Integer for d in sizes):
        raise UnsupportedOpError(f"node '{cx.node.name}': var over symbolic dims",
                                 ops=[str(cx.node.target)])
    n = int(np.prod([int(d) for d in sizes]))
    correction = 1 if correction is None else correction
    mean = cx.b.ReduceMean(v, axes, keepdims=1, name=cx.name("mean"))
    diff = cx.b.Sub(v, mean, name=cx.name("diff"))
    sq = cx.b.ReduceSum(cx.b.Mul(diff, diff, name=cx.name("sq")), axes,
                        keepdims=int(bool(keepdim)), name=cx.name("sum"))
    return cx.b.Div(sq, cx.tensor(max(n - correction, 0), v.type.dtype), name=cx.node.name)


# --- creation ------------------------------------------------------------------------------

def _fill(cx, shape, value):
    """A scalar broadcast to `shape`: Expand, which fuses into its users (a tensor of zeros
    that only feeds a Where is never written to memory)."""
    dtype = cx.out_dtype()
    return cx.b.Expand(cx.const(np.asarray(value, dtype.np), "fill"), shape, name=cx.node.name)


def full(cx, size, value, *_):
    return _fill(cx, cx.sizes(size), value)


def filled(value):
    """zeros/ones/empty(size, *): full of `value`."""
    return lambda cx, size, *_: _fill(cx, cx.sizes(size), value)


def full_like(cx, x, value, *_):
    return _fill(cx, cx.b.Shape(cx.tensor(x), name=cx.name("shape")), value)


def filled_like(value):
    return lambda cx, x, *_: full_like(cx, x, value)


def new_filled(value):
    """new_zeros/new_ones/new_empty(self, size, *)."""
    return lambda cx, x, size, *_: _fill(cx, cx.sizes(size), value)


def new_full(cx, x, size, value, *_):
    return _fill(cx, cx.sizes(size), value)


def scalar_tensor(cx, value, *_):
    return cx.b.Identity(cx.const(np.asarray(value, cx.out_dtype().np), "value"),
                         name=cx.node.name)


def arange(cx, start, end=None, step=1, *_):
    """arange.start_step (start, end, step); arange.default (end) and arange.start (start,
    end) are normalized to it in CONVERTERS."""
    dtype = cx.out_dtype()

    def scalar(a):
        if isinstance(a, torch.fx.Node):
            return cx.scalar_of_size(a, dtype)
        return cx.const(np.asarray(a, dtype.np), "range")
    return cx.b.Range(scalar(start), scalar(end), scalar(step), name=cx.node.name)


CONVERTERS = {
    aten.sum.dim_IntList: reduce("ReduceSum"), aten.sum.default: reduce_all("ReduceSum"),
    aten.mean.dim: reduce("ReduceMean"), aten.mean.default: reduce_all("ReduceMean"),
    aten.amax.default: reduce("ReduceMax"), aten.amin.default: reduce("ReduceMin"),
    aten.prod.dim_int: reduce("ReduceProd"),
    aten.any.dim: reduce("ReduceMax", True), aten.any.dims: reduce("ReduceMax", True),
    aten.any.default: reduce_all("ReduceMax", True),
    aten.all.dim: reduce("ReduceMin", True), aten.all.default: reduce_all("ReduceMin", True),
    aten.max.dim: max_dim("ReduceMax", "ArgMax"), aten.min.dim: max_dim("ReduceMin", "ArgMin"),
    aten.argmax.default: arg_reduce("ArgMax"), aten.argmin.default: arg_reduce("ArgMin"),
    aten.var.correction: var, aten.linalg_vector_norm.default: vector_norm,
    aten.cumprod.default: cumprod, aten.sort.default: sort, aten.sort.stable: sort_stable,
    aten.full.default: full, aten.zeros.default: filled(0), aten.ones.default: filled(1),
    aten.empty.memory_format: filled(0), aten.empty_permuted.default: filled(0),
    aten.empty_strided.default: filled(0), aten.full_like.default: full_like,
    aten.fill.Scalar: full_like,
    aten.zeros_like.default: filled_like(0), aten.ones_like.default: filled_like(1),
    aten.empty_like.default: filled_like(0),
    aten.new_zeros.default: new_filled(0), aten.new_ones.default: new_filled(1),
    aten.new_empty.default: new_filled(0), aten.new_full.default: new_full,
    aten.scalar_tensor.default: scalar_tensor,
    aten.arange.start_step: arange,
    aten.arange.start: lambda cx, start, end, *_: arange(cx, start, end, 1),
    aten.arange.default: lambda cx, end, *_: arange(cx, 0, end, 1),
}
