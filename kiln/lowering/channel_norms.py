"""Normalizations by channel, group or window: GroupNormalization, InstanceNormalization,
BatchNormalization (inference and training), MeanVarianceNormalization, LpNormalization and LRN.

Each materializes its statistics into buffers of keepdims shape (one kernel each, `moments` in
normalization.py) and then reads them in an elementwise expression of the input.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Expr, Reduce
from . import exprs as E
from .normalization import as_dtype, inv_sqrt, moments, sqrt
from .reduce import count, kept_index, normalize_axis, reduction, temp
from .registry import register
from .tensor import Tensor, compute_dtype, narrow, widen


# --- GroupNormalization, InstanceNormalization, BatchNormalization -------------------------------

def _channel(t: Tensor, c) -> Expr:
    """Element c of a per-channel vector, widened."""
    return widen(t.at((c,)))


@register(ops.GroupNormalization)
def lower_group_norm(ctx, node, inputs):
    """Statistics per (sample, group) over the group's channels and the spatial axes: the input
    is seen as (N, G, C/G, *spatial)."""
    x, scale, bias = inputs
    a = ctx.attrs(node)
    stash = compute_dtype(a.stash_type)
    groups = a.num_groups
    per_group = E.floordiv(x.shape[1], groups)
    shape = (x.shape[0], E.const(groups, DType.int64), per_group, *x.shape[2:])
    axes = tuple(range(2, len(shape)))

    def grouped(idx):
        n, g, c, *rest = idx
        return as_dtype(x.at((n, E.add(E.mul(g, per_group), c), *rest)), stash)
    mean, inv = moments(ctx, shape, axes, grouped, stash, a.epsilon)

    def at(idx):
        n, c, *rest = idx
        k = (n, E.floordiv(c, per_group)) + (E.ZERO,) * (len(shape) - 2)
        normal = narrow((as_dtype(x.at(idx), stash) - mean.at(k)) * inv.at(k), x.dtype)
        return narrow(widen(normal) * _channel(scale, c) + _channel(bias, c), x.dtype)
    return [Tensor(x.shape, x.dtype, at)]


@register(ops.InstanceNormalization)
def lower_instance_norm(ctx, node, inputs):
    x, scale, b = inputs
    dt = compute_dtype(x.dtype)
    axes = tuple(range(2, x.rank))
    mean, inv = moments(ctx, x.shape, axes, lambda idx: widen(x.at(idx)), dt,
                        ctx.attrs(node).epsilon)

    def at(idx):
        k = kept_index(idx, axes)
        y = (widen(x.at(idx)) - mean.at(k)) * inv.at(k)
        return narrow(y * _channel(scale, idx[1]) + _channel(b, idx[1]), x.dtype)
    return [Tensor(x.shape, x.dtype, at)]


@register(ops.BatchNormalization)
def lower_batch_norm(ctx, node, inputs):
    """Per channel (x - mean) / sqrt(var + eps) * scale + B, in float64 for float64 inputs and
    float32 otherwise. Inference uses input_mean/var; training mode the batch statistics (over
    N and the spatial axes), and its running_mean/var outputs blend them in with momentum."""
    x, scale, b, mean_in, var_in = inputs
    a = ctx.attrs(node)
    cdt = DType.float64 if x.dtype is DType.float64 else DType.float32
    axes = (0, *range(2, x.rank))
    outs = []
    if a.training_mode:
        mean, inv = moments(ctx, x.shape, axes, lambda idx: as_dtype(x.at(idx), cdt), cdt, a.epsilon)

        def batch(t, c):
            return t.at((E.ZERO, c) + (E.ZERO,) * (x.rank - 2))

        def statistics(idx):
            return batch(mean, idx[1]), batch(inv, idx[1])
    else:
        def statistics(idx):
            c = idx[1]
            return as_dtype(mean_in.at((c,)), cdt), inv_sqrt(as_dtype(var_in.at((c,)), cdt), a.epsilon)

    def at(idx):
        m, inv_std = statistics(idx)
        c = idx[1]
        y = (as_dtype(x.at(idx), cdt) - m) * inv_std * as_dtype(scale.at((c,)), cdt) + \
            as_dtype(b.at((c,)), cdt)
        return narrow(y, x.dtype)
    outs.append(Tensor(x.shape, x.dtype, at))
    if a.training_mode:
        outs.extend(_running_stats(ctx, x, mean_in, var_in, mean, cdt, a.momentum, axes))
    return outs


def _running_stats(ctx, x, mean_in, var_in, mean, cdt, momentum, axes):
    """running = input * momentum + batch * (1 - momentum), for the mean and the (population)
    variance; the batch variance is recomputed from the batch mean, as a statistic."""
    m, rest = E.const(momentum, cdt), E.const(1 - momentum, cdt)

    def deviation(idx):
        d = as_dtype(x.at(idx), cdt) - mean.at(kept_index(idx, axes))
        return d * d
    sq = reduction(ctx, x.shape, axes, "add", E.const(0, cdt), deviation)
    n = count(x.shape, axes, cdt)
    var = temp(ctx, Tensor(sq.shape, cdt, lambda idx: sq.at(idx) / n), "batch_var")

    def blend(given: Tensor, batch: Tensor) -> Tensor:
        def at(idx):
            c = idx[0]
            stat = batch.at((E.ZERO, c) + (E.ZERO,) * (x.rank - 2))
            return narrow(as_dtype(given.at((c,)), cdt) * m + stat * rest, given.dtype)
        return Tensor(given.shape, given.dtype, at)
    return [blend(mean_in, mean), blend(var_in, var)]


# --- MeanVarianceNormalization, LpNormalization, LRN ---------------------------------------------

@register(ops.MeanVarianceNormalization)
def lower_mvn(ctx, node, inputs):
    """(x - mean) / (std + 1e-9) over the `axes` attribute."""
    x = inputs[0]
    axes = tuple(sorted({normalize_axis(ctx, node, v, x.rank)
                         for v in ctx.attrs(node).axes}))
    dt = compute_dtype(x.dtype)
    n = count(x.shape, axes, dt)
    xs = lambda idx: widen(x.at(idx))      # noqa: E731
    total = reduction(ctx, x.shape, axes, "add", E.const(0, dt), xs)
    mean = temp(ctx, Tensor(total.shape, dt, lambda idx: total.at(idx) / n), "mean")

    def deviation(idx):
        d = xs(idx) - mean.at(kept_index(idx, axes))
        return d * d
    sq = reduction(ctx, x.shape, axes, "add", E.const(0, dt), deviation)
    std = temp(ctx, Tensor(sq.shape, dt, lambda idx: sqrt(sq.at(idx) / n) +
                           E.const(1e-9, dt)), "std")
    return [Tensor(x.shape, x.dtype, lambda idx: narrow(
        (xs(idx) - mean.at(kept_index(idx, axes))) / std.at(kept_index(idx, axes)), x.dtype))]


@register(ops.LpNormalization)
def lower_lp_norm(ctx, node, inputs):
    """x / ||x||_p along the axis (p = 1 or 2), 0 where the norm is 0."""
    x = inputs[0]
    a = ctx.attrs(node)
    if a.p not in (1, 2):
        ctx.fail(node, f"p must be 1 or 2, got {a.p}")
    axis = normalize_axis(ctx, node, a.axis, x.rank)
    dt = compute_dtype(x.dtype)
    axes = (axis,)

    def term(idx):
        v = widen(x.at(idx))
        return E.unary("abs", v) if a.p == 1 else v * v
    total = reduction(ctx, x.shape, axes, "add", E.const(0, dt), term)
    norm = temp(ctx, total if a.p == 1 else Tensor(total.shape, dt, lambda idx: sqrt(
        total.at(idx))), "norm")
    zero = E.const(0, dt)

    def at(idx):
        nrm = norm.at(kept_index(idx, axes))
        safe = E.select(E.eq(nrm, zero), E.const(1, dt), nrm)
        return narrow(E.select(E.eq(nrm, zero), zero, widen(x.at(idx)) / safe), x.dtype)
    return [Tensor(x.shape, x.dtype, at)]


@register(ops.LRN)
def lower_lrn(ctx, node, inputs):
    """x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels) ^ beta."""
    x = inputs[0]
    a = ctx.attrs(node)
    dt = compute_dtype(x.dtype)
    size = a.size
    before = (size - 1) // 2
    channels = x.shape[1]

    def at(idx):
        n, c, *rest = idx
        j = ctx.fresh_var("r")
        ch = E.sub(E.add(c, j), before)
        inside = E.binary("and", E.ge(ch, 0), E.lt(ch, channels))
        v = widen(x.at((n, E.clamp(ch, 0, E.sub(channels, 1)), *rest)))
        window = Reduce("add", E.const(0, dt), ((j, E.ZERO, E.const(size, DType.int64)),),
                          E.select(inside, v * v, E.const(0, dt)))
        denom = E.binary("pow", E.const(a.bias, dt) + E.const(a.alpha / size, dt) * window,
                         E.const(a.beta, dt))
        return narrow(widen(x.at(idx)) / denom, x.dtype)
    return [Tensor(x.shape, x.dtype, at)]
