"""Resize: nearest, N-linear and N-cubic interpolation of a tensor along any subset of its axes.

Resize is separable, so the reference resizes one axis at a time. For each resized axis it maps
every output coordinate to a source coordinate (`_source_coords`, one formula per
coordinate_transformation_mode), turns that into a few taps -- source indices and weights
(`_taps`) -- and applies them to the whole tensor with one `np.take` per tap. Nothing loops over
output pixels.

Where scale * input size is fractional, align_corners, tf_crop_and_resize and half_pixel_symmetric
use that fractional output width, as ONNX's reference does and its conformance data expect; ONNX
Runtime uses the integer output length there, so the two differ on such cases.

Kind: OPAQUE. An output element reads a stencil of 1 to 4 (more with antialias) input elements
per resized axis, with weights computed from its coordinate: not an injective index map, not a
reduction the fuser understands, so Resize gets a kernel of its own.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import normalize_axes
from ..types import TensorType
from .common import FLOAT, INT, INTS, STRING
from .registry import define

COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                    "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")


# --- what the output size is ---------------------------------------------------------------------

def scaled_size(in_size: int, scale: float) -> int:
    """floor(in_size * scale), computed as ONNX's reference does (float32 scale, float64 product)."""
    return int(float(scale) * in_size)


def resize_plan(shape, axes, scales, sizes, policy: str) -> list[tuple[int, int, float]]:
    """(axis, output size, scale used for the coordinate transform) for every resized axis.

    `shape` must be static on `axes`; exactly one of scales/sizes is given, one entry per axis."""
    if sizes is None:
        return [(d, scaled_size(shape[d], s), float(s)) for d, s in zip(axes, scales)]
    sizes = [int(s) for s in sizes]
    ratios = [s / shape[d] if shape[d] else 1.0 for d, s in zip(axes, sizes)]
    if policy == "stretch":
        return [(d, s, r) for d, s, r in zip(axes, sizes, ratios)]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    return [(d, int(scale * shape[d] + 0.5), scale) for d in axes]


def check_targets(scales, sizes, n_axes: int) -> str | None:
    """What is wrong with the scales/sizes operands (arrays, None when absent), or None."""
    if scales is not None and sizes is not None:
        return "both 'scales' and 'sizes' are given"
    if scales is None and sizes is None:
        return "neither 'scales' nor 'sizes' is given"
    given, name = (scales, "scales") if sizes is None else (sizes, "sizes")
    if given.ndim != 1 or given.size != n_axes:
        return f"'{name}' has shape {given.shape}, expected ({n_axes},): one entry per resized axis"
    if sizes is None and not np.all(scales > 0):
        return f"'scales' must be > 0, got {scales.tolist()}"
    if scales is None and not np.all(sizes >= 0):
        return f"'sizes' must be >= 0, got {sizes.tolist()}"
    return None


def _resized_axes(attr_axes, rank: int, node=None) -> list[int]:
    if not attr_axes:
        return list(range(rank))
    axes = normalize_axes(attr_axes, rank, node)
    return axes


# --- inference -----------------------------------------------------------------------------------

_MAYBE = "maybe"  # a non-constant operand whose emptiness is only known at run time


def _operand_state(ctx: InferContext, i: int):
    """None (absent or empty), a constant array, or _MAYBE."""
    if not ctx.has_input(i):
        return None
    c = ctx.const(i)
    if c is not None:
        return None if c.size == 0 else np.asarray(c)
    t = ctx.tensor(i)
    if t.shape is not None and len(t.shape) != 1:
        ctx.fail(f"input '{ctx.op.inputs[i].name}' must be 1-D, got {t}")
    if t.shape == (0,):
        return None
    return _MAYBE


def _check_operand_types(ctx: InferContext) -> None:
    x = ctx.tensor(0)
    if ctx.attrs.mode != "nearest" and x.dtype in (DType.string, DType.bool):
        ctx.fail(f"mode '{ctx.attrs.mode}' interpolates numbers, got {x.dtype.short} input",
                 hint="use mode='nearest' for bool and string tensors")
    for i, name, ok in ((1, "roi", lambda d: d.is_float), (2, "scales", lambda d: d.is_float),
                        (3, "sizes", lambda d: d.is_int)):
        if ctx.has_input(i) and not ok(ctx.tensor(i).dtype):
            ctx.fail(f"'{name}' has element type {ctx.tensor(i).dtype.short}",
                     hint="roi and scales are floats, sizes is int64")


def _surely_given(ctx: InferContext, i: int, state) -> bool:
    """Present and non-empty: a constant, or a tensor whose static length is not 0."""
    return state is not None and (state is not _MAYBE or isinstance(_static_len(ctx, i), int))


def _static_len(ctx: InferContext, i: int):
    t = ctx.tensor(i)
    return t.shape[0] if t.shape is not None and len(t.shape) == 1 else None


def _infer_resize(ctx: InferContext):
    _check_operand_types(ctx)
    x = ctx.tensor(0)
    scales, sizes = _operand_state(ctx, 2), _operand_state(ctx, 3)
    if scales is None and sizes is None:
        ctx.fail("neither 'scales' nor 'sizes' is given", hint="give exactly one of them")
    if _surely_given(ctx, 2, scales) and _surely_given(ctx, 3, sizes):
        ctx.fail("both 'scales' and 'sizes' are given", hint="give exactly one of them")
    if x.shape is None:
        if ctx.attrs.axes:
            n_axes = len(ctx.attrs.axes)
            for i in (2, 3):
                n = _static_len(ctx, i) if ctx.has_input(i) else None
                if isinstance(n, int) and n not in (0, n_axes):
                    ctx.fail(f"'{ctx.op.inputs[i].name}' has {n} entries, expected {n_axes} (len(axes))")
        return [TensorType(x.dtype, None)]
    rank = len(x.shape)
    axes = _resized_axes(ctx.attrs.axes, rank, ctx.node)
    if len(set(axes)) != len(axes):
        ctx.fail(f"axes {list(ctx.attrs.axes)} repeat an axis")
    for i in (2, 3):
        n = _static_len(ctx, i) if ctx.has_input(i) else None
        if isinstance(n, int) and n not in (0, len(axes)):
            ctx.fail(f"'{ctx.op.inputs[i].name}' has {n} entries, expected {len(axes)}",
                     hint="one entry per axis of X, or per entry of the 'axes' attribute")
    if scales is _MAYBE or sizes is _MAYBE:
        return [TensorType(x.dtype, [None if d in axes else x.shape[d] for d in range(rank)])]
    msg = check_targets(scales, sizes, len(axes))
    if msg:
        ctx.fail(msg)
    out = list(x.shape)
    policy = ctx.attrs.keep_aspect_ratio_policy
    if sizes is not None and policy == "stretch":
        for d, s in zip(axes, sizes):
            out[d] = int(s)
    elif sizes is not None:
        if all(isinstance(x.shape[d], int) for d in axes):
            for d, size, _ in resize_plan(x.shape, axes, None, sizes, policy):
                out[d] = size
        else:
            for d in axes:
                out[d] = None
    else:
        for d, s in zip(axes, scales):
            if isinstance(x.shape[d], int):
                out[d] = scaled_size(x.shape[d], s)
            elif float(s) != 1.0:
                out[d] = None
    return [TensorType(x.dtype, out)]


# --- one axis: source coordinates and taps -------------------------------------------------------

def _source_coords(mode: str, out_size: int, in_size: int, scale: float, roi):
    """x_original for every output index along one axis (float64), and where it falls outside
    the input for tf_crop_and_resize (else None). The arithmetic follows ONNX's reference order."""
    y = np.arange(out_size, dtype=np.float64)
    width = scale * in_size          # the fractional output width
    outside = None
    if mode == "align_corners":
        x = np.zeros(out_size) if width == 1 else y * (in_size - 1) / (width - 1)
    elif mode == "asymmetric":
        x = y / scale
    elif mode == "tf_crop_and_resize":
        start, end = roi          # numpy scalars of roi's dtype: their products stay in it
        if width == 1:
            x = np.full(out_size, (end - start) * (in_size - 1) / 2, dtype=np.float64)
        else:
            x = y * (end - start) * (in_size - 1) / (width - 1)
        x = x + start * (in_size - 1)
        outside = (x < 0) | (x > in_size - 1)
    elif mode == "pytorch_half_pixel":
        x = np.full(out_size, -0.5) if width == 1 else (y + 0.5) / scale - 0.5
    elif mode == "half_pixel":
        x = (y + 0.5) / scale - 0.5
    else:  # half_pixel_symmetric
        offset = in_size / 2 * (1 - out_size / width)
        x = offset + (y + 0.5) / scale - 0.5
    return x, outside


def _cubic(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution kernel at distances d."""
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


def _weights(attrs, ratio: np.ndarray, scale: float) -> np.ndarray:
    """(out, n) tap weights; ratio in (0, 1] is the distance from the tap just left of x."""
    r = ratio[:, None]
    if attrs.mode == "nearest":
        pick = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
                "floor": np.zeros_like(ratio, bool), "ceil": np.ones_like(ratio, bool)}
        pick = pick[attrs.nearest_mode] | (ratio == 1)
        return np.stack([~pick, pick], axis=1).astype(np.float64)
    if not attrs.antialias or scale >= 1:
        if attrs.mode == "linear":
            return np.concatenate([1 - r, r], axis=1)
        return _cubic(np.arange(-1, 3)[None, :] - r, attrs.cubic_coeff_a)
    # Antialias: the kernel is stretched by 1/scale, so more input taps reach each output.
    reach = 1 if attrs.mode == "linear" else 2
    first = int(np.floor(-reach / scale) + 1)
    dist = (np.arange(first, 2 - first)[None, :] - r) * scale
    w = np.clip(1 - np.abs(dist), 0, 1) if attrs.mode == "linear" else \
        _cubic(dist, attrs.cubic_coeff_a)
    return w / w.sum(axis=1, keepdims=True)


def _taps(attrs, x: np.ndarray, in_size: int, scale: float):
    """Source indices (out, n), not yet clamped, and their weights (out, n)."""
    ratio = np.where(x == np.floor(x), 1.0, x - np.floor(x))
    w = _weights(attrs, ratio, scale)
    n = w.shape[1]                     # always even: the window is centred between two pixels
    pad = (n + 1) // 2
    xp = x + pad
    first = np.floor(xp).astype(np.int64) - pad + np.where(xp == np.floor(xp), -(n // 2), 1 - n // 2)
    idx = first[:, None] + np.arange(n)[None, :]
    if attrs.exclude_outside:
        w = np.where((idx < 0) | (idx >= in_size), 0.0, w)
        total = w.sum(axis=1, keepdims=True)
        w = w / np.where(total == 0, 1.0, total)
    return idx, w


def _resize_axis(attrs, data: np.ndarray, axis: int, out_size: int, scale: float, roi):
    in_size = data.shape[axis]
    if out_size == 0 or in_size == 0:
        shape = list(data.shape)
        shape[axis] = out_size
        return np.zeros(shape, data.dtype)
    x, outside = _source_coords(attrs.coordinate_transformation_mode, out_size, in_size, scale, roi)
    idx, w = _taps(attrs, x, in_size, scale)
    clamped = np.clip(idx, 0, in_size - 1)
    bshape = (1,) * axis + (out_size,) + (1,) * (data.ndim - axis - 1)
    if attrs.mode == "nearest":        # a gather: exact for every dtype
        k = np.argmax(w != 0, axis=1)
        rows = np.arange(out_size)
        out = np.take(data, clamped[rows, k], axis=axis)
        if attrs.exclude_outside:
            dropped = w[rows, k] == 0
            out = np.where(dropped.reshape(bshape), np.zeros((), data.dtype), out)
    else:
        out = sum(np.take(data, clamped[:, t], axis=axis) * w[:, t].reshape(bshape)
                  for t in range(idx.shape[1]))
    if outside is not None and outside.any():
        fill = np.asarray(attrs.extrapolation_value).astype(out.dtype)
        out = np.where(outside.reshape(bshape), fill, out)
    return out


# --- the reference -------------------------------------------------------------------------------

def _nonempty(a):
    return None if a is None or np.asarray(a).size == 0 else np.asarray(a)


def _cast_back(y: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Saturating cast to X's type: integers round half to even and clip to their range."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.round(y), info.min, info.max).astype(dtype)
    if dtype.kind == "c":
        return y.astype(dtype)
    info = np.finfo(dtype) if dtype.kind == "f" else None
    return (np.clip(y, info.min, info.max) if info is not None else y).astype(dtype)


def _resize(ctx, x, roi=None, scales=None, sizes=None):
    a = ctx.attrs
    scales, sizes, roi = _nonempty(scales), _nonempty(sizes), _nonempty(roi)
    axes = _resized_axes(a.axes, x.ndim, ctx.node)
    msg = check_targets(scales, sizes, len(axes))
    if msg:
        raise ExecutionError(msg, hint="give exactly one of scales and sizes, one entry per axis")
    crop = a.coordinate_transformation_mode == "tf_crop_and_resize"
    if crop and (roi is None or roi.shape != (2 * len(axes),)):
        raise ExecutionError(f"tf_crop_and_resize needs 'roi' of shape ({2 * len(axes)},), got "
                             f"{None if roi is None else roi.shape}",
                             hint="roi is [start_1..start_k, end_1..end_k] for the k resized axes")
    plan = resize_plan(x.shape, axes, scales, sizes, a.keep_aspect_ratio_policy)
    if a.mode == "nearest":
        y = x
    else:
        y = x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)
    for i, (axis, out_size, scale) in enumerate(plan):
        box = (roi[i], roi[i + len(axes)]) if crop else None
        if math.isclose(scale, 1.0) and out_size == y.shape[axis] and \
                (box is None or (math.isclose(float(box[0]), 0.0) and math.isclose(float(box[1]), 1.0))):
            continue                   # identity along this axis
        y = _resize_axis(a, y, axis, out_size, scale, box)
    return y if a.mode == "nearest" else _cast_back(y, x.dtype)


Resize = define(
    "Resize", ["X", "roi?", "scales?", "sizes?"], ["Y"], kind=FusionKind.OPAQUE, since_version=19,
    attrs=[INT("antialias", 0, choices=(0, 1)), INTS("axes", ()),
           STRING("coordinate_transformation_mode", "half_pixel", choices=COORDINATE_MODES),
           FLOAT("cubic_coeff_a", -0.75), INT("exclude_outside", 0, choices=(0, 1)),
           FLOAT("extrapolation_value", 0.0),
           STRING("keep_aspect_ratio_policy", "stretch", choices=ASPECT_POLICIES),
           STRING("mode", "nearest", choices=("nearest", "linear", "cubic")),
           STRING("nearest_mode", "round_prefer_floor", choices=NEAREST_MODES)],
    infer=_infer_resize, reference=_resize,
    doc="Resize X by scales or to sizes with nearest, N-linear or N-cubic interpolation.")
