"""Conv and ConvTranspose over any number of spatial axes (1-D, 2-D, 3-D), with groups, strides,
dilations, explicit pads or auto_pad.

Both are direct (gathering) convolutions: each output element is a Reduce over the input
channels of its group and the kernel taps. Conv reads input position o * s - pad + k * d;
ConvTranspose inverts that map, so a tap contributes only where o + pad - k * d is a multiple
of the stride, landing inside the input. A float32 2-D Conv with sizes known when compiling is
written by the register-blocked nest of conv_blocked.py instead (its Reduce stays the
definition anywhere else it is read); the other forms keep this plain nest.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.conv import _transpose_geometry as transpose_geometry
from ..ir.ops.window import make_window
from ..loops.expr import Const, Expr, Reduce
from . import exprs as E
from .conv_blocked import blocked_conv
from .linalg import zero_point_of
from .registry import register
from .tensor import Tensor, compute_dtype, narrow, widen
from .window import conjunction, read_tap, sweep, tap_ranges, within


def static_kernel(ctx, node, w: Tensor) -> tuple[int, ...]:
    """The kernel's spatial sizes, which the loop nest needs as constants."""
    dims = w.shape[2:]
    if not all(isinstance(d, Const) for d in dims):
        ctx.fail(node, f"the kernel's spatial sizes {list(dims)} must be known when compiling",
                 hint="give the weight a static shape")
    return tuple(d.value for d in dims)


def _channel_range(ctx, size: Expr) -> tuple[Expr, list]:
    """A channel index over [0, size) with its Reduce range (none when size is 1)."""
    if E.is_const(size, 1):
        return E.ZERO, []
    c = ctx.fresh_var("c")
    return c, [(c, E.ZERO, size)]


def _with_bias(y: Expr, b: Tensor | None, m: Expr) -> Expr:
    return y if b is None else y + widen(b.at((m,)))


def conv(ctx, node, x: Tensor, w: Tensor, b: Tensor | None, x_elem, w_elem, acc: DType,
         out: DType) -> Tensor:
    """The grouped, strided, dilated, padded correlation of x with w: x_elem(value) and
    w_elem(value, index) turn an operand's element into an `acc` value (padding reads 0)."""
    a = ctx.attrs(node)
    win = make_window(a, x.rank - 2, static_kernel(ctx, node, w), node)
    sw = sweep(ctx, node, win, x.shape[2:])
    group = a.group
    per_group_in = w.shape[1]                           # C / group
    per_group_out = E.floordiv(w.shape[0], group)        # M / group

    def core(idx):
        n, m, *outs = idx
        c, ranges = _channel_range(ctx, per_group_in)
        taps, tap_r = tap_ranges(ctx, win)
        cin = c if group == 1 else E.add(E.mul(E.floordiv(m, per_group_out), per_group_in), c)
        v, inside = read_tap(x, (n, cin), sw, outs, taps)
        w_idx = (m, c, *taps)
        term = x_elem(v) * w_elem(w.at(w_idx), w_idx)
        if inside is not None:
            term = E.select(inside, term, E.const(0, acc))
        all_ranges = tuple(ranges + tap_r)
        return Reduce("add", E.const(0, acc), all_ranges, term) if all_ranges else term

    def finish(y, idx):
        return narrow(_with_bias(y, b, idx[1]), out)
    if out is DType.float32 and acc is DType.float32:
        fast = blocked_conv(ctx, node, x, w, win, sw, group, core, finish)
        if fast is not None:
            return fast
    return Tensor((x.shape[0], w.shape[0], *sw.out), out, lambda idx: finish(core(idx), idx))


@register(ops.Conv)
def lower_conv(ctx, node, inputs):
    x, w, b = (list(inputs) + [None])[:3]
    return [conv(ctx, node, x, w, b, widen, lambda v, idx: widen(v), compute_dtype(x.dtype),
                 x.dtype)]


@register(ops.ConvInteger)
def lower_conv_integer(ctx, node, inputs):
    """int32 correlation of (x - x_zero_point) with (w - w_zero_point) for 8-bit x and w; the
    weight's zero point is one value or one per output channel."""
    x, w, x_zp, w_zp = (list(inputs) + [None, None])[:4]
    i32 = DType.int32
    zx = E.const(0, i32) if x_zp is None else E.cast(x_zp.at((E.ZERO,) * x_zp.rank), i32)
    zw = zero_point_of(w_zp, w.shape, 0)
    return [conv(ctx, node, x, w, None, lambda v: E.cast(v, i32) - zx,
                 lambda v, idx: E.cast(v, i32) - zw(idx), i32, i32)]


@register(ops.ConvTranspose)
def lower_conv_transpose(ctx, node, inputs):
    """y[n, m, o] = sum over the group's input channels c and taps k of
    x[n, c, (o + begin - k * d) / s] * w[c, m mod (M/group), k], where the division is exact
    and lands inside x."""
    x, w, b = (list(inputs) + [None])[:3]
    a = ctx.attrs(node)
    kernel = static_kernel(ctx, node, w)
    spatial = x.shape[2:]
    if not all(isinstance(d, Const) for d in spatial):
        ctx.fail(node, "ConvTranspose needs static spatial input sizes",
                 hint="give the input's spatial dims sizes (a symbolic batch is fine)")
    win, sizes, begins = transpose_geometry(a, [d.value for d in spatial], kernel, node)
    dt = compute_dtype(x.dtype)
    group = a.group
    per_group_out = w.shape[1]                           # M / group
    per_group_in = E.floordiv(x.shape[1], group)          # C / group

    def at(idx):
        n, m, *outs = idx
        c, ranges = _channel_range(ctx, per_group_in)
        taps, tap_r = tap_ranges(ctx, win)
        g = E.floordiv(m, per_group_out)
        cin = c if group == 1 else E.add(E.mul(g, per_group_in), c)
        pos, conds = [], []
        for axis, (o, k) in enumerate(zip(outs, taps)):
            s, d, size = win.strides[axis], win.dilations[axis], spatial[axis]
            t = E.sub(E.add(o, begins[axis]), E.mul(k, d))
            i = E.floordiv(t, s)
            if s != 1:
                conds.append(E.eq(E.mod(t, s), E.ZERO))
            conds.append(within(i, E.ZERO, size))
            pos.append(E.clamp(i, 0, E.sub(size, 1)))
        mm = E.mod(m, per_group_out) if group != 1 else m
        term = widen(x.at((n, cin, *pos))) * widen(w.at((cin, mm, *taps)))
        term = E.select(conjunction(conds), term, E.const(0, dt))
        all_ranges = tuple(ranges + tap_r)
        y = Reduce("add", E.const(0, dt), all_ranges, term) if all_ranges else term
        return narrow(_with_bias(y, b, m), x.dtype)
    out_channels = E.mul(per_group_out, group)
    return [Tensor((x.shape[0], out_channels, *(Const(v) for v in sizes)), x.dtype, at)]

