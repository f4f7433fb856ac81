"""Lowering a fused group: its body's ops composed into one loop nest per result.

The body's inputs are the group's input Tensors, its constants become CONSTANT buffers, and each
body node is lowered without materializing: its result stays a lazy Tensor (an `at`) that the
next op builds on. Only the group's results are written, by the caller (lower_node), so the
intermediates live in registers. An op whose lowering writes its own kernels (a matmul with
packing, softmax's row statistics) still does so inside a group.
"""

from __future__ import annotations

from ..ir import ops
from .registry import register


@register(ops.Fused)
def lower_fused(ctx, node, inputs):
    from .graph import lower_node
    body = node.attrs["body"]
    for v, t in zip(body.inputs, inputs):
        ctx.set_tensor(v, t)
    for c in body.constants:
        ctx.bind_constant(c)
    for n in body.nodes:
        lower_node(ctx, n, materialize=False)
    return [ctx.tensor(v) for v in body.outputs]
