"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Per sample (and spatial position) the loss is -log_prob[n, t, ...] * w, where t is the target
class (clamped into the classes: native code cannot raise, the interpreter reports a class out
of range) and w the class weight, or 1, or 0 for an ignore_index target. Reduction none keeps
that tensor; sum and mean are Reduces over it (mean divides by the sum of the applied weights).
SoftmaxCrossEntropyLoss first writes log_softmax over the class axis (max subtracted) to a
buffer, its second output when the node has one. Computed in the input's compute dtype.
"""

from __future__ import annotations

import math

from ..ir import ops
from ..loops.expr import Reduce
from . import exprs as E
from .reduce import kept_index, reduction, temp
from .registry import register
from .tensor import Tensor, compute_dtype, narrow, widen


def _log_softmax(ctx, x: Tensor) -> Tensor:
    """log_softmax over the class axis (1); the row max and sum of exponentials are written once
    per row."""
    dt = compute_dtype(x.dtype)
    axis = (1,)

    def value(idx):
        return widen(x.at(idx))
    top = temp(ctx, reduction(ctx, x.shape, axis, "max", E.const(-math.inf, dt), value),
               "class_max")

    def shifted(idx):
        return value(idx) - top.at(kept_index(idx, axis))
    total = temp(ctx, reduction(ctx, x.shape, axis, "add", E.const(0.0, dt),
                                lambda idx: E.unary("exp", shifted(idx))), "class_sum")
    return Tensor(x.shape, dt,
                  lambda idx: shifted(idx) - E.unary("log", total.at(kept_index(idx, axis))))


def _loss(ctx, node, log_prob: Tensor, target: Tensor, weight: Tensor | None) -> Tensor:
    a = ctx.attrs(node)
    dt = log_prob.dtype
    classes = log_prob.shape[1]
    out = ctx.out_dtype(node)

    def terms(idx):
        """(-picked * w, w) at a target index."""
        t = E.index(target.at(idx))
        ignored = E.eq(t, a.ignore_index) if a.ignore_index is not None else None
        safe = E.clamp(t, 0, E.sub(classes, 1))
        picked = log_prob.at((idx[0], safe, *idx[1:]))
        w = E.const(1.0, dt) if weight is None else widen(weight.at((safe,)))
        if ignored is not None:
            w = E.select(ignored, E.const(0.0, dt), w)
        return -picked * w, w

    if a.reduction == "none":
        return Tensor(target.shape, out, lambda idx: narrow(terms(idx)[0], out))

    def at(idx):
        axes = [ctx.fresh_var("n") for _ in target.shape]
        ranges = tuple((v, E.ZERO, d) for v, d in zip(axes, target.shape))
        total = Reduce("add", E.const(0.0, dt), ranges, terms(tuple(axes))[0])
        if a.reduction == "mean":
            axes2 = [ctx.fresh_var("n") for _ in target.shape]
            ranges2 = tuple((v, E.ZERO, d) for v, d in zip(axes2, target.shape))
            total = total / Reduce("add", E.const(0.0, dt), ranges2, terms(tuple(axes2))[1])
        return narrow(total, out)
    return Tensor((), out, at)


@register(ops.NegativeLogLikelihoodLoss)
def lower_nll_loss(ctx, node, inputs):
    x, target, weight = (list(inputs) + [None])[:3]
    log_prob = Tensor(x.shape, compute_dtype(x.dtype), lambda idx: widen(x.at(idx)))
    return [_loss(ctx, node, log_prob, target, weight)]


@register(ops.SoftmaxCrossEntropyLoss)
def lower_softmax_cross_entropy(ctx, node, inputs):
    x, target, weight = (list(inputs) + [None])[:3]
    lsm = _log_softmax(ctx, x)
    if len(node.outputs) > 1 and node.outputs[1] is not None:
        buf = ctx.buffer_for(node.outputs[1], x.shape, x.dtype)
        ctx.materialize(Tensor(x.shape, x.dtype, lambda idx: narrow(lsm.at(idx), x.dtype)), buf,
                        "log_softmax")
        stored = Tensor.of(buf)
        log_prob = Tensor(x.shape, lsm.dtype, lambda idx: widen(stored.at(idx)))
        return [_loss(ctx, node, log_prob, target, weight), stored]
    buf = ctx.new_buffer("log_softmax", x.shape, lsm.dtype)
    ctx.materialize(lsm, buf, "log_softmax")
    return [_loss(ctx, node, Tensor.of(buf), target, weight)]
