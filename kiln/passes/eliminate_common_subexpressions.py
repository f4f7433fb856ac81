"""Common subexpression elimination by structural hashing.

Nodes are visited in topological order and keyed by (op, attributes, inputs, output count);
operands of commutative ops are sorted first, so Add(a, b) and Add(b, a) meet. Constants are
merged by content (dtype, shape and bytes). A node whose key was seen is replaced by the earlier
node, whose outputs dominate it because they come first in the order. Random and other stateful
ops are never merged; nodes with subgraphs are left alone; a node whose result is a graph output
keeps it so the output's name survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..ir.graph import Graph, Node, subgraphs
from ..ir.opdef import Trait
from ..rewrite.pass_manager import Pass, PassContext


@dataclass(frozen=True)
class EliminateCommonSubexpressions(Pass):
    name: ClassVar[str] = "eliminate_common_subexpressions"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        merge_constants(graph, ctx)
        merge_nodes(graph, ctx)
        return graph


def merge_constants(graph: Graph, ctx: PassContext) -> None:
    outputs = {id(v) for v in graph.outputs}
    seen: dict = {}
    dead = []
    for c in graph.constants:
        key = (c.type, c.data.dtype.str, c.data.tobytes() if c.data.dtype != object else
               repr(c.data.tolist()))
        first = seen.setdefault(key, c)
        if first is not c and id(c) not in outputs:
            graph.replace_all_uses(c, first)
            dead.append(c)
    if dead:
        ctx.count("constants merged", len(dead))
        graph.remove_constants(dead)


def merge_nodes(graph: Graph, ctx: PassContext) -> None:
    outputs = {id(v) for v in graph.outputs}
    seen: dict = {}
    dead = []
    for node in graph.nodes:
        for g in subgraphs(node):
            merge_nodes(g, ctx)
        if node.op.has(Trait.STATEFUL) or subgraphs(node):
            continue
        key = node_key(node)
        first = seen.setdefault(key, node)
        if first is node or any(v is not None and id(v) in outputs for v in node.outputs):
            continue
        for old, new in zip(node.outputs, first.outputs):
            if old is not None:
                if new is None:    # the first node did not keep this output: adopt it
                    break
                graph.replace_all_uses(old, new)
        else:
            dead.append(node)
            ctx.count(f"merged {node.op.name}")
    if dead:
        graph.remove_nodes(dead)


def node_key(node: Node) -> tuple:
    ins = [id(v) if v is not None else None for v in node.inputs]
    if node.op.has(Trait.COMMUTATIVE):
        ins = sorted(ins, key=lambda i: (i is None, i))
    attrs = tuple(sorted((k, _hashable(v)) for k, v in node.op.full_attrs(node.attrs, node).items()))
    return (node.op.name, tuple(ins), attrs, len(node.outputs))


def _hashable(v):
    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tobytes() if v.dtype != object else repr(v.tolist()))
    if isinstance(v, float) and np.isnan(v):
        return "nan"
    if isinstance(v, list):
        return tuple(v)
    return v
