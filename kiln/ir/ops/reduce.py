"""Reductions (Reduce*), arg-reductions (ArgMax, ArgMin), scans (CumSum, CumProd) and TopK.

The ten Reduce* ops differ only in four facts: an elementwise step before the reduction, the
reduction itself, what a reduction over no elements yields, and a step after. So they are one
table of `Reduction` rows turned into OpDefs by one loop; a new reduction is one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import ExecutionError
from ..dtypes import SIGNED_INTEGERS, DType
from ..opdef import FusionKind, InferContext
from ..shapes import normalize_axes, normalize_axis
from ..types import Dim, TensorType
from .common import INT
from .registry import define

K = FusionKind

STD_FLOATS = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})
_WIDE_INTS = frozenset({DType.int32, DType.int64, DType.uint32, DType.uint64})
_ALL_INTS = frozenset({DType.int8, DType.int16, DType.int32, DType.int64,
                       DType.uint8, DType.uint16, DType.uint32, DType.uint64})
_SUMMABLE = STD_FLOATS | _WIDE_INTS                      # ONNX's Reduce{Sum,Mean,Prod,L1,...}
_ORDERED = STD_FLOATS | _ALL_INTS                         # ArgMax, TopK, CumSum...
_COMPARABLE = _ORDERED | {DType.bool}                      # ReduceMax / ReduceMin


# --- helpers shared by the reduction-like families (normalization.py and loss.py use them) ------

def check_dtype(ctx: InferContext, dtype: DType, allowed, what: str = "input") -> None:
    """Fail with the list of accepted element types when `dtype` is not one of them."""
    if dtype not in allowed:
        ctx.fail(f"{ctx.op.name} does not take a {dtype.short} {what}",
                 hint=f"accepted: {', '.join(sorted(d.short for d in allowed))}; insert a Cast")


def check_axis(ctx: InferContext, axis: int, rank: int | None) -> int | None:
    """`axis` mapped into [0, rank), or None when the rank is unknown; out of range fails."""
    if rank is None:
        return None
    if rank == 0:
        ctx.fail(f"{ctx.op.name} needs an input of rank >= 1, got a scalar",
                 hint="Unsqueeze the input first")
    return normalize_axis(axis, rank, ctx.node)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """Where the reference does its arithmetic: float32 for the narrow floats, else the dtype."""
    if DType.from_numpy(dtype).is_float and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


def run_axis(axis: int, rank: int) -> int:
    """A run-time axis mapped into [0, rank); out of range raises ExecutionError."""
    if not -rank <= axis < rank:
        raise ExecutionError(f"axis {axis} is out of range for rank {rank}",
                             hint=f"use an axis in [{-rank}, {rank - 1}]")
    return axis % rank


def reduced_dims(shape: Sequence[Dim], axes: Sequence[int], keepdims: bool) -> tuple:
    """`shape` with `axes` (already in [0, rank)) reduced: kept as 1, or dropped."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# --- the Reduce* table ------------------------------------------------------------------------

def _lowest(dtype: np.dtype):
    if dtype == np.bool_:
        return False
    return -np.inf if DType.from_numpy(dtype).is_float else np.iinfo(dtype).min


def _highest(dtype: np.dtype):
    if dtype == np.bool_:
        return True
    return np.inf if DType.from_numpy(dtype).is_float else np.iinfo(dtype).max


def _sum(x, axes, keep):
    return np.sum(x, axis=axes, keepdims=keep, dtype=x.dtype)


def _log_sum_exp(x, axes, keep):
    """log(sum(exp(x))) shifted by the largest finite element so exp cannot overflow."""
    finite = np.where(np.isfinite(x), x, -np.inf)
    shift = np.max(finite, axis=axes, keepdims=True)
    shift = np.where(np.isfinite(shift), shift, 0).astype(x.dtype)
    out = np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True)) + shift
    return out if keep else np.squeeze(out, axis=axes)


@dataclass(frozen=True)
class Reduction:
    name: str
    since_version: int
    reduce: Callable[[np.ndarray, tuple, bool], np.ndarray]   # (x, axes, keepdims) -> reduced
    empty: Callable[[np.dtype], Any]   # the result of reducing no elements (ONNX's identity)
    dtypes: frozenset
    pre: Callable[[np.ndarray], np.ndarray] | None = None    # elementwise, before reducing
    post: Callable[[np.ndarray], np.ndarray] | None = None   # elementwise, after reducing
    doc: str = ""


def _zero(dt):
    return 0


def _minus_inf(dt):
    return -np.inf


REDUCTIONS = (
    Reduction("ReduceSum", 13, _sum, _zero, _SUMMABLE, doc="sum"),
    Reduction("ReduceMean", 18, lambda x, a, k: np.mean(x, axis=a, keepdims=k, dtype=x.dtype),
              lambda dt: np.nan if DType.from_numpy(dt).is_float else 0, _SUMMABLE, doc="mean"),
    Reduction("ReduceMax", 20, lambda x, a, k: np.max(x, axis=a, keepdims=k), _lowest,
              _COMPARABLE, doc="maximum (False < True for bool)"),
    Reduction("ReduceMin", 20, lambda x, a, k: np.min(x, axis=a, keepdims=k), _highest,
              _COMPARABLE, doc="minimum (False < True for bool)"),
    Reduction("ReduceProd", 18, lambda x, a, k: np.prod(x, axis=a, keepdims=k, dtype=x.dtype),
              lambda dt: 1, _SUMMABLE, doc="product"),
    Reduction("ReduceL1", 18, _sum, _zero, _SUMMABLE, pre=np.abs, doc="sum of absolute values"),
    Reduction("ReduceL2", 18, _sum, _zero, _SUMMABLE, pre=np.square, post=np.sqrt,
              doc="square root of the sum of squares"),
    Reduction("ReduceLogSum", 28, _sum, _minus_inf, STD_FLOATS, post=np.log, doc="log of the sum"),
    Reduction("ReduceLogSumExp", 28, _log_sum_exp, _minus_inf, STD_FLOATS,
              doc="log of the sum of exponentials, computed stably"),
    Reduction("ReduceSumSquare", 18, _sum, _zero, _SUMMABLE, pre=np.square, doc="sum of squares"),
)


def _axes_operand(ctx: InferContext, i: int) -> tuple[list[int] | None, int | None]:
    """(axes, count): the axes when known at compile time ([] when absent or empty), else None
    and, if the operand's length is static, how many there are."""
    if not ctx.has_input(i):
        return [], 0
    t = ctx.tensor(i)
    check_dtype(ctx, t.dtype, SIGNED_INTEGERS, "axes operand")
    if t.rank is not None and t.rank > 1:
        ctx.fail(f"axes must be a 1-D tensor, got rank {t.rank}")
    value = ctx.const(i)
    if value is not None:
        axes = [int(a) for a in np.asarray(value).ravel()]
        return axes, len(axes)
    if t.rank == 1 and isinstance(t.shape[0], int):
        n = t.shape[0]
        return ([] if n == 0 else None), n
    return None, None


def _reduce_infer(r: Reduction):
    def infer(ctx: InferContext):
        x = ctx.tensor(0)
        check_dtype(ctx, x.dtype, r.dtypes)
        keep, noop = bool(ctx.attrs.keepdims), bool(ctx.attrs.noop_with_empty_axes)
        axes, count = _axes_operand(ctx, 1)
        if axes == [] and noop:
            return [x]
        if x.shape is None:
            if axes == [] and not keep:
                return [x.with_shape(())]
            return [x.with_shape(None)]
        rank = len(x.shape)
        if axes == []:
            return [x.with_shape((1,) * rank if keep else ())]
        if axes is not None:
            norm = normalize_axes(axes, rank, ctx.node)
            if len(set(norm)) != len(norm):
                ctx.fail(f"axes {axes} name an axis twice", hint="list each axis once")
            return [x.with_shape(reduced_dims(x.shape, norm, keep))]
        # axes known only at run time
        if keep:
            return [x.with_shape(tuple(1 if d == 1 else None for d in x.shape))]
        if count is not None and not noop:
            if count > rank:
                ctx.fail(f"{count} axes given for an input of rank {rank}")
            return [x.with_shape((None,) * (rank - count))]
        return [x.with_shape(None)]
    return infer


def _run_axes(ctx, rank: int, axes: np.ndarray | None) -> tuple[int, ...]:
    if axes is None or np.asarray(axes).size == 0:
        return () if ctx.attrs.noop_with_empty_axes else tuple(range(rank))
    out = tuple(run_axis(int(a), rank) for a in np.asarray(axes).ravel())
    if len(set(out)) != len(out):
        raise ExecutionError(f"axes {np.asarray(axes).tolist()} name an axis twice")
    return out


def _reduce_reference(r: Reduction):
    def reference(ctx, data, axes=None):
        keep = bool(ctx.attrs.keepdims)
        ax = _run_axes(ctx, data.ndim, axes)
        if any(data.shape[a] == 0 for a in ax):
            return np.full(reduced_dims(data.shape, ax, keep), r.empty(data.dtype), data.dtype)
        x = data.astype(compute_dtype(data.dtype), copy=False)
        if r.pre is not None:
            x = r.pre(x)
        y = r.reduce(x, ax, keep)
        if r.post is not None:
            y = r.post(y)
        return np.asarray(y).astype(data.dtype, copy=False)
    return reference


for _r in REDUCTIONS:
    globals()[_r.name] = define(
        _r.name, ["data", "axes?"], ["reduced"], kind=K.REDUCTION, since_version=_r.since_version,
        attrs=[INT("keepdims", 1, (0, 1)), INT("noop_with_empty_axes", 0, (0, 1))],
        infer=_reduce_infer(_r), reference=_reduce_reference(_r),
        doc=f"The {_r.doc} of `data` over `axes` (all axes when absent, none when absent and "
            f"noop_with_empty_axes=1).")


# --- ArgMax / ArgMin ----------------------------------------------------------------------------

def _infer_arg(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, x.dtype, _ORDERED)
    axis = check_axis(ctx, ctx.attrs.axis, x.rank)
    if axis is None:
        return [TensorType(DType.int64, None)]
    if x.shape[axis] == 0:
        ctx.fail(f"axis {ctx.attrs.axis} has size 0: there is no element to pick")
    return [TensorType(DType.int64, reduced_dims(x.shape, [axis], bool(ctx.attrs.keepdims)))]


def _arg_reference(pick: Callable):
    def reference(ctx, x):
        axis = run_axis(ctx.attrs.axis, x.ndim)
        if ctx.attrs.select_last_index:
            idx = x.shape[axis] - 1 - pick(np.flip(x, axis), axis=axis)
        else:
            idx = pick(x, axis=axis)
        if ctx.attrs.keepdims:
            idx = np.expand_dims(idx, axis)
        return np.asarray(idx, dtype=np.int64)
    return reference


_ARG_ATTRS = [INT("axis", 0), INT("keepdims", 1, (0, 1)), INT("select_last_index", 0, (0, 1))]

ArgMax = define(
    "ArgMax", ["data"], ["reduced"], kind=K.REDUCTION, since_version=13, attrs=_ARG_ATTRS,
    infer=_infer_arg, reference=_arg_reference(np.argmax),
    doc="int64 index of the largest element along `axis` (the first, or the last if "
        "select_last_index=1).")

ArgMin = define(
    "ArgMin", ["data"], ["reduced"], kind=K.REDUCTION, since_version=13, attrs=_ARG_ATTRS,
    infer=_infer_arg, reference=_arg_reference(np.argmin),
    doc="int64 index of the smallest element along `axis` (the first, or the last if "
        "select_last_index=1).")


# --- CumSum / CumProd ---------------------------------------------------------------------------

def scalar_operand(ctx: InferContext, i: int, what: str, dtypes=(DType.int32, DType.int64)):
    """The value of a one-element integer operand (rank 0, or 1-D of length 1) when known at
    compile time, else None."""
    t = ctx.tensor(i)
    check_dtype(ctx, t.dtype, frozenset(dtypes), f"{what} operand")
    one = t.shape is None or t.shape == () or (
        len(t.shape) == 1 and (not isinstance(t.shape[0], int) or t.shape[0] == 1))
    if not one:
        ctx.fail(f"{what} must hold one integer, got {t}")
    value = ctx.const(i)
    return None if value is None else int(np.asarray(value).ravel()[0])


def _infer_scan(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, x.dtype, _SUMMABLE)
    axis = scalar_operand(ctx, 1, "axis")
    if x.rank == 0:
        ctx.fail(f"{ctx.op.name} needs an input of rank >= 1, got a scalar")
    if axis is not None:
        check_axis(ctx, axis, x.rank)
    return [x]


def _scan_reference(accumulate: np.ufunc, identity: int):
    def reference(ctx, x, axis):
        values = np.asarray(axis).ravel()
        if values.size != 1:
            raise ExecutionError(f"axis must hold one integer, got {values.size}")
        ax = run_axis(int(values[0]), x.ndim)
        y = np.flip(x, ax) if ctx.attrs.reverse else x
        acc = accumulate.accumulate(y, axis=ax, dtype=compute_dtype(x.dtype))
        if ctx.attrs.exclusive:
            shifted = np.full_like(acc, identity)
            head = [slice(None)] * x.ndim
            tail = [slice(None)] * x.ndim
            head[ax], tail[ax] = slice(1, None), slice(None, -1)
            shifted[tuple(head)] = acc[tuple(tail)]
            acc = shifted
        if ctx.attrs.reverse:
            acc = np.flip(acc, ax)
        return np.ascontiguousarray(acc).astype(x.dtype, copy=False)
    return reference


_SCAN_ATTRS = [INT("exclusive", 0, (0, 1)), INT("reverse", 0, (0, 1))]

CumSum = define(
    "CumSum", ["x", "axis"], ["y"], kind=K.OPAQUE, since_version=14, attrs=_SCAN_ATTRS,
    infer=_infer_scan, reference=_scan_reference(np.add, 0),
    doc="Running sum along `axis` (exclusive: starts from 0; reverse: from the end).")

CumProd = define(
    "CumProd", ["x", "axis"], ["y"], kind=K.OPAQUE, since_version=26, attrs=_SCAN_ATTRS,
    infer=_infer_scan, reference=_scan_reference(np.multiply, 1),
    doc="Running product along `axis` (exclusive: starts from 1; reverse: from the end).")


# --- TopK ---------------------------------------------------------------------------------------

def _infer_topk(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, x.dtype, _ORDERED)
    k = scalar_operand(ctx, 1, "K", (DType.int64,))
    axis = check_axis(ctx, ctx.attrs.axis, x.rank)
    if k is not None and k < 0:
        ctx.fail(f"K is {k}; it must be >= 0")
    if axis is None:
        shape = None
    else:
        n = x.shape[axis]
        if k is not None and isinstance(n, int) and k > n:
            ctx.fail(f"K is {k} but axis {ctx.attrs.axis} has only {n} elements")
        shape = x.shape[:axis] + (k,) + x.shape[axis + 1:]
    return [TensorType(x.dtype, shape), TensorType(DType.int64, shape)]


def _topk(ctx, x, k):
    k = int(np.asarray(k).ravel()[0])
    axis = run_axis(ctx.attrs.axis, x.ndim)
    n = x.shape[axis]
    if not 0 <= k <= n:
        raise ExecutionError(f"K is {k}; it must be in [0, {n}] for axis {ctx.attrs.axis}")
    if ctx.attrs.largest:
        # a stable ascending sort of the reversed axis, read backwards, is a descending sort in
        # which equal elements keep their original order: the lower index comes first
        order = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        order = n - 1 - np.flip(order, axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


TopK = define(
    "TopK", ["X", "K"], ["Values", "Indices"], kind=K.OPAQUE, since_version=24,
    attrs=[INT("axis", -1), INT("largest", 1, (0, 1)), INT("sorted", 1, (0, 1))],
    infer=_infer_topk, reference=_topk,
    doc="The K largest (or smallest) elements along `axis`, sorted, ties by lower index, and "
        "their int64 indices.")

