"""Attention (opset 23+): softmax(Q K^T * scale + bias) V with a KV cache, masks, causal and
sliding windows, grouped-query heads, softcap and the optional qk_matmul_output, as
kiln/ir/ops/attention.py defines it.

Heads are read as (batch, heads, sequence, size); 3-D inputs are read through that view. Keys
and values are the past cache followed by the new ones (the present outputs). The bias of score
(b, h, i, j) is the mask (bool: 0 or -inf; float: added; a short mask's missing keys are -inf)
plus -inf where the causal rule, the windows or nonpad_kv_seqlen exclude key j for the query at
absolute position i + offset (offset: the past length, or nonpad_kv_seqlen - sq). Q and K are
each scaled by sqrt(scale) and rounded, their product rounded to the input dtype, softcapped,
biased and rounded again: that is written to a buffer. The softmax (in softmax_precision when
set) subtracts the row max (0 for a row of -inf) and gives 0 for a row whose bias is all -inf;
row max, row sum and the row's largest bias are written once per row, the probabilities once
per element, then multiplied with V.
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

NEG_INF = -math.inf


def _heads(t: Tensor, heads: int | None) -> Tensor:
    """A (B, H, S, D) view of a 4-D tensor, or of a 3-D (B, S, H*D) one."""
    if t.rank == 4:
        return t
    b, s, hd = t.shape
    if not isinstance(hd, Const):
        raise ValueError("packed heads need a static hidden size")
    d = hd.value // heads
    return t.remap((b, Const(heads), s, Const(d)),
                   lambda idx: (idx[0], idx[2], E.add(E.mul(idx[1], d), idx[3])))


def _concat_seq(past: Tensor | None, new: Tensor) -> Tensor:
    """past followed by new along the sequence axis (2)."""
    if past is None:
        return new
    p = past.shape[2]
    shape = (new.shape[0], new.shape[1], E.add(p, new.shape[2]), new.shape[3])

    def at(idx):
        b, h, j, d = idx
        later = E.ge(j, p)
        return E.select(later, new.at((b, h, E.clamp(E.sub(j, p), 0, E.sub(new.shape[2], 1)), d)),
                        past.at((b, h, E.clamp(j, 0, E.sub(p, 1)), d)))
    return Tensor(shape, new.dtype, at)


class _Bias:
    """The additive bias of score (b, h, i, j), in dtype dt."""

    def __init__(self, ctx, node, mask, nonpad, sq, total, past_len, dt, rounding):
        self.a = ctx.attrs(node)
        self.rounding = rounding            # a float mask is rounded to the input dtype first
        self.mask, self.nonpad = mask, nonpad
        self.sq, self.total, self.past_len, self.dt = sq, total, past_len, dt
        a = self.a
        self.any = mask is not None or nonpad is not None or a.is_causal or \
            a.left_window_size >= 0 or a.right_window_size >= 0

    def mask_term(self, idx):
        m = self.mask
        lead = 4 - m.rank
        where, inside = [], None
        for axis in range(m.rank):
            i, d = idx[lead + axis], m.shape[axis]
            if axis == m.rank - 1:               # keys: a short mask misses the last ones
                inside = E.lt(i, d)
                where.append(E.clamp(i, 0, E.maximum(E.sub(d, 1), 0)))
            elif E.is_const(d, 1):
                where.append(E.ZERO)
            else:
                where.append(i)
        v = m.at(tuple(where))
        ninf, zero = E.const(NEG_INF, self.dt), E.const(0.0, self.dt)
        value = E.select(v, zero, ninf) if m.dtype is DType.bool else \
            E.cast(E.cast(v, self.rounding), self.dt)
        return E.select(inside, value, ninf)

    def allowed(self, idx):
        a = self.a
        b, _, i, j = idx
        if self.nonpad is not None:
            seen = E.index(self.nonpad.at((b,)))
            pos = E.add(i, E.sub(seen, self.sq))
        else:
            seen, pos = None, E.add(i, self.past_len)
        conds = []
        if a.is_causal:
            conds.append(E.le(j, pos))
        if a.left_window_size >= 0:
            conds.append(E.le(E.sub(pos, j), a.left_window_size))
        if a.right_window_size >= 0:
            conds.append(E.le(E.sub(j, pos), a.right_window_size))
        if seen is not None:
            conds.append(E.lt(j, seen))
        out = None
        for c in conds:
            out = c if out is None else E.binary("and", out, c)
        return out

    def at(self, idx):
        zero, ninf = E.const(0.0, self.dt), E.const(NEG_INF, self.dt)
        bias = self.mask_term(idx) if self.mask is not None else zero
        ok = self.allowed(idx)
        if ok is not None:
            bias = E.select(ok, bias, ninf)
        return bias


@register(ops.Attention)
def lower_attention(ctx, node, inputs):
    q3, k3, v3, mask, past_k, past_v, nonpad = (list(inputs) + [None] * 4)[:7]
    a = ctx.attrs(node)
    packed = q3.rank == 3
    q, k, v = _heads(q3, a.q_num_heads), _heads(k3, a.kv_num_heads), _heads(v3, a.kv_num_heads)
    k, v = _concat_seq(past_k, k), _concat_seq(past_v, v)
    dq = q.dtype
    qc = compute_dtype(dq)
    head = q.shape[3]
    if a.scale is not None:
        scale = a.scale
    elif isinstance(head, Const):
        scale = 1 / np.sqrt(head.value)
    else:
        ctx.fail(node, "Attention without a scale needs a static head size")
    root = E.const(float(dq.np.type(np.sqrt(scale))), qc)
    group = E.floordiv(q.shape[1], k.shape[1])
    sq, total = q.shape[2], k.shape[2]
    past_len = past_k.shape[2] if past_k is not None else E.ZERO
    sp = a.softmax_precision or dq
    spc = compute_dtype(sp)
    bias = _Bias(ctx, node, mask, nonpad, sq, total, past_len, qc, dq)
    shape = (q.shape[0], q.shape[1], sq, total)

    def rounded(e):
        return E.cast(E.cast(e, dq), qc)

    def raw(idx):
        b, h, i, j = idx
        d = ctx.fresh_var("d")
        hk = E.floordiv(h, group)
        dot = Reduce("add", E.const(0.0, qc), ((d, E.ZERO, head),),
                     rounded(E.cast(q.at((b, h, i, d)), qc) * root) *
                     rounded(E.cast(k.at((b, hk, j, d)), qc) * root))
        return rounded(dot)

    def capped(idx):
        r = raw(idx)
        if a.softcap > 0:
            c = E.const(a.softcap, qc)
            r = rounded(rounded(E.unary("tanh", rounded(r / c))) * c)
        return r

    def score(idx):
        return rounded(capped(idx) + bias.at(idx)) if bias.any else capped(idx)
    scores = temp(ctx, Tensor(shape, dq, lambda idx: E.cast(score(idx), dq)), "scores")
    keys_axis = (3,)

    def read(idx):
        return E.cast(scores.at(idx), spc)
    top = temp(ctx, reduction(ctx, shape, keys_axis, "max", E.const(NEG_INF, spc), read),
               "row_max")

    def shift(idx):
        m = top.at(kept_index(idx, keys_axis))
        return E.select(E.eq(m, E.const(NEG_INF, spc)), E.const(0.0, spc), m)

    def exp_term(idx):
        return E.cast(E.cast(E.unary("exp", read(idx) - shift(idx)), sp), spc)
    row_sum = temp(ctx, reduction(ctx, shape, keys_axis, "add", E.const(0.0, spc), exp_term),
                   "row_sum")
    worst = temp(ctx, reduction(ctx, shape, keys_axis, "max", E.const(NEG_INF, qc), bias.at),
                 "row_bias") if bias.any else None

    def prob(idx):
        t = row_sum.at(kept_index(idx, keys_axis))
        t = E.select(E.eq(t, E.const(0.0, spc)), E.const(1.0, spc), t)
        p = E.cast(exp_term(idx) / t, dq)
        if worst is not None:
            masked = E.eq(worst.at(kept_index(idx, keys_axis)), E.const(NEG_INF, qc))
            p = E.select(masked, E.const(0.0, dq), p)
        return p
    probs = temp(ctx, Tensor(shape, dq, prob), "probs")
    vc = compute_dtype(DType.float64 if DType.float64 in (dq, v.dtype) else qc)

    def out(idx):
        b, h, i, e = idx
        j = ctx.fresh_var("j")
        hk = E.floordiv(h, group)
        y = Reduce("add", E.const(0.0, vc), ((j, E.ZERO, total),),
                   E.cast(probs.at((b, h, i, j)), vc) * E.cast(v.at((b, hk, j, e)), vc))
        return E.cast(y, dq)
    y = Tensor((q.shape[0], q.shape[1], sq, v.shape[3]), dq, out)
    if packed:
        dv = v.shape[3].value
        y4 = y
        y = Tensor((q.shape[0], sq, E.mul(q.shape[1], dv)), dq,
                   lambda idx: y4.at((idx[0], E.floordiv(idx[2], dv), idx[1],
                                      E.mod(idx[2], dv))))
    outs = [y, k, v]
    if len(node.outputs) > 3 and node.outputs[3] is not None:
        pick = [lambda idx: E.cast(raw(idx), dq), lambda idx: E.cast(capped(idx), dq),
                scores.at, probs.at][a.qk_matmul_output_mode]
        outs.append(Tensor(shape, dq, pick))
    return outs[:len(node.outputs)]
