"""DeformConv: each output element is one Reduce over its group's input channels and the kernel
taps, where a tap samples X at its regular position plus a learned offset (multilinear
interpolation over the 2^d surrounding pixels, pixels outside X reading 0), optionally scaled by
the mask, times the weight. Offsets and mask are laid out as the reference reshapes them:
channel (offset group * taps + tap) * axes + axis, and offset group * taps + tap.
Computed in the input's compute dtype (float32 for narrow floats), as the reference.
"""

from __future__ import annotations

import itertools

from ..ir import ops
from ..ir.ops.window import make_window
from ..loops.expr import Reduce
from . import exprs as E
from .registry import register
from .tensor import Tensor, compute_dtype, narrow, widen
from .window import sweep, tap_ranges


def _static_kernel(ctx, node, w: Tensor) -> tuple:
    dims = w.static_shape()
    if dims is None:
        ctx.fail(node, f"the weight's shape {list(w.shape)} must be known when compiling",
                 hint="give the weight a static shape")
    return dims[2:]


@register(ops.DeformConv)
def lower_deform_conv(ctx, node, inputs):
    x, w, offset, b, mask = (list(inputs) + [None, None])[:5]
    a = ctx.attrs(node)
    nd = x.rank - 2
    kernel = _static_kernel(ctx, node, w)
    win = make_window(a, nd, kernel, node)
    sw = sweep(ctx, node, win, x.shape[2:])
    dt = compute_dtype(x.dtype)
    taps_total = 1
    for k in kernel:
        taps_total *= k
    group, og = a.group, a.offset_group
    per_group_in = w.shape[1]                               # C / group
    per_group_out = E.floordiv(w.shape[0], group)           # M / group
    per_offset_group = E.floordiv(x.shape[1], og)           # C / offset_group
    spatial = x.shape[2:]

    def at(idx):
        n, m, *outs = idx
        c = ctx.fresh_var("c")
        taps, tap_r = tap_ranges(ctx, win)
        cin = c if group == 1 else E.add(E.mul(E.floordiv(m, per_group_out), per_group_in), c)
        g_off = E.floordiv(cin, per_offset_group) if og != 1 else E.ZERO
        tap = E.ZERO
        for t, k in zip(taps, kernel):
            tap = E.add(E.mul(tap, k), t)
        slot = E.add(E.mul(g_off, taps_total), tap)
        coords = []
        for i in range(nd):
            channel = E.add(E.mul(slot, nd), i)
            base = E.cast(sw.position(i, outs[i], taps[i]), dt)
            coords.append(base + widen(offset.at((n, channel, *outs))))
        lows = [E.unary("floor", cd) for cd in coords]
        sample = None
        for corner in itertools.product((0, 1), repeat=nd):
            weight, inside, where = None, None, []
            for cd, lo, up, size in zip(coords, lows, corner, spatial):
                pos = lo + E.const(up, dt) if up else lo
                f = E.const(1.0, dt) - E.unary("abs", cd - pos)
                weight = f if weight is None else weight * f
                p = E.cast(pos, E.i64)
                ok = E.binary("and", E.ge(p, 0), E.lt(p, size))
                inside = ok if inside is None else E.binary("and", inside, ok)
                where.append(E.clamp(p, 0, E.sub(size, 1)))
            v = E.select(inside, widen(x.at((n, cin, *where))) * weight, E.const(0.0, dt))
            sample = v if sample is None else sample + v
        if mask is not None:
            sample = sample * widen(mask.at((n, slot, *outs)))
        term = sample * widen(w.at((m, c, *taps)))
        y = Reduce("add", E.const(0.0, dt), ((c, E.ZERO, per_group_in), *tap_r), term)
        if b is not None:
            y = y + widen(b.at((m,)))
        return narrow(y, x.dtype)
    return [Tensor((x.shape[0], w.shape[0], *sw.out), x.dtype, at)]
