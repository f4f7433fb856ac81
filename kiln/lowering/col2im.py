"""Col2Im (PyTorch's fold): every output pixel gathers the column entries that cover it, a sum
over the block's kernel offsets (one Reduce over the flat offset) of the entry whose block
position q = (pixel + pad - offset * dilation) / stride is whole and inside the grid of block
positions. Image and block shapes must be known when compiling (they decide the output shape).
"""

from __future__ import annotations

import math

from ..ir import ops
from ..loops.expr import Const, Reduce
from . import exprs as E
from .registry import register
from .tensor import Tensor, compute_dtype, narrow, widen


@register(ops.Col2Im)
def lower_col2im(ctx, node, inputs):
    x = inputs[0]
    image, block = ctx.static_ints(node, 1), ctx.static_ints(node, 2)
    nd = len(image)
    a = ctx.attrs(node)
    strides = list(a.strides or (1,) * nd)
    dil = list(a.dilations or (1,) * nd)
    pads = list(a.pads or (0,) * (2 * nd))
    if len(block) != nd or len(strides) != nd or len(dil) != nd or len(pads) != 2 * nd:
        ctx.fail(node, f"block_shape, strides, dilations need {nd} values and pads {2 * nd}")
    counts = [(image[i] + pads[i] + pads[i + nd] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
              for i in range(nd)]
    k = math.prod(block)
    channels = E.floordiv(x.shape[1], k)
    shape = (x.shape[0], channels, *(Const(d) for d in image))
    dt = compute_dtype(x.dtype)

    def at(idx):
        kk = ctx.fresh_var("kk")
        rest, inside, flat_q = kk, None, E.ZERO
        offsets = []
        for i in reversed(range(nd)):
            offsets.append(E.mod(rest, block[i]))
            rest = E.floordiv(rest, block[i])
        offsets.reverse()
        for i in range(nd):
            t = E.sub(E.add(idx[2 + i], pads[i]), E.mul(offsets[i], dil[i]))
            q = E.floordiv(t, strides[i])
            ok = E.binary("and", E.ge(t, 0), E.lt(q, counts[i]))
            if strides[i] != 1:
                ok = E.binary("and", ok, E.eq(E.mod(t, strides[i]), 0))
            inside = ok if inside is None else E.binary("and", inside, ok)
            flat_q = E.add(E.mul(flat_q, counts[i]), E.clamp(q, 0, counts[i] - 1))
        channel = E.add(E.mul(idx[1], k), kk)
        v = widen(x.at((idx[0], channel, flat_q)))
        body = E.select(inside, v, E.const(0, dt)) if inside is not None else v
        return narrow(Reduce("add", E.const(0, dt), ((kk, E.ZERO, Const(k)),), body), x.dtype)
    return [Tensor(shape, x.dtype, at)]
