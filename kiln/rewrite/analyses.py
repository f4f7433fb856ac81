"""Analyses: facts about a graph computed on demand, cached, and invalidated when it changes.

    uses = ctx.analyses.get(UseDef, graph)
    ipdom = ctx.analyses.get(PostDominators, graph).idom   # node -> its immediate post-dominator

Nodes here are graph nodes; ENTRY and EXIT are the virtual source and sink of the dataflow DAG.
"""

from __future__ import annotations

from ..ir.graph import Graph, Node, Value, subgraphs

ENTRY = "ENTRY"
EXIT = "EXIT"


class AnalysisManager:
    def __init__(self):
        self._cache: dict[tuple[type, int], object] = {}

    def get(self, analysis: type, graph: Graph):
        key = (analysis, id(graph))
        if key not in self._cache:
            self._cache[key] = analysis(graph)
        return self._cache[key]

    def invalidate(self, keep: frozenset = frozenset()) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k[0] in keep}


class UseDef:
    """For each value, the nodes that read it (subgraph captures count as a read by the node
    owning the subgraph) and whether it is a graph output."""

    def __init__(self, graph: Graph):
        self.users: dict[int, list[Node]] = {}
        for n in graph.nodes:
            for v in n.inputs:
                if v is not None:
                    self.users.setdefault(id(v), []).append(n)
            for g in subgraphs(n):
                for v in g.captured_values():
                    self.users.setdefault(id(v), []).append(n)
        self.outputs = {id(v) for v in graph.outputs}

    def uses(self, v: Value) -> list[Node]:
        return self.users.get(id(v), [])

    def is_used(self, v: Value) -> bool:
        return id(v) in self.outputs or bool(self.users.get(id(v)))


def _edges(graph: Graph):
    """Predecessor and successor node lists of the dataflow DAG with ENTRY/EXIT added."""
    preds: dict = {id(n): [] for n in graph.nodes}
    succs: dict = {id(n): [] for n in graph.nodes}
    for n in graph.nodes:
        for v in n.inputs:
            p = v.producer if v is not None else None
            if p is not None and id(p) in preds:
                if p not in preds[id(n)]:
                    preds[id(n)].append(p)
                    succs[id(p)].append(n)
        if not preds[id(n)]:
            preds[id(n)].append(ENTRY)
    out_ids = {id(v) for v in graph.outputs}
    for n in graph.nodes:
        if any(v is not None and id(v) in out_ids for v in n.outputs) or not succs[id(n)]:
            succs[id(n)].append(EXIT)
    return preds, succs


class _Tree:
    def __init__(self, order: list, parents_of, root):
        """Dominator tree over a DAG: `order` topological from `root`; idom = LCA of parents."""
        self.idom: dict = {}
        depth = {id(root) if root not in (ENTRY, EXIT) else root: 0}
        self._depth = depth
        for n in order:
            ps = parents_of(n)
            d = ps[0]
            for p in ps[1:]:
                d = self._lca(d, p)
            self.idom[id(n)] = d
            depth[id(n)] = self._d(d) + 1

    def _key(self, n):
        return n if n in (ENTRY, EXIT) else id(n)

    def _d(self, n) -> int:
        return self._depth[self._key(n)]

    def _lca(self, a, b):
        while self._key(a) != self._key(b):
            if self._d(a) >= self._d(b):
                a = self.idom[id(a)] if a not in (ENTRY, EXIT) else a
            else:
                b = self.idom[id(b)] if b not in (ENTRY, EXIT) else b
        return a

    def parent(self, n: Node):
        return self.idom[id(n)]


class Dominators(_Tree):
    """idom[n]: the last node every path from the graph's inputs to n goes through."""

    def __init__(self, graph: Graph):
        preds, _ = _edges(graph)
        super().__init__(list(graph.nodes), lambda n: preds[id(n)], ENTRY)


class PostDominators(_Tree):
    """idom[n]: the first node every path from n to the graph's outputs goes through (EXIT if
    none); the tree operator fusion groups over."""

    def __init__(self, graph: Graph):
        _, succs = _edges(graph)
        super().__init__(list(reversed(graph.nodes)), lambda n: succs[id(n)], EXIT)
