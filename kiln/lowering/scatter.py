"""Scatters: ScatterElements, ScatterND (reduction none/add/mul/max/min) and TensorScatter.

ScatterElements and ScatterND are two kernels: a copy of `data` into the output, then one serial
nest over the updates in index order writing (or combining) each update at the position its
indices name. Serial order is what makes duplicate indices come out as ONNX says: with
reduction none the last write wins. Indices are negative-from-the-end and clamped into the axis
(native code cannot raise; the interpreter reports out-of-range indices).

TensorScatter writes each batch entry's updates into one window of the cache: every output
element is either the cache's or one update's, so it is an index mapping (`at`), no scatter.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const
from ..loops.stmt import Loop, LoopKind, Store
from . import exprs as E
from .movement import checked_index
from .registry import register
from .tensor import Tensor, compute_dtype, kernel, narrow


def _combine(reduction: str, old, new, dtype):
    """The value stored when `new` is scattered onto `old` (both of `dtype`)."""
    if reduction == "none":
        return new
    dt = compute_dtype(dtype)
    a, b = E.cast(old, dt), E.cast(new, dt)
    if dtype is DType.bool:
        op = {"add": "or", "mul": "and", "max": "or", "min": "and"}[reduction]
    else:
        op = reduction
    return narrow(E.binary(op, a, b), dtype)


def _serial_nest(ctx, shape, body):
    vars_ = ctx.index_vars(len(shape))
    stmts = body(tuple(vars_))
    for v, stop in reversed(list(zip(vars_, shape))):
        stmts = [Loop(v, E.ZERO, stop, stmts, LoopKind.SERIAL)]
    return stmts


def _copy_then_update(ctx, node, data: Tensor, shape, target) -> list:
    """Copy data into the output, then for every index of `shape` (serially, in order)
    combine update value into out[target(idx)]; `target(idx)` -> (out index, update value)."""
    out = ctx.buffer_for(node.outputs[0], data.shape, data.dtype)
    ctx.materialize(data, out, node.op.name.lower() + "_copy")
    reduction = ctx.attrs(node).reduction

    def body(idx):
        where, value = target(idx)
        return [Store(out, where, _combine(reduction, out[where], value, data.dtype))]
    ctx.emit(kernel(ctx.fresh_name(node.op.name.lower(), kernel=True),
                    _serial_nest(ctx, shape, body)))
    return [Tensor.of(out)]


@register(ops.ScatterElements)
def lower_scatter_elements(ctx, node, inputs):
    data, indices, updates = inputs
    axis = ctx.attrs(node).axis
    if not -data.rank <= axis < data.rank:
        ctx.fail(node, f"axis {axis} is out of range for rank {data.rank}")
    axis %= data.rank

    def target(idx):
        i = checked_index(E.index(indices.at(idx)), data.shape[axis])
        where = list(idx)
        where[axis] = i
        return tuple(where), updates.at(idx)
    return _copy_then_update(ctx, node, data, indices.shape, target)


@register(ops.ScatterND)
def lower_scatter_nd(ctx, node, inputs):
    data, indices, updates = inputs
    k = indices.shape[-1] if indices.rank else None
    if not isinstance(k, Const) or not 1 <= k.value <= data.rank:
        ctx.fail(node, f"the last dim of indices must be a known size in 1..{data.rank}")
    k = k.value
    lead = indices.rank - 1
    shape = tuple(indices.shape[:-1]) + tuple(data.shape[k:])

    def target(idx):
        where = tuple(checked_index(E.index(indices.at(idx[:lead] + (Const(j),))),
                                    data.shape[j]) for j in range(k))
        return where + tuple(idx[lead:]), updates.at(idx)
    return _copy_then_update(ctx, node, data, shape, target)


@register(ops.TensorScatter)
def lower_tensor_scatter(ctx, node, inputs):
    cache, update = inputs[0], inputs[1]
    starts = inputs[2] if len(inputs) > 2 else None
    a = ctx.attrs(node)
    if not -cache.rank <= a.axis < cache.rank:
        ctx.fail(node, f"axis {a.axis} is out of range for rank {cache.rank}")
    axis = a.axis % cache.rank
    capacity, steps = cache.shape[axis], update.shape[axis]
    if E.is_const(steps, 0):
        return [cache]

    def at(idx):
        start = E.index(starts.at((idx[0],))) if starts is not None else E.ZERO
        s = E.sub(idx[axis], start)
        if a.mode == "circular":
            s = E.mod(s, capacity)
        inside = E.binary("and", E.ge(s, 0), E.lt(s, steps))
        where = list(idx)
        where[axis] = E.clamp(s, 0, E.sub(steps, 1))
        return E.select(inside, update.at(tuple(where)), cache.at(idx))
    return [Tensor(cache.shape, cache.dtype, at)]
