"""Pooling: MaxPool (with its Indices), AveragePool, LpPool, their Global forms, and MaxUnpool.

Windows follow the ONNX rules in window.py (explicit pads or auto_pad, dilations, ceil_mode where
a window that would start in the end padding is dropped). The references reduce a strided view
of the padded input; taps outside the input never contribute (max ignores them, sums read 0) and
averages divide by the taps inside the input, or inside the padded input with count_include_pad.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import AttributeValueError, ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import Dim, TensorType
from .common import INT, INTS
from .registry import define
from .window import FLOAT_TYPES, accumulator, auto_pad_attr, check_dtype, check_out_shape, \
    image_rank, make_window, outer_mask, tap_positions, window_attrs, windows

K = FusionKind

_MAXPOOL_TYPES = FLOAT_TYPES | {DType.int8, DType.uint8}


# --- windowed pools --------------------------------------------------------------------------

def _pool_window(attrs, x_rank: int, node=None):
    return make_window(attrs, x_rank - 2, attrs.kernel_shape, node,
                       ceil_mode=bool(attrs.get("ceil_mode", 0)))


def check_p(ctx: InferContext) -> None:
    if "p" in ctx.attrs and ctx.attrs.p < 1:
        raise AttributeValueError(f"p must be >= 1, got {ctx.attrs.p}", node=ctx.node)


def _pool_infer(allowed, *, indices: bool = False):
    def infer(ctx: InferContext):
        dtype = check_dtype(ctx, 0, allowed, "input X")
        check_p(ctx)
        rank = image_rank(ctx, 0)
        if rank is None:
            rank = len(ctx.attrs.kernel_shape) + 2
        x = ctx.tensor(0).shape or (None,) * rank
        win = _pool_window(ctx.attrs, rank, ctx.node)
        out = win.out_shape(x[2:])
        check_out_shape(ctx, win, x[2:], out)
        shape = (x[0], x[1], *out)
        types = [TensorType(dtype, shape)]
        if indices:
            types.append(TensorType(DType.int64, shape))
        return types
    return infer


def _geometry(ctx, x):
    win = _pool_window(ctx.attrs, x.ndim, ctx.node)
    out, begin, end = win.resolve(x.shape[2:])
    return win, out, begin, end


def _tap_mask(win, out, begin, lo, hi) -> np.ndarray:
    """(*out, *kernel) mask of taps whose input coordinate lies in [lo_i, hi_i) on every axis."""
    pos = tap_positions(win, out, begin)
    return outer_mask([(p >= a) & (p < b) for p, a, b in zip(pos, lo, hi)])


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" or dtype.kind == "V" else np.iinfo(dtype).min


def _max_pool(ctx, x):
    win, out, begin, _ = _geometry(ctx, x)
    nd = win.rank
    wide = x if x.dtype.kind in "iu" or x.dtype == np.float64 else x.astype(np.float32)
    taps = windows(wide, win, out, begin, value=_lowest(wide.dtype))
    flat = taps.reshape(*taps.shape[:2 + nd], -1)
    y = flat.max(axis=-1)
    if ctx.num_outputs < 2:
        return y.astype(x.dtype, copy=False)
    spatial = x.shape[2:]
    inside = _tap_mask(win, out, begin, (0,) * nd, spatial).reshape(*out, -1)
    first = ((flat == y[..., None]) & inside).argmax(axis=-1)        # first maximal tap
    tap = np.unravel_index(first, win.kernel)
    coords = []
    for i in range(nd):
        o = np.arange(out[i]).reshape((-1,) + (1,) * (nd - 1 - i))
        coords.append(o * win.strides[i] - begin[i] + tap[i] * win.dilations[i])
    order = range(nd) if ctx.attrs.storage_order == 0 else reversed(range(nd))
    index = np.zeros(first.shape, dtype=np.int64)
    for i in order:   # row-major (or column-major) offset inside one N, C plane
        index = index * spatial[i] + coords[i]
    planes = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(x.shape[:2] + (1,) * nd)
    return y.astype(x.dtype, copy=False), index + planes * math.prod(spatial)


MaxPool = define(
    "MaxPool", ["X"], ["Y", "Indices?"], kind=K.REDUCTION, since_version=22,
    attrs=[auto_pad_attr(), INT("ceil_mode", 0, choices=(0, 1)),
           INT("storage_order", 0, choices=(0, 1)), *window_attrs(kernel_required=True)],
    infer=_pool_infer(_MAXPOOL_TYPES, indices=True), reference=_max_pool,
    doc="Max over each window; Indices gives the flat input position of each maximum.")


def _window_sum(ctx, x, transform=None):
    """(sum over each window of transform(x), win, out, begin, end), computed in the accumulator."""
    win, out, begin, end = _geometry(ctx, x)
    wide = x.astype(accumulator(x.dtype), copy=False)
    if transform is not None:
        wide = transform(wide)
    taps = windows(wide, win, out, begin, value=0)
    total = taps.sum(axis=tuple(range(-win.rank, 0)))
    return total, win, out, begin, end


def _average_pool(ctx, x):
    total, win, out, begin, end = _window_sum(ctx, x)
    spatial = x.shape[2:]
    if ctx.attrs.count_include_pad:
        counted = _tap_mask(win, out, begin, [-b for b in begin],
                            [n + e for n, e in zip(spatial, end)])
    else:
        counted = _tap_mask(win, out, begin, (0,) * win.rank, spatial)
    count = counted.sum(axis=tuple(range(-win.rank, 0)))
    return (total / count).astype(x.dtype)


AveragePool = define(
    "AveragePool", ["X"], ["Y"], kind=K.REDUCTION, since_version=22,
    attrs=[auto_pad_attr(), INT("ceil_mode", 0, choices=(0, 1)),
           INT("count_include_pad", 0, choices=(0, 1)), *window_attrs(kernel_required=True)],
    infer=_pool_infer(FLOAT_TYPES), reference=_average_pool,
    doc="Mean over each window (padding counted only with count_include_pad).")


def _lp_pool(ctx, x):
    p = ctx.attrs.p
    total, *_ = _window_sum(ctx, x, lambda v: np.abs(v) ** p)
    return (total ** (1.0 / p)).astype(x.dtype)


LpPool = define(
    "LpPool", ["X"], ["Y"], kind=K.REDUCTION, since_version=22,
    attrs=[auto_pad_attr(), INT("ceil_mode", 0, choices=(0, 1)), INT("p", 2),
           *window_attrs(kernel_required=True)],
    infer=_pool_infer(FLOAT_TYPES), reference=_lp_pool,
    doc="p-norm of each window: (sum |x|^p) ^ (1/p).")


# --- global pools ----------------------------------------------------------------------------

def _infer_global(ctx: InferContext):
    t = ctx.tensor(0)
    check_dtype(ctx, 0, FLOAT_TYPES, "input X")
    check_p(ctx)
    if t.shape is None:
        return [t]
    if len(t.shape) < 2:
        ctx.fail(f"input must have rank >= 2 (N x C x spatial...), got shape {list(t.shape)}")
    return [t.with_shape((*t.shape[:2], *(1,) * (len(t.shape) - 2)))]


def _global(reduce):
    def reference(ctx, x):
        axes = tuple(range(2, x.ndim))
        wide = x.astype(accumulator(x.dtype), copy=False)
        return np.asarray(reduce(ctx, wide, axes)).astype(x.dtype)
    return reference


def _global_lp(ctx, x, axes):
    p = ctx.attrs.p
    return (np.abs(x) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)


GlobalAveragePool = define(
    "GlobalAveragePool", ["X"], ["Y"], kind=K.REDUCTION, since_version=22,
    infer=_infer_global, reference=_global(lambda ctx, x, axes: x.mean(axis=axes, keepdims=True)),
    doc="Mean over all spatial axes (kept as size 1).")

GlobalMaxPool = define(
    "GlobalMaxPool", ["X"], ["Y"], kind=K.REDUCTION, since_version=22,
    infer=_infer_global, reference=_global(lambda ctx, x, axes: x.max(axis=axes, keepdims=True)),
    doc="Max over all spatial axes (kept as size 1).")

GlobalLpPool = define(
    "GlobalLpPool", ["X"], ["Y"], kind=K.REDUCTION, since_version=22, attrs=[INT("p", 2)],
    infer=_infer_global, reference=_global(_global_lp),
    doc="p-norm over all spatial axes (kept as size 1).")


# --- MaxUnpool -------------------------------------------------------------------------------

def _unpool_dim(win, i: int, n: Dim) -> Dim:
    """Size MaxPool's input had along spatial axis i: (n - 1) * stride - pads + kernel."""
    k, s = win.kernel[i], win.strides[i]
    pads = win.pads[i] + win.pads[win.rank + i]
    if isinstance(n, int):
        return (n - 1) * s - pads + k
    return n if s == 1 and k - pads == 1 else None


def _infer_max_unpool(ctx: InferContext):
    dtype = check_dtype(ctx, 0, FLOAT_TYPES, "input X")
    if ctx.tensor(1).dtype != DType.int64:
        ctx.fail(f"indices I must be int64, got {ctx.tensor(1).dtype.short}")
    rank = image_rank(ctx, 0, 1)
    if rank is None:
        rank = len(ctx.attrs.kernel_shape) + 2
    x = ctx.tensor(0).shape or (None,) * rank
    i_shape = ctx.tensor(1).shape
    if i_shape is not None:
        for a, b in zip(x, i_shape):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                ctx.fail(f"X has shape {list(x)} but the indices have shape {list(i_shape)}",
                         hint="pass MaxPool's Y and Indices unchanged")
    win = make_window(ctx.attrs, rank - 2, ctx.attrs.kernel_shape, ctx.node)
    if ctx.has_input(2):
        given = ctx.const(2)
        if given is not None:
            shape = tuple(int(d) for d in np.asarray(given).reshape(-1))
            if len(shape) != rank:
                ctx.fail(f"output_shape {list(shape)} must have {rank} entries (N, C, spatial...)")
            return [TensorType(dtype, shape)]
        return [TensorType(dtype, (x[0], x[1], *(None,) * (rank - 2)))]
    out = tuple(_unpool_dim(win, i, n) for i, n in enumerate(x[2:]))
    check_out_shape(ctx, win, x[2:], out)
    return [TensorType(dtype, (x[0], x[1], *out))]


def _max_unpool(ctx, x, indices, output_shape=None):
    # Indices address the flattened MaxPool input, which output_shape (when given) describes, as
    # the ONNX spec and onnxruntime have it; onnx.reference instead scatters into the inferred
    # shape and pads that up to output_shape.
    win = make_window(ctx.attrs, x.ndim - 2, ctx.attrs.kernel_shape, ctx.node)
    if output_shape is None:
        shape = x.shape[:2] + tuple(_unpool_dim(win, i, n) for i, n in enumerate(x.shape[2:]))
    else:
        shape = tuple(int(d) for d in output_shape)
    size = math.prod(shape)
    idx = indices.reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ExecutionError(f"MaxUnpool index {int(idx.max())} is outside the output of shape "
                             f"{list(shape)}", hint="pass MaxPool's Indices and the shape of "
                                                   "MaxPool's input as output_shape")
    y = np.zeros(size, dtype=x.dtype)
    y[idx] = x.reshape(-1)
    return y.reshape(shape)


MaxUnpool = define(
    "MaxUnpool", ["X", "I", "output_shape?"], ["output"], kind=K.OPAQUE, since_version=22,
    attrs=[INTS("kernel_shape"), INTS("strides", ()), INTS("pads", ())],
    infer=_infer_max_unpool, reference=_max_unpool,
    doc="Scatter X to the positions I that MaxPool reported; everything else is 0.")
