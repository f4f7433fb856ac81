"""Optimizer steps (ai.onnx.preview.training): Momentum, Adagrad, Adam.

Each output is elementwise in its tensor, gradient and state, so every output is an `at` over
the same index; the learning rate R and the step count T are scalars read at run time (the
first-step rule of Momentum and Adam's bias correction are Selects on T). The arithmetic is in
float64 and rounded once into each tensor's dtype, as the reference does. Inputs come as R, T,
then `groups` lists of n tensors; outputs are the lists the op keeps (the gradients are consumed).
"""

from __future__ import annotations

from ..ir import ops
from ..ir.dtypes import DType
from . import exprs as E
from .registry import register
from .tensor import Tensor

f64 = DType.float64


def _scalar(t: Tensor):
    """The one element of a scalar (any rank, every dim 1) operand."""
    return t.at(tuple(E.ZERO for _ in t.shape))


def _c(v):
    return E.const(float(v), f64)


def _step(ctx, node, inputs, groups: int, update):
    """update(a, lr, first, k, x, g, *state) -> one f64 Expr per kept group (x first)."""
    a = ctx.attrs(node)
    rest = inputs[2:]
    n = len(rest) // groups
    lr = E.cast(_scalar(inputs[0]), f64)
    t = E.cast(_scalar(inputs[1]), DType.int64)
    outs = [None] * len(node.outputs)
    for k in range(n):
        group = [rest[g * n + k] for g in range(groups)]
        kept = [group[0], *group[2:]]
        for j, like in enumerate(kept):
            def at(idx, j=j, group=group):
                vals = [E.cast(x.at(idx), f64) for x in group]
                return E.cast(update(a, lr, t, *vals)[j], kept[j].dtype)
            outs[j * n + k] = Tensor(group[0].shape, like.dtype, at)
    return outs


def _momentum(a, lr, t, x, g, v):
    g = _c(a.norm_coefficient) * x + g
    beta = E.select(E.eq(t, 0), _c(1.0), _c(a.beta))
    v_new = _c(a.alpha) * v + beta * g
    step = g + _c(a.alpha) * v_new if a.mode == "nesterov" else v_new
    return [x - lr * step, v_new]


def _adagrad(a, lr, t, x, g, h):
    rate = lr / (_c(1.0) + E.cast(t, f64) * _c(a.decay_factor))
    g = _c(a.norm_coefficient) * x + g
    h_new = h + g * g
    return [x - rate * g / (E.unary("sqrt", h_new) + _c(a.epsilon)), h_new]


def _adam(a, lr, t, x, g, v, h):
    tf = E.cast(t, f64)
    corrected = lr * E.unary("sqrt", _c(1.0) - E.binary("pow", _c(a.beta), tf)) / \
        (_c(1.0) - E.binary("pow", _c(a.alpha), tf))
    rate = E.select(E.gt(t, 0), corrected, lr)
    g = _c(a.norm_coefficient) * x + g
    v_new = _c(a.alpha) * v + _c(1 - a.alpha) * g
    h_new = _c(a.beta) * h + _c(1 - a.beta) * g * g
    x_new = x - rate * v_new / (E.unary("sqrt", h_new) + _c(a.epsilon))
    return [_c(1 - a.norm_coefficient_post) * x_new, v_new, h_new]


@register(ops.Momentum)
def lower_momentum(ctx, node, inputs):
    return _step(ctx, node, inputs, 3, _momentum)


@register(ops.Adagrad)
def lower_adagrad(ctx, node, inputs):
    return _step(ctx, node, inputs, 3, _adagrad)


@register(ops.Adam)
def lower_adam(ctx, node, inputs):
    return _step(ctx, node, inputs, 4, _adam)
