"""FlexAttention (ai.onnx.preview): softmax(Q K^T * scale) V with optional score_mod and
prob_mod subgraphs around the softmax, and grouped-query heads (K/V head h // (Hq / Hkv)).

As the reference: Q and K are each scaled by sqrt(scale) and rounded to their dtype, their
product is rounded to the input dtype and then computed on in the softmax precision (the
attribute, else float32 for narrow floats, else the input's). The scores are written to a
buffer; score_mod is lowered inline with that buffer as its input (its nodes become kernels of
the program, as any node's); then the softmax over the keys (row max and row sum written once
per row, max subtracted), written again;
prob_mod likewise; then the product with V in the softmax precision, rounded to the output.
"""

from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Reduce
from . import exprs as E
from .reduce import kept_index, reduction, temp
from .registry import register
from .tensor import Tensor, compute_dtype


def _apply_mod(ctx, node, graph, t: Tensor, dtype: DType) -> Tensor:
    """The subgraph `graph` (one tensor in, one out) lowered inline on t."""
    from .graph import lower_node
    if graph is None:
        return t
    ctx.set_tensor(graph.inputs[0], t)
    for c in graph.constants:
        ctx.bind_constant(c)
    for n in graph.nodes:
        lower_node(ctx, n)
    out = ctx.tensor(graph.outputs[0])
    if out.dtype is not dtype:
        out = Tensor(out.shape, dtype, lambda idx, o=out: E.cast(o.at(idx), dtype))
    return out


@register(ops.FlexAttention)
def lower_flex_attention(ctx, node, inputs):
    q, k, v = inputs
    a = ctx.attrs(node)
    dq = q.dtype
    if a.softmax_precision is not None:
        acc = a.softmax_precision
    else:
        acc = DType.float32 if dq.itemsize < 4 else dq
    head = q.shape[3]
    if a.scale is not None:
        scale = a.scale
    elif isinstance(head, Const):
        scale = 1.0 / math.sqrt(head.value)
    else:
        scale = None
    qc = compute_dtype(dq)
    if scale is not None:
        root = E.const(float(np.asarray(np.sqrt(np.float32(scale)), dtype=dq.np)), qc)
    else:        # 1/sqrt(head size) of a symbolic head size, rounded as float32 then to dq
        root = E.cast(E.cast(E.unary("sqrt", E.const(1.0, DType.float32) /
                                     E.cast(head, DType.float32)), dq), qc)
    group = E.floordiv(q.shape[1], k.shape[1])

    def scaled(t, idx):
        return E.cast(E.cast(E.cast(t.at(idx), qc) * root, dq), qc)

    def score(idx):
        b, h, i, j = idx
        d = ctx.fresh_var("d")
        hk = E.floordiv(h, group)
        dot = Reduce("add", E.const(0.0, qc), ((d, E.ZERO, head),),
                     scaled(q, (b, h, i, d)) * scaled(k, (b, hk, j, d)))
        return E.cast(E.cast(dot, dq), acc)
    shape = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    scores = temp(ctx, Tensor(shape, acc, score), "flex_scores")
    scores = _apply_mod(ctx, node, a.score_mod, scores, acc)
    keys = shape[3]

    axis = (3,)
    top = temp(ctx, reduction(ctx, shape, axis, "max", E.const(-math.inf, acc), scores.at),
               "row_max")

    def exp_term(idx):
        return E.unary("exp", scores.at(idx) - top.at(kept_index(idx, axis)))
    row_sum = temp(ctx, reduction(ctx, shape, axis, "add", E.const(0.0, acc), exp_term),
                   "row_sum")

    def prob(idx):
        return exp_term(idx) / row_sum.at(kept_index(idx, axis))
    probs = temp(ctx, Tensor(shape, acc, prob), "flex_probs")
    probs = _apply_mod(ctx, node, a.prob_mod, probs, acc)
    out = ctx.out_dtype(node)

    def at(idx):
        b, h, i, e = idx
        j = ctx.fresh_var("j")
        hk = E.floordiv(h, group)
        y = Reduce("add", E.const(0.0, acc), ((j, E.ZERO, keys),),
                   probs.at((b, h, i, j)) * E.cast(v.at((b, hk, j, e)), acc))
        return E.cast(y, out)
    return [Tensor((q.shape[0], q.shape[1], q.shape[2], v.shape[3]), out, at)]
