"""Sliding windows over the spatial axes of N x C x D1 x ... x Dn tensors, for the conv and pool
lowerings: output sizes and begin pads as index expressions (symbolic input sizes allowed), and
reading one tap of a window with its padding.

The window attributes themselves (kernel, strides, dilations, pads, auto_pad, ceil_mode) are
interpreted by kiln/ir/ops/window.py; this module only turns that geometry into Loop IR. A tap of
output position o at kernel offset k reads input position o * stride - begin + k * dilation; a
tap outside the input reads the op's padding value, through a clamped (always in-bounds) load and
a Select, and the Select is left out where the geometry proves every tap is inside.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.ops.window import Window, effective_size
from ..loops.expr import Const, Expr
from . import exprs as E


@dataclass(frozen=True)
class Sweep:
    win: Window
    spatial: tuple      # input sizes (Exprs)
    out: tuple          # output sizes
    begin: tuple        # pads before each axis
    end: tuple          # pads after each axis (as auto_pad resolves them)

    @property
    def rank(self) -> int:
        return self.win.rank

    def position(self, axis: int, o: Expr, k: Expr) -> Expr:
        """The input coordinate of output index o at tap k along a spatial axis."""
        w = self.win
        return E.add(E.sub(E.mul(o, w.strides[axis]), self.begin[axis]),
                     E.mul(k, w.dilations[axis]))

    def always_within(self, axis: int, lo: Expr, hi: Expr) -> bool:
        """Does every tap along `axis` land in [lo, hi)? Only decided for static geometry."""
        w = self.win
        first = E.sub(E.ZERO, self.begin[axis])
        last = self.position(axis, E.sub(self.out[axis], 1), w.kernel[axis] - 1)
        low_ok = isinstance(first, Const) and isinstance(lo, Const) and first.value >= lo.value
        high_ok = isinstance(last, Const) and isinstance(hi, Const) and last.value < hi.value
        return low_ok and high_ok


def sweep(ctx, node, win: Window, spatial) -> Sweep:
    """The output sizes and pads of a window sweep over input sizes `spatial` (Exprs)."""
    spatial = tuple(spatial)
    if all(isinstance(n, Const) for n in spatial):
        out, begin, end = win.resolve([n.value for n in spatial])
        return Sweep(win, spatial, tuple(Const(v) for v in out), tuple(Const(v) for v in begin),
                     tuple(Const(v) for v in end))
    outs, begins, ends = [], [], []
    for i, n in enumerate(spatial):
        k, s, d = win.kernel[i], win.strides[i], win.dilations[i]
        eff = effective_size(k, d)
        if win.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = E.ceildiv(n, s)
            total = E.maximum(E.add(E.sub(E.mul(E.sub(out, 1), s), n), eff), 0)
            half = E.floordiv(total, 2)
            begin = half if win.auto_pad == "SAME_UPPER" else E.sub(total, half)
            end = E.sub(total, begin)
        else:
            pb, pe = (0, 0) if win.auto_pad == "VALID" else (win.pads[i], win.pads[win.rank + i])
            span = E.sub(E.add(n, pb + pe), eff)
            if win.ceil_mode:
                out = E.add(E.ceildiv(span, s), 1)
                late = E.ge(E.mul(E.sub(out, 1), s), E.add(n, pb))   # last window in the pad
                out = E.select(late, E.sub(out, 1), out)
            else:
                out = E.add(E.floordiv(span, s), 1)
            begin, end = Const(pb), Const(pe)
        outs.append(out)
        begins.append(begin)
        ends.append(end)
    return Sweep(win, spatial, tuple(outs), tuple(begins), tuple(ends))


def tap_ranges(ctx, win: Window) -> tuple[list, list]:
    """(one index Expr per kernel axis, the Reduce ranges binding them): a kernel axis of size 1
    is index 0 with no range."""
    taps, ranges = [], []
    for k in win.kernel:
        if k == 1:
            taps.append(E.ZERO)
        else:
            v = ctx.fresh_var("t")
            taps.append(v)
            ranges.append((v, E.ZERO, Const(k)))
    return taps, ranges


def read_tap(x, lead: tuple, sw: Sweep, outs, taps) -> tuple[Expr, Expr | None]:
    """(x at the tap, clamped in bounds; the bool condition that the tap is inside x, or None
    when it always is)."""
    idx, conds = [], []
    for axis, (o, k) in enumerate(zip(outs, taps)):
        n = sw.spatial[axis]
        pos = sw.position(axis, o, k)
        if sw.always_within(axis, E.ZERO, n):
            idx.append(pos)
            continue
        conds.append(within(pos, E.ZERO, n))
        idx.append(E.clamp(pos, 0, E.sub(n, 1)))
    return x.at((*lead, *idx)), conjunction(conds)


def within(pos: Expr, lo: Expr, hi: Expr) -> Expr:
    return E.binary("and", E.ge(pos, lo), E.lt(pos, hi))


def conjunction(conds) -> Expr | None:
    out = None
    for c in conds:
        out = c if out is None else E.binary("and", out, c)
    return out
