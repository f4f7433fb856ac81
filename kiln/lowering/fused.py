"""Lowering a fused group: its body's ops composed into one loop nest per result.

The body's inputs are the group's input Tensors, its constants become CONSTANT buffers, and each
body node is lowered without materializing: its result stays a lazy Tensor (an `at`) that the
next op builds on. Only the group's results are written, by the caller (lower_node), so the
intermediates live in registers. An op whose lowering writes its own kernels (softmax's row
statistics) still does so inside a group.

A group that starts with a matrix product (kiln/lowering/gemm_tensor.py) is written by the GEMM
with the rest of the group as its epilogue. When the product flows into an op that is not
elementwise, the product and the elementwise ops before it are written first, by the GEMM, into
a temporary that the op then reads: both nests are statements of the group's one kernel. (A
Softmax/LayerNorm over a short static row of a small product instead computes each row of the
product once into its own row cache: `caches_costly_rows`.) A body holding a chain of products
(kiln/lowering/gemm_chain.py) runs as one kernel over tiles of rows.
"""

from __future__ import annotations

from ..ir import ops
from ..ir.opdef import FusionKind
from ..loops.buffer import BufferKind
from ..loops.expr import Const
from .gemm_chain import chain_stages, lower_chain
from .normalization import caches_costly_rows
from .gemm_tensor import epilogue_of, gemm_info, write_with_epilogue, written_by_gemm
from .registry import register
from .tensor import Tensor, store_all

ELEMENTWISE = (FusionKind.ELEMENTWISE, FusionKind.BROADCAST)
# The row cache computes each row of the product with one vector accumulator per 16 columns
# (latency-bound); past this many K x N elements the GEMM into a temporary wins.
ROW_CACHE_PRODUCT = 4096


@register(ops.Fused)
def lower_fused(ctx, node, inputs):
    from .graph import lower_node
    body = node.attrs["body"]
    for v, t in zip(body.inputs, inputs):
        ctx.set_tensor(v, t)
    for c in body.constants:
        ctx.bind_constant(c)
    stages = chain_stages(body.nodes)
    if stages is not None:
        return lower_chain(ctx, node, stages)
    info, before = None, []
    for n in body.nodes:
        if info is not None and n.op.kind not in ELEMENTWISE and \
                not (caches_costly_rows(n) and _small(info)):
            before += _write_product_first(ctx, n, info)
        lower_node(ctx, n, materialize=False)
        if n.op in (ops.MatMul, ops.Gemm) and info is None:
            info = gemm_info(ctx.tensor(n.outputs[0]))
    outs = [ctx.tensor(v) for v in body.outputs]
    if info is None:
        return outs
    if not before:
        return [t if t.write is not None or t.buffer is not None else
                written_by_gemm(Tensor(t.shape, t.dtype, t.at), info) for t in outs]
    first = outs[0]
    plain = Tensor(first.shape, first.dtype, first.at)
    write = first.write or (lambda c, buf: store_all(c, plain, buf))
    outs[0] = Tensor(first.shape, first.dtype, first.at,
                     write=lambda c, buf: [*before, *write(c, buf)])
    return outs


def _small(info) -> bool:
    """A product small enough (K x N below ROW_CACHE_PRODUCT) that a row normalization's row
    cache computing it row by row costs less than the GEMM's temporary."""
    k, n = info.spec.k, info.spec.n
    return isinstance(k, Const) and isinstance(n, Const) and k.value * n.value < ROW_CACHE_PRODUCT


def _write_product_first(ctx, n, info) -> list:
    """Statements writing each input of node n that is an epilogue of the product into a TEMP
    by the GEMM; n then reads the TEMP."""
    stmts = []
    for v in n.inputs:
        if v is None:
            continue
        t = ctx.tensor(v)
        if t.buffer is not None or epilogue_of(ctx, t, info) is None:
            continue
        buf = ctx.new_buffer(f"{v.name}_gemm", t.shape, t.dtype, BufferKind.TEMP)
        stmts += write_with_epilogue(ctx, t, buf, info)
        ctx.set_tensor(v, Tensor.of(buf))
    return stmts
