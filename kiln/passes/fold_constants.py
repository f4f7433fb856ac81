"""Constant folding: evaluate at compile time what does not depend on the inputs.

Three kinds of fold, the textbook's categories:
  1. every input is a constant (AddN of constants): the interpreter evaluates the node;
  2. shape ops whose answer the types already know: Shape of a static shape (or of a static
     slice of it), Size of a static tensor;
  3. cascades: nodes are visited in topological order, so a fold that makes the next node's
     inputs constant folds that node too, in the same run.
Random and other stateful ops are never folded; nor are nodes with subgraphs. A result larger
than `options.fold_size_limit_bytes` (a big Expand, ConstantOfShape or Tile) is left to run
time, so folding never bloats the model. Runs first: it feeds CSE and simplification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..ir import ops
from ..ir.graph import Graph, Node, subgraphs
from ..ir.interpreter import evaluate_node
from ..ir.opdef import Trait
from ..ir.types import TensorType
from ..rewrite.pass_manager import Pass, PassContext


@dataclass(frozen=True)
class FoldConstants(Pass):
    name: ClassVar[str] = "fold_constants"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        fold_graph(graph, ctx)
        return graph


def fold_graph(graph: Graph, ctx: PassContext) -> None:
    limit = ctx.options.fold_size_limit_bytes
    for node in list(graph.nodes):
        for g in subgraphs(node):
            fold_graph(g, ctx)
        values = known_shape_values(node)
        kind = "shape"
        if values is None and foldable(node, limit):
            values = evaluate_node(node, [v.data if v is not None else None for v in node.inputs])
            kind = "constant"
        if values is None:
            continue
        graph.remove_nodes([node])  # releases the output names for the constants
        for v, data in zip(node.outputs, values):
            if v is not None:
                c = graph.add_constant(np.asarray(data), v.name, type=v.type if _exact(v.type, data) else None)
                graph.replace_all_uses(v, c)
        ctx.count(f"folded {kind}")


def foldable(node: Node, limit: int) -> bool:
    if node.op.has(Trait.STATEFUL) or subgraphs(node) or not node.outputs:
        return False
    if not all(v is None or v.is_constant for v in node.inputs):
        return False
    for v in node.outputs:
        if v is None:
            continue
        t = v.type
        if not isinstance(t, TensorType):
            return False
        n = t.numel()
        if n is None or n * max(t.dtype.itemsize, 1) > limit:
            return False
    return True


def known_shape_values(node: Node):
    """Values of Shape and Size that the input's type already determines, else None."""
    if node.op not in (ops.Shape, ops.Size) or not node.inputs:
        return None
    t = node.inputs[0].type
    if not isinstance(t, TensorType) or t.shape is None:
        return None
    if node.op is ops.Size:
        n = t.numel()
        return None if n is None else [np.array(n, dtype=np.int64)]
    rank = len(t.shape)
    start, end = node.attr("start"), node.attr("end")
    start = max(0, min(rank, start + rank if start < 0 else start))
    end = rank if end is None else max(0, min(rank, end + rank if end < 0 else end))
    dims = t.shape[start:end]
    if not all(isinstance(d, int) for d in dims):
        return None
    return [np.array(dims, dtype=np.int64)]


def _exact(t, data) -> bool:
    return isinstance(t, TensorType) and t.is_static and tuple(np.shape(data)) == t.shape
