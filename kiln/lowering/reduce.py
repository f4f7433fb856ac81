"""Reductions: the ten Reduce* ops, ArgMax/ArgMin and CumSum/CumProd.

A reduction is a Tensor whose element is a Loop IR `Reduce` over the reduced axes of an
elementwise term, so a producer of the term can later be inlined into it. `reduction` is the
one builder; normalization.py and pool.py use it too. ReduceLogSumExp and the arg-reductions
first materialize a per-row maximum (a shift, a value to find), then reduce again reading it.
The running scans have no `at` form worth having (each element would re-sum its prefix), so
CumSum/CumProd emit their own kernel: one serial accumulator per row.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.buffer import Buffer
from ..loops.expr import Const, Expr, Reduce, Var
from ..loops.stmt import Assign, Local, Loop, LoopKind, Store
from . import exprs as E
from .registry import register
from .tensor import PARALLEL_MIN_ELEMENTS, Tensor, compute_dtype, kernel, narrow, widen

Index = tuple


# --- the reduction builder ------------------------------------------------------------------------

def reduced_shape(shape, axes, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(E.ONE if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def reduction(ctx, shape, axes, combiner: str, init: Expr, term: Callable[[Index], Expr],
              keepdims: bool = True) -> Tensor:
    """The tensor combining term(index) over `axes` of an index space of `shape` (the other
    axes are the result's, kept as size 1 with keepdims). Axes of static size 1 are read at 0
    instead of looped over; with no axis left the element is term itself."""
    axes = frozenset(axes)

    def at(idx):
        it = iter(idx)
        full, ranges = [], []
        for d, n in enumerate(shape):
            if d not in axes:
                full.append(next(it))
                continue
            if keepdims:
                next(it)
            if E.is_const(n, 1):
                full.append(E.ZERO)
            else:
                v = ctx.fresh_var("r")
                ranges.append((v, E.ZERO, n))
                full.append(v)
        body = term(tuple(full))
        if not ranges:
            return body
        return Reduce(combiner, init, tuple(ranges), body)
    return Tensor(reduced_shape(shape, axes, keepdims), init.dtype, at)


def kept_index(idx, axes) -> Index:
    """The index into a keepdims statistic (size 1 on `axes`) at a full-rank index."""
    return tuple(E.ZERO if d in axes else i for d, i in enumerate(idx))


def temp(ctx, t: Tensor, hint: str) -> Tensor:
    """t written to a TEMP buffer by one kernel; reads of the result load it."""
    buf = ctx.new_buffer(hint, t.shape, t.dtype)
    ctx.materialize(t, buf, hint)
    return Tensor.of(buf)


def into(ctx, t: Tensor, buf: Buffer, hint: str) -> Tensor:
    ctx.materialize(t, buf, hint)
    return Tensor.of(buf)


def lowest(dtype: DType) -> Expr:
    if dtype is DType.bool:
        return E.const(False, dtype)
    if dtype.is_float:
        return E.const(-math.inf, dtype)
    return E.const(np.iinfo(dtype.np).min, dtype)


def highest(dtype: DType) -> Expr:
    if dtype is DType.bool:
        return E.const(True, dtype)
    if dtype.is_float:
        return E.const(math.inf, dtype)
    return E.const(np.iinfo(dtype.np).max, dtype)


def count(shape, axes, dtype: DType) -> Expr:
    """How many elements a reduction over `axes` combines, as a `dtype` value (at least 1 for
    integers, whose division by 0 would trap; their sum over nothing is 0 anyway)."""
    n = E.product(shape[d] for d in axes)
    return E.cast(n if dtype.is_float else E.maximum(n, 1), dtype)


def normalize_axis(ctx, node, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        ctx.fail(node, f"axis {axis} is out of range for rank {rank}")
    return axis % rank


# --- Reduce* --------------------------------------------------------------------------------------

def _axes(ctx, node, rank: int) -> tuple:
    """The reduced axes in [0, rank): the axes operand (a compile-time value), all axes when it
    is absent or empty, none when empty and noop_with_empty_axes=1."""
    a = ctx.attrs(node)
    given = ctx.static_ints(node, 1) if len(node.inputs) > 1 and node.inputs[1] is not None else []
    if not given:
        return () if a.noop_with_empty_axes else tuple(range(rank))
    axes = tuple(normalize_axis(ctx, node, int(v), rank) for v in given)
    if len(set(axes)) != len(axes):
        ctx.fail(node, f"axes {given} name an axis twice")
    return axes


def _through_float64(fn, dtype: DType):
    return lambda e: E.cast(fn(E.cast(e, DType.float64)), dtype)


def _abs(e): return E.unary("abs", e)
def _square(e): return e * e


# name -> (combiner, init for the compute dtype, elementwise term, step after the reduction)
_TABLE = {
    ops.ReduceSum: ("add", lambda dt: E.const(0, dt), None, None),
    ops.ReduceProd: ("mul", lambda dt: E.const(1, dt), None, None),
    ops.ReduceMax: ("max", lowest, None, None),
    ops.ReduceMin: ("min", highest, None, None),
    ops.ReduceL1: ("add", lambda dt: E.const(0, dt), _abs, None),
    ops.ReduceL2: ("add", lambda dt: E.const(0, dt), _square, lambda e: E.unary("sqrt", e)),
    ops.ReduceSumSquare: ("add", lambda dt: E.const(0, dt), _square, None),
    ops.ReduceLogSum: ("add", lambda dt: E.const(0, dt), None, lambda e: E.unary("log", e)),
    ops.ReduceMean: ("add", lambda dt: E.const(0, dt), None, None),
}
_BOOL_COMBINERS = {"max": "or", "min": "and"}


@register(*_TABLE)
def lower_reduce(ctx, node, inputs):
    x = inputs[0]
    axes = _axes(ctx, node, x.rank)
    keep = bool(ctx.attrs(node).keepdims)
    combiner, init, pre, post = _TABLE[node.op]
    dt = compute_dtype(x.dtype)
    if dt is DType.bool:
        combiner = _BOOL_COMBINERS[combiner]
    pre = pre or (lambda e: e)
    r = reduction(ctx, x.shape, axes, combiner, init(dt),
                  lambda idx: pre(widen(x.at(idx))), keep)
    if node.op is ops.ReduceMean:
        n = count(x.shape, axes, dt)
        post = lambda e: E.binary("div", e, n)     # noqa: E731  (C division for integers)
    elif post is not None and not dt.is_float:     # sqrt of an integer sum, in float64
        post = _through_float64(post, dt)
    if post is not None:
        r = Tensor(r.shape, dt, lambda idx, r=r: post(r.at(idx)))
    return [Tensor(r.shape, x.dtype, lambda idx: narrow(r.at(idx), x.dtype))]


@register(ops.ReduceLogSumExp)
def lower_reduce_log_sum_exp(ctx, node, inputs):
    """log(sum(exp(x - shift))) + shift, the shift being the largest finite element (0 when
    there is none), materialized first so exp cannot overflow."""
    x = inputs[0]
    axes = _axes(ctx, node, x.rank)
    keep = bool(ctx.attrs(node).keepdims)
    dt = compute_dtype(x.dtype)
    finite_max = reduction(ctx, x.shape, axes, "max", lowest(dt), lambda idx: _finite_or_lowest(
        widen(x.at(idx))))
    shift = temp(ctx, Tensor(finite_max.shape, dt, lambda idx: _finite_or_zero(
        finite_max.at(idx))), "shift")
    total = reduction(ctx, x.shape, axes, "add", E.const(0, dt), lambda idx: E.unary(
        "exp", widen(x.at(idx)) - shift.at(kept_index(idx, axes))), keep)

    def at(idx):
        full = _expand(idx, axes, x.rank) if not keep else idx
        return narrow(E.unary("log", total.at(idx)) + shift.at(kept_index(full, axes)), x.dtype)
    return [Tensor(total.shape, x.dtype, at)]


def _expand(idx, axes, rank) -> Index:
    """A reduced (keepdims=0) index padded back to full rank with 0 on the reduced axes."""
    it = iter(idx)
    return tuple(E.ZERO if d in axes else next(it) for d in range(rank))


def _finite_or_lowest(e: Expr) -> Expr:
    finite = E.binary("and", E.unary("not", E.unary("isnan", e)),
                      E.unary("not", E.unary("isinf", e)))
    return E.select(finite, e, lowest(e.dtype))


def _finite_or_zero(e: Expr) -> Expr:
    return E.select(E.unary("isinf", e), E.const(0, e.dtype), e)


# --- ArgMax / ArgMin ------------------------------------------------------------------------------

@register(ops.ArgMax, ops.ArgMin)
def lower_arg_reduce(ctx, node, inputs):
    """The extreme value along the axis is materialized; the index is then a second reduction:
    the first (or last) position holding it. A NaN counts as the extreme, as in NumPy."""
    x = inputs[0]
    a = ctx.attrs(node)
    axis = normalize_axis(ctx, node, a.axis, x.rank)
    dt = compute_dtype(x.dtype)
    is_max = node.op is ops.ArgMax
    extreme = temp(ctx, reduction(ctx, x.shape, (axis,), "max" if is_max else "min",
                                  lowest(dt) if is_max else highest(dt),
                                  lambda idx: widen(x.at(idx))), "extreme")
    n = x.shape[axis]
    last = bool(a.select_last_index)
    none = E.const(-1, DType.int64) if last else n

    def term(idx):
        v = widen(x.at(idx))
        hit = E.eq(v, extreme.at(kept_index(idx, (axis,))))
        if dt.is_float:
            hit = E.binary("or", hit, E.unary("isnan", v))
        return E.select(hit, idx[axis], none)
    return [reduction(ctx, x.shape, (axis,), "max" if last else "min", none, term,
                      bool(a.keepdims))]


# --- CumSum / CumProd -----------------------------------------------------------------------------

@register(ops.CumSum, ops.CumProd)
def lower_scan(ctx, node, inputs):
    """One kernel: per row along the axis, a serial running accumulator (exclusive: stored
    before adding; reverse: walking the axis from its end)."""
    x = inputs[0]
    a = ctx.attrs(node)
    values = ctx.static_ints(node, 1)
    if len(values) != 1:
        ctx.fail(node, f"axis must hold one integer, got {len(values)}")
    axis = normalize_axis(ctx, node, values[0], x.rank)
    dt = compute_dtype(x.dtype)
    combiner = "add" if node.op is ops.CumSum else "mul"
    out = ctx.buffer_for(node.outputs[0], x.shape, x.dtype)
    outer = [d for d in range(x.rank) if d != axis]
    vars_ = ctx.index_vars(len(outer))
    acc = Var(ctx.fresh_name("acc"), dt)
    k = ctx.fresh_var("k")
    j = E.sub(E.sub(x.shape[axis], 1), k) if a.reverse else k
    idx = list(vars_)
    idx.insert(axis, j)
    idx = tuple(idx)
    step = Assign(acc, E.binary(combiner, acc, widen(x.at(idx))))
    store = Store(out, idx, narrow(acc, x.dtype))
    inner = [store, step] if a.exclusive else [step, store]
    body = [Local(acc, E.const(0 if combiner == "add" else 1, dt)),
            Loop(k, E.ZERO, x.shape[axis], inner)]
    kinds = outer_kinds([x.shape[d] for d in outer], x.shape)
    for v, d, kind in reversed(list(zip(vars_, outer, kinds))):
        body = [Loop(v, E.ZERO, x.shape[d], body, kind)]
    ctx.emit(kernel(ctx.fresh_name(node.op.name.lower()), body))
    return [Tensor.of(out)]


def outer_kinds(loops, shape) -> list:
    """PARALLEL for the first loop that is not statically 1 when the tensor is big (or has a
    symbolic size), SERIAL for the rest."""
    kinds = [LoopKind.SERIAL] * len(loops)
    static = [d.value for d in shape if isinstance(d, Const)]
    big = len(static) < len(shape) or int(np.prod(static, dtype=np.int64)) >= PARALLEL_MIN_ELEMENTS
    first = next((i for i, d in enumerate(loops) if not E.is_const(d, 1)), None)
    if big and first is not None:
        kinds[first] = LoopKind.PARALLEL
    return kinds
