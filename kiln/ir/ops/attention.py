"""Softmax attention: Attention (with KV cache, masks, GQA, windows), FlexAttention, RotaryEmbedding.

All three work on heads laid out as (batch, heads, sequence, head_size); 3-D inputs pack the heads
into the last dimension, (batch, sequence, heads * head_size), and are split on entry and merged
on exit. Grouped-query attention shares key/value head h // (q_heads / kv_heads) among query
heads. The recurrent linear-attention ops live in recurrent.py.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..opdef import FusionKind, InferContext
from ..shapes import dim_add, dim_mul
from ..types import Dim, TensorType
from .common import DTYPE, FLOAT, GRAPH, INT
from .registry import define

K = FusionKind

_ATTN_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32, DType.float64})
_ROPE_DTYPES = frozenset({DType.float16, DType.bfloat16, DType.float32})


# --- shared helpers (also used by recurrent.py) ----------------------------------------------

def check_float(ctx: InferContext, i: int, allowed=_ATTN_DTYPES) -> DType:
    dt = ctx.tensor(i).dtype
    if dt not in allowed:
        ctx.fail(f"input #{i} of {ctx.op.name} must be one of "
                 f"{sorted(d.short for d in allowed)}, got {dt.short}")
    return dt


def dim_div(ctx: InferContext, d: Dim, n: int, what: str) -> Dim:
    """d / n for a head split; a static d that n does not divide is an error."""
    if not isinstance(d, int):
        return None
    if n <= 0 or d % n:
        ctx.fail(f"{what}: {d} is not divisible by {n} heads")
    return d // n


def same_dim(ctx: InferContext, a: Dim, b: Dim, what: str) -> None:
    if isinstance(a, int) and isinstance(b, int) and a != b:
        ctx.fail(f"{what}: {a} != {b}", hint="check the shapes of the node's inputs")


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """(B, S, H*D) -> (B, H, S, D)."""
    b, s, hd = x.shape
    return x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, S, D) -> (B, S, H*D)."""
    b, h, s, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, s, h * d)


def repeat_kv(x: np.ndarray, q_heads: int) -> np.ndarray:
    """Share each key/value head among q_heads / kv_heads consecutive query heads."""
    kv_heads = x.shape[1]
    return x if kv_heads == q_heads else np.repeat(x, q_heads // kv_heads, axis=1)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b).astype(a.dtype, copy=False)


def _guarded_softmax(x: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; a row of only -inf gives zeros instead of NaN."""
    row_max = np.max(x, axis=-1, keepdims=True)
    zero, one = np.zeros((), x.dtype), np.ones((), x.dtype)
    e = np.exp(x - np.where(np.isneginf(row_max), zero, row_max))
    total = np.sum(e, axis=-1, keepdims=True)
    return e / np.where(total == zero, one, total)


# --- Attention -------------------------------------------------------------------------------

def _heads_4d(ctx: InferContext, q, k, v):
    """(B, Hq, Hkv, Sq, Skv, D, Dv) of the 4-D form, checking K and V agree with Q."""
    a = ctx.attrs
    same_dim(ctx, q[3], k[3], "Q and K head sizes differ")
    same_dim(ctx, k[1], v[1], "K and V head counts differ")
    same_dim(ctx, k[2], v[2], "K and V sequence lengths differ")
    if a.q_num_heads is not None:
        same_dim(ctx, q[1], a.q_num_heads, "q_num_heads disagrees with Q")
    if a.kv_num_heads is not None:
        same_dim(ctx, k[1], a.kv_num_heads, "kv_num_heads disagrees with K")
    return q[0], q[1], k[1], q[2], k[2], q[3], v[3]


def _heads_3d(ctx: InferContext, q, k, v):
    a = ctx.attrs
    if a.q_num_heads is None or a.kv_num_heads is None:
        ctx.fail("3-D Q, K and V need the q_num_heads and kv_num_heads attributes",
                 hint="set both, or pass 4-D (batch, heads, seq, head_size) inputs")
    hq, hkv = a.q_num_heads, a.kv_num_heads
    d = dim_div(ctx, q[2], hq, "Q hidden size")
    dk = dim_div(ctx, k[2], hkv, "K hidden size")
    dv = dim_div(ctx, v[2], hkv, "V hidden size")
    same_dim(ctx, d, dk, "Q and K head sizes differ")
    same_dim(ctx, k[1], v[1], "K and V sequence lengths differ")
    return q[0], hq, hkv, q[1], k[1], d if d is not None else dk, dv


def _infer_attention(ctx: InferContext):
    dq = check_float(ctx, 0)
    if check_float(ctx, 1) != dq:
        ctx.fail("Q and K must share one dtype")
    dv_t = check_float(ctx, 2)
    if ctx.has_input(4) != ctx.has_input(5):
        ctx.fail("past_key and past_value must be given together")
    if ctx.has_input(6) and ctx.has_input(4):
        ctx.fail("nonpad_kv_seqlen cannot be combined with past_key/past_value",
                 hint="use either the internal cache (past/present) or an external one")
    if ctx.attrs.left_window_size < -1 or ctx.attrs.right_window_size < -1:
        ctx.fail("window sizes must be -1 (unbounded) or >= 0")
    if ctx.attrs.softmax_precision not in (None, *_ATTN_DTYPES):
        ctx.fail(f"softmax_precision must be a float type, got {ctx.attrs.softmax_precision}")
    q, k, v = (ctx.tensor(i).shape for i in range(3))
    unknown = [TensorType(dq, None), TensorType(dq, None), TensorType(dv_t, None),
               TensorType(dq, None)]
    if q is None or k is None or v is None:
        return unknown
    if len(q) not in (3, 4) or len(k) != len(q) or len(v) != len(q):
        ctx.fail(f"Q, K and V must all be 3-D or all 4-D, got shapes {q}, {k}, {v}")
    b, hq, hkv, sq, skv, d, dv = (_heads_4d if len(q) == 4 else _heads_3d)(ctx, q, k, v)
    if isinstance(hq, int) and isinstance(hkv, int) and (hkv <= 0 or hq % hkv):
        ctx.fail(f"q heads ({hq}) must be a multiple of kv heads ({hkv})")
    total = skv
    if ctx.has_input(4):
        pk, pv = ctx.tensor(4).shape, ctx.tensor(5).shape
        if pk is not None and len(pk) != 4 or pv is not None and len(pv) != 4:
            ctx.fail("past_key and past_value must be 4-D (batch, kv_heads, past_seq, head)")
        total = dim_add(pk[2], skv) if pk is not None else None
        if pk is not None:
            same_dim(ctx, pk[3], d, "past_key head size differs from K's")
    if ctx.has_input(3):
        m = ctx.tensor(3)
        if m.dtype is not DType.bool and m.dtype not in _ATTN_DTYPES and not m.dtype.is_int:
            ctx.fail(f"attn_mask must be bool or numeric, got {m.dtype.short}")
        if m.shape is not None and len(m.shape) > 4:
            ctx.fail(f"attn_mask must have rank <= 4, got {m.shape}")
    y = (b, hq, sq, dv) if len(q) == 4 else (b, sq, dim_mul(hq, dv))
    return [TensorType(dq, y), TensorType(dq, (b, hkv, total, d)),
            TensorType(dv_t, (b, hkv, total, dv)), TensorType(dq, (b, hq, sq, total))]


def attention_bias(ctx, dtype, sq: int, total: int, mask, past_len: int, nonpad) -> np.ndarray:
    """The additive bias (0 or -inf, plus a float mask) for scores of shape (..., sq, total)."""
    a = ctx.attrs
    zero, ninf = dtype.type(0), dtype.type(-np.inf)
    bias = np.zeros((sq, total), dtype)
    if mask is not None:
        short = total - mask.shape[-1]
        if short > 0:  # a short mask's missing keys are masked out
            fill = False if mask.dtype == np.bool_ else -np.inf
            mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, short)], constant_values=fill)
        if mask.dtype == np.bool_:
            bias = bias + np.where(mask, zero, ninf)
        else:
            bias = bias + mask.astype(dtype)
    # absolute position of each query: offset is the number of keys that precede the block
    if nonpad is not None:
        offset = (nonpad.astype(np.int64) - sq).reshape(-1, 1, 1, 1)
    else:
        offset = past_len
    pos = np.arange(sq).reshape(sq, 1) + offset
    j = np.arange(total)
    allowed = np.ones(np.broadcast_shapes(np.shape(pos), (total,)), np.bool_)
    if a.is_causal:
        allowed &= j <= pos
    if a.left_window_size >= 0:
        allowed &= pos - j <= a.left_window_size
    if a.right_window_size >= 0:
        allowed &= j - pos <= a.right_window_size
    if nonpad is not None:
        allowed &= j < nonpad.astype(np.int64).reshape(-1, 1, 1, 1)
    if not allowed.all():
        bias = bias + np.where(allowed, zero, ninf)
    return bias


def _attention(ctx, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
    a = ctx.attrs
    packed = q.ndim == 3
    if packed:
        q, k, v = (split_heads(q, a.q_num_heads), split_heads(k, a.kv_num_heads),
                   split_heads(v, a.kv_num_heads))
    if past_k is not None:
        k = np.concatenate([past_k, k], axis=2)
        v = np.concatenate([past_v, v], axis=2)
    present_k, present_v = k, v
    dtype = q.dtype
    scale = a.scale if a.scale is not None else 1 / np.sqrt(q.shape[3])
    root = dtype.type(np.sqrt(scale))   # Q and K are each scaled by sqrt(scale): no overflow
    sq, total = q.shape[2], k.shape[2]
    bias = attention_bias(ctx, dtype, sq, total, mask,
                          past_k.shape[2] if past_k is not None else 0, nonpad)
    k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
    raw = _matmul(q * root, np.swapaxes(k * root, -1, -2))
    capped = raw
    if a.softcap > 0:
        capped = np.tanh(raw / a.softcap) * a.softcap
    scores = capped + bias
    probs = _guarded_softmax(scores.astype(a.softmax_precision.np) if a.softmax_precision
                             else scores)
    fully_masked = np.isneginf(np.max(bias, axis=-1, keepdims=True))
    probs = np.where(fully_masked, np.zeros((), probs.dtype), probs).astype(dtype)
    y = _matmul(probs, v)
    qk = (raw, capped, scores, probs)[a.qk_matmul_output_mode]
    return (merge_heads(y) if packed else y, present_k, present_v,
            np.broadcast_to(qk, scores.shape).astype(dtype))


Attention = define(
    "Attention", ["Q", "K", "V", "attn_mask?", "past_key?", "past_value?", "nonpad_kv_seqlen?"],
    ["Y", "present_key?", "present_value?", "qk_matmul_output?"],
    kind=K.OPAQUE, since_version=25,
    attrs=[INT("is_causal", 0, choices=(0, 1)), INT("kv_num_heads", None),
           INT("q_num_heads", None), INT("qk_matmul_output_mode", 0, choices=(0, 1, 2, 3)),
           FLOAT("scale", None), FLOAT("softcap", 0.0), DTYPE("softmax_precision", None),
           INT("left_window_size", -1), INT("right_window_size", -1)],
    infer=_infer_attention, reference=_attention,
    doc="softmax(Q K^T * scale + mask) V with KV cache, causal/window masks, GQA and softcap.")


# --- FlexAttention (ai.onnx.preview) ---------------------------------------------------------

def _infer_flex(ctx: InferContext):
    dq = check_float(ctx, 0)
    if check_float(ctx, 1) != dq or check_float(ctx, 2) != dq:
        ctx.fail("Q, K and V must share one dtype")
    q, k, v = (ctx.tensor(i).shape for i in range(3))
    if any(s is not None and len(s) != 4 for s in (q, k, v)):
        ctx.fail(f"FlexAttention needs 4-D Q, K and V, got {q}, {k}, {v}")
    if q is None or k is None or v is None:
        return [TensorType(dq, None)]
    same_dim(ctx, q[3], k[3], "Q and K head sizes differ")
    same_dim(ctx, k[1], v[1], "K and V head counts differ")
    same_dim(ctx, k[2], v[2], "K and V sequence lengths differ")
    if isinstance(q[1], int) and isinstance(k[1], int) and (k[1] <= 0 or q[1] % k[1]):
        ctx.fail(f"q heads ({q[1]}) must be a multiple of kv heads ({k[1]})")
    for name in ("score_mod", "prob_mod"):
        g = ctx.attrs[name]
        if g is not None and (len(g.inputs) != 1 or len(g.outputs) != 1):
            ctx.fail(f"{name} must take one tensor and return one tensor")
    return [TensorType(dq, (q[0], q[1], q[2], v[3]))]


def _flex_attention(ctx, q, k, v):
    a = ctx.attrs
    scale = a.scale if a.scale is not None else 1.0 / np.sqrt(q.shape[3])
    root = np.asarray(np.sqrt(np.float32(scale)), dtype=q.dtype)
    if a.softmax_precision is not None:
        compute = a.softmax_precision.np
    else:
        compute = np.dtype(np.float32) if q.dtype.itemsize < 4 else q.dtype
    k, v = repeat_kv(k, q.shape[1]), repeat_kv(v, q.shape[1])
    scores = np.matmul(q * root, np.swapaxes(k * root, -1, -2)).astype(compute)
    if a.score_mod is not None:
        scores = np.asarray(ctx.run_graph(a.score_mod, [scores])[0], dtype=compute)
    e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
    probs = e / np.sum(e, axis=-1, keepdims=True)
    if a.prob_mod is not None:
        probs = np.asarray(ctx.run_graph(a.prob_mod, [probs])[0], dtype=compute)
    return np.matmul(probs, v.astype(compute)).astype(q.dtype)


FlexAttention = define(
    "FlexAttention", ["Q", "K", "V"], ["Y"], kind=K.OPAQUE, domain="ai.onnx.preview",
    since_version=1,
    attrs=[FLOAT("scale", None), GRAPH("score_mod", None), GRAPH("prob_mod", None),
           DTYPE("softmax_precision", None)],
    infer=_infer_flex, reference=_flex_attention,
    doc="Attention with optional score_mod / prob_mod subgraphs around the softmax.")


# --- RotaryEmbedding -------------------------------------------------------------------------

def _infer_rotary(ctx: InferContext):
    dt = check_float(ctx, 0, _ROPE_DTYPES)
    for i in (1, 2):
        if ctx.tensor(i).dtype != dt:
            ctx.fail(f"cos_cache and sin_cache must have X's dtype {dt.short}")
    if ctx.has_input(3) and ctx.tensor(3).dtype != DType.int64:
        ctx.fail("position_ids must be int64")
    x = ctx.tensor(0)
    a = ctx.attrs
    if x.shape is None:
        return [x]
    if len(x.shape) not in (3, 4):
        ctx.fail(f"X must be 3-D or 4-D, got shape {x.shape}")
    if len(x.shape) == 3:
        if not a.num_heads:
            ctx.fail("3-D X needs the num_heads attribute")
        head = dim_div(ctx, x.shape[2], a.num_heads, "hidden size")
    else:
        head = x.shape[3]
    rot = a.rotary_embedding_dim or head
    if isinstance(rot, int) and rot % 2:
        ctx.fail(f"the rotated size must be even, got {rot}")
    if isinstance(head, int) and isinstance(rot, int) and rot > head:
        ctx.fail(f"rotary_embedding_dim {rot} exceeds the head size {head}")
    for i in (1, 2):
        c = ctx.tensor(i).shape
        want_rank = 2 if ctx.has_input(3) else 3
        if c is not None and len(c) != want_rank:
            ctx.fail(f"{'cos' if i == 1 else 'sin'}_cache must be {want_rank}-D here, got {c}")
        if c is not None and isinstance(rot, int):
            same_dim(ctx, c[-1], rot // 2, "cache width must be half the rotated size")
    return [x]


def _rotary(ctx, x, cos, sin, position_ids=None):
    a = ctx.attrs
    shape = x.shape
    # work in (B, S, H, D)
    h = x.transpose(0, 2, 1, 3) if x.ndim == 4 else x.reshape(*shape[:2], a.num_heads, -1)
    rot = a.rotary_embedding_dim or h.shape[3]
    if position_ids is not None:
        cos, sin = cos[position_ids], sin[position_ids]
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    part = h[..., :rot]
    if a.interleaved:
        x1, x2 = part[..., 0::2], part[..., 1::2]
    else:
        x1, x2 = part[..., :rot // 2], part[..., rot // 2:]
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if a.interleaved:
        rotated = np.stack([real, imag], axis=-1).reshape(part.shape)
    else:
        rotated = np.concatenate([real, imag], axis=-1)
    out = np.concatenate([rotated.astype(x.dtype), h[..., rot:]], axis=-1)
    return out.transpose(0, 2, 1, 3) if x.ndim == 4 else out.reshape(shape)


RotaryEmbedding = define(
    "RotaryEmbedding", ["X", "cos_cache", "sin_cache", "position_ids?"], ["Y"],
    kind=K.OPAQUE, since_version=23,
    attrs=[INT("interleaved", 0, choices=(0, 1)), INT("rotary_embedding_dim", 0),
           INT("num_heads", None)],
    infer=_infer_rotary, reference=_rotary,
    doc="Rotary position embedding of the first rotary_embedding_dim features of each head.")
