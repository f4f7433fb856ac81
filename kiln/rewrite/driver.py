"""Rules and the fixed-point driver that applies them.

A rule is data: a name, a pattern rooted at an op, and a replacement `fn(m, r) -> Value | None`
that builds the new value with the Rewriter `r` (`r.Mul(m.x, m.c)` adds a node, types inferred;
`r.constant(array)` adds a constant) or returns an existing value. Returning None declines.
Rule tables are lists: compose them with `+`.

The driver walks the nodes in order with a worklist; when a rule fires, the root's readers read
the new value, new nodes are placed just before the root (so order stays topological), and the
readers of the new value are revisited. It stops when no rule fires (or after `max_steps`).
Nodes left without readers are removed by dead code elimination, which runs after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..ir.attrs import check_attr_values
from ..ir.graph import Graph, Node, Value, subgraphs
from ..ir.infer import infer_types
from ..ir.ops import get_op
from .pattern import Match, OpPattern


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: OpPattern
    replace: Callable[[Match, "Rewriter"], Value | None]
    # True: changes results for NaN/Inf/-0 or rounding, so runs only under fast-math. A callable
    # decides per match (e.g. reassociation is exact for integers, not for floats).
    fast_math: bool | Callable[[Match], bool] = False
    doc: str = ""


class Rewriter:
    """Builds replacement nodes just before `anchor` in `graph`."""

    def __init__(self, graph: Graph, anchor: Node):
        self.graph, self.anchor, self.new_nodes = graph, anchor, []

    def add(self, op, inputs: Sequence[Value | None], attrs: dict | None = None,
            outputs: int = 1) -> list[Value]:
        op = get_op(op) if isinstance(op, str) else op
        attrs = dict(attrs or {})
        node = Node(op, inputs, attrs, [None] * outputs, name=self.anchor.name)
        check_attr_values(op, node.attrs, node)
        types = infer_types(op, inputs, node.attrs, outputs, node)
        node.outputs = [self.graph.new_value(op.name.lower(), t) for t in types]
        for v in node.outputs:
            v.producer = node
        self.new_nodes.append(node)
        return node.outputs

    def constant(self, data, like: Value | None = None) -> Value:
        arr = np.asarray(data, dtype=like.type.dtype.np if like is not None else None)
        return self.graph.add_constant(arr, "const")

    def __getattr__(self, opname: str):
        if opname.startswith("_"):
            raise AttributeError(opname)
        op = get_op(opname)

        def make(*inputs, **attrs):
            return self.add(op, inputs, attrs)[0]
        return make


def apply_rules(graph: Graph, rules: Sequence[Rule], ctx, fast_math: bool = False,
                max_steps: int = 100_000) -> int:
    """Apply `rules` to `graph` (and its subgraphs) until none fires; returns how many fired."""
    rules = [r for r in rules if fast_math or r.fast_math is not True]
    by_op: dict = {}
    for r in rules:
        for op in r.pattern.ops:
            by_op.setdefault(op, []).append(r)
    fired = 0
    for node in graph.nodes:
        for g in subgraphs(node):
            fired += apply_rules(g, rules, ctx, fast_math, max_steps)
    readers = _reader_counts(graph)
    worklist = list(reversed(graph.nodes))
    alive = {id(n) for n in graph.nodes}
    steps = 0
    while worklist and steps < max_steps:
        node = worklist.pop()
        if id(node) not in alive or not node.outputs or node.outputs[0] is None:
            continue
        for rule in by_op.get(node.op, ()):
            m = Match()
            if not rule.pattern.match_node(node, m, lambda v: readers.get(id(v), 0)):
                continue
            if not fast_math and callable(rule.fast_math) and rule.fast_math(m):
                continue
            r = Rewriter(graph, node)
            try:
                new = rule.replace(m, r)
            except Exception:
                new = None  # a replacement that cannot be typed here does not apply
            if new is None or new is node.outputs[0]:
                continue
            old = node.outputs[0]
            if any(v is old for v in graph.outputs):
                if not any(new.producer is n for n in r.new_nodes):
                    continue  # keep the output's name: replace only with a fresh value
                name = old.name
                old.name = graph.claim(graph.fresh_name(name))
                graph._names.discard(new.name)
                new.name = name
            steps += 1
            fired += 1
            ctx.count(f"rule {rule.name}")
            idx = graph.nodes.index(node)
            graph.nodes[idx:idx] = r.new_nodes
            alive.update(id(n) for n in r.new_nodes)
            graph.replace_all_uses(old, new)
            readers = _reader_counts(graph)
            if not any(v is not None and readers.get(id(v)) for v in node.outputs):
                graph.remove_nodes([node])
                alive.discard(id(node))
            worklist.extend(reversed([n for n in graph.nodes if any(i is new for i in n.inputs)]))
            worklist.extend(reversed(r.new_nodes))
            break
    return fired


def _reader_counts(graph: Graph) -> dict[int, int]:
    counts: dict[int, int] = {}
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None:
                counts[id(v)] = counts.get(id(v), 0) + 1
        for g in subgraphs(n):
            for v in g.captured_values():
                counts[id(v)] = counts.get(id(v), 0) + 1
    for v in graph.outputs:
        counts[id(v)] = counts.get(id(v), 0) + 1
    return counts
