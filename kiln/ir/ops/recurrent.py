"""Stateful sequence mixers for linear-attention models: LinearAttention, CausalConvWithState.

Both carry a state from one call to the next (past_state in, present_state out), so a decoder can
run one token at a time; run over a whole prompt they equal the token-by-token recurrence.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import dim_mul
from ..types import TensorType
from .attention import check_float, dim_div, same_dim, split_heads
from .common import FLOAT, INT, STRING
from .registry import define

K = FusionKind

_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32})


# --- LinearAttention -------------------------------------------------------------------------

_RULES = ("linear", "gated", "delta", "gated_delta")


def _infer_linear_attention(ctx: InferContext):
    a = ctx.attrs
    dt = check_float(ctx, 0, _DTYPES)
    for i in (1, 2, 4, 5):
        if ctx.has_input(i) and check_float(ctx, i, _DTYPES) != dt:
            ctx.fail(f"input #{i} must have the query's dtype {dt.short}")
    state_dt = check_float(ctx, 3, _DTYPES) if ctx.has_input(3) else dt
    hq, hkv = a.q_num_heads, a.kv_num_heads
    if hq <= 0 or hkv <= 0 or hq % hkv:
        ctx.fail(f"q_num_heads ({hq}) must be a positive multiple of kv_num_heads ({hkv})")
    gated, delta = a.update_rule in ("gated", "gated_delta"), a.update_rule in ("delta", "gated_delta")
    for i, name, needed in ((4, "decay", gated), (5, "beta", delta)):
        if ctx.has_input(i) != needed:
            ctx.fail(f"update_rule '{a.update_rule}' {'needs' if needed else 'takes no'} {name}")
    q, k, v = (ctx.tensor(i).shape for i in range(3))
    if any(s is not None and len(s) != 3 for s in (q, k, v)):
        ctx.fail(f"query, key and value must be 3-D (batch, seq, heads * size), got {q}, {k}, {v}")
    if q is None or k is None or v is None:
        return [TensorType(dt, None), TensorType(state_dt, None)]
    dk = dim_div(ctx, q[2], hq, "query hidden size")
    same_dim(ctx, dim_div(ctx, k[2], hkv, "key hidden size"), dk, "query and key head sizes differ")
    dv = dim_div(ctx, v[2], hkv, "value hidden size")
    for i, name in ((4, "decay"), (5, "beta")):
        s = ctx.tensor(i).shape if ctx.has_input(i) else None
        if s is not None and len(s) != 3:
            ctx.fail(f"{name} must be 3-D, got {s}")
    if ctx.has_input(5) and ctx.tensor(5).shape is not None:
        last = ctx.tensor(5).shape[2]
        if isinstance(last, int) and last not in (1, hkv):
            ctx.fail(f"beta's last dim must be 1 or kv_num_heads ({hkv}), got {last}")
    if ctx.has_input(4) and ctx.tensor(4).shape is not None:
        last = ctx.tensor(4).shape[2]
        if isinstance(last, int) and isinstance(dk, int) and last not in (hkv, hkv * dk):
            ctx.fail(f"decay's last dim must be kv_num_heads or kv_num_heads * d_k, got {last}")
    state = (q[0], hkv, dk, dv)
    if ctx.has_input(3) and ctx.tensor(3).shape is not None:
        ps = ctx.tensor(3).shape
        if len(ps) != 4:
            ctx.fail(f"past_state must be 4-D (batch, kv_heads, d_k, d_v), got {ps}")
        for want, got in zip(state, ps):
            same_dim(ctx, want, got, "past_state shape")
    return [TensorType(dt, (q[0], q[1], dim_mul(hq, dv))), TensorType(state_dt, state)]


def _linear_attention(ctx, q, k, v, past=None, decay=None, beta=None):
    a = ctx.attrs
    hq, hkv = a.q_num_heads, a.kv_num_heads
    b, t, _ = q.shape
    dk, dv = q.shape[2] // hq, v.shape[2] // hkv
    f32 = np.float32
    q4, k4, v4 = (split_heads(x, h).astype(f32) for x, h in ((q, hq), (k, hkv), (v, hkv)))
    if decay is not None:   # per head (B, T, Hkv) or per key feature (B, T, Hkv*dk)
        per_head = decay.shape[2] == hkv
        g = split_heads(decay, hkv) if not per_head else decay.transpose(0, 2, 1)[..., None]
        g = np.exp(g.astype(f32))                           # (B, Hkv, T, 1 or dk)
    if beta is not None:
        beta4 = beta.transpose(0, 2, 1)[..., None].astype(f32)  # (B, Hkv or 1, T, 1)
    state = past.astype(f32) if past is not None else np.zeros((b, hkv, dk, dv), f32)
    scale = a.scale if a.scale else 1.0 / np.sqrt(dk)
    out = np.zeros((b, hq, t, dv), f32)
    group = hq // hkv
    for i in range(t):
        k_t, v_t = k4[:, :, i], v4[:, :, i]
        if decay is not None:
            state = state * g[:, :, i][..., None]
        if beta is not None:   # delta rule: write only what the state does not already predict
            v_t = beta4[:, :, i] * (v_t - np.einsum("bhdm,bhd->bhm", state, k_t))
        state = state + k_t[..., :, None] * v_t[..., None, :]
        read = np.repeat(state, group, axis=1) if group > 1 else state
        out[:, :, i] = scale * np.einsum("bhd,bhdm->bhm", q4[:, :, i], read)
    y = out.transpose(0, 2, 1, 3).reshape(b, t, hq * dv).astype(q.dtype)
    return y, state.astype(past.dtype if past is not None else q.dtype)


LinearAttention = define(
    "LinearAttention", ["query", "key", "value", "past_state?", "decay?", "beta?"],
    ["output", "present_state?"], kind=K.OPAQUE, since_version=27,
    attrs=[INT("chunk_size", 64), INT("kv_num_heads"), INT("q_num_heads"), FLOAT("scale", 0.0),
           STRING("update_rule", "gated_delta", choices=_RULES)],
    infer=_infer_linear_attention, reference=_linear_attention,
    doc="Linear attention recurrence (linear, gated, delta or gated-delta update) with GQA.")


# --- CausalConvWithState ---------------------------------------------------------------------

def _infer_causal_conv(ctx: InferContext):
    dt = check_float(ctx, 0, _DTYPES)
    for i in (1, 2, 3):
        if ctx.has_input(i) and ctx.tensor(i).dtype != dt:
            ctx.fail(f"input #{i} must have the input's dtype {dt.short}")
    x, w = ctx.tensor(0).shape, ctx.tensor(1).shape
    if x is not None and len(x) != 3:
        ctx.fail(f"input must be 3-D (batch, channels, length), got {x}")
    if w is not None and (len(w) != 3 or isinstance(w[1], int) and w[1] != 1):
        ctx.fail(f"weight must be (channels, 1, k), got {w}")
    if ctx.has_input(2) and ctx.tensor(2).shape is not None and len(ctx.tensor(2).shape) != 1:
        ctx.fail(f"bias must be 1-D (channels), got {ctx.tensor(2).shape}")
    if x is None:
        return [TensorType(dt, None), TensorType(dt, None)]
    keep = w[2] - 1 if w is not None and isinstance(w[2], int) else None
    if w is not None:
        same_dim(ctx, x[1], w[0], "input channels and weight channels differ")
        if isinstance(w[2], int) and w[2] < 1:
            ctx.fail("the kernel size must be >= 1")
    if ctx.has_input(3) and ctx.tensor(3).shape is not None:
        ps = ctx.tensor(3).shape
        if len(ps) != 3:
            ctx.fail(f"past_state must be 3-D (batch, channels, k - 1), got {ps}")
        for want, got in zip((x[0], x[1], keep), ps):
            same_dim(ctx, want, got, "past_state shape")
    return [TensorType(dt, x), TensorType(dt, (x[0], x[1], keep))]


def _causal_conv(ctx, x, w, bias=None, past=None):
    b, c, n = x.shape
    k = w.shape[2]
    pad = past if past is not None else np.zeros((b, c, k - 1), x.dtype)
    padded = np.concatenate([pad, x], axis=2)
    acc = np.zeros((b, c, n), np.float64 if x.dtype == np.float64 else np.float32)
    taps = w[:, 0, :].astype(acc.dtype)
    for i in range(k):
        acc += taps[None, :, i, None] * padded[:, :, i:i + n]
    if bias is not None:
        acc += bias.astype(acc.dtype)[None, :, None]
    y = acc.astype(x.dtype)
    if ctx.attrs.activation != "none":   # SiLU (Swish): y * sigmoid(y)
        yf = y.astype(np.float32)
        y = (yf * (1.0 / (1.0 + np.exp(-yf)))).astype(x.dtype)
    return y, padded[:, :, padded.shape[2] - (k - 1):]


CausalConvWithState = define(
    "CausalConvWithState", ["input", "weight", "bias?", "past_state?"],
    ["output", "present_state?"], kind=K.OPAQUE, since_version=27,
    attrs=[STRING("activation", "none", choices=("none", "silu", "swish"))],
    infer=_infer_causal_conv, reference=_causal_conv,
    doc="Causal depthwise 1-D convolution that carries its last k - 1 inputs as state.")
