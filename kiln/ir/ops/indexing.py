"""Indexing: gathering by index tensors (Gather, GatherElements, GatherND, OneHot), scattering into
copies (ScatterND, ScatterElements, TensorScatter) and selecting with data-dependent result sizes
(Compress, NonZero, Unique).

Index tensors may hold negative indices (counted from the end of their axis). An index out of
range is reported as an ExecutionError that names the node, never as a NumPy IndexError.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import dims_product, normalize_axis
from ..types import TensorType
from .common import INT, STRING, require_same_dtype
from .registry import define
from .shape import INDEX_DTYPES, check_dtype, merge_dim, scalar_of, vector_length

K = FusionKind
_REDUCTIONS = ("none", "add", "mul", "max", "min")
_REDUCE_AT = {"add": np.add.at, "mul": np.multiply.at, "max": np.maximum.at, "min": np.minimum.at}


def checked_indices(indices: np.ndarray, size: int, what: str) -> np.ndarray:
    """Indices into an axis of `size` as non-negative int64; any outside [-size, size) raises."""
    idx = np.asarray(indices).astype(np.int64)
    bad = (idx < -size) | (idx >= size)
    if bad.any():
        raise ExecutionError(
            f"{what} index {int(idx[bad].reshape(-1)[0])} is out of range for an axis of size "
            f"{size}",
            hint=f"indices must lie in [{-size}, {size - 1}]")
    return np.where(idx < 0, idx + size, idx)


def _ranks_known(*types: TensorType) -> bool:
    return all(t.shape is not None for t in types)


# --- Gather, GatherElements, GatherND ------------------------------------------------------------

def _infer_gather(ctx: InferContext):
    data = ctx.tensor(0)
    check_dtype(ctx, 1, INDEX_DTYPES, "Gather's indices")
    indices = ctx.tensor(1)
    if data.shape is not None and len(data.shape) == 0:
        ctx.fail("Gather takes data of rank >= 1, got a scalar")
    if not _ranks_known(data, indices):
        return [data.with_shape(None)]
    axis = normalize_axis(ctx.attrs.axis, len(data.shape), ctx.node)
    const = ctx.const(1)
    size = data.shape[axis]
    if const is not None and isinstance(size, int) and const.size and \
            (const.min() < -size or const.max() >= size):
        ctx.fail(f"Gather indices {const.tolist()} are out of range for axis {axis} of size {size}")
    return [data.with_shape(data.shape[:axis] + indices.shape + data.shape[axis + 1:])]


def _gather(ctx, data, indices):
    axis = ctx.attrs.axis % data.ndim
    return np.take(data, checked_indices(indices, data.shape[axis], "Gather"), axis=axis)


Gather = define(
    "Gather", ["data", "indices"], ["output"], kind=K.INJECTIVE, since_version=13,
    attrs=[INT("axis", 0)], infer=_infer_gather, reference=_gather,
    doc="Picks slices of data along `axis` at the given indices (numpy.take).")


def _infer_gather_elements(ctx: InferContext):
    data = ctx.tensor(0)
    check_dtype(ctx, 1, INDEX_DTYPES, "GatherElements' indices")
    indices = ctx.tensor(1)
    if _ranks_known(data, indices):
        if len(data.shape) != len(indices.shape) or not data.shape:
            ctx.fail(f"GatherElements data and indices must share one rank >= 1, got "
                     f"{list(data.shape)} and {list(indices.shape)}")
        normalize_axis(ctx.attrs.axis, len(data.shape), ctx.node)
    return [data.with_shape(indices.shape)]


def _gather_elements(ctx, data, indices):
    axis = ctx.attrs.axis % data.ndim
    for i, (d, n) in enumerate(zip(data.shape, indices.shape)):
        if i != axis and n > d:
            raise ExecutionError(f"indices dim {i} ({n}) exceeds the data's ({d})")
    window = data[tuple(slice(None) if i == axis else slice(0, n)
                        for i, n in enumerate(indices.shape))]
    idx = checked_indices(indices, data.shape[axis], "GatherElements")
    return np.take_along_axis(window, idx, axis=axis)


GatherElements = define(
    "GatherElements", ["data", "indices"], ["output"], kind=K.INJECTIVE, since_version=13,
    attrs=[INT("axis", 0)], infer=_infer_gather_elements, reference=_gather_elements,
    doc="out[i][j] = data[indices[i][j]][j] (for axis 0): numpy.take_along_axis.")


def _infer_gather_nd(ctx: InferContext):
    data = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.int64}, "GatherND's indices")
    indices = ctx.tensor(1)
    b = ctx.attrs.batch_dims
    if not _ranks_known(data, indices):
        return [data.with_shape(None)]
    r, q = len(data.shape), len(indices.shape)
    if r < 1 or q < 1 or not 0 <= b < min(q, r):
        ctx.fail(f"GatherND needs ranks >= 1 and 0 <= batch_dims < min(ranks); got data rank {r}, "
                 f"indices rank {q}, batch_dims {b}")
    batch = [merge_dim(ctx, data.shape[i], indices.shape[i], f"GatherND batch dim {i} differs")
             for i in range(b)]
    k = indices.shape[-1]
    if not isinstance(k, int):
        return [data.with_shape(None)]
    if not 1 <= k <= r - b:
        ctx.fail(f"GatherND index tuples have {k} entries; data allows 1..{r - b}")
    return [data.with_shape(tuple(batch) + indices.shape[b:-1] + data.shape[b + k:])]


def _index_tuples(data_shape, indices: np.ndarray, what: str) -> tuple[np.ndarray, ...]:
    """The columns of a (..., k) index tensor, each checked against its data axis."""
    k = indices.shape[-1]
    flat = indices.reshape(-1, k)
    return tuple(checked_indices(flat[:, j], data_shape[j], what) for j in range(k))


def _gather_nd(ctx, data, indices):
    b = ctx.attrs.batch_dims
    k = indices.shape[-1]
    nb = math.prod(data.shape[:b])
    rest = data.shape[b + k:]
    m = math.prod(indices.shape[b:-1])
    data_b = data.reshape((nb,) + data.shape[b:])
    ind_b = indices.reshape(nb, m, k)
    out = np.empty((nb, m) + rest, dtype=data.dtype)
    for n in range(nb):
        out[n] = data_b[n][_index_tuples(data.shape[b:], ind_b[n], "GatherND")]
    return out.reshape(indices.shape[:-1] + rest)


GatherND = define(
    "GatherND", ["data", "indices"], ["output"], kind=K.INJECTIVE, since_version=13,
    attrs=[INT("batch_dims", 0)], infer=_infer_gather_nd, reference=_gather_nd,
    doc="Gathers the slices of data addressed by the index tuples in the last dim of indices.")


# --- ScatterND, ScatterElements, TensorScatter ---------------------------------------------------

def _infer_scatter_nd(ctx: InferContext):
    require_same_dtype(ctx, 0, 2)
    check_dtype(ctx, 1, {DType.int64}, "ScatterND's indices")
    data, indices, updates = ctx.tensor(0), ctx.tensor(1), ctx.tensor(2)
    if _ranks_known(data, indices):
        r, q = len(data.shape), len(indices.shape)
        k = indices.shape[-1] if q else None
        if r < 1 or q < 1 or (isinstance(k, int) and not 1 <= k <= r):
            ctx.fail(f"ScatterND needs data and indices of rank >= 1 and index tuples of 1..{r} "
                     f"entries; got shapes {list(data.shape)} and {list(indices.shape)}")
        if isinstance(k, int) and updates.shape is not None:
            want = indices.shape[:-1] + data.shape[k:]
            if len(updates.shape) != len(want):
                ctx.fail(f"ScatterND updates must have shape {list(want)}, "
                         f"got {list(updates.shape)}")
            for i, (a, u) in enumerate(zip(want, updates.shape)):
                merge_dim(ctx, a, u, f"ScatterND updates dim {i} does not match")
    return [data]


def _scatter_nd(ctx, data, indices, updates):
    out = data.copy()
    k = indices.shape[-1]
    where = _index_tuples(data.shape, indices, "ScatterND")
    values = updates.reshape((-1,) + data.shape[k:])
    if ctx.attrs.reduction == "none":
        out[where] = values
    else:
        _REDUCE_AT[ctx.attrs.reduction](out, where, values)
    return out


ScatterND = define(
    "ScatterND", ["data", "indices", "updates"], ["output"], kind=K.OPAQUE, since_version=18,
    attrs=[STRING("reduction", "none", choices=_REDUCTIONS)],
    infer=_infer_scatter_nd, reference=_scatter_nd,
    doc="A copy of data with the slices at the index tuples replaced (or combined) by updates.")


def _infer_scatter_elements(ctx: InferContext):
    require_same_dtype(ctx, 0, 2)
    check_dtype(ctx, 1, INDEX_DTYPES, "ScatterElements' indices")
    data, indices, updates = ctx.tensor(0), ctx.tensor(1), ctx.tensor(2)
    if _ranks_known(data, indices, updates):
        if not len(data.shape) == len(indices.shape) == len(updates.shape) or not data.shape:
            ctx.fail("ScatterElements data, indices and updates must share one rank >= 1")
        normalize_axis(ctx.attrs.axis, len(data.shape), ctx.node)
        for i, (a, u) in enumerate(zip(indices.shape, updates.shape)):
            merge_dim(ctx, a, u, f"ScatterElements indices and updates differ in dim {i}")
    return [data]


def _scatter_elements(ctx, data, indices, updates):
    axis = ctx.attrs.axis % data.ndim
    if indices.shape != updates.shape:
        raise ExecutionError(f"indices {indices.shape} and updates {updates.shape} differ in shape")
    out = data.copy()
    where = list(np.ogrid[tuple(slice(0, n) for n in indices.shape)]) if indices.ndim else []
    for i, n in enumerate(indices.shape):
        if i != axis and n > data.shape[i]:
            raise ExecutionError(f"indices dim {i} ({n}) exceeds the data's ({data.shape[i]})")
    where[axis] = checked_indices(indices, data.shape[axis], "ScatterElements")
    if ctx.attrs.reduction == "none":
        out[tuple(where)] = updates
    else:
        _REDUCE_AT[ctx.attrs.reduction](out, tuple(where), updates)
    return out


ScatterElements = define(
    "ScatterElements", ["data", "indices", "updates"], ["output"], kind=K.OPAQUE,
    since_version=18, attrs=[INT("axis", 0), STRING("reduction", "none", choices=_REDUCTIONS)],
    infer=_infer_scatter_elements, reference=_scatter_elements,
    doc="A copy of data with data[indices[i][j]][j] = updates[i][j] (axis 0), or combined.")


def _infer_tensor_scatter(ctx: InferContext):
    require_same_dtype(ctx, 0, 1)
    cache, update = ctx.tensor(0), ctx.tensor(1)
    if ctx.has_input(2):
        check_dtype(ctx, 2, {DType.int64}, "TensorScatter's write_indices")
        vector_length(ctx, 2, "TensorScatter's write_indices")
    if _ranks_known(cache, update):
        if len(cache.shape) != len(update.shape) or len(cache.shape) < 2:
            ctx.fail(f"TensorScatter cache and update must share one rank >= 2, got "
                     f"{list(cache.shape)} and {list(update.shape)}")
        axis = normalize_axis(ctx.attrs.axis, len(cache.shape), ctx.node)
        if axis == 0:
            ctx.fail("TensorScatter axis cannot be the batch axis 0")
        for i, (c, u) in enumerate(zip(cache.shape, update.shape)):
            if i != axis:
                merge_dim(ctx, c, u, f"TensorScatter cache and update differ in dim {i}")
            elif isinstance(c, int) and isinstance(u, int) and u > c:
                ctx.fail(f"TensorScatter update has {u} steps, more than the cache's {c}")
    return [cache]


def _tensor_scatter(ctx, cache, update, write_indices=None):
    axis = ctx.attrs.axis % cache.ndim
    out = cache.copy()
    dst, src = np.moveaxis(out, axis, 1), np.moveaxis(update, axis, 1)
    capacity, steps = dst.shape[1], src.shape[1]
    starts = np.zeros(cache.shape[0], np.int64) if write_indices is None else write_indices
    if len(starts) != cache.shape[0]:
        raise ExecutionError(f"{len(starts)} write_indices for a batch of {cache.shape[0]}")
    for b, start in enumerate(int(s) for s in starts):
        positions = start + np.arange(steps)
        if ctx.attrs.mode == "circular":
            positions %= capacity
        elif start < 0 or start + steps > capacity:
            raise ExecutionError(
                f"write_indices[{b}] = {start} plus {steps} updates overruns the cache of "
                f"{capacity}", hint="use mode='circular' to wrap around")
        dst[b, positions] = src[b]
    return out


TensorScatter = define(
    "TensorScatter", ["past_cache", "update", "write_indices?"], ["present_cache"],
    kind=K.OPAQUE, since_version=24,
    attrs=[STRING("mode", "linear", choices=("linear", "circular")), INT("axis", -2)],
    infer=_infer_tensor_scatter, reference=_tensor_scatter,
    doc="A KV-cache update: writes `update` into the cache at each batch entry's write index.")


# --- Compress, NonZero, Unique (data-dependent sizes) --------------------------------------------

def _infer_compress(ctx: InferContext):
    x = ctx.tensor(0)
    check_dtype(ctx, 1, {DType.bool}, "Compress's condition")
    vector_length(ctx, 1, "Compress's condition")
    cond = ctx.const(1)
    kept = None if cond is None else int(np.count_nonzero(cond))   # a constant condition: exact
    if ctx.attrs.axis is None:
        size = x.numel() if x.shape is not None else None
        if cond is not None and size is not None and cond.size > size:
            ctx.fail(f"Compress condition has {cond.size} entries for {size} elements")
        return [x.with_shape((kept,))]
    if x.shape is None:
        return [x]
    axis = normalize_axis(ctx.attrs.axis, len(x.shape), ctx.node)
    if cond is not None and isinstance(x.shape[axis], int) and cond.size > x.shape[axis]:
        ctx.fail(f"Compress condition has {cond.size} entries for axis {axis} of size "
                 f"{x.shape[axis]}")
    return [x.with_shape(kept if i == axis else d for i, d in enumerate(x.shape))]


def _compress(ctx, x, condition):
    axis = ctx.attrs.axis
    size = x.size if axis is None else x.shape[axis]
    if condition.size > size:
        raise ExecutionError(f"condition has {condition.size} entries for an axis of {size}")
    return np.compress(condition.reshape(-1), x, axis=axis)


Compress = define(
    "Compress", ["input", "condition"], ["output"], kind=K.OPAQUE, since_version=28,
    attrs=[INT("axis", None)], infer=_infer_compress, reference=_compress,
    doc="Keeps the slices along `axis` (elements of the flattened input) where condition is true.")


def _nonzero(ctx, x):
    if x.ndim == 0:
        return np.zeros((0, int(bool(x))), np.int64)
    return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


NonZero = define(
    "NonZero", ["X"], ["Y"], kind=K.OPAQUE, since_version=13,
    infer=lambda ctx: [TensorType(DType.int64, (ctx.tensor(0).rank, None))],
    reference=_nonzero,
    doc="The indices of the non-zero elements, one column per element (shape [rank, count]).")


def _infer_unique(ctx: InferContext):
    x = ctx.tensor(0)
    axis = ctx.attrs.axis
    if axis is None:
        y, n = x.with_shape((None,)), dims_product(x.shape) if x.shape is not None else None
    elif x.shape is None:
        y, n = x, None
    else:
        if not x.shape:
            ctx.fail("Unique with an axis needs an input of rank >= 1")
        axis = normalize_axis(axis, len(x.shape), ctx.node)
        y = x.with_shape(None if i == axis else d for i, d in enumerate(x.shape))
        n = x.shape[axis]
    i64 = DType.int64
    return [y, TensorType(i64, (None,)), TensorType(i64, (n,)), TensorType(i64, (None,))]


def _unique(ctx, x):
    axis = ctx.attrs.axis
    values = x.reshape(-1) if axis is None else x
    y, first, inverse, counts = np.unique(values, return_index=True, return_inverse=True,
                                          return_counts=True, axis=None if axis is None else axis)
    if not ctx.attrs.sorted:   # order by first occurrence instead
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        y = np.take(y, order, axis=0 if axis is None else axis)
        first, counts, inverse = first[order], counts[order], rank[inverse]
    i64 = np.int64
    return y, first.astype(i64), inverse.reshape(-1).astype(i64), counts.astype(i64)


Unique = define(
    "Unique", ["X"], ["Y", "indices?", "inverse_indices?", "counts?"], kind=K.OPAQUE,
    since_version=28, attrs=[INT("axis", None), INT("sorted", 1, choices=(0, 1))],
    infer=_infer_unique, reference=_unique,
    doc="Unique elements (or slices along `axis`), first-occurrence indices, inverse map, counts.")


# --- OneHot ------------------------------------------------------------------------------------

def _infer_one_hot(ctx: InferContext):
    indices, depth, values = ctx.tensor(0), ctx.tensor(1), ctx.tensor(2)
    for t, what in ((indices, "indices"), (depth, "depth")):
        if not (t.dtype.is_int or t.dtype.is_float):
            ctx.fail(f"OneHot {what} must be numeric, got {t.dtype.name}")
    if depth.shape is not None and depth.numel() not in (1, None):
        ctx.fail(f"OneHot depth must hold one element, got shape {list(depth.shape)}")
    n = vector_length(ctx, 2, "OneHot's values")
    if n is not None and n != 2:
        ctx.fail(f"OneHot values must be [off_value, on_value], got {n} entries")
    if indices.shape is None:
        return [values.with_shape(None)]
    rank = len(indices.shape) + 1
    axis = normalize_axis(ctx.attrs.axis, rank, ctx.node)
    const = ctx.const(1)
    size = int(np.asarray(const).reshape(-1)[0]) if const is not None else None
    if size is not None and size < 0:
        ctx.fail(f"OneHot depth must not be negative, got {size}")
    shape = list(indices.shape)
    shape.insert(axis, size)
    return [values.with_shape(shape)]


def _one_hot(ctx, indices, depth, values):
    n = int(scalar_of(depth, "OneHot depth"))
    if n < 0:
        raise ExecutionError(f"OneHot depth must not be negative, got {n}")
    axis = ctx.attrs.axis % (indices.ndim + 1)
    idx = indices.astype(np.int64)           # float indices truncate, as in ONNX Runtime
    idx = np.where(idx < 0, idx + n, idx)     # out-of-range indices match nothing: all off
    classes = np.arange(n).reshape((n,) + (1,) * (indices.ndim - axis))
    hot = np.expand_dims(idx, axis) == classes
    off, on = values.reshape(-1)
    return np.where(hot, on, off).astype(values.dtype)


OneHot = define(
    "OneHot", ["indices", "depth", "values"], ["output"], kind=K.INJECTIVE, since_version=28,
    attrs=[INT("axis", -1)], infer=_infer_one_hot, reference=_one_hot,
    doc="on_value where the new `axis` index equals indices, off_value elsewhere.")
