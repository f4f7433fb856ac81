"""Dead code elimination: drop what cannot reach an output, and ops that do nothing.

Liveness is marked from the graph outputs backwards (a subgraph's captures keep their producers
alive). Unused constants go too. No-ops — Identity, inference-mode Dropout, Cast to the same
dtype, Reshape/Expand to the same static shape, the identity Transpose, an all-zero Pad — are
bypassed: their readers read the input instead. A graph output is never removed, and a no-op whose
result is a graph output is kept so the output keeps its name. Runs last in a pipeline: earlier
passes leave dead nodes behind for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..ir import ops
from ..ir.graph import Graph, Node, subgraphs
from ..ir.types import TensorType
from ..rewrite.pass_manager import Pass, PassContext


@dataclass(frozen=True)
class EliminateDeadCode(Pass):
    name: ClassVar[str] = "eliminate_dead_code"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        bypass_noops(graph, ctx)
        remove_dead(graph, ctx)
        return graph


def remove_dead(graph: Graph, ctx: PassContext) -> None:
    live: set[int] = {id(v) for v in graph.outputs}
    keep: set[int] = set()
    for node in reversed(graph.nodes):
        if any(v is not None and id(v) in live for v in node.outputs):
            keep.add(id(node))
            live.update(id(v) for v in node.inputs if v is not None)
            for g in subgraphs(node):
                remove_dead(g, ctx)
                live.update(id(v) for v in g.captured_values())
    dead = [n for n in graph.nodes if id(n) not in keep]
    if dead:
        ctx.count("dead nodes", len(dead))
        graph.remove_nodes(dead)
    unused = [c for c in graph.constants if id(c) not in live]
    if unused:
        ctx.count("dead constants", len(unused))
        graph.remove_constants(unused)
    # outputs nobody reads stay, but are not computed for nothing: mark unused optional ones
    for node in graph.nodes:
        for i, v in enumerate(node.outputs):
            if v is not None and id(v) not in live and i > 0 and node.op.outputs and \
                    _optional_output(node, i):
                node.outputs[i] = None


def _optional_output(node: Node, i: int) -> bool:
    slots = node.op.outputs
    slot = slots[i] if i < len(slots) else slots[-1]
    return slot.optional


def bypass_noops(graph: Graph, ctx: PassContext) -> None:
    outputs = {id(v) for v in graph.outputs}
    for node in graph.nodes:
        for g in subgraphs(node):
            bypass_noops(g, ctx)
        y = node.outputs[0] if node.outputs else None
        if y is None or id(y) in outputs or not is_noop(node):
            continue
        graph.replace_all_uses(y, node.inputs[0])
        ctx.count(f"no-op {node.op.name}")


def is_noop(node: Node) -> bool:
    """True when output 0 always equals input 0 (and any other output is unused)."""
    op = node.op
    x = node.inputs[0] if node.inputs else None
    y = node.outputs[0]
    if x is None or any(v is not None for v in node.outputs[1:]):
        return False
    if op is ops.Identity:
        return True
    if op is ops.Dropout:
        training = node.inputs[2] if len(node.inputs) > 2 else None
        return training is None or (training.is_constant and not bool(training.data))
    if op is ops.Cast:
        return x.type == y.type
    if op in (ops.Reshape, ops.Expand):
        return _static(x.type) and x.type == y.type
    if op is ops.Transpose:
        perm = node.attr("perm")
        rank = x.type.rank if isinstance(x.type, TensorType) else None
        return perm is not None and list(perm) == list(range(len(perm))) and rank == len(perm)
    if op is ops.Pad:
        pads = node.inputs[1] if len(node.inputs) > 1 else None
        return pads is not None and pads.is_constant and not np.any(pads.data)
    return False


def _static(t) -> bool:
    return isinstance(t, TensorType) and t.is_static
