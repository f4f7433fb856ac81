"""Convolutions: Conv, ConvTranspose, ConvInteger and DeformConv over 1-D, 2-D and 3-D (any N-D)
images laid out N x C x D1 x ... x Dn.

The references are vectorized: the input is viewed as its windows (no copy), gathered once into
an im2col matrix per group and multiplied with the weights. ConvTranspose scatters one strided
slice per kernel tap; DeformConv samples its windows with multilinear interpolation.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..types import Dim, TensorType
from .common import INT, INTS
from .registry import define
from .window import FLOAT_TYPES, Window, accumulator, auto_pad_attr, check_dtype, \
    check_out_shape, effective_size, image_rank, make_window, window_attrs, windows

K = FusionKind

_INT8 = frozenset({DType.int8, DType.uint8})


# --- inference helpers -----------------------------------------------------------------------

def _known(d: Dim) -> bool:
    return isinstance(d, int)


def kernel_of(ctx: InferContext, w_shape, nd: int) -> tuple[int | None, ...]:
    """kernel_shape from the attribute, else W's spatial dims (None where unknown)."""
    attr = tuple(ctx.attrs.kernel_shape)
    from_w = tuple(w_shape[2:]) if w_shape is not None else (None,) * nd
    if attr:
        if len(attr) != nd:
            ctx.fail(f"kernel_shape {list(attr)} has {len(attr)} axes, the input has {nd} spatial "
                     f"axes")
        for a, b in zip(attr, from_w):
            if _known(b) and a != b:
                ctx.fail(f"kernel_shape {list(attr)} does not match the weight's spatial shape "
                         f"{list(from_w)}")
        return attr
    return tuple(d if _known(d) else None for d in from_w)


def spatial_out(ctx: InferContext, spatial, kernel, *, ceil_mode: bool = False) -> list[Dim]:
    """Output spatial dims of a window sweep; an unknown kernel size leaves its axis unknown
    unless auto_pad SAME makes the kernel irrelevant."""
    nd = len(spatial)
    win = make_window(ctx.attrs, nd, [k or 1 for k in kernel], ctx.node, ceil_mode=ceil_mode)
    same = win.auto_pad in ("SAME_UPPER", "SAME_LOWER")
    out = [win.out_dim(i, n) if (k is not None or same) else None
           for i, (n, k) in enumerate(zip(spatial, kernel))]
    check_out_shape(ctx, win, spatial, out)
    return out


def check_channels(ctx: InferContext, c: Dim, cw: Dim, group: int, what: str = "W") -> None:
    if group < 1:
        ctx.fail(f"group must be >= 1, got {group}")
    if _known(c) and _known(cw) and c != cw * group:
        ctx.fail(f"X has {c} channels but {what} expects {cw} per group x {group} group(s) = "
                 f"{cw * group}", hint="X's dim 1 must equal W's dim 1 times group")


def _check_out_channels(ctx: InferContext, m: Dim, group: int) -> None:
    if _known(m) and m % group:
        ctx.fail(f"the {m} output channels do not split into {group} groups")


def _check_bias(ctx: InferContext, i: int, m: Dim) -> None:
    if not ctx.has_input(i):
        return
    b = ctx.tensor(i).shape
    if b is not None and (len(b) != 1 or (_known(b[0]) and _known(m) and b[0] != m)):
        ctx.fail(f"bias must have shape [{m}] (one value per output channel), got {list(b)}")


def _conv_shape(ctx: InferContext) -> tuple | None:
    """Output shape shared by Conv and ConvInteger: (N, M, *spatial)."""
    rank = image_rank(ctx, 0, 1)
    if rank is None:
        return None
    x = ctx.tensor(0).shape or (None,) * rank
    w = ctx.tensor(1).shape
    group = ctx.attrs.group
    m = w[0] if w is not None else None
    check_channels(ctx, x[1], w[1] if w is not None else None, group)
    _check_out_channels(ctx, m, group)
    kernel = kernel_of(ctx, w, rank - 2)
    return (x[0], m, *spatial_out(ctx, x[2:], kernel))


# --- references ------------------------------------------------------------------------------

def conv_nd(x: np.ndarray, w: np.ndarray, win: Window, out, begin, group: int) -> np.ndarray:
    """Grouped N-D correlation of x (N, C, *S) with w (M, C/group, *K) as one batched matmul."""
    n, c = x.shape[:2]
    m = w.shape[0]
    nd = win.rank
    cg, mg = c // group, m // group
    p, kp = math.prod(out), math.prod(win.kernel)
    cols = windows(x, win, out, begin)                                   # N, C, *O, *K
    cols = cols.reshape(n, group, cg, *out, *win.kernel)
    cols = cols.transpose(0, 1, *range(3, 3 + nd), 2, *range(3 + nd, 3 + 2 * nd))
    cols = cols.reshape(n, group, p, cg * kp)
    wmat = w.reshape(group, mg, cg * kp).transpose(0, 2, 1)
    y = np.matmul(cols, wmat)                                            # N, G, P, Mg
    return y.transpose(0, 1, 3, 2).reshape(n, m, *out)


def _add_bias(y: np.ndarray, b) -> np.ndarray:
    if b is None:
        return y
    return y + b.astype(y.dtype).reshape((1, -1) + (1,) * (y.ndim - 2))


def _conv(ctx, x, w, b=None):
    acc = accumulator(x.dtype)
    win = make_window(ctx.attrs, x.ndim - 2, w.shape[2:], ctx.node)
    out, begin, _ = win.resolve(x.shape[2:])
    y = conv_nd(x.astype(acc, copy=False), w.astype(acc, copy=False), win, out, begin,
                ctx.attrs.group)
    return _add_bias(y, b).astype(x.dtype, copy=False)


# --- Conv ------------------------------------------------------------------------------------

def _infer_conv(ctx: InferContext):
    dtype = check_dtype(ctx, 0, FLOAT_TYPES, "input X")
    if ctx.tensor(1).dtype != dtype or (ctx.has_input(2) and ctx.tensor(2).dtype != dtype):
        ctx.fail(f"X, W and B must share one dtype, got {ctx.tensor(1).dtype.short} weights for "
                 f"{dtype.short} input", hint="insert a Cast so the operands agree")
    shape = _conv_shape(ctx)
    _check_bias(ctx, 2, shape[1] if shape is not None else None)
    return [TensorType(dtype, shape)]


_CONV_ATTRS = [auto_pad_attr(), *window_attrs(), INT("group", 1)]

Conv = define(
    "Conv", ["X", "W", "B?"], ["Y"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=22,
    attrs=_CONV_ATTRS, infer=_infer_conv, reference=_conv,
    doc="N-D grouped, strided, dilated, padded cross-correlation of X with W, plus bias B.")


# --- ConvInteger -----------------------------------------------------------------------------

def _infer_conv_integer(ctx: InferContext):
    for i, what in ((0, "input x"), (1, "weight w")):
        check_dtype(ctx, i, _INT8, what)
    for i, of in ((2, 0), (3, 1)):
        if ctx.has_input(i) and ctx.tensor(i).dtype != ctx.tensor(of).dtype:
            ctx.fail(f"zero point #{i} must have the dtype of input {of} "
                     f"({ctx.tensor(of).dtype.short}), got {ctx.tensor(i).dtype.short}")
    return [TensorType(DType.int32, _conv_shape(ctx))]


def _conv_integer(ctx, x, w, x_zp=None, w_zp=None):
    xi = x.astype(np.int64)
    wi = w.astype(np.int64)
    if x_zp is not None:
        xi = xi - x_zp.astype(np.int64).reshape(())
    if w_zp is not None:
        zp = w_zp.astype(np.int64)
        wi = wi - (zp.reshape((-1,) + (1,) * (w.ndim - 1)) if zp.size > 1 else zp.reshape(()))
    win = make_window(ctx.attrs, x.ndim - 2, w.shape[2:], ctx.node)
    out, begin, _ = win.resolve(x.shape[2:])
    return conv_nd(xi, wi, win, out, begin, ctx.attrs.group).astype(np.int32)


ConvInteger = define(
    "ConvInteger", ["x", "w", "x_zero_point?", "w_zero_point?"], ["y"],
    kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=10, attrs=_CONV_ATTRS,
    infer=_infer_conv_integer, reference=_conv_integer,
    doc="int32 convolution of (x - x_zero_point) with (w - w_zero_point) for 8-bit x and w.")


# --- ConvTranspose ---------------------------------------------------------------------------

def _transpose_geometry(attrs, spatial, kernel, node=None):
    """Per axis: (output size, begin pad) of a transposed convolution; static sizes only."""
    nd = len(spatial)
    win = make_window(attrs, nd, kernel, node)
    op = tuple(attrs.output_padding) or (0,) * nd
    shape_attr = tuple(attrs.output_shape)[-nd:] if attrs.output_shape else ()
    sizes, begins = [], []
    for i, n in enumerate(spatial):
        s, eff = win.strides[i], effective_size(win.kernel[i], win.dilations[i])
        full = s * (n - 1) + op[i] + eff
        if shape_attr or win.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            size = shape_attr[i] if shape_attr else n * s
            total = max(0, full - size)   # a larger output_shape extends the end with zeros
            begin = total // 2 if win.auto_pad == "SAME_UPPER" else total - total // 2
        elif win.auto_pad == "VALID":
            size, begin = full, 0
        else:
            begin = win.pads[i]
            size = full - begin - win.pads[nd + i]
        sizes.append(size)
        begins.append(begin)
    return win, tuple(sizes), tuple(begins)


def _transpose_out_dim(ctx: InferContext, nd: int, i: int, n: Dim, k: int | None) -> Dim:
    a = ctx.attrs
    if a.output_shape:
        return tuple(a.output_shape)[-nd:][i]
    s = (tuple(a.strides) or (1,) * nd)[i]
    if a.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        return n * s if _known(n) else (n if s == 1 else None)
    if k is None:
        return None
    d = (tuple(a.dilations) or (1,) * nd)[i]
    op = (tuple(a.output_padding) or (0,) * nd)[i]
    pads = (0, 0) if a.auto_pad == "VALID" else \
        ((tuple(a.pads) or (0,) * 2 * nd)[i], (tuple(a.pads) or (0,) * 2 * nd)[nd + i])
    extra = op + effective_size(k, d) - pads[0] - pads[1]
    if _known(n):
        return s * (n - 1) + extra
    return n if s == 1 and extra == 1 else None


def _infer_conv_transpose(ctx: InferContext):
    dtype = check_dtype(ctx, 0, FLOAT_TYPES, "input X")
    if ctx.tensor(1).dtype != dtype or (ctx.has_input(2) and ctx.tensor(2).dtype != dtype):
        ctx.fail("X, W and B must share one dtype", hint="insert a Cast so the operands agree")
    rank = image_rank(ctx, 0, 1)
    if rank is None:
        return [TensorType(dtype, None)]
    nd = rank - 2
    x = ctx.tensor(0).shape or (None,) * rank
    w = ctx.tensor(1).shape
    group = ctx.attrs.group
    if group < 1:
        ctx.fail(f"group must be >= 1, got {group}")
    if w is not None and _known(x[1]) and _known(w[0]) and x[1] != w[0]:
        ctx.fail(f"X has {x[1]} channels but W has {w[0]} input channels (W is C x M/group x "
                 f"kernel)", hint="X's dim 1 must equal W's dim 0")
    if _known(x[1]) and x[1] % group:
        ctx.fail(f"the {x[1]} input channels do not split into {group} groups")
    m = w[1] * group if w is not None and _known(w[1]) else None
    kernel = kernel_of(ctx, w, nd)
    for name in ("output_padding", "output_shape"):
        v = tuple(ctx.attrs[name])
        if v and len(v) not in ((nd, nd + 2) if name == "output_shape" else (nd,)):
            ctx.fail(f"'{name}' has {len(v)} values, the input has {nd} spatial axes")
    make_window(ctx.attrs, nd, [k or 1 for k in kernel], ctx.node)   # validates the vectors
    spatial = [_transpose_out_dim(ctx, nd, i, n, k)
               for i, (n, k) in enumerate(zip(x[2:], kernel))]
    for i, o in enumerate(spatial):
        if _known(o) and o < 1:
            ctx.fail(f"the output would be empty along spatial axis {i} (size {o})",
                     hint="check pads and output_shape")
    _check_bias(ctx, 2, m)
    return [TensorType(dtype, (x[0], m, *spatial))]


def _conv_transpose(ctx, x, w, b=None):
    acc = accumulator(x.dtype)
    n, c = x.shape[:2]
    spatial, kernel = x.shape[2:], w.shape[2:]
    group = ctx.attrs.group
    cg, mg = c // group, w.shape[1]
    win, sizes, begins = _transpose_geometry(ctx.attrs, spatial, kernel, ctx.node)
    p = math.prod(spatial)
    # every (input pixel, tap) product: N, G, P, Mg * K
    xs = x.astype(acc, copy=False).reshape(n, group, cg, p).transpose(0, 1, 3, 2)
    ws = w.astype(acc, copy=False).reshape(group, cg, mg * math.prod(kernel))
    taps = np.matmul(xs, ws).reshape(n, group, *spatial, mg, *kernel)
    nd = len(spatial)
    taps = taps.transpose(0, 1, 2 + nd, *range(3 + nd, 3 + 2 * nd), *range(2, 2 + nd))
    taps = taps.reshape(n, group * mg, *kernel, *spatial)               # N, M, *K, *S
    full_sizes = [win.strides[i] * (spatial[i] - 1) + effective_size(kernel[i], win.dilations[i])
                  for i in range(nd)]
    full = np.zeros((n, group * mg, *full_sizes), dtype=acc)
    for tap in itertools.product(*(range(k) for k in kernel)):
        dst = tuple(slice(t * d, t * d + s * (m - 1) + 1, s)
                    for t, d, s, m in zip(tap, win.dilations, win.strides, spatial))
        full[(slice(None), slice(None)) + dst] += taps[(slice(None), slice(None)) + tap]
    y = np.zeros((n, group * mg, *sizes), dtype=acc)
    src, dst = [], []
    for i in range(nd):   # output index o reads full[o + begin]; outside full it is 0
        lo, hi = max(0, -begins[i]), min(sizes[i], full_sizes[i] - begins[i])
        dst.append(slice(lo, max(lo, hi)))
        src.append(slice(lo + begins[i], max(lo, hi) + begins[i]))
    y[(slice(None), slice(None), *dst)] = full[(slice(None), slice(None), *src)]
    return _add_bias(y, b).astype(x.dtype, copy=False)


ConvTranspose = define(
    "ConvTranspose", ["X", "W", "B?"], ["Y"], kind=K.OUT_ELEMENTWISE_FUSABLE, since_version=22,
    attrs=[*_CONV_ATTRS, INTS("output_padding", ()), INTS("output_shape", ())],
    infer=_infer_conv_transpose, reference=_conv_transpose,
    doc="Transposed (fractionally strided) convolution: the gradient of Conv with respect to X.")


# --- DeformConv ------------------------------------------------------------------------------

def _infer_deform_conv(ctx: InferContext):
    dtype = check_dtype(ctx, 0, FLOAT_TYPES, "input X")
    for i in (1, 2, 3, 4):
        if ctx.has_input(i) and ctx.tensor(i).dtype != dtype:
            ctx.fail(f"input {i} must have the dtype of X ({dtype.short}), got "
                     f"{ctx.tensor(i).dtype.short}")
    rank = image_rank(ctx, 0, 1, 2, *([4] if ctx.has_input(4) else []))
    if rank is None:
        return [TensorType(dtype, None)]
    nd = rank - 2
    x = ctx.tensor(0).shape or (None,) * rank
    w = ctx.tensor(1).shape
    off = ctx.tensor(2).shape or (None,) * rank
    group, og = ctx.attrs.group, ctx.attrs.offset_group
    m = w[0] if w is not None else None
    check_channels(ctx, x[1], w[1] if w is not None else None, group)
    _check_out_channels(ctx, m, group)
    if og < 1 or (_known(x[1]) and x[1] % og):
        ctx.fail(f"the {x[1]} input channels do not split into offset_group={og} groups")
    kernel = kernel_of(ctx, w, nd)
    if all(_known(k) for k in kernel):
        taps = math.prod(kernel)
        if _known(off[1]) and off[1] != og * taps * nd:
            ctx.fail(f"offset has {off[1]} channels, expected offset_group x taps x axes = "
                     f"{og} x {taps} x {nd} = {og * taps * nd}")
        if ctx.has_input(4):
            mk = ctx.tensor(4).shape
            if mk is not None and _known(mk[1]) and mk[1] != og * taps:
                ctx.fail(f"mask has {mk[1]} channels, expected offset_group x taps = {og * taps}")
    spatial = spatial_out(ctx, x[2:], kernel)
    for i, (o, d) in enumerate(zip(spatial, off[2:])):
        if _known(o) and _known(d) and o != d:
            ctx.fail(f"offset has spatial shape {list(off[2:])} but the output is "
                     f"{list(spatial)} (mismatch on axis {i})",
                     hint="offset holds one displacement per tap and output pixel")
    spatial = [o if o is not None else d for o, d in zip(spatial, off[2:])]
    _check_bias(ctx, 3, m)
    return [TensorType(dtype, (x[0], m, *spatial))]


def sample_linear(x: np.ndarray, coords: list[np.ndarray]) -> np.ndarray:
    """Multilinear samples of x (N, G, Cg, *S) at coordinates (N, G, T) per axis; zero outside.

    Returns (N, G, Cg, T)."""
    n, g, cg = x.shape[:3]
    spatial = x.shape[3:]
    flat = x.reshape(n, g, cg, -1)
    out = np.zeros((n, g, cg, coords[0].shape[-1]), dtype=x.dtype)
    lows = [np.floor(c) for c in coords]
    for corner in itertools.product((0, 1), repeat=len(spatial)):
        weight = np.ones(coords[0].shape, dtype=x.dtype)
        index = np.zeros(coords[0].shape, dtype=np.int64)
        valid = np.ones(coords[0].shape, dtype=bool)
        for c, lo, up, size in zip(coords, lows, corner, spatial):
            pos = lo + up
            weight = weight * (1 - np.abs(c - pos))
            valid &= (pos >= 0) & (pos < size)
            index = index * size + np.clip(pos, 0, size - 1).astype(np.int64)
        vals = np.take_along_axis(flat, index[:, :, None, :], axis=3)
        out += vals * (weight * valid)[:, :, None, :]
    return out


def _deform_conv(ctx, x, w, offset, b=None, mask=None):
    acc = accumulator(x.dtype)
    n, c = x.shape[:2]
    m = w.shape[0]
    nd = x.ndim - 2
    group, og = ctx.attrs.group, ctx.attrs.offset_group
    kernel = tuple(w.shape[2:])
    win = make_window(ctx.attrs, nd, kernel, ctx.node)
    out, begin, _ = win.resolve(x.shape[2:])
    kp, p = math.prod(kernel), math.prod(out)
    off = offset.astype(acc).reshape(n, og, kp, nd, p)
    # base coordinate of each (tap, output pixel) along each axis, as (kp, p) grids
    grids = np.meshgrid(*[np.arange(k) for k in kernel], indexing="ij")
    outs = np.meshgrid(*[np.arange(o) for o in out], indexing="ij")
    coords = []
    for i in range(nd):
        base = (outs[i].reshape(1, p) * win.strides[i] - begin[i]
                + grids[i].reshape(kp, 1) * win.dilations[i])
        coords.append((base[None, None] + off[:, :, :, i, :]).reshape(n, og, kp * p))
    xs = x.astype(acc, copy=False).reshape(n, og, c // og, *x.shape[2:])
    cols = sample_linear(xs, coords).reshape(n, og, c // og, kp, p)
    if mask is not None:
        cols = cols * mask.astype(acc).reshape(n, og, 1, kp, p)
    cg, mg = c // group, m // group
    cols = cols.reshape(n, group, cg * kp, p)
    y = np.matmul(w.astype(acc, copy=False).reshape(group, mg, cg * kp), cols)
    return _add_bias(y.reshape(n, m, *out), b).astype(x.dtype, copy=False)


DeformConv = define(
    "DeformConv", ["X", "W", "offset", "B?", "mask?"], ["Y"], kind=K.OUT_ELEMENTWISE_FUSABLE,
    since_version=22, attrs=[*window_attrs(), INT("group", 1), INT("offset_group", 1)],
    infer=_infer_deform_conv, reference=_deform_conv,
    doc="Deformable convolution: each kernel tap samples X at a learned offset, scaled by mask.")
