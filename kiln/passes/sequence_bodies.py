"""Control flow around sequences and optionals, for the flatten_sequences pass.

A sequence or optional inside the body of a Loop, an If branch or a SequenceMap has a static
structure only when the body's copies are laid out in the graph, or when every way through the
node builds the same structure. `BodyInliner` (a base of flatten_sequences' `_Flattener`) does
that:

    Loop carrying or reading one  -> its body copied once per iteration: the trip count and
                                     the condition known when compiling (the ONNX backend's
                                     specializing model fixes the graph inputs they come from),
                                     copies until the body's condition, computed from constants
                                     and the iteration number, turns false; scans stacked
    SequenceMap                   -> its body copied once per element
    If, condition known           -> the chosen branch's nodes, in place of the If
    If, condition known at run time, both branches building the same structure
                                  -> an If of the structures' tensors (each branch flattened)

Copies of a body take their own copies of nested subgraphs (an If in a Loop body is an If per
iteration, its captures renamed to that iteration's values), and small nodes of the copies whose
inputs are all constants are evaluated (an iteration number, `Not(OptionalHasElement(...))`), so
positions, slice ends and the conditions of nested Ifs become constants. Anything else raises
LoweringError naming the node: branches building different structures for a condition known only
at run time, a Loop's trip count or condition known only at run time (both name the input that
has to be known when compiling), a body condition computed from data, more than MAX_UNROLL
iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import ops
from ..ir.graph import Graph, Node, Value, subgraphs
from ..ir.infer import infer_node
from ..ir.interpreter import evaluate_node
from ..ir.types import TensorType
from .fold_constants import foldable

MAX_UNROLL = 1024          # iterations of a Loop carrying a sequence that are unrolled
FOLD_LIMIT_BYTES = 1 << 16  # largest result of a copied node evaluated when compiling


@dataclass(frozen=True)
class Absent:
    """An empty optional."""


ABSENT = Absent()


def has_structures_within(graph: Graph) -> bool:
    """Does `graph` or any graph nested in it hold a sequence/optional value?"""
    return any(not isinstance(v.type, TensorType) for v in graph.values()) or \
        any(has_structures_within(g) for n in graph.nodes for g in subgraphs(n))


def copy_body(body: Graph, env: dict, parent: Graph) -> Graph:
    """A copy of `body` nested in `parent`: its values are new, and the values it captures are
    read from `env` (id of a value -> its replacement) where env has them."""
    g = Graph(body.name)
    g.parent = parent
    env = dict(env)
    for v in body.inputs:
        env[id(v)] = g.add_input(v.name, v.type)
    for c in body.constants:
        env[id(c)] = g.add_constant(c.data, c.name, c.type)
    for n in body.nodes:
        g.nodes.append(_copy_node(n, env, g))
    g.outputs = [env.get(id(v), v) for v in body.outputs]
    return g


def _copy_node(n: Node, env: dict, graph: Graph) -> Node:
    attrs = {k: copy_body(v, env, graph) if isinstance(v, Graph) else
             [copy_body(s, env, graph) for s in v] if isinstance(v, (list, tuple)) and v and
             isinstance(v[0], Graph) else v for k, v in n.attrs.items()}
    outs = [None if v is None else graph.new_value(v.name, v.type) for v in n.outputs]
    for v, o in zip(n.outputs, outs):
        if v is not None:
            env[id(v)] = o
    return Node(n.op, [None if v is None else env.get(id(v), v) for v in n.inputs], attrs,
                outs, n.name)


class BodyInliner:
    """Loop / SequenceMap / If handling of `_Flattener` (which provides graph, struct,
    seq, fail, _alias, _node, _const, _is_struct, output and the `copies` set)."""

    # --- copies of bodies -------------------------------------------------------------------

    def _inline(self, node: Node, body: Graph, env: dict, nodes: list) -> dict:
        """Append a copy of `body`'s nodes to `nodes`, its inputs read from `env` (body value id
        -> outer value); returns env with the body's values mapped too."""
        env.update({id(c): self.graph.add_constant(c.data, c.name) for c in body.constants})
        for bn in body.nodes:
            copy = _copy_node(bn, env, self.graph)
            self.copies.add(id(copy))
            nodes.append(copy)
        return env

    def settle_copy(self, node: Node) -> bool:
        """A node of a copied body, about to be looked at: its types inferred again from its
        (now known) inputs, and the node evaluated when they are all small constants. Returns
        True when it was replaced by constants."""
        if node.op in self.sequence_ops or subgraphs(node) or \
                any(self._is_struct(v) for v in node.inputs):
            return False
        for v, t in zip(node.outputs, infer_node(node)):
            if v is not None:
                v.type = t
        if not foldable(node, FOLD_LIMIT_BYTES):
            return False
        values = evaluate_node(node, [None if v is None else v.data for v in node.inputs])
        for v, data in zip(node.outputs, values):
            if v is not None:
                self.graph.replace_all_uses(v, self.graph.add_constant(np.asarray(data), v.name))
        return True

    @staticmethod
    def known(v: Value | None):
        """The value of `v` when it is known when compiling (through Identity), else None."""
        while v is not None and v.data is None and v.producer is not None and \
                v.producer.op is ops.Identity:
            v = v.producer.inputs[0]
        return None if v is None else v.data

    # --- Loop ---------------------------------------------------------------------------------

    def unroll_loop(self, node: Node) -> list[Node]:
        """A Loop that carries a sequence, with a trip count and condition known when
        compiling, and a body condition that each copy computes from constants (the iteration
        number): its body once per iteration until either stops it (scan outputs stacked)."""
        body: Graph = node.op.full_attrs(node.attrs, node)["body"]
        trips, cond, *init = list(node.inputs) + [None] * (2 - len(node.inputs))
        if trips is not None and self.known(trips) is None:
            self.fail(node, "input 'M' must be known when compiling: a Loop carrying a "
                      "sequence or optional is unrolled, which needs its trip count")
        if cond is not None and self.known(cond) is None:
            self.fail(node, "input 'cond' must be known when compiling: a Loop carrying a "
                      "sequence or optional is unrolled, which needs its condition")
        if trips is None and cond is None:
            self.fail(node, "a Loop with neither a trip count nor a condition never ends")
        count = None if trips is None else int(np.asarray(self.known(trips)).reshape(-1)[0])
        running = cond is None or bool(np.asarray(self.known(cond)))
        carried, nodes = list(init), []
        scans: list[list] = [[] for _ in body.outputs[1 + len(init):]]
        true = self.graph.add_constant(np.array(True), "cond")
        t = 0
        while running and (count is None or t < count):
            if t == MAX_UNROLL:
                self.fail(node, f"a Loop carrying a sequence runs more than {MAX_UNROLL} "
                          "times, the most the back end unrolls")
            env = {id(body.inputs[0]): self.graph.add_constant(np.array(t, np.int64), "iter"),
                   id(body.inputs[1]): true}
            env.update({id(b): v for b, v in zip(body.inputs[2:], carried)})
            env = self._inline(node, body, env, nodes)
            again = self._body_condition(env.get(id(body.outputs[0]), body.outputs[0]))
            if again is None:
                self.fail(node, "a Loop carrying a sequence needs a body condition known when "
                          "compiling (computed from constants and the iteration number)")
            running = bool(np.asarray(again))
            outs = [env.get(id(v), v) for v in body.outputs[1:]]
            carried = outs[:len(init)]
            for acc, v in zip(scans, outs[len(init):]):
                acc.append(v)
            t += 1
        for out, v in zip(node.outputs, carried):
            if out is not None:
                self._alias(out, v)
        for out, acc in zip(node.outputs[len(init):], scans):
            if out is None:
                continue
            if not acc:
                self.fail(node, "a Loop carrying a sequence with scan outputs runs 0 times")
            zero = self._const([0], "axis")
            parts = [self._node(ops.Unsqueeze, [v, zero], {}, f"{out.name}.part") for v in acc]
            nodes += parts + [Node(ops.Concat, [p.outputs[0] for p in parts], {"axis": 0},
                                   [out])]
        return nodes

    def _body_condition(self, v: Value):
        """The value of a copied body's condition output, evaluating the small constant
        expression (of copied nodes not looked at yet) that computes it."""
        data = self.known(v)
        if data is not None or v.producer is None or id(v.producer) not in self.copies:
            return data
        n = v.producer
        if n.op in self.sequence_ops or subgraphs(n):
            return None
        args = [None if i is None else self._body_condition(i) for i in n.inputs]
        if any(a is None for a, i in zip(args, n.inputs) if i is not None):
            return None
        return evaluate_node(n, args)[n.outputs.index(v)]

    # --- SequenceMap ----------------------------------------------------------------------------

    def inline_map(self, node: Node) -> list[Node]:
        body: Graph = node.op.full_attrs(node.attrs, node)["body"]
        seqs = [self.struct.get(id(v)) if self._is_struct(v) else None for v in node.inputs]
        length = len(self.seq(node, node.inputs[0]))
        for v, s in zip(node.inputs, seqs):
            if s is not None and (not isinstance(s, list) or len(s) != length):
                self.fail(node, f"sequence %{v.name} is not as long as the first ({length})")
        results: list[list] = [[] for _ in body.outputs]
        nodes: list[Node] = []
        for t in range(length):
            env = {id(bv): s[t] if s is not None else v
                   for bv, v, s in zip(body.inputs, node.inputs, seqs)}
            env = self._inline(node, body, env, nodes)
            for acc, v in zip(results, body.outputs):
                acc.append(env.get(id(v), v))
        for v, acc in zip(node.outputs, results):
            if v is not None:
                self.struct[id(v)] = acc
        return nodes

    # --- If -----------------------------------------------------------------------------------

    def if_touches_structures(self, node: Node) -> bool:
        return any(self._is_struct(v) for v in node.outputs) or any(
            has_structures_within(g) or any(self._is_struct(v) for v in g.captured_values())
            for g in subgraphs(node))

    def handle_if(self, node: Node) -> list[Node]:
        a = node.op.full_attrs(node.attrs, node)
        cond = self.known(node.inputs[0])
        if cond is not None:                    # one branch: its nodes take the If's place
            branch = a["then_branch"] if bool(np.asarray(cond).reshape(-1)[0]) else \
                a["else_branch"]
            self.graph.constants += branch.constants
            nodes = list(branch.nodes)
            for n in nodes:
                self.copies.add(id(n))
                for g in subgraphs(n):
                    g.parent = self.graph
            for out, v in zip(node.outputs, branch.outputs):
                if out is not None:
                    self.graph.replace_all_uses(out, v)
            return nodes
        return self._flatten_branches(node, a["then_branch"], a["else_branch"])

    def _flatten_branches(self, node: Node, then_g: Graph, else_g: Graph) -> list[Node]:
        """Both branches flattened; when they build the same structure, an If of its tensors."""
        layouts = []
        for g in (then_g, else_g):
            inner = type(self)(g)
            inner.struct = self.struct          # structures of captured values are known
            inner.run()
            entries, flat = [], []
            for v in g.outputs:
                entry, values = inner.output(v)
                entries.append(entry)
                flat += values
            g.outputs = flat
            for n in g.nodes:
                for v, t in zip(n.outputs, infer_node(n)):
                    if v is not None:
                        v.type = t
            layouts.append(entries)
        if layouts[0] != layouts[1]:
            self.fail(node, "input 'cond' must be known when compiling: the branches build "
                      f"sequences/optionals of different structure ({_layout_text(layouts[0])}"
                      f" and {_layout_text(layouts[1])})")
        outs = [self.graph.new_value(f"{node.outputs[0].name}.{k}" if node.outputs else "if",
                                     v.type) for k, v in enumerate(then_g.outputs)]
        new = Node(ops.If, [node.inputs[0]], dict(node.attrs), outs, node.name)
        for v, t in zip(outs, infer_node(new)):
            v.type = t
        it = iter(outs)
        for out, entry in zip(node.outputs, layouts[0]):
            s = build_structure(entry, it)
            if out is not None and entry == "tensor":
                self.graph.replace_all_uses(out, s)
            elif out is not None:
                self.struct[id(out)] = s
        return [new] if outs else []


def build_structure(entry, it, absent=ABSENT):
    """The structure an `OutputLayout` entry describes, made of the items `it` yields: a tensor,
    a list for a sequence, `absent` for an empty optional."""
    if entry == "tensor":
        return next(it)
    kind, inner = entry
    if kind == "seq":
        return [next(it) for _ in range(inner)]
    return absent if inner is None else build_structure(inner, it, absent)


def _layout_text(entries: list) -> str:
    def one(e):
        if e == "tensor":
            return "tensor"
        kind, inner = e
        if kind == "seq":
            return f"sequence of {inner}"
        return "empty optional" if inner is None else f"optional {one(inner)}"
    return ", ".join(map(one, entries))
