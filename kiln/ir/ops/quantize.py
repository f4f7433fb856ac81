"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, QLinearConv.

A scale (and its zero point) is per tensor (one element), per axis (a vector along `axis`) or
blocked (the input's shape with `axis` divided into blocks of `block_size`); `_expand_param`
turns each form into an array that broadcasts against the input. Integer targets round half to
even and saturate; float8 targets saturate to the largest finite value unless `saturate=0`.
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from ...errors import TypeInferenceError
from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import normalize_axis
from ..types import Dim, TensorType
from .common import DTYPE, INT, INTS, STRING
from .linalg import matmul_shape, row_zero_point
from .registry import define

K = FusionKind

_INT_TARGETS = {
    DType.uint8: (0, 255), DType.int8: (-128, 127), DType.uint16: (0, 65535),
    DType.int16: (-32768, 32767), DType.uint4: (0, 15), DType.int4: (-8, 7),
    DType.uint2: (0, 3), DType.int2: (-2, 1),
}
_FLOAT8 = frozenset({DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2,
                     DType.float8e5m2fnuz})
_QUANT_TARGETS = frozenset(_INT_TARGETS) | _FLOAT8 | {DType.float4e2m1}
_DEQUANT_SOURCES = _QUANT_TARGETS | {DType.int32}
_SCALE_DTYPES = frozenset({DType.float32, DType.float16, DType.bfloat16, DType.float8e8m0})
_QUANT_INPUTS = frozenset({DType.float32, DType.float16, DType.bfloat16, DType.int32})
_INT8 = frozenset({DType.int8, DType.uint8})


def _check(ctx: InferContext, dtype: DType, allowed, what: str) -> None:
    if dtype not in allowed:
        ctx.fail(f"{what} cannot be {dtype.short}",
                 hint=f"allowed: {', '.join(sorted(d.short for d in allowed))}")


def _check_param_shape(ctx: InferContext, x: tuple | None, p: tuple | None, what: str) -> None:
    """A scale or zero point fits x per tensor, per axis or blocked (see module docstring)."""
    if x is None or p is None:
        return
    if all(isinstance(d, int) for d in p) and math.prod(p) == 1 and len(p) <= 1:
        return  # per tensor
    block = ctx.attrs.block_size
    if block < 0:
        ctx.fail(f"block_size must be >= 0, got {block}")
    if len(x) == 0:
        ctx.fail(f"{what} of shape {p} does not fit a scalar input")
    axis = normalize_axis(ctx.attrs.axis, len(x), ctx.node)
    if block == 0:
        if len(p) != 1:
            ctx.fail(f"{what} must be a scalar or a 1-D per-axis vector, got shape {p}",
                     hint="set block_size for blocked quantization")
        if isinstance(p[0], int) and isinstance(x[axis], int) and p[0] != x[axis]:
            ctx.fail(f"{what} has {p[0]} elements but axis {axis} of the input has {x[axis]}")
        return
    if len(p) != len(x):
        ctx.fail(f"blocked {what} must have the input's rank {len(x)}, got shape {p}")
    for i, (dx, dp) in enumerate(zip(x, p)):
        if not (isinstance(dx, int) and isinstance(dp, int)):
            continue
        want = -(-dx // block) if i == axis else dx
        if dp != want:
            ctx.fail(f"blocked {what} has shape {p}; expected dim {i} to be {want} "
                     f"for input shape {x} and block_size {block}")


def _expand_param(p: np.ndarray, shape: tuple, axis: int, block: int) -> np.ndarray:
    """Shape a scale/zero point so it broadcasts elementwise against an input of `shape`."""
    if p.size == 1:
        return p.reshape(())
    axis = axis % len(shape)
    if not block:
        dims = [1] * len(shape)
        dims[axis] = p.size
        return p.reshape(dims)
    return np.repeat(p, block, axis=axis).take(np.arange(shape[axis]), axis=axis)


def _saturate(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = ml_dtypes.finfo(dtype)
    return np.clip(x, info.min, info.max).astype(dtype)


# --- QuantizeLinear --------------------------------------------------------------------------

def _quant_out_dtype(ctx: InferContext) -> DType:
    out = ctx.attrs.output_dtype
    if ctx.has_input(2):
        zp = ctx.tensor(2).dtype
        if out is not None and out != zp:
            ctx.fail(f"output_dtype {out.short} differs from the zero point's dtype {zp.short}")
        out = zp
    return out or DType.uint8


def _infer_quantize(ctx: InferContext):
    x = ctx.tensor(0)
    _check(ctx, x.dtype, _QUANT_INPUTS, "the input")
    _check(ctx, ctx.tensor(1).dtype, _SCALE_DTYPES | {DType.int32}, "the scale")
    out = _quant_out_dtype(ctx)
    _check(ctx, out, _QUANT_TARGETS, "the quantized type")
    _check_param_shape(ctx, x.shape, ctx.tensor(1).shape, "the scale")
    if ctx.has_input(2):
        _check_param_shape(ctx, x.shape, ctx.tensor(2).shape, "the zero point")
    return [TensorType(out, x.shape)]


def _quantize(ctx, x, scale, zp=None):
    a = ctx.attrs
    out = ctx.output_types[0].dtype
    scale = _expand_param(scale, x.shape, a.axis, a.block_size)
    if a.precision is not None:
        y = x.astype(a.precision.np) / scale.astype(a.precision.np)
    else:
        y = x / scale
    if zp is not None:
        zp = _expand_param(zp, x.shape, a.axis, a.block_size)
    if out in _INT_TARGETS:
        yi = np.rint(y).astype(np.int32)
        if zp is not None:
            yi = yi + zp.astype(np.int32)
        lo, hi = _INT_TARGETS[out]
        return np.clip(yi, lo, hi).astype(out.np)
    if out in _FLOAT8:
        return _saturate(y, out.np) if a.saturate else y.astype(out.np)
    if zp is not None:  # float4: no infinities, so the cast itself saturates
        y = y + zp
    return y.astype(out.np)


QuantizeLinear = define(
    "QuantizeLinear", ["x", "y_scale", "y_zero_point?"], ["y"], kind=K.BROADCAST,
    since_version=28,
    attrs=[INT("axis", 1), INT("block_size", 0), DTYPE("output_dtype", None),
           INT("saturate", 1, choices=(0, 1)), DTYPE("precision", None)],
    infer=_infer_quantize, reference=_quantize,
    doc="y = saturate(round(x / y_scale) + y_zero_point), per tensor, per axis or blocked.")


# --- DequantizeLinear ------------------------------------------------------------------------

def _infer_dequantize(ctx: InferContext):
    x = ctx.tensor(0)
    _check(ctx, x.dtype, _DEQUANT_SOURCES, "the quantized input")
    scale = ctx.tensor(1).dtype
    _check(ctx, scale, _SCALE_DTYPES, "the scale")
    if ctx.has_input(2):
        zp = ctx.tensor(2).dtype
        if zp != x.dtype and x.dtype not in _FLOAT8 and x.dtype is not DType.float4e2m1:
            ctx.fail(f"the zero point ({zp.short}) must have the input's dtype ({x.dtype.short})")
        _check_param_shape(ctx, x.shape, ctx.tensor(2).shape, "the zero point")
    _check_param_shape(ctx, x.shape, ctx.tensor(1).shape, "the scale")
    out = ctx.attrs.output_dtype or scale
    return [TensorType(out, x.shape)]


def _dequantize(ctx, x, scale, zp=None):
    a = ctx.attrs
    dx = x.astype(np.float32)
    if zp is not None and DType.from_numpy(x.dtype) not in _FLOAT8 | {DType.float4e2m1}:
        dx = dx - _expand_param(zp, x.shape, a.axis, a.block_size).astype(np.float32)
    y = dx * _expand_param(scale, x.shape, a.axis, a.block_size)
    return y.astype((a.output_dtype or DType.from_numpy(scale.dtype)).np)


DequantizeLinear = define(
    "DequantizeLinear", ["x", "x_scale", "x_zero_point?"], ["y"], kind=K.BROADCAST,
    since_version=28, attrs=[INT("axis", 1), INT("block_size", 0), DTYPE("output_dtype", None)],
    infer=_infer_dequantize, reference=_dequantize,
    doc="y = (x - x_zero_point) * x_scale, per tensor, per axis or blocked.")


# --- DynamicQuantizeLinear -------------------------------------------------------------------

def _infer_dynamic_quantize(ctx: InferContext):
    x = ctx.tensor(0)
    _check(ctx, x.dtype, {DType.float32}, "the input")
    return [TensorType(DType.uint8, x.shape), TensorType(DType.float32, ()),
            TensorType(DType.uint8, ())]


def _dynamic_quantize(ctx, x):
    f32 = np.float32
    hi = f32(max(0.0, float(np.max(x)))) if x.size else f32(0)
    lo = f32(min(0.0, float(np.min(x)))) if x.size else f32(0)
    scale = f32(1.0 if hi == lo else hi - lo) / f32(255)
    zp = np.rint(np.clip(f32(0) - lo / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255)
    return (y.astype(np.uint8), np.asarray(scale, dtype=np.float32),
            np.asarray(zp, dtype=np.uint8))


DynamicQuantizeLinear = define(
    "DynamicQuantizeLinear", ["x"], ["y", "y_scale", "y_zero_point"], kind=K.OPAQUE,
    since_version=11, infer=_infer_dynamic_quantize, reference=_dynamic_quantize,
    doc="uint8 quantization of x with scale and zero point computed from its min and max.")


# --- QLinearMatMul ---------------------------------------------------------------------------

_QMATMUL_TYPES = _INT8 | _FLOAT8


def _infer_qlinear_matmul(ctx: InferContext):
    for i, what in ((0, "a"), (3, "b"), (7, "y_zero_point")):
        _check(ctx, ctx.tensor(i).dtype, _QMATMUL_TYPES, what)
    for i, of in ((2, 0), (5, 3)):
        if ctx.tensor(i).dtype != ctx.tensor(of).dtype:
            ctx.fail(f"zero point #{i} ({ctx.tensor(i).dtype.short}) must have the dtype of "
                     f"input #{of} ({ctx.tensor(of).dtype.short})")
    for i in (1, 4, 6):
        _check(ctx, ctx.tensor(i).dtype, {DType.float32, DType.float16, DType.bfloat16},
               f"scale #{i}")
    shape = matmul_shape(ctx, ctx.tensor(0).shape, ctx.tensor(3).shape)
    return [TensorType(ctx.tensor(7).dtype, shape)]


def _centered(q: np.ndarray, zp: np.ndarray) -> np.ndarray:
    """q - zp exactly: in int32 for integer data, in float32 for float8."""
    wide = np.int32 if q.dtype.kind in "iu" else np.float32
    return q.astype(wide) - zp.astype(wide)


def _requantize(acc: np.ndarray, multiplier, zp: np.ndarray) -> np.ndarray:
    y = acc * multiplier + zp
    if zp.dtype.kind in "iu":
        info = np.iinfo(zp.dtype)
        return np.clip(np.rint(y), info.min, info.max).astype(zp.dtype)
    return _saturate(y, zp.dtype)


def _qlinear_matmul(ctx, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
    acc = np.matmul(_centered(a, row_zero_point(a_zp, a)), _centered(b, b_zp))
    multiplier = row_zero_point(a_scale, a) * b_scale / y_scale
    return _requantize(acc, multiplier, y_zp)


QLinearMatMul = define(
    "QLinearMatMul",
    ["a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"],
    ["y"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=21,
    infer=_infer_qlinear_matmul, reference=_qlinear_matmul,
    doc="Quantized matmul: requantize((a - a_zp) @ (b - b_zp) * a_scale * b_scale / y_scale).")


# --- QLinearConv -----------------------------------------------------------------------------

def conv_geometry(ctx, spatial: tuple, kernel: tuple) -> tuple[list, list, list, list]:
    """(strides, dilations, pads as [begins..., ends...], output spatial dims) for a conv."""
    a = ctx.attrs
    n = len(kernel)
    strides = list(a.strides or (1,) * n)
    dilations = list(a.dilations or (1,) * n)
    pads = list(a.pads or (0,) * (2 * n))
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n:
        raise TypeInferenceError(f"strides/dilations need {n} values and pads {2 * n} for "
                                 f"{n} spatial dims", node=ctx.node)
    out: list[Dim] = []
    for i, (d, k) in enumerate(zip(spatial, kernel)):
        s, dil = strides[i], dilations[i]
        if not (isinstance(d, int) and isinstance(k, int)):
            out.append(None)
            continue
        span = dil * (k - 1) + 1
        if a.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-d // s)
            total = max(0, (o - 1) * s + span - d)
            small, big = total // 2, total - total // 2
            pads[i], pads[i + n] = (small, big) if a.auto_pad == "SAME_UPPER" else (big, small)
        elif a.auto_pad == "VALID":
            pads[i] = pads[i + n] = 0
        room = d + pads[i] + pads[i + n] - span
        o = room // s + 1
        if room < 0:
            raise TypeInferenceError(f"kernel {kernel} is larger than the padded input {spatial}",
                                     node=ctx.node)
        out.append(o)
    return strides, dilations, pads, out


def _infer_qlinear_conv(ctx: InferContext):
    x, w = ctx.tensor(0), ctx.tensor(3)
    _check(ctx, x.dtype, _INT8, "x")
    _check(ctx, w.dtype, _INT8, "w")
    _check(ctx, ctx.tensor(7).dtype, _INT8, "y_zero_point")
    if ctx.tensor(2).dtype != x.dtype or ctx.tensor(5).dtype != w.dtype:
        ctx.fail("zero points must have the dtypes of x and w")
    if ctx.has_input(8) and ctx.tensor(8).dtype != DType.int32:
        ctx.fail(f"bias B must be int32, got {ctx.tensor(8).dtype.short}")
    out_dtype = ctx.tensor(7).dtype
    if x.shape is None or w.shape is None:
        return [TensorType(out_dtype, None)]
    if len(x.shape) < 3 or len(w.shape) != len(x.shape):
        ctx.fail(f"x must be (N, C, D1, ...) and w (M, C/group, k1, ...) of the same rank, got "
                 f"{x.shape} and {w.shape}")
    g = ctx.attrs.group
    if g < 1:
        ctx.fail(f"group must be >= 1, got {g}")
    c, wc = x.shape[1], w.shape[1]
    if isinstance(c, int) and isinstance(wc, int) and c != wc * g:
        ctx.fail(f"x has {c} channels but w expects {wc} x group {g}")
    kernel = tuple(ctx.attrs.kernel_shape or w.shape[2:])
    _, _, _, spatial = conv_geometry(ctx, x.shape[2:], kernel)
    return [TensorType(out_dtype, (x.shape[0], w.shape[0], *spatial))]


def conv_im2col(x: np.ndarray, w: np.ndarray, group: int, strides, dilations, pads) -> np.ndarray:
    """N-D grouped convolution as one matmul per group over gathered input patches."""
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    kernel = w.shape[2:]
    nd = len(kernel)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)])
    out_sp = [(xp.shape[2 + i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
              for i in range(nd)]
    cols = []
    for offs in np.ndindex(*kernel):
        idx = tuple(slice(o * d, o * d + (s * (os - 1) + 1), s)
                    for o, d, s, os in zip(offs, dilations, strides, out_sp))
        cols.append(xp[(slice(None), slice(None)) + idx])
    # patches: (N, C, K, *out) with K = prod(kernel), ordered like w's trailing dims
    patches = np.stack(cols, axis=2) if cols else np.zeros((n, c, 0, *out_sp), x.dtype)
    patches = patches.reshape(n, group, cg * len(cols), -1)
    wg = w.reshape(group, m // group, cg * len(cols))
    out = np.einsum("gok,ngkp->ngop", wg, patches)
    return out.reshape(n, m, *out_sp)


def _qlinear_conv(ctx, x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None):
    a = ctx.attrs
    kernel = tuple(a.kernel_shape or w.shape[2:])
    strides, dilations, pads, _ = conv_geometry(ctx, x.shape[2:], kernel)
    xi = x.astype(np.int32) - x_zp.astype(np.int32)
    wzp = w_zp.astype(np.int32)
    if wzp.size > 1:  # per output channel
        wzp = wzp.reshape((-1,) + (1,) * (w.ndim - 1))
    wi = w.astype(np.int32) - wzp
    acc = conv_im2col(xi.astype(np.int64), wi.astype(np.int64), a.group, strides, dilations,
                      pads).astype(np.int32)
    if bias is not None:
        acc = acc + bias.astype(np.int32).reshape((-1,) + (1,) * (x.ndim - 2))
    ws = w_scale.reshape((-1,) + (1,) * (x.ndim - 2)) if w_scale.size > 1 else w_scale
    y = acc * (x_scale * ws / y_scale) + y_zp
    info = np.iinfo(y_zp.dtype)
    return np.round(np.clip(y, info.min, info.max)).astype(y_zp.dtype)


QLinearConv = define(
    "QLinearConv",
    ["x", "x_scale", "x_zero_point", "w", "w_scale", "w_zero_point", "y_scale", "y_zero_point",
     "B?"],
    ["y"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=10,
    attrs=[STRING("auto_pad", "NOTSET", choices=("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")),
           INTS("dilations", None), INT("group", 1), INTS("kernel_shape", None),
           INTS("pads", None), INTS("strides", None)],
    infer=_infer_qlinear_conv, reference=_qlinear_conv,
    doc="Quantized convolution (N-D, grouped) with per-tensor or per-channel weight scales.")
