"""Operator fusion: group ops so each group runs as one kernel, the way TVM's FuseOps does.

Every OpDef declares a fusion kind, ordered elementwise < broadcast < injective < reduction <
out-elementwise-fusable < opaque. Over the post-dominator tree, a node joins the group of its
immediate post-dominator P when every node on every path from it to P fits the rules:

  phase 0  conv/matmul (out-elementwise-fusable) takes an epilogue: the paths to P, P included,
           are elementwise/broadcast (bias, activation, residual add, scale/shift); P may
           also be a Softmax/LayerNorm-like row normalization whose static row its one
           kernel keeps on the stack (normalization.caches_costly_rows), or a global pool
           over a small image, ending the group;
  phase 1  an elementwise/broadcast node fuses into P when the paths are at most injective and
           P is at most injective or a reduction (so softmax and the norms absorb what feeds
           them); an injective node fuses when the paths and P are at most injective, except
           that a group of pure data movement (pattern injective) never joins a view
           (`_is_view`: Reshape, Transpose, Slice..., lowered lazily): alone, a view costs no
           kernel (its reader indexes through it), while the group would copy the data into
           the view's layout (a Reshape/Transpose of attention heads, or the Shape -> Concat
           computing a Reshape's target, became copy kernels the unfused program never ran).

Reductions and opaque ops never fuse forward, and a node that cannot fuse is a group of its
own. Because P post-dominates the node, everything on those paths joins too, so a group is
convex and its only result leaves through P. Each group of two or more nodes becomes one
`Fused` node whose body is the group as a self-contained graph; lowering composes the body's
ops into one loop nest per result, so intermediates never go through memory.

Then back-to-back products chain (`chain_gemm_groups`): a group that is a matrix product with a
constant B and a row-local epilogue, whose one result feeds only the row operand A of the next
such group, joins it, while the chain's [rows, hidden] intermediates fit the LOCAL row tiles of
kiln/lowering/gemm_chain.py (64 KiB for at least 8 rows). The merged group runs as one kernel
over tiles of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..ir import ops
from ..ir.graph import Graph, Node, Value, subgraphs
from ..ir.opdef import FusionKind
from ..rewrite.analyses import EXIT, PostDominators
from .eliminate_dead_code import remove_dead
from ..rewrite.pass_manager import Pass, PassContext

K = FusionKind
RANK = {K.ELEMENTWISE: 0, K.BROADCAST: 1, K.INJECTIVE: 2, K.REDUCTION: 3,
        K.OUT_ELEMENTWISE_FUSABLE: 4, K.OPAQUE: 8}


@dataclass(frozen=True)
class Fuse(Pass):
    max_group_size: int = 64
    name: ClassVar[str] = "fuse"

    def run(self, graph: Graph, ctx: PassContext) -> Graph:
        remove_dead(graph, ctx)       # a dead reader would hide a post-dominator
        groups = partition(graph, self.max_group_size)
        chained = chain_gemm_groups(graph, groups)
        if chained:
            ctx.count("chained", chained)
        made = build_fused_nodes(graph, groups)
        if made:
            ctx.count("groups", made)
            remove_dead(graph, ctx)   # constants now held by the groups' bodies
        return graph


def kind(node: Node) -> int:
    if subgraphs(node) or node.op is ops.Fused:
        return RANK[K.OPAQUE]
    return RANK[node.op.kind]


class _Groups:
    """Union-find over nodes; each group remembers its pattern (the highest kind it holds)."""

    def __init__(self, nodes):
        self.parent = {id(n): id(n) for n in nodes}
        self.pattern = {id(n): kind(n) for n in nodes}
        self.size = {id(n): 1 for n in nodes}

    def find(self, n: int) -> int:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union_into(self, child: int, target: int) -> None:
        c, t = self.find(child), self.find(target)
        if c == t:
            return
        self.parent[c] = t
        self.pattern[t] = max(self.pattern[t], self.pattern[c])
        self.size[t] += self.size[c]


def partition(graph: Graph, max_size: int = 64) -> _Groups:
    from ..lowering.normalization import caches_costly_rows
    pdom = PostDominators(graph)
    consumers: dict[int, list[Node]] = {id(n): [] for n in graph.nodes}
    producers = {id(v): n for n in graph.nodes for v in n.outputs if v is not None}
    for n in graph.nodes:
        for v in n.inputs:
            p = producers.get(id(v)) if v is not None else None
            if p is not None and n not in consumers[id(p)]:
                consumers[id(p)].append(n)
    groups = _Groups(graph.nodes)

    def paths(src: Node, sink: Node) -> list[Node] | None:
        """Nodes strictly between src and sink on any path (None if a path escapes)."""
        seen: dict[int, Node] = {}
        stack = list(consumers[id(src)])
        while stack:
            n = stack.pop()
            if n is sink or id(n) in seen:
                continue
            seen[id(n)] = n
            if not consumers[id(n)]:
                return None
            stack.extend(consumers[id(n)])
        return list(seen.values())

    for phase in (0, 1):
        for node in graph.nodes:
            k = kind(node)
            if k == RANK[K.OPAQUE]:
                continue
            sink = pdom.parent(node)
            if sink == EXIT:
                continue
            g, s = groups.find(id(node)), groups.find(id(sink))
            if g == s or groups.size[g] + groups.size[s] > max_size:
                continue
            pattern = groups.pattern[g]
            between = paths(node, sink)
            if between is None:
                continue
            if pattern == RANK[K.OUT_ELEMENTWISE_FUSABLE]:
                # a row normalization that keeps the row on the stack may end the epilogue
                ok = phase == 0 and k != RANK[K.REDUCTION] and \
                    all(kind(n) <= RANK[K.BROADCAST] for n in between) and \
                    (kind(sink) <= RANK[K.BROADCAST] or caches_costly_rows(sink) or
                     _small_global_pool(sink))
            elif pattern <= RANK[K.BROADCAST]:
                ok = phase == 1 and all(kind(n) <= RANK[K.INJECTIVE] for n in between) and \
                    kind(sink) in (0, 1, 2, RANK[K.REDUCTION])
            elif pattern == RANK[K.INJECTIVE]:
                ok = phase == 1 and all(kind(n) <= RANK[K.INJECTIVE] for n in between + [sink]) \
                    and not _is_view(sink)
            else:
                ok = False
            if ok:
                for n in between + [node]:
                    groups.union_into(id(n), id(sink))
    return groups


def chain_gemm_groups(graph: Graph, groups: _Groups) -> int:
    """Merge chains of product groups (see the module docstring); returns how many merges."""
    from ..lowering.gemm_chain import gemm_stage, local_columns, rows_per_tile
    members: dict[int, list[Node]] = {}
    for n in graph.nodes:
        members.setdefault(groups.find(id(n)), []).append(n)
    readers: dict[int, list[Node]] = {}
    for n in graph.nodes:
        for v in n.inputs:
            if v is not None:
                readers.setdefault(id(v), []).append(n)
        for g in subgraphs(n):
            for v in g.captured_values():
                readers.setdefault(id(v), []).append(n)
    outputs = {id(v) for v in graph.outputs}
    stage_of_gemm = {}
    for root, nodes in members.items():
        stage = gemm_stage(nodes)
        if stage is not None:
            stage_of_gemm[id(stage.gemm)] = (root, stage)
    chain_of: dict[int, list] = {}     # root of a stage -> the chain (list of stages) it ends
    merged = 0
    for n in graph.nodes:
        if id(n) not in stage_of_gemm:
            continue
        root, stage = stage_of_gemm[id(n)]
        chain = [stage]
        a = n.inputs[0]
        prev = next(((r, s) for r, s in stage_of_gemm.values() if s.result is a), None)
        if prev is not None and prev[1].softmax is None and id(a) not in outputs and \
                readers.get(id(a)) == [n] and prev[0] in chain_of:
            candidate = chain_of[prev[0]] + [stage]
            if rows_per_tile(local_columns(candidate)) is not None:
                chain = candidate
                groups.union_into(prev[0], root)
                merged += 1
        chain_of[root] = chain
    return merged


def _is_view(node: Node) -> bool:
    """An op that lowers lazily (a view or pure index arithmetic): unfused, it writes nothing."""
    from ..lowering.registry import lowering_for
    lowering = lowering_for(node.op)
    return lowering is not None and lowering.lazy


def _small_global_pool(node: Node) -> bool:
    """A global pool over a small static image (a CNN's head, 7x7): it reads each element of
    its producer once, and rows shorter than one vector lose no vectorization by being summed
    in place, so a conv group may end in it."""
    if node.op not in (ops.GlobalAveragePool, ops.GlobalMaxPool):
        return False
    shape = getattr(node.inputs[0].type, "shape", None)
    return shape is not None and len(shape) > 2 and \
        all(isinstance(d, int) for d in shape[2:]) and shape[-1] < 16


def build_fused_nodes(graph: Graph, groups: _Groups) -> int:
    """Replace each group of two or more nodes by one Fused node; returns how many were made."""
    members: dict[int, list[Node]] = {}
    for n in graph.nodes:
        members.setdefault(groups.find(id(n)), []).append(n)
    outputs_ids = {id(v) for v in graph.outputs}
    made = 0
    replacement: dict[int, Node] = {}
    for root, group in members.items():
        if len(group) < 2:
            continue
        fused = _fuse_group(graph, group, outputs_ids, made)
        for n in group:
            replacement[id(n)] = fused
        made += 1
    if made:
        graph.nodes = _topological([replacement.get(id(n), n) for n in graph.nodes])
    return made


def _fuse_group(graph: Graph, group: list[Node], graph_outputs: set, index: int) -> Node:
    inside = {id(v) for n in group for v in n.outputs if v is not None}
    used_outside = {id(v) for n in graph.nodes if all(n is not m for m in group)
                    for v in n.inputs if v is not None} | graph_outputs
    for n in graph.nodes:
        if all(n is not m for m in group):
            for g in subgraphs(n):
                used_outside |= {id(v) for v in g.captured_values()}
    body = Graph(f"fused_{index}")
    body.parent = graph      # for naming only: body names never shadow the enclosing graph's
    mapping: dict[int, Value] = {}
    external: list[Value] = []
    for n in group:
        for v in n.inputs:
            if v is None or id(v) in inside or id(v) in mapping:
                continue
            if v.is_constant:
                mapping[id(v)] = body.add_constant(v.data, v.name, type=v.type)
            else:
                mapping[id(v)] = body.add_input(v.name, v.type)
                external.append(v)
    results: list[Value] = []
    for n in group:
        outs = [None if v is None else Value(body.claim(body.fresh_name(v.name)), v.type)
                for v in n.outputs]
        clone = Node(n.op, [None if v is None else mapping[id(v)] for v in n.inputs],
                     dict(n.attrs), outs, n.name)
        body.append(clone)
        for v, new in zip(n.outputs, outs):
            if v is not None:
                mapping[id(v)] = new
                if id(v) in used_outside:
                    results.append(v)
    body.outputs = [mapping[id(v)] for v in results]
    name = group[-1].name or (results[0].name if results else "")
    fused = Node(ops.Fused, external, {"body": body}, results, name)
    return fused


def _topological(nodes: list[Node]) -> list[Node]:
    """Distinct nodes in an order where producers come first, stable to the given order."""
    unique, seen = [], set()
    for n in nodes:
        if id(n) not in seen:
            seen.add(id(n))
            unique.append(n)
    produced_by = {id(v): n for n in unique for v in n.outputs if v is not None}
    placed: set[int] = set()
    out: list[Node] = []

    def place(n: Node, stack: set):
        if id(n) in placed:
            return
        stack.add(id(n))
        deps = [produced_by.get(id(v)) for v in n.inputs if v is not None]
        for g in subgraphs(n):
            deps += [produced_by.get(id(v)) for v in g.captured_values()]
        for d in deps:
            if d is not None and id(d) not in placed and id(d) not in stack:
                place(d, stack)
        placed.add(id(n))
        out.append(n)

    for n in unique:
        place(n, set())
    return out


def inline_fused(graph: Graph) -> Graph:
    """Replace every Fused node by its body's nodes (for ONNX export); returns the graph."""
    new_nodes: list[Node] = []
    for n in graph.nodes:
        if n.op is not ops.Fused:
            new_nodes.append(n)
            continue
        body = n.attrs["body"]
        mapping = {id(b): v for b, v in zip(body.inputs, n.inputs)}
        for c in body.constants:
            mapping[id(c)] = graph.add_constant(c.data, c.name, type=c.type)
        results = {id(b): v for b, v in zip(body.outputs, n.outputs)}
        for m in body.nodes:
            outs = []
            for v in m.outputs:
                if v is None:
                    outs.append(None)
                elif id(v) in results:
                    outs.append(results[id(v)])
                else:
                    outs.append(graph.new_value(v.name, v.type))
                if v is not None:
                    mapping[id(v)] = outs[-1]
            new_nodes.append(Node(m.op, [None if v is None else mapping[id(v)] for v in m.inputs],
                                  dict(m.attrs), outs, m.name))
    graph.nodes = new_nodes
    return graph
