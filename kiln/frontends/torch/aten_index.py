"""Indexing: select, index (x[i], x[i, j]), index_select, embedding, gather, and the writes
functionalization leaves in a graph: scatter, index_put, slice_scatter, select_scatter.

Index tensors may hold negative indices (Gather/GatherND/ScatterND accept them, as torch does);
boolean masks give data-dependent shapes and are refused with a hint.
"""

from __future__ import annotations

import torch

from ...errors import UnsupportedOpError
from ...ir.dtypes import DType
from .aten_shape import INT64_MAX, _axis

aten = torch.ops.aten


def _refuse(cx, what: str, hint: str | None = None):
    return UnsupportedOpError(f"node '{cx.node.name}': {what}", ops=[str(cx.node.target)],
                              hint=hint)


def select(cx, src, dim, index, *_):
    rank = cx.rank(src)
    idx = cx.scalar_of_size(index)
    return cx.b.Gather(cx.tensor(src), idx, axis=_axis(dim, rank), name=cx.node.name)


def _leading_indices(cx, indices):
    """The index tensors of x[i, j, ...] on the leading dims, stacked as GatherND/ScatterND
    want them: [*broadcast shape, m], with the broadcast shape as an i64 1-D tensor."""
    present = [i for i, t in enumerate(indices) if t is not None]
    if any(cx.fake(indices[i]).dtype == torch.bool for i in present):
        raise _refuse(cx, "boolean mask indexing gives a data-dependent shape",
                      "use torch.where(mask, x, other) instead")
    if present != list(range(len(present))):
        raise _refuse(cx, "several index tensors are supported on the leading dims only")
    idx = [cx.tensor(indices[i], DType.int64) for i in present]
    common = idx[0]
    for other in idx[1:]:             # a tensor of the broadcast shape of all indices
        common = cx.b.Add(common, cx.b.Mul(other, cx.tensor(0, DType.int64),
                                           name=cx.name("zero")), name=cx.name("bshape"))
    shape = cx.b.Shape(common, name=cx.name("shape"))
    last = cx.ints([-1])
    cols = [cx.b.Unsqueeze(cx.b.Expand(i, shape, name=cx.name("expand")), last,
                           name=cx.name("col")) for i in idx]
    return cx.b.Concat(*cols, axis=-1, name=cx.name("stack")), shape


def index(cx, src, indices, *_):
    """x[i] with index tensors: one index (Gather), or several on the leading dims (GatherND)."""
    present = [i for i, t in enumerate(indices) if t is not None]
    x = cx.tensor(src)
    if len(present) == 1 and cx.fake(indices[present[0]]).dtype != torch.bool:
        return cx.b.Gather(x, cx.tensor(indices[present[0]]), axis=present[0],
                           name=cx.node.name)
    stacked, _ = _leading_indices(cx, indices)
    return cx.b.GatherND(x, stacked, name=cx.node.name)


def index_put(cx, src, indices, values, accumulate=False, *_):
    """x[i, j] = v (or += v): ScatterND with v broadcast to the indexed shape."""
    x = cx.tensor(src)
    stacked, shape = _leading_indices(cx, indices)
    m = sum(t is not None for t in indices)
    rest = cx.b.Shape(x, start=m, name=cx.name("rest"))
    target = cx.b.Concat(shape, rest, axis=0, name=cx.name("target"))
    updates = cx.b.Expand(cx.tensor(values, x.type.dtype), target, name=cx.name("updates"))
    return cx.b.ScatterND(x, stacked, updates, reduction="add" if accumulate else "none",
                          name=cx.node.name)


def index_select(cx, src, dim, indices, *_):
    return cx.b.Gather(cx.tensor(src), cx.tensor(indices), axis=_axis(dim, cx.rank(src)),
                       name=cx.node.name)


def embedding(cx, weight, indices, *_):
    return cx.b.Gather(cx.tensor(weight), cx.tensor(indices), axis=0, name=cx.node.name)


def gather(cx, src, dim, indices, *_):
    return cx.b.GatherElements(cx.tensor(src), cx.tensor(indices),
                               axis=_axis(dim, cx.rank(src)), name=cx.node.name)


def scatter(reduction: str = "none"):
    """scatter.src / scatter.value / scatter_add: ScatterElements (a number is broadcast to the
    index's shape)."""
    def convert(cx, src, dim, indices, value, *_):
        x = cx.tensor(src)
        idx = cx.tensor(indices)
        updates = cx.tensor(value, x.type.dtype)
        if not isinstance(value, torch.fx.Node):
            updates = cx.b.Expand(updates, cx.b.Shape(idx, name=cx.name("shape")),
                                  name=cx.name("updates"))
        return cx.b.ScatterElements(x, idx, updates, axis=_axis(dim, cx.rank(src)),
                                    reduction=reduction, name=cx.node.name)
    return convert


def slice_scatter(cx, src, values, dim=0, start=None, end=None, step=1, *_):
    """x with x[start:end] along dim replaced by values: Concat(before, values, after)."""
    if step != 1:
        raise _refuse(cx, "slice_scatter with a step other than 1")
    rank = cx.rank(src)
    axis = _axis(dim, rank)
    x = cx.tensor(src)
    start = 0 if start is None else start
    end = INT64_MAX if end is None else end
    axes = cx.ints([axis])
    before = cx.b.Slice(x, cx.ints([0]), cx.size(start), axes, name=cx.name("before"))
    after = cx.b.Slice(x, cx.size(end), cx.ints([INT64_MAX]), axes, name=cx.name("after"))
    return cx.b.Concat(before, cx.tensor(values, x.type.dtype), after, axis=axis,
                       name=cx.node.name)


def select_scatter(cx, src, values, dim, index, *_):
    """x with x.select(dim, index) replaced by values (a negative index counts from the end:
    the slice bounds do too)."""
    rank = cx.rank(src)
    axis = _axis(dim, rank)
    if not isinstance(index, int):
        raise _refuse(cx, "select_scatter at a symbolic index")
    x = cx.tensor(src)
    axes = cx.ints([axis])
    stop = INT64_MAX if index == -1 else index + 1
    before = cx.b.Slice(x, cx.ints([0]), cx.ints([index]), axes, name=cx.name("before"))
    after = cx.b.Slice(x, cx.ints([stop]), cx.ints([INT64_MAX]), axes, name=cx.name("after"))
    row = cx.b.Unsqueeze(cx.tensor(values, x.type.dtype), axes, name=cx.name("row"))
    return cx.b.Concat(before, row, after, axis=axis, name=cx.node.name)


CONVERTERS = {
    aten.select.int: select, aten.index.Tensor: index, aten.index_put.default: index_put,
    aten.index_select.default: index_select, aten.embedding.default: embedding,
    aten.gather.default: gather,
    aten.scatter.src: scatter(), aten.scatter.value: scatter(),
    aten.scatter_add.default: scatter("add"),
    aten.slice_scatter.default: slice_scatter, aten.select_scatter.default: select_scatter,
}
