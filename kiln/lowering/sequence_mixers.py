"""The stateful sequence mixers of linear-attention models: CausalConvWithState and
LinearAttention (kiln/ir/ops/recurrent.py defines them).

CausalConvWithState is an `at` per output: a depthwise correlation of the k taps over the past
state followed by the input (accumulated in float32, float64 for float64 input), plus bias, then
SiLU when asked; present_state is the last k - 1 entries of that padded sequence.

LinearAttention is one kernel: per batch entry (in parallel) and key/value head, a serial pass
over time keeps the float32 state matrix S (d_k x d_v) in a scratch buffer: S is scaled by
exp(decay) (gated rules), the value is replaced by beta * (v - S^T k) (delta rules, through a
d_v scratch row), S gains k v^T, and every query head of the group reads scale * q^T S into the
output. present_state is S at the end, in the state's dtype.
"""

from __future__ import annotations

import math

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Const, Reduce
from ..loops.stmt import Loop, LoopKind, Store
from . import exprs as E
from .registry import register
from .tensor import Tensor, kernel, narrow, widen

f32 = DType.float32


def _static(ctx, node, e, what: str) -> int:
    if not isinstance(e, Const):
        ctx.fail(node, f"{node.op.name} needs a static {what}", hint="give the model static sizes")
    return e.value


@register(ops.CausalConvWithState)
def lower_causal_conv(ctx, node, inputs):
    x, w, bias, past = (list(inputs) + [None, None])[:4]
    k = _static(ctx, node, w.shape[2], "kernel size")
    n = x.shape[2]
    acc = DType.float64 if x.dtype is DType.float64 else f32
    a = ctx.attrs(node)

    def padded(b, c, p):
        """Entry p of past_state followed by the input."""
        inside = E.ge(p, k - 1)
        now = E.cast(x.at((b, c, E.clamp(E.sub(p, k - 1), 0, E.sub(n, 1)))), acc)
        if past is None or k == 1:
            before = E.const(0.0, acc)
        else:
            before = E.cast(past.at((b, c, E.clamp(p, 0, k - 2))), acc)
        return E.select(inside, now, before)

    def out(idx):
        b, c, t = idx
        i = ctx.fresh_var("i")
        y = Reduce("add", E.const(0.0, acc), ((i, E.ZERO, Const(k)),),
                   E.cast(w.at((c, E.ZERO, i)), acc) * padded(b, c, E.add(t, i)))
        if bias is not None:
            y = y + E.cast(bias.at((c,)), acc)
        y = E.cast(y, x.dtype)
        if a.activation != "none":
            yf = E.cast(y, f32)
            y = E.cast(yf * (E.const(1.0, f32) / (E.const(1.0, f32) + E.unary("exp", -yf))),
                       x.dtype)
        return y

    def state(idx):
        b, c, j = idx
        return E.cast(padded(b, c, E.add(n, j)), x.dtype)
    shape = (x.shape[0], x.shape[1], Const(k - 1))
    return [Tensor(x.shape, x.dtype, out), Tensor(shape, x.dtype, state)][:len(node.outputs)]


@register(ops.LinearAttention)
def lower_linear_attention(ctx, node, inputs):
    q, k, v, past, decay, beta = (list(inputs) + [None] * 3)[:6]
    a = ctx.attrs(node)
    hq, hkv = a.q_num_heads, a.kv_num_heads
    dk = _static(ctx, node, q.shape[2], "query hidden size") // hq
    dv = _static(ctx, node, v.shape[2], "value hidden size") // hkv
    batch, steps = q.shape[0], q.shape[1]
    group = hq // hkv
    scale = a.scale if a.scale else 1.0 / math.sqrt(dk)
    s_buf = ctx.new_buffer("linear_attention_state", (batch, Const(hkv), Const(dk), Const(dv)), f32)
    u_buf = ctx.new_buffer("linear_attention_update", (batch, Const(hkv), Const(dv)), f32)
    y_buf = ctx.buffer_for(node.outputs[0], (batch, steps, Const(hq * dv)), q.dtype)
    b, h, t = ctx.fresh_var("b"), ctx.fresh_var("h"), ctx.fresh_var("t")

    def S(d, m):
        return s_buf[b, h, d, m]

    def key(d):
        return widen(k.at((b, t, E.add(E.mul(h, dk), d))))

    def value(m):
        return widen(v.at((b, t, E.add(E.mul(h, dv), m))))

    def over(size, body, hint):
        """A loop with a fresh variable around body(variable)."""
        var = ctx.fresh_var(hint)
        return Loop(var, E.ZERO, Const(size), body(var))

    def each_entry(value_of):
        """S[d, m] = value_of(d, m) for every entry of the state."""
        return over(dk, lambda d: [over(dv, lambda m: [
            Store(s_buf, (b, h, d, m), value_of(d, m))], "m")], "d")

    def init(d, m):
        return E.cast(past.at((b, h, d, m)), f32) if past is not None else E.const(0.0, f32)
    per_step = []
    if decay is not None:
        per_head = E.is_const(decay.shape[2], hkv)

        def decayed(d, m):
            where = h if per_head else E.add(E.mul(h, dk), d)
            return S(d, m) * E.unary("exp", widen(decay.at((b, t, where))))
        per_step.append(each_entry(decayed))
    if beta is not None:
        bh = E.ZERO if E.is_const(beta.shape[2], 1) else h

        def corrected(m):
            r = ctx.fresh_var("r")
            predicted = Reduce("add", E.const(0.0, f32), ((r, E.ZERO, Const(dk)),),
                               S(r, m) * key(r))
            return [Store(u_buf, (b, h, m), widen(beta.at((b, t, bh))) * (value(m) - predicted))]
        per_step.append(over(dv, corrected, "m"))
        update = lambda m: u_buf[b, h, m]                                 # noqa: E731
    else:
        update = value
    per_step.append(each_entry(lambda d, m: S(d, m) + key(d) * update(m)))

    def read_out(g):
        head_q = E.add(E.mul(h, group), g)

        def one(m):
            r = ctx.fresh_var("r")
            dot = Reduce("add", E.const(0.0, f32), ((r, E.ZERO, Const(dk)),),
                         widen(q.at((b, t, E.add(E.mul(head_q, dk), r)))) * S(r, m))
            return [Store(y_buf, (b, t, E.add(E.mul(head_q, dv), m)),
                          narrow(E.const(scale, f32) * dot, q.dtype))]
        return [over(dv, one, "m")]
    per_step.append(over(group, read_out, "g"))
    body = [each_entry(init), Loop(t, E.ZERO, steps, per_step)]
    ctx.emit(kernel(ctx.fresh_name("linear_attention", kernel=True),
                    [Loop(b, E.ZERO, batch, [Loop(h, E.ZERO, Const(hkv), body)],
                          LoopKind.PARALLEL)]))
    outs = [Tensor.of(y_buf)]
    if len(node.outputs) > 1 and node.outputs[1] is not None:
        sd = ctx.out_dtype(node, 1)
        state = Tensor.of(s_buf)
        outs.append(Tensor(state.shape, sd, lambda idx: E.cast(state.at(idx), sd)))
    return outs
