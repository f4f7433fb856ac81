"""RotaryEmbedding: each output element is an index mapping plus one rotation, so the op is an
`at`: feature d of a head below the rotated size reads its pair (d and d + rot/2, or 2i and
2i + 1 when interleaved) and the cos/sin cache entry of its position (the position_ids entry,
or the cache's own (batch, sequence) entry), the rest is X itself. 4-D X is
(batch, heads, sequence, head size); 3-D X is (batch, sequence, heads * head size) with the
num_heads attribute. Computed in the compute dtype (float32 for narrow floats), rounded once.
"""

from __future__ import annotations

from ..ir import ops
from ..loops.expr import Const
from . import exprs as E
from .registry import register
from .tensor import Tensor, narrow, widen


@register(ops.RotaryEmbedding)
def lower_rotary_embedding(ctx, node, inputs):
    x, cos, sin, positions = (list(inputs) + [None])[:4]
    a = ctx.attrs(node)
    if x.rank == 4:
        head = x.shape[3]
    else:
        hidden = x.shape[2]
        if not isinstance(hidden, Const):
            ctx.fail(node, "3-D RotaryEmbedding needs a static hidden size")
        head = Const(hidden.value // a.num_heads)
    if not isinstance(head, Const):
        ctx.fail(node, "RotaryEmbedding needs a static head size", hint="give X static sizes")
    head = head.value
    rot = a.rotary_embedding_dim or head
    half = rot // 2

    def split(idx):
        """(batch, sequence, the index of X without its feature, feature)."""
        if x.rank == 4:
            b, h, s, d = idx
            return b, s, (b, h, s), d
        b, s, f = idx
        return b, s, (b, s, E.mul(E.floordiv(f, head), head)), E.mod(f, head)

    def read(base, d):
        if x.rank == 4:
            return widen(x.at((*base, d)))
        b, s, start = base
        return widen(x.at((b, s, E.add(start, d))))

    def cache(t, b, s, i):
        if positions is not None:
            p = E.clamp(E.index(positions.at((b, s))), 0, E.sub(t.shape[0], 1))
            return widen(t.at((p, i)))
        return widen(t.at((b, s, i)))

    def at(idx):
        b, s, base, d = split(tuple(idx))
        if a.interleaved:
            i = E.floordiv(d, 2)
            x1, x2 = read(base, E.mul(i, 2)), read(base, E.add(E.mul(i, 2), 1))
            second = E.eq(E.mod(d, 2), 1)
        else:
            second = E.ge(d, half)
            i = E.select(second, E.sub(d, half), d)
            x1, x2 = read(base, i), read(base, E.add(i, half))
        i = E.clamp(i, 0, max(half - 1, 0))
        c, s_ = cache(cos, b, s, i), cache(sin, b, s, i)
        rotated = E.select(second, s_ * x1 + c * x2, c * x1 - s_ * x2)
        if rot < head:
            keep = read(base, E.clamp(d, 0, head - 1))
            rotated = E.select(E.lt(d, rot), rotated, keep)
        return narrow(rotated, x.dtype)
    return [Tensor(x.shape, x.dtype, at)]
