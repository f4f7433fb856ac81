"""Normalizations: the softmax family along one axis, and the statistics-based normalizations
(BatchNormalization, LayerNormalization, GroupNormalization, InstanceNormalization,
RMSNormalization, MeanVarianceNormalization, LpNormalization, LRN).

Each reduces over some axes and broadcasts the result back, so all are REDUCTION kind. Outputs
keep the input's float type; narrow floats (float16, bfloat16) are computed in float32, or in the
`stash_type` where the op has one.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import AttributeValueError, ExecutionError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import normalize_axes
from ..types import Dim, TensorType
from .common import DTYPE, FLOAT, INT, INTS
from .reduce import STD_FLOATS, check_axis, check_dtype, compute_dtype, run_axis
from .registry import define

K = FusionKind


def _float_tensor(ctx: InferContext, i: int, what: str = "input") -> TensorType:
    t = ctx.tensor(i)
    check_dtype(ctx, t.dtype, STD_FLOATS, what)
    return t


def _attr_fail(ctx: InferContext, message: str, hint: str | None = None):
    raise AttributeValueError(message, node=ctx.node, hint=hint)


def _same_dim(ctx: InferContext, a: Dim, b: Dim, what: str) -> None:
    if isinstance(a, int) and isinstance(b, int) and a != b:
        ctx.fail(f"{what}: {a} != {b}", hint="check the shapes of the operands")


def _check_broadcasts_to(ctx: InferContext, i: int, target, what: str) -> None:
    """Input i broadcasts to `target` without changing it (ONNX unidirectional broadcasting)."""
    shape = ctx.tensor(i).shape
    if shape is None or target is None:
        return
    if len(shape) > len(target):
        ctx.fail(f"{what} has rank {len(shape)}, more than the input's {len(target)}")
    for a, b in zip(reversed(shape), reversed(target)):
        if a != 1:
            _same_dim(ctx, a, b, f"{what} does not broadcast to the input")


def _check_per_channel(ctx: InferContext, i: int, channels: Dim, what: str) -> TensorType:
    """Input i is a 1-D vector with one entry per channel."""
    t = _float_tensor(ctx, i, what)
    if t.shape is not None:
        if len(t.shape) != 1:
            ctx.fail(f"{what} must be 1-D (one value per channel), got {t}")
        _same_dim(ctx, t.shape[0], channels, f"{what} length and channel count differ")
    return t


def _channels(ctx: InferContext, x: TensorType, min_rank: int = 2) -> Dim:
    """The channel dimension C of an (N, C, ...) input, None when unknown."""
    if x.shape is None:
        return None
    if len(x.shape) < min_rank:
        ctx.fail(f"{ctx.op.name} takes an (N, C, ...) input of rank >= {min_rank}, got {x}")
    return x.shape[1]


def _stash(ctx: InferContext) -> DType:
    dt = ctx.attrs.stash_type
    if dt not in STD_FLOATS:
        _attr_fail(ctx, f"stash_type must be a float type, got {dt}", hint="use float32 (1)")
    return dt


def _moments(x: np.ndarray, axes: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (population) variance over `axes`, kept as size-1 dims."""
    mean = np.mean(x, axis=axes, keepdims=True)
    diff = x - mean
    return mean, np.mean(diff * diff, axis=axes, keepdims=True)


def _rsqrt(v: np.ndarray, epsilon: float) -> np.ndarray:
    return (1 / np.sqrt(v + v.dtype.type(epsilon))).astype(v.dtype, copy=False)


def _channel_view(v: np.ndarray, rank: int) -> np.ndarray:
    """A per-channel vector shaped (C, 1, ..., 1) to broadcast against an (N, C, ...) tensor."""
    return v.reshape((-1,) + (1,) * (rank - 2))


# --- Softmax, LogSoftmax, Hardmax --------------------------------------------------------------

def _infer_along_axis(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    check_axis(ctx, ctx.attrs.axis, x.rank)
    return [x]


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """log(softmax(x)) along `axis`, in x's dtype, without forming exp of large numbers."""
    if x.size == 0:
        return x.copy()
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _softmax(ctx, x):
    axis = run_axis(ctx.attrs.axis, x.ndim)
    if x.size == 0:
        return x.copy()
    xc = x.astype(compute_dtype(x.dtype), copy=False)
    e = np.exp(xc - np.max(xc, axis=axis, keepdims=True))
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype, copy=False)


def _log_softmax(ctx, x):
    axis = run_axis(ctx.attrs.axis, x.ndim)
    return log_softmax(x.astype(compute_dtype(x.dtype), copy=False), axis).astype(x.dtype)


def _hardmax(ctx, x):
    axis = run_axis(ctx.attrs.axis, x.ndim)
    y = np.zeros_like(x)
    if x.size:
        first = np.expand_dims(np.argmax(x, axis=axis), axis)
        np.put_along_axis(y, first, 1, axis=axis)
    return y


Softmax = define(
    "Softmax", ["input"], ["output"], kind=K.REDUCTION, since_version=13, attrs=[INT("axis", -1)],
    infer=_infer_along_axis, reference=_softmax,
    doc="exp(x - max) / sum(exp(x - max)) along `axis`.")

LogSoftmax = define(
    "LogSoftmax", ["input"], ["output"], kind=K.REDUCTION, since_version=13,
    attrs=[INT("axis", -1)], infer=_infer_along_axis, reference=_log_softmax,
    doc="log(softmax(x)) along `axis`, computed as (x - max) - log(sum(exp(x - max))).")

Hardmax = define(
    "Hardmax", ["input"], ["output"], kind=K.REDUCTION, since_version=13, attrs=[INT("axis", -1)],
    infer=_infer_along_axis, reference=_hardmax,
    doc="1 at the first largest element along `axis`, 0 elsewhere.")


# --- BatchNormalization ------------------------------------------------------------------------

def _infer_batch_norm(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    c = _channels(ctx, x)
    _check_per_channel(ctx, 1, c, "scale")
    _check_per_channel(ctx, 2, c, "B")
    mean = _check_per_channel(ctx, 3, c, "input_mean")
    var = _check_per_channel(ctx, 4, c, "input_var")
    if ctx.num_outputs > 1 and not ctx.attrs.training_mode:
        ctx.fail("running_mean and running_var are outputs only when training_mode=1",
                 hint="drop the extra outputs or set training_mode=1")
    return [x, mean.with_shape((c,)), var.with_shape((c,))]


def _batch_norm(ctx, x, scale, b, mean, var):
    cdt = np.dtype(np.float64 if x.dtype == np.float64 else np.float32)
    xs = x.astype(cdt, copy=False)
    eps, momentum = ctx.attrs.epsilon, ctx.attrs.momentum
    if ctx.attrs.training_mode:
        axes = (0,) + tuple(range(2, x.ndim))
        batch_mean, batch_var = (m.reshape(-1) for m in _moments(xs, axes))
        use_mean, use_var = batch_mean, batch_var
    else:
        use_mean, use_var = mean.astype(cdt), var.astype(cdt)
    rank = x.ndim
    y = (xs - _channel_view(use_mean, rank)) * _channel_view(_rsqrt(use_var, eps), rank)
    y = (y * _channel_view(scale.astype(cdt), rank) + _channel_view(b.astype(cdt), rank))
    y = y.astype(x.dtype, copy=False)
    if not ctx.attrs.training_mode:
        return y
    m = cdt.type(momentum)
    running_mean = mean.astype(cdt) * m + batch_mean * (1 - m)
    running_var = var.astype(cdt) * m + batch_var * (1 - m)
    return y, running_mean.astype(mean.dtype), running_var.astype(var.dtype)


BatchNormalization = define(
    "BatchNormalization", ["X", "scale", "B", "input_mean", "input_var"],
    ["Y", "running_mean?", "running_var?"], kind=K.REDUCTION, since_version=15,
    attrs=[FLOAT("epsilon", 1e-5), FLOAT("momentum", 0.9), INT("training_mode", 0, (0, 1))],
    infer=_infer_batch_norm, reference=_batch_norm,
    doc="Per-channel (x - mean) / sqrt(var + epsilon) * scale + B; with training_mode=1 the "
        "batch statistics are used and the running mean/var updated with momentum.")


# --- LayerNormalization, RMSNormalization --------------------------------------------------------

def _infer_layer_norm(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    axis = check_axis(ctx, ctx.attrs.axis, x.rank)
    stash = _stash(ctx)
    _check_broadcasts_to(ctx, 1, x.shape, "Scale")
    _float_tensor(ctx, 1, "Scale")
    if ctx.has_input(2):
        _check_broadcasts_to(ctx, 2, x.shape, "B")
        _float_tensor(ctx, 2, "B")
    stats = None if axis is None else x.shape[:axis] + (1,) * (len(x.shape) - axis)
    return [x, TensorType(stash, stats), TensorType(stash, stats)]


def _layer_norm(ctx, x, scale, b=None):
    axis = run_axis(ctx.attrs.axis, x.ndim)
    xs = x.astype(ctx.attrs.stash_type.np, copy=False)
    mean, var = _moments(xs, tuple(range(axis, x.ndim)))
    inv_std = _rsqrt(var, ctx.attrs.epsilon)
    y = ((xs - mean) * inv_std).astype(x.dtype) * scale
    if b is not None:
        y = y + b
    return y.astype(x.dtype, copy=False), mean, inv_std


LayerNormalization = define(
    "LayerNormalization", ["X", "Scale", "B?"], ["Y", "Mean?", "InvStdDev?"], kind=K.REDUCTION,
    since_version=17,
    attrs=[INT("axis", -1), FLOAT("epsilon", 1e-5), DTYPE("stash_type", DType.float32)],
    infer=_infer_layer_norm, reference=_layer_norm,
    doc="Standardize over axes [axis, rank) in stash_type precision, then * Scale + B.")


def _infer_rms_norm(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    check_axis(ctx, ctx.attrs.axis, x.rank)
    _stash(ctx)
    scale = _float_tensor(ctx, 1, "scale")
    _check_broadcasts_to(ctx, 1, x.shape, "scale")
    return [TensorType(scale.dtype, x.shape)]


def _rms_norm(ctx, x, scale):
    axis = run_axis(ctx.attrs.axis, x.ndim)
    xs = x.astype(ctx.attrs.stash_type.np, copy=False)
    mean_square = np.mean(xs * xs, axis=tuple(range(axis, x.ndim)), keepdims=True)
    y = (xs * _rsqrt(mean_square, ctx.attrs.epsilon)).astype(scale.dtype) * scale
    return y.astype(scale.dtype, copy=False)


RMSNormalization = define(
    "RMSNormalization", ["X", "scale"], ["Y"], kind=K.REDUCTION, since_version=23,
    attrs=[INT("axis", -1), FLOAT("epsilon", 1e-5), DTYPE("stash_type", DType.float32)],
    infer=_infer_rms_norm, reference=_rms_norm,
    doc="X / sqrt(mean(X^2 over axes [axis, rank)) + epsilon) * scale.")


# --- GroupNormalization, InstanceNormalization --------------------------------------------------

def _infer_group_norm(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    c = _channels(ctx, x)
    groups = ctx.attrs.num_groups
    if groups <= 0:
        _attr_fail(ctx, f"num_groups must be positive, got {groups}")
    if isinstance(c, int) and c % groups:
        ctx.fail(f"{c} channels do not split into {groups} groups",
                 hint="num_groups must divide the channel count")
    _stash(ctx)
    _check_per_channel(ctx, 1, c, "scale")
    _check_per_channel(ctx, 2, c, "bias")
    return [x]


def _group_norm(ctx, x, scale, bias):
    n, c = x.shape[:2]
    groups = ctx.attrs.num_groups
    if c % groups:
        raise ExecutionError(f"{c} channels do not split into {groups} groups")
    grouped = x.astype(ctx.attrs.stash_type.np).reshape(n, groups, (c // groups) *
                                                        math.prod(x.shape[2:]))
    mean, var = _moments(grouped, (2,))
    normal = ((grouped - mean) * _rsqrt(var, ctx.attrs.epsilon)).reshape(x.shape).astype(x.dtype)
    y = normal * _channel_view(scale, x.ndim) + _channel_view(bias, x.ndim)
    return y.astype(x.dtype, copy=False)


GroupNormalization = define(
    "GroupNormalization", ["X", "scale", "bias"], ["Y"], kind=K.REDUCTION, since_version=21,
    attrs=[INT("num_groups"), FLOAT("epsilon", 1e-5), DTYPE("stash_type", DType.float32)],
    infer=_infer_group_norm, reference=_group_norm,
    doc="Standardize each group of C/num_groups channels per sample, then per-channel "
        "* scale + bias.")


def _infer_instance_norm(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    c = _channels(ctx, x)
    _check_per_channel(ctx, 1, c, "scale")
    _check_per_channel(ctx, 2, c, "B")
    return [x]


def _instance_norm(ctx, x, scale, b):
    xs = x.astype(compute_dtype(x.dtype), copy=False)
    mean, var = _moments(xs, tuple(range(2, x.ndim)))
    y = (xs - mean) * _rsqrt(var, ctx.attrs.epsilon)
    y = y * _channel_view(scale.astype(xs.dtype), x.ndim) + \
        _channel_view(b.astype(xs.dtype), x.ndim)
    return y.astype(x.dtype, copy=False)


InstanceNormalization = define(
    "InstanceNormalization", ["input", "scale", "B"], ["output"], kind=K.REDUCTION,
    since_version=22, attrs=[FLOAT("epsilon", 1e-5)],
    infer=_infer_instance_norm, reference=_instance_norm,
    doc="Standardize each (sample, channel) over the spatial axes, then per-channel * scale + B.")


# --- MeanVarianceNormalization, LpNormalization, LRN --------------------------------------------

def _infer_mvn(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    if x.rank is not None:
        axes = normalize_axes(ctx.attrs.axes, x.rank, ctx.node)
        if len(set(axes)) != len(axes):
            _attr_fail(ctx, f"axes {list(ctx.attrs.axes)} name an axis twice")
    return [x]


def _mvn(ctx, x):
    axes = tuple(run_axis(a, x.ndim) for a in ctx.attrs.axes)
    xs = x.astype(compute_dtype(x.dtype), copy=False)
    mean, var = _moments(xs, axes)
    return ((xs - mean) / (np.sqrt(var) + xs.dtype.type(1e-9))).astype(x.dtype, copy=False)


MeanVarianceNormalization = define(
    "MeanVarianceNormalization", ["X"], ["Y"], kind=K.REDUCTION, since_version=13,
    attrs=[INTS("axes", (0, 2, 3))], infer=_infer_mvn, reference=_mvn,
    doc="(X - mean) / (std + 1e-9) with mean and std over `axes`.")


def _infer_lp_norm(ctx: InferContext):
    if ctx.attrs.p not in (1, 2):
        _attr_fail(ctx, f"p must be 1 or 2, got {ctx.attrs.p}")
    return _infer_along_axis(ctx)


def _lp_norm(ctx, x):
    axis = run_axis(ctx.attrs.axis, x.ndim)
    xs = np.abs(x.astype(compute_dtype(x.dtype), copy=False))
    norm = np.sum(xs, axis=axis, keepdims=True) if ctx.attrs.p == 1 else \
        np.sqrt(np.sum(xs * xs, axis=axis, keepdims=True))
    safe = np.where(norm == 0, 1, norm)
    return np.where(norm == 0, 0, x / safe).astype(x.dtype, copy=False)


LpNormalization = define(
    "LpNormalization", ["input"], ["output"], kind=K.REDUCTION, since_version=22,
    attrs=[INT("axis", -1), INT("p", 2)], infer=_infer_lp_norm, reference=_lp_norm,
    doc="x / ||x||_p along `axis` (p is 1 or 2); 0 where the norm is 0.")


def _infer_lrn(ctx: InferContext):
    x = _float_tensor(ctx, 0)
    _channels(ctx, x, min_rank=3)
    if ctx.attrs.size <= 0:
        _attr_fail(ctx, f"size must be positive, got {ctx.attrs.size}")
    return [x]


def _lrn(ctx, x):
    size, c = ctx.attrs.size, x.shape[1]
    xs = x.astype(compute_dtype(x.dtype), copy=False)
    before, after = (size - 1) // 2, math.ceil((size - 1) / 2)
    pad = [(0, 0)] * x.ndim
    pad[1] = (before, after)
    squares = np.pad(xs * xs, pad)
    window = sum(squares[:, j:j + c] for j in range(size))
    t = xs.dtype.type
    y = xs / (t(ctx.attrs.bias) + t(ctx.attrs.alpha / size) * window) ** t(ctx.attrs.beta)
    return y.astype(x.dtype, copy=False)


LRN = define(
    "LRN", ["X"], ["Y"], kind=K.REDUCTION, since_version=13,
    attrs=[INT("size"), FLOAT("alpha", 1e-4), FLOAT("beta", 0.75), FLOAT("bias", 1.0)],
    infer=_infer_lrn, reference=_lrn,
    doc="Local response normalization across `size` neighbouring channels: "
        "x / (bias + alpha / size * sum(x^2)) ** beta.")
