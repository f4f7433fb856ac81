"""Pooling: MaxPool (and its Indices), AveragePool, LpPool and the global pools.

A windowed pool is a Reduce over the kernel taps of one output element (window.py gives the
geometry: taps outside the input are skipped, which for max means reading the lowest value and
for sums reading 0). AveragePool divides by the taps it counted, itself a Reduce unless the
geometry proves every window full. MaxPool's Indices is a second reduction once Y is in memory:
the first tap (in kernel order) holding the maximum, turned into a flat input position.

A float32 2-D MaxPool (values only) or AveragePool with sizes known when compiling is written
from a padded, stride-phase-split copy of its input instead, made by the same kernel
(conv_blocked.prepared_input, padded with -inf or 0): every tap is then a contiguous vector
load with no bounds test, and the taps fold into one max / sum per output (AveragePool still
divides by the counted taps). Read lazily, the pool keeps its Reduce form. A global pool
ending a fused conv group reads the group's tensor from a temp written by the blocked conv.
"""

from __future__ import annotations

import math

from ..ir import ops
from ..ir.dtypes import DType
from ..ir.ops.window import make_window
from ..loops.expr import Const, Expr, Load, Reduce
from ..loops.stmt import Store
from . import exprs as E
from .conv_blocked import Axis, prepared_input
from .conv_epilogue import anchored_in_memory
from .reduce import count, into, lowest, reduction, temp
from .registry import register
from .tensor import Tensor, compute_dtype, kernel, loop_nest, narrow, widen
from .window import Sweep, read_tap, sweep, tap_ranges, within

i64 = DType.int64


def _sweep(ctx, node, x: Tensor) -> Sweep:
    a = ctx.attrs(node)
    win = make_window(a, x.rank - 2, a.kernel_shape, node, ceil_mode=bool(a.get("ceil_mode", 0)))
    return sweep(ctx, node, win, x.shape[2:])


def _fold(combiner: str, init: Expr, ranges, body: Expr) -> Expr:
    return Reduce(combiner, init, tuple(ranges), body) if ranges else body


def _pool_input(ctx, node, t: Tensor) -> Tensor:
    """The pool's input; one computed from a blocked conv is first written to a temp by a
    kernel of its own (fusion never puts a windowed pool after a conv, so this is rare)."""
    x, first = anchored_in_memory(ctx, t, f"{node.inputs[0].name}_pooled")
    if first:
        ctx.emit(kernel(ctx.fresh_name("pool_input", kernel=True), first))
    return x


# --- MaxPool --------------------------------------------------------------------------------

# Windows with more taps than this keep the Reduce form: every tap of the phase-split form is a
# load written out in the kernel's code (a 60x80 window would be 4,800 of them).
MAX_UNROLLED_TAPS = 64


def _phase_split(ctx, node, plain: Tensor, x: Tensor, sw: Sweep, pad: float, fold) -> Tensor:
    """`plain` (the pool's Reduce form), written better when it is a float32 2-D pool with
    static sizes: its kernel first copies x into xp, padded with `pad` and split by stride
    phase (conv_blocked.prepared_input), so tap (kh, kw) of output (oh, ow) is
    xp[n, c, ph, pw, oh + a, ow + b], contiguous along ow with no bounds test; fold(loads,
    idx) combines an output's taps."""
    if x.dtype is not DType.float32 or x.rank != 4:
        return plain
    dims = [*x.shape[2:], *sw.out, *sw.begin]
    if not all(isinstance(d, Const) for d in dims):
        return plain
    H, W, OH, OW, pt, pl = (d.value for d in dims)
    if OH <= 0 or OW <= 0:
        return plain
    w = sw.win
    ah = Axis(w.kernel[0], w.strides[0], w.dilations[0], pt, OH, H)
    aw = Axis(w.kernel[1], w.strides[1], w.dilations[1], pl, OW, W)
    taps = [(th, tw) for th in ah.taps for tw in aw.taps]
    if len(taps) > MAX_UNROLLED_TAPS:
        return plain

    def write(ctx, buf):
        xp, prep = prepared_input(ctx, node, x, ah, aw, False, pad)

        def at(idx):
            n, c, oh, ow = idx
            return fold([Load(xp, (n, c, Const(ph), Const(pw), E.add(oh, a), E.add(ow, b)))
                         for (ph, a), (pw, b) in taps], idx)
        return prep + loop_nest(ctx, plain.shape, buf, lambda idx: [Store(buf, idx, at(idx))])
    return Tensor(plain.shape, plain.dtype, plain.at, write=write)


def _combine(op: str, loads: list) -> Expr:
    y = loads[0]
    for v in loads[1:]:
        y = E.binary(op, y, v)
    return y


@register(ops.MaxPool)
def lower_max_pool(ctx, node, inputs):
    x = _pool_input(ctx, node, inputs[0])
    sw = _sweep(ctx, node, x)
    dt = compute_dtype(x.dtype)
    floor = lowest(dt)
    shape = (*x.shape[:2], *sw.out)

    def at(idx):
        n, c, *outs = idx
        taps, ranges = tap_ranges(ctx, sw.win)
        v, inside = read_tap(x, (n, c), sw, outs, taps)
        v = widen(v)
        return narrow(_fold("max", floor, ranges, v if inside is None else
                            E.select(inside, v, floor)), x.dtype)
    y = Tensor(shape, x.dtype, at)
    if len(node.outputs) < 2 or node.outputs[1] is None:
        return [_phase_split(ctx, node, y, x, sw, -math.inf,
                             lambda loads, idx: _combine("max", loads))]
    y = into(ctx, y, ctx.buffer_for(node.outputs[0], shape, x.dtype), "max_pool")
    return [y, _max_indices(ctx, node, x, y, sw)]


def _max_indices(ctx, node, x: Tensor, y: Tensor, sw: Sweep) -> Tensor:
    """The flat input position (over N, C and the spatial axes, row-major, or column-major
    within each image with storage_order=1) of the first tap in kernel order equal to Y. The
    tap's ordinal is materialized first, then decoded into a position."""
    kernel = sw.win.kernel
    none = Const(math.prod(kernel))

    def ordinal_at(idx):
        n, c, *outs = idx
        taps, ranges = tap_ranges(ctx, sw.win)
        v, inside = read_tap(x, (n, c), sw, outs, taps)
        hit = E.eq(widen(v), widen(y.at(idx)))
        if inside is not None:
            hit = E.binary("and", inside, hit)
        ordinal = E.ZERO                        # the tap's position in kernel order
        for k, size in zip(taps, kernel):
            ordinal = E.add(E.mul(ordinal, size), k)
        first = _fold("min", none, ranges, E.select(hit, ordinal, none))
        return E.select(E.eq(first, none), E.ZERO, first)   # no tap matched (NaN): tap 0
    first = temp(ctx, Tensor(y.shape, i64, ordinal_at), "first_tap")
    order = list(range(sw.rank)) if not ctx.attrs(node).storage_order else \
        list(reversed(range(sw.rank)))

    def at(idx):
        n, c, *outs = idx
        coords, rest = [], first.at(idx)
        for axis in reversed(range(sw.rank)):
            coords.append(sw.position(axis, outs[axis], E.mod(rest, kernel[axis])))
            rest = E.floordiv(rest, kernel[axis])
        coords.reverse()
        plane = E.ZERO
        for axis in order:
            plane = E.add(E.mul(plane, sw.spatial[axis]), coords[axis])
        image = E.add(E.mul(n, x.shape[1]), c)
        return E.add(E.mul(image, E.product(sw.spatial)), plane)
    return Tensor(y.shape, i64, at)


# --- AveragePool, LpPool --------------------------------------------------------------------

def _window_sum(ctx, x: Tensor, sw: Sweep, outs, lead, term) -> Expr:
    taps, ranges = tap_ranges(ctx, sw.win)
    v, inside = read_tap(x, lead, sw, outs, taps)
    v = term(widen(v))
    zero = E.const(0, v.dtype)
    return _fold("add", zero, ranges, v if inside is None else E.select(inside, v, zero))


def _tap_count(ctx, sw: Sweep, outs, include_pad: bool, dt: DType) -> Expr:
    """How many taps of the window at `outs` are counted: those inside the input, or inside the
    padded input with count_include_pad (a window past the end pads under ceil_mode still
    counts only what it covers). A constant when every window is full."""
    taps, ranges = tap_ranges(ctx, sw.win)
    conds = []
    for axis, (o, k) in enumerate(zip(outs, taps)):
        n = sw.spatial[axis]
        lo, hi = (E.sub(E.ZERO, sw.begin[axis]), E.add(n, sw.end[axis])) if include_pad else \
            (E.ZERO, n)
        if not sw.always_within(axis, lo, hi):
            conds.append(within(sw.position(axis, o, k), lo, hi))
    if not conds:
        return E.const(math.prod(sw.win.kernel), dt)
    cond = conds[0]
    for c in conds[1:]:
        cond = E.binary("and", cond, c)
    one, zero = E.const(1, dt), E.const(0, dt)
    return _fold("add", zero, ranges, E.select(cond, one, zero))


@register(ops.AveragePool)
def lower_average_pool(ctx, node, inputs):
    x = _pool_input(ctx, node, inputs[0])
    sw = _sweep(ctx, node, x)
    dt = compute_dtype(x.dtype)
    include_pad = bool(ctx.attrs(node).count_include_pad)

    def at(idx):
        n, c, *outs = idx
        total = _window_sum(ctx, x, sw, outs, (n, c), lambda v: v)
        return narrow(total / _tap_count(ctx, sw, outs, include_pad, dt), x.dtype)
    plain = Tensor((*x.shape[:2], *sw.out), x.dtype, at)
    return [_phase_split(ctx, node, plain, x, sw, 0.0, lambda loads, idx: _combine("add", loads) /
                         _tap_count(ctx, sw, idx[2:], include_pad, dt))]


def _power_term(p: int):
    """|v| ^ p, as a product for the usual small p."""
    if p == 1:
        return lambda v: E.unary("abs", v)
    if p == 2:
        return lambda v: v * v
    return lambda v: E.binary("pow", E.unary("abs", v), E.const(p, v.dtype))


def _root(e: Expr, p: int) -> Expr:
    if p == 1:
        return e
    if p == 2:
        return E.unary("sqrt", e)
    return E.binary("pow", e, E.const(1.0 / p, e.dtype))


@register(ops.LpPool)
def lower_lp_pool(ctx, node, inputs):
    x = inputs[0]
    sw = _sweep(ctx, node, x)
    p = ctx.attrs(node).p

    def at(idx):
        n, c, *outs = idx
        return narrow(_root(_window_sum(ctx, x, sw, outs, (n, c), _power_term(p)), p), x.dtype)
    return [Tensor((*x.shape[:2], *sw.out), x.dtype, at)]


# --- global pools ---------------------------------------------------------------------------

@register(ops.GlobalAveragePool, ops.GlobalMaxPool, ops.GlobalLpPool)
def lower_global_pool(ctx, node, inputs):
    """A global pool ending a fused conv group reads the group's tensor from a temp that the
    blocked conv writes first, in the pool's kernel."""
    x, first = anchored_in_memory(ctx, inputs[0], f"{node.inputs[0].name}_pooled")
    y = _global_pool(ctx, node, x)
    if not first:
        return [y]
    return [Tensor(y.shape, y.dtype, y.at, write=lambda ctx, buf: first + loop_nest(
        ctx, y.shape, buf, lambda idx: [Store(buf, idx, y.at(idx))]))]


def _global_pool(ctx, node, x: Tensor) -> Tensor:
    dt = compute_dtype(x.dtype)
    axes = tuple(range(2, x.rank))
    if node.op is ops.GlobalMaxPool:
        r = reduction(ctx, x.shape, axes, "max", lowest(dt), lambda idx: widen(x.at(idx)))
        return Tensor(r.shape, x.dtype, lambda idx: narrow(r.at(idx), x.dtype))
    if node.op is ops.GlobalAveragePool:
        n = count(x.shape, axes, dt)
        r = reduction(ctx, x.shape, axes, "add", E.const(0, dt), lambda idx: widen(x.at(idx)))
        return Tensor(r.shape, x.dtype, lambda idx: narrow(r.at(idx) / n, x.dtype))
    p = ctx.attrs(node).p
    term = _power_term(p)
    r = reduction(ctx, x.shape, axes, "add", E.const(0, dt), lambda idx: term(widen(x.at(idx))))
    return Tensor(r.shape, x.dtype, lambda idx: narrow(_root(r.at(idx), p), x.dtype))
