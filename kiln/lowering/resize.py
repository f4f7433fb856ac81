"""Resampling: Resize (and Upsample, which the importer turns into Resize), GridSample, AffineGrid.

Resize's scales, sizes and roi are compile-time values, so each resized axis's geometry is known
when compiling: the reference's own per-axis planning (kiln.ir.ops.resize: source coordinates per
coordinate_transformation_mode, taps for nearest_mode / linear / cubic with cubic_coeff_a,
exclude_outside and antialias) runs once in NumPy, and the lowering reads its result from small
constant tables, one (taps, out) pair of index and weight tables per axis. An output element is
the sum over the tap combinations of the product of the axes' weights times the input at the
(clamped) tap indices: 1 tap per axis for nearest, 2 for linear, 4 for cubic, more with antialias
(then the sum is a Reduce over the tap axes instead of unrolled). Computing the geometry from the
reference's code keeps every mode exactly as the interpreter has it. Where a tap's index table is
integer-ratio arithmetic (x2 upsampling, strided downsampling) it is read as that arithmetic.
An axis of symbolic size can be scaled by an integer factor k (not align_corners,
tf_crop_and_resize or exclude_outside, whose taps depend on the size): its taps repeat with
period k, so one period's offsets and weights are read at o % k, offset by o // k and clamped.
Other symbolic resized axes, and scales/sizes/roi not known when compiling, are LoweringErrors.

GridSample's positions come from the grid tensor, so its taps are expressions: per spatial axis
the pixel position (float32, as the reference computes it), padding (border clamps, reflection
folds), floor/trunc to i64 indices clamped into the axis (so every Load is in bounds), weights,
and a validity mask for zeros padding.

AffineGrid: grid[n, d.., i] = sum_j theta[n, i, j] * base_j + theta[n, i, r], the base
coordinates from constant tables (the output size is a compile-time value).
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.image import _base_coords
from ..ir.ops.resize import (_cast_back, _resized_axes, _source_coords, _taps, check_targets,
                             resize_plan)
from ..loops.expr import Const, Expr, Reduce
from . import exprs as E
from .context import constant_tensor
from .registry import register
from .tensor import Tensor, compute_dtype, narrow, widen

i64, f32, f64 = DType.int64, DType.float32, DType.float64
UNROLL_TAPS = 64          # more tap combinations than this become a Reduce


def _accumulator(dtype: DType) -> DType:
    """The dtype interpolation sums are done in: f32 for f32 and narrower floats, f64 else."""
    return compute_dtype(dtype) if dtype.is_float else f64


def _store(value: Expr, dtype: DType) -> Expr:
    """An interpolated value stored as `dtype`: integers round half to even and saturate."""
    if dtype.is_float:
        return narrow(value, dtype)
    info = np.iinfo(dtype.np)
    v = E.unary("round", value)
    v = E.binary("min", E.binary("max", v, E.const(info.min, value.dtype)),
                 E.const(info.max, value.dtype))
    return E.cast(v, dtype)


# --- Resize --------------------------------------------------------------------------------------

def _operand(ctx, node, inputs, i):
    """Input i's values as a NumPy array of its dtype, or None when absent or empty."""
    if i >= len(inputs) or inputs[i] is None:
        return None
    vals = ctx.static_values(node, i)
    if not vals:
        return None
    if not all(isinstance(v, Const) for v in vals):
        ctx.fail(node, f"Resize input {i} depends on a symbolic size",
                 hint="give the model static sizes")
    return np.array([v.value for v in vals], dtype=inputs[i].dtype.np)


def _affine_index(column: np.ndarray, in_size: int):
    """(num, off, den, lo_clamp, hi_clamp) with column[o] == clip((num * o + off) // den, 0,
    in_size - 1) for every o, with num == 1 or den == 1, or None: integer-ratio resizes (x2
    upsampling, strided downsampling) read the input at index arithmetic instead of a table."""
    o = np.arange(column.size, dtype=np.int64)
    first = int(column[0])
    candidates = [(1, off, den) for den in range(1, 17)
                  for off in range(den * (first - 3), den * (first + 1))]
    if column.size > 1:
        step = int(column[-1] - column[0]) // max(column.size - 1, 1)
        candidates += [(num, first - shift * num, 1) for num in {step, step + 1} if num > 1
                       for shift in range(0, 3)]
    for num, off, den in candidates:
        raw = (num * o + off) // den
        if np.array_equal(np.clip(raw, 0, in_size - 1), column):
            return num, off, den, bool((raw < 0).any()), bool((raw > in_size - 1).any())
    return None


class _IndexTable:
    """An index table (taps, out): reads as index arithmetic where a tap column is affine."""

    def __init__(self, ctx, idx: np.ndarray, in_size: int):
        self.table = constant_tensor(ctx, idx.astype(np.int64), "resize_idx")
        self.forms = [_affine_index(col, in_size) for col in idx]
        self.in_size = in_size

    def at(self, tap_o):
        t, o = tap_o
        form = self.forms[t.value] if isinstance(t, Const) else None
        if form is None:
            return self.table.at(tap_o)
        num, off, den, lo, hi = form
        e = E.floordiv(E.add(E.mul(o, num), off), den)
        if lo:
            e = E.maximum(e, E.ZERO)
        if hi:
            e = E.minimum(e, Const(self.in_size - 1))
        return e


def _whole(box) -> bool:
    """No crop box, or one that covers the whole axis (as the reference tests it)."""
    return box is None or (math.isclose(float(box[0]), 0.0) and math.isclose(float(box[1]), 1.0))


class _Axis:
    """One resized axis: tables idx/w of shape (taps, out), and optional masks over out."""

    def __init__(self, ctx, axis, idx, w, in_size, keep=None, outside=None):
        self.axis, self.taps = axis, idx.shape[0]
        self.idx = _IndexTable(ctx, idx, in_size)
        self.w = w
        self.keep = None if keep is None or keep.all() else \
            constant_tensor(ctx, keep, "resize_keep")
        self.outside = None if outside is None or not outside.any() else \
            constant_tensor(ctx, outside, "resize_out")


@register(ops.Resize)
def lower_resize(ctx, node, inputs):
    a = ctx.attrs(node)
    x = inputs[0]
    roi, scales, sizes = (_operand(ctx, node, inputs, i) for i in (1, 2, 3))
    axes = _resized_axes(a.axes, x.rank, node)
    msg = check_targets(scales, sizes, len(axes))
    if msg:
        ctx.fail(node, msg, hint="give exactly one of scales and sizes, one entry per axis")
    crop = a.coordinate_transformation_mode == "tf_crop_and_resize"
    if crop and (roi is None or roi.shape != (2 * len(axes),)):
        ctx.fail(node, "tf_crop_and_resize needs a constant 'roi' with one start and end per axis")
    shape = [d.value if isinstance(d, Const) else None for d in x.shape]
    periodic = {}                 # symbolic axis -> its integer upscale factor
    for k, d in enumerate(axes):
        if shape[d] is None:
            box = (roi[k], roi[k + len(axes)]) if crop else None
            factor = _periodic_factor(a, scales[k]) if sizes is None and _whole(box) else None
            if factor is None:
                ctx.fail(node, f"Resize of axis {d}, whose size is symbolic",
                         hint="give the resized axes static sizes (a symbolic axis can be "
                              "scaled by an integer factor, without tf_crop_and_resize, "
                              "align_corners or exclude_outside)")
            if factor > 1:
                periodic[d] = factor
            shape[d] = 1          # a placeholder: its plan entry is not used
    plan = resize_plan(shape, axes, scales, sizes, a.keep_aspect_ratio_policy)
    out_shape = list(x.shape)
    for _, (d, n, _) in zip(axes, plan):
        if isinstance(x.shape[d], Const):
            out_shape[d] = Const(n)
        elif d in periodic:
            out_shape[d] = E.mul(x.shape[d], periodic[d])
    out_shape = tuple(out_shape)
    if any(E.is_const(s, 0) for s in out_shape) or any(E.is_const(s, 0) for s in x.shape):
        return [Tensor.fill(out_shape, E.const(0, x.dtype))]

    resized: list[_Axis] = []
    for k, (d, n, scale) in enumerate(plan):
        if d in periodic:
            resized.append(_periodic_axis(ctx, a, d, periodic[d], x.shape[d],
                                          _accumulator(x.dtype)))
            continue
        if not isinstance(x.shape[d], Const):
            continue
        in_size = shape[d]
        box = (roi[k], roi[k + len(axes)]) if crop else None
        if math.isclose(scale, 1.0) and n == in_size and _whole(box):
            continue
        src, outside = _source_coords(a.coordinate_transformation_mode, n, in_size, scale, box)
        idx, w = _taps(a, src, in_size, scale)
        clamped = np.clip(idx, 0, in_size - 1)
        if a.mode == "nearest":
            rows = np.arange(n)
            pick = np.argmax(w != 0, axis=1)
            keep = w[rows, pick] != 0 if a.exclude_outside else None
            resized.append(_Axis(ctx, d, clamped[rows, pick][None, :], None, in_size, keep,
                                 outside))
        else:
            acc = _accumulator(x.dtype)
            wt = constant_tensor(ctx, w.T.astype(acc.np), "resize_w")
            resized.append(_Axis(ctx, d, clamped.T, wt, in_size, None, outside))
    if not resized:
        return [x.remap(out_shape, lambda idx: idx)]
    return [Tensor(out_shape, x.dtype, _resize_at(ctx, a, x, resized))]


def _periodic_factor(a, scale) -> int | None:
    """The integer factor k >= 1 a symbolic axis is scaled by, when its taps repeat with period
    k in the output index (o = q * k + r reads q + offset(r) with weight(r)), else None."""
    scale = float(scale)
    if scale < 1 or not scale.is_integer() or a.exclude_outside or \
            a.coordinate_transformation_mode in ("align_corners", "tf_crop_and_resize"):
        return None
    return int(scale)


def _periodic_axis(ctx, a, axis: int, k: int, in_size: Expr, acc: DType) -> "_Axis":
    """A symbolic axis scaled by k: the taps of one period from the reference (outputs q*k ..
    q*k + k-1 of an axis long enough that they reach no border), read at o % k, offset by
    o // k and clamped into the axis."""
    q = 4                              # taps reach at most 2 pixels either side
    n = 2 * q + 1
    src, _ = _source_coords(a.coordinate_transformation_mode, n * k, n, float(k), None)
    idx, w = _taps(a, src, n, float(k))
    period = slice(q * k, (q + 1) * k)
    idx, w = idx[period] - q, w[period]
    if a.mode == "nearest":
        pick = np.argmax(w != 0, axis=1)
        idx, w = idx[np.arange(k), pick][:, None], None
    ax = _Axis.__new__(_Axis)
    ax.axis, ax.taps, ax.keep, ax.outside = axis, idx.shape[1], None, None
    ax.idx = _PeriodicIndex(ctx, idx.T, k, in_size)
    ax.w = None if w is None else \
        _PeriodicTable(constant_tensor(ctx, w.T.astype(acc.np), "resize_w"), k)
    return ax


class _PeriodicIndex:
    """Tap t at output o: clamp(o // k + offset[t, o % k], 0, in_size - 1)."""

    def __init__(self, ctx, offsets: np.ndarray, k: int, in_size: Expr):
        self.k, self.in_size = k, in_size
        self.offsets = constant_tensor(ctx, offsets.astype(np.int64), "resize_off")
        # offset[t, r] == (r + c) // k - r // k for some c: then the index is (o + c) // k
        self.shift = []
        for row in offsets:
            r = np.arange(k)
            cs = [c for c in range(-3 * k, 3 * k) if np.array_equal((r + c) // k, row)]
            self.shift.append(cs[0] if cs else None)

    def at(self, tap_o):
        t, o = tap_o
        c = self.shift[t.value] if isinstance(t, Const) else None
        if c is not None:
            e = E.floordiv(E.add(o, c), self.k)
        else:
            e = E.add(E.floordiv(o, self.k), self.offsets.at((t, E.mod(o, self.k))))
        return E.clamp(e, E.ZERO, E.sub(self.in_size, 1))


class _PeriodicTable:
    def __init__(self, table: Tensor, k: int):
        self.table, self.k = table, k

    def at(self, tap_o):
        t, o = tap_o
        return self.table.at((t, E.mod(o, self.k)))


def _resize_at(ctx, a, x: Tensor, resized: list[_Axis]):
    dtype = x.dtype
    if dtype is DType.bool:
        fill = E.const(bool(a.extrapolation_value), dtype)
    elif a.mode == "nearest":
        fill = E.const(np.asarray(a.extrapolation_value).astype(dtype.np)[()], dtype)
    else:                      # interpolated values (and the fill) are rounded back to X's type
        fill = E.const(_cast_back(np.asarray(a.extrapolation_value, np.float64), dtype.np)[()],
                       dtype)

    def masked(idx, value, dtype):
        for ax in resized:
            o = idx[ax.axis]
            if ax.keep is not None:
                value = E.select(ax.keep.at((o,)), value, E.const(0, dtype))
            if ax.outside is not None:
                value = E.select(ax.outside.at((o,)), fill, value)
        return value

    if a.mode == "nearest":
        def at(idx):
            src = list(idx)
            for ax in resized:
                src[ax.axis] = ax.idx.at((E.ZERO, idx[ax.axis]))
            return masked(idx, x.at(tuple(src)), x.dtype)
        return at

    acc = _accumulator(x.dtype)
    combos = math.prod(ax.taps for ax in resized)

    def term(idx, taps):
        src, weight = list(idx), None
        for ax, t in zip(resized, taps):
            o = idx[ax.axis]
            src[ax.axis] = ax.idx.at((t, o))
            wv = ax.w.at((t, o))
            weight = wv if weight is None else weight * wv
        return weight * E.cast(widen(x.at(tuple(src))), acc)

    def nested(idx, src, k):
        """The reference's order: axis after axis, the first resized axis innermost."""
        if k < 0:
            return E.cast(widen(x.at(tuple(src))), acc)
        ax, o, total = resized[k], idx[resized[k].axis], None
        for t in range(ax.taps):
            src[ax.axis] = ax.idx.at((Const(t), o))
            v = nested(idx, src, k - 1) * ax.w.at((Const(t), o))
            total = v if total is None else total + v
        return total

    def at(idx):
        if combos <= UNROLL_TAPS:
            total = nested(idx, list(idx), len(resized) - 1)
        else:
            vars_ = [ctx.fresh_var("tap") for _ in resized]
            total = Reduce("add", E.const(0, acc), tuple((v, E.ZERO, Const(ax.taps))
                                                         for v, ax in zip(vars_, resized)),
                           term(idx, vars_))
        return masked(idx, _store(total, x.dtype), x.dtype)
    return at


# --- GridSample ----------------------------------------------------------------------------------

def _fc(v: float, dtype: DType) -> Const:
    return E.const(v, dtype)


def _reflect(v: Expr, lo: float, hi: float) -> Expr:
    """Reflect v off the borders [lo, hi] until it lands inside: the reference's _reflect, as a
    fold of the distance from lo modulo one period (2 * span), which reads v once."""
    dt = v.dtype
    span = hi - lo
    if span <= 0:
        return _fc(lo, dt)
    m = E.binary("fmod", E.unary("abs", v - _fc(lo, dt)), _fc(2 * span, dt))
    return _fc(lo, dt) + E.select(E.gt(m, _fc(span, dt)), _fc(2 * span, dt) - m, m)


def _clip(v: Expr, lo: float, hi: float) -> Expr:
    return E.binary("min", E.binary("max", v, _fc(lo, v.dtype)), _fc(hi, v.dtype))


def _cubic_weights(t: Expr, a: float = -0.75) -> list[Expr]:
    dt = t.dtype

    def near(d):
        return ((_fc(a + 2, dt) * d - _fc(a + 3, dt)) * d * d) + _fc(1, dt)

    def far(d):
        return ((_fc(a, dt) * d - _fc(5 * a, dt)) * d + _fc(8 * a, dt)) * d - _fc(4 * a, dt)
    one, two = _fc(1, dt), _fc(2, dt)
    return [far(t + one), near(t), near(one - t), far(two - t)]


def _grid_taps(attrs, pos: Expr, size: int):
    """(index i64 clamped into the axis, weight or None, valid bool Expr or None) per tap."""
    dt = pos.dtype
    lo, hi = (0.0, size - 1.0) if attrs.align_corners else (-0.5, size - 0.5)
    if attrs.mode == "nearest":
        pos = E.unary("round", pos)
    if attrs.mode != "cubic":
        if attrs.padding_mode == "border":
            pos = _clip(pos, 0.0, size - 1.0)      # identity inside [lo, hi]
        elif attrs.padding_mode == "reflection":
            pos = _reflect(pos, lo, hi)
    if attrs.mode == "nearest":
        taps = [(E.unary("trunc", pos), None)]
    else:
        base = E.unary("floor", pos)
        t = pos - base
        weights = [_fc(1, dt) - t, t] if attrs.mode == "linear" else _cubic_weights(t)
        first = 0 if attrs.mode == "linear" else -1
        taps = [(base + _fc(first + k, dt), w) for k, w in enumerate(weights)]
    out = []
    for idx, w in taps:
        valid = None
        if attrs.padding_mode == "zeros":
            valid = E.binary("and", E.ge(idx, _fc(0, dt)), E.lt(idx, _fc(size, dt)))
        elif attrs.padding_mode == "reflection":
            idx = E.unary("trunc", _reflect(idx, lo, hi))
        # clamped again as an integer: a NaN position converts to the lowest i64
        out.append((E.clamp(E.cast(_clip(idx, 0.0, size - 1.0), i64), E.ZERO, Const(size - 1)),
                    w, valid))
    return out


@register(ops.GridSample)
def lower_grid_sample(ctx, node, inputs):
    a = ctx.attrs(node)
    x, grid = inputs
    dims = x.shape[2:]
    r = len(dims)
    if not all(isinstance(d, Const) for d in dims):
        ctx.fail(node, "GridSample of an input with symbolic spatial sizes",
                 hint="give X's spatial dims static sizes")
    dims = [d.value for d in dims]
    out_shape = (x.shape[0], x.shape[1], *grid.shape[1:-1])
    if 0 in dims:
        return [Tensor.fill(out_shape, E.const(0, x.dtype))]
    acc = x.dtype if a.mode == "nearest" else _accumulator(x.dtype)
    pos_dt = f64 if acc is f64 else f32

    def at(idx):
        n, c, *outs = idx
        per_axis = []
        for k, size in enumerate(dims):
            norm = E.cast(widen(grid.at((n, *outs, Const(r - 1 - k)))), f32)
            one = _fc(1, f32)
            if a.align_corners:
                pos = (norm + one) / _fc(2, f32) * _fc(size - 1, f32)
            else:
                pos = ((norm + one) * _fc(size, f32) - one) / _fc(2, f32)
            per_axis.append(_grid_taps(a, E.cast(pos, pos_dt), size))
        total = None
        for combo in _product(per_axis):
            src = (n, c, *(i for i, _, _ in combo))
            valids = [v for _, _, v in combo if v is not None]
            valid = None
            for v in valids:
                valid = v if valid is None else E.binary("and", valid, v)
            value = x.at(src)
            if a.mode == "nearest":
                term = value if valid is None else E.select(valid, value, E.const(0, x.dtype))
                total = term
                continue
            weight = None
            for _, w, _ in combo:
                w = E.cast(w, acc)
                weight = w if weight is None else weight * w
            term = weight * E.cast(widen(value), acc)
            if valid is not None:
                term = E.select(valid, term, E.const(0, acc))
            total = term if total is None else total + term
        return total if a.mode == "nearest" else _store(total, x.dtype)
    return [Tensor(out_shape, x.dtype, at)]


def _product(per_axis):
    if not per_axis:
        yield ()
        return
    for head in per_axis[0]:
        for rest in _product(per_axis[1:]):
            yield (head, *rest)


# --- AffineGrid ----------------------------------------------------------------------------------

@register(ops.AffineGrid)
def lower_affine_grid(ctx, node, inputs):
    a = ctx.attrs(node)
    theta = inputs[0]
    size = ctx.static_ints(node, 1)
    if len(size) not in (4, 5):
        ctx.fail(node, f"size must be (N, C, H, W) or (N, C, D, H, W), got {size}")
    spatial = size[2:]
    r = len(spatial)
    out_shape = (Const(size[0]), *(Const(s) for s in spatial), Const(r))
    dtype = theta.dtype
    if 0 in out_shape_values(out_shape):
        return [Tensor.fill(out_shape, E.const(0, dtype))]
    bases = [constant_tensor(ctx, _base_coords(s, a.align_corners).astype(np.float64), "grid_base")
             for s in spatial]

    def at(idx):
        n, *sp, i = idx
        # point j = 0 is the last spatial axis (x), j = r - 1 the first
        total = None
        for j in range(r):
            axis = r - 1 - j
            term = E.cast(widen(theta.at((n, i, Const(j)))), f64) * bases[axis].at((sp[axis],))
            total = term if total is None else total + term
        return narrow(total + E.cast(widen(theta.at((n, i, Const(r)))), f64), dtype)
    return [Tensor(out_shape, dtype, at)]


def out_shape_values(shape) -> list[int]:
    return [d.value for d in shape if isinstance(d, Const)]
