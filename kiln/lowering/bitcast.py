"""BitCast: the input's memory read as another dtype of the same width. The output is a Buffer
view whose dtype differs from its root's (loads through it reinterpret the bits, in native code
and in the Loop IR interpreter); an input that is not in memory is written to a temp first.
lower_graph then copies the view into the output's buffer like any written op."""

from __future__ import annotations

from ..ir import ops
from ..loops.buffer import Buffer
from .registry import register
from .tensor import Tensor, is_contiguous


@register(ops.BitCast)
def lower_bitcast(ctx, node, inputs):
    x = inputs[0]
    to = ctx.attrs(node).to
    if to.itemsize != x.dtype.itemsize:
        ctx.fail(node, f"BitCast from {x.dtype.short} to {to.short} changes the width")
    src = x.buffer
    if src is None or not is_contiguous(src):
        src = ctx.new_buffer(node.op.name.lower() + "_input", x.shape, x.dtype)
        ctx.materialize(x, src, "bitcast_input")
    view = Buffer(ctx.fresh_name(node.outputs[0].name + "_bits"), to, src.shape, src.kind,
                  src.strides, src.offset, base=src)
    return [Tensor.of(view)]

