"""Fold inference BatchNormalization into the Conv, Gemm or MatMul that feeds it.

BN(y) = γ·(y − mean)/√(var + ε) + β is an affine map per channel, so with s = γ/√(var + ε):
    Conv:   W'[c] = W[c]·s[c],       b'[c] = (b[c] − mean[c])·s[c] + β[c]
    Gemm/MatMul (2-D, channel = column):  W'[:, c] = W[:, c]·s[c], same b'
The folded op computes the same result with one kernel and no normalization at run time.
Folds only when the weights and BN parameters are constants, BN is in inference mode, and the
producer's result feeds nothing but the BN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..ir import ops
from ..ir.graph import Graph, Node
from ..rewrite.analyses import UseDef
from ..rewrite.pass_manager import Pass, PassContext


@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    name: ClassVar[str] = "fold_batchnorm"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        uses = UseDef(graph)
        for bn in list(graph.nodes):
            if bn.op is not ops.BatchNormalization or bn.attr("training_mode"):
                continue
            if any(v is not None for v in bn.outputs[1:]):
                continue
            src = bn.inputs[0].producer
            params = bn.inputs[1:5]
            if src is None or not all(p is not None and p.is_constant for p in params):
                continue
            if len(uses.uses(bn.inputs[0])) != 1 or id(bn.inputs[0]) in uses.outputs:
                continue
            if _fold(graph, src, bn):
                ctx.count(f"folded {src.op.name}+BatchNormalization")
        return graph


def _scale_shift(bn: Node, dtype):
    gamma, beta, mean, var = (p.data.astype(np.float64) for p in bn.inputs[1:5])
    s = gamma / np.sqrt(var + bn.attr("epsilon"))
    return s, beta, mean


def _fold(graph: Graph, src: Node, bn: Node) -> bool:
    w = src.inputs[1] if len(src.inputs) > 1 else None
    if w is None or not w.is_constant:
        return False
    s, beta, mean = _scale_shift(bn, w.data.dtype)
    y = bn.outputs[0]
    if src.op is ops.Conv:
        bias = src.inputs[2] if len(src.inputs) > 2 and src.inputs[2] is not None else None
        if bias is not None and not bias.is_constant:
            return False
        b = bias.data.astype(np.float64) if bias is not None else 0.0
        w_new = w.data.astype(np.float64) * s.reshape((-1,) + (1,) * (w.data.ndim - 1))
        new_inputs = [src.inputs[0], None, None]
        attrs = dict(src.attrs)
        op = ops.Conv
    elif src.op in (ops.Gemm, ops.MatMul) and src.inputs[0].type.rank == 2 and w.data.ndim == 2:
        if src.op is ops.Gemm and (src.attr("transA") or src.attr("alpha") != 1.0 or
                                   (len(src.inputs) > 2 and src.inputs[2] is not None and
                                    (not src.inputs[2].is_constant or src.attr("beta") != 1.0))):
            return False
        trans_b = src.op is ops.Gemm and src.attr("transB")
        c = src.inputs[2] if src.op is ops.Gemm and len(src.inputs) > 2 else None
        b = np.broadcast_to(c.data.astype(np.float64), mean.shape) if c is not None else 0.0
        w_new = w.data.astype(np.float64) * (s[:, None] if trans_b else s[None, :])
        new_inputs = [src.inputs[0], None, None]
        attrs = {"transB": 1} if trans_b else {}
        op = ops.Gemm
    else:
        return False
    dtype = w.data.dtype
    new_inputs[1] = graph.add_constant(w_new.astype(dtype), w.name + "_bn")
    new_inputs[2] = graph.add_constant(((b - mean) * s + beta).astype(dtype), w.name + "_bn_bias")
    folded = Node(op, new_inputs, attrs, [graph.new_value(y.name + "_folded", y.type)],
                  name=src.name or bn.name)
    graph.nodes.insert(graph.nodes.index(bn), folded)
    out = folded.outputs[0]
    if any(v is y for v in graph.outputs):  # keep the output's name
        name = y.name
        y.name = graph.claim(graph.fresh_name(name + "_unfolded"))
        graph._names.discard(out.name)
        out.name = name
    graph.replace_all_uses(y, out)
    graph.remove_nodes([bn, src])
    return True
