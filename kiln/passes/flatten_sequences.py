"""flatten_sequences: sequence and optional values of static structure become their tensors.

The native back end computes with tensors only. A sequence whose length and positions are known
when compiling is just a list of tensor values, and an optional whose presence is known is its
value or nothing, so this pass follows those structures through the graph and removes them:

    SequenceConstruct / SequenceEmpty / SequenceInsert / SequenceErase  -> a list of values
    SequenceAt(seq, p)            -> the value at p          SequenceLength -> a constant
    SplitToSequence(x, split)     -> one Slice (or Gather, keepdims=0) per part
    ConcatFromSequence(seq)       -> Concat (of Unsqueezes with new_axis=1)
    SequenceMap(seq, ...)         -> its body, inlined once per element
    Loop carrying a sequence      -> its body, inlined once per iteration (a constant trip
                                     count and condition, a body condition computed from
                                     constants and the iteration number; scans stacked)
    If building or reading one    -> the chosen branch (a constant condition), or an If of
                                     the tensors when both branches build the same structure
    Optional(x) / Optional()      -> present / absent;  OptionalHasElement -> a constant
    OptionalGetElement(opt)       -> the value;  Identity of a sequence/optional -> the same

Positions and split sizes must be constants (the ONNX backend's specializing model fixes a
graph input they come from to its fed value: the error names the operand, as for Reshape's
shape). A graph output that is a sequence or optional is replaced by its element tensors, and
`OutputLayout.regroup` turns the flat results back into lists (None for an empty optional):
`compile_graph` (kiln/runtime/compiled_model.py) runs this pass and the CompiledModel regroups.

The control flow (Loop, SequenceMap, If) is kiln/passes/sequence_bodies.py. Structure that is
not static raises LoweringError naming the node: a sequence or optional graph input (its length
is only known from the feed; the ONNX backend's specializing model compiles per fed structure
with `bind_input_structures`), a Loop carrying one whose trip count or condition is known only
at run time (the error names input 'M' / 'cond', which the specializing model fixes), an If
whose branches build different structures on a condition known only at run time (names input
'cond'), a Loop whose body condition is computed from data at run time, a sequence or
optional in a Scan body, a position computed at run time, SplitToSequence along an axis of
symbolic size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LoweringError
from ..ir import ops
from ..ir.graph import Graph, Node, Value, subgraphs
from ..ir.infer import infer_node
from ..ir.types import OptionalType, SequenceType, TensorType
from .sequence_bodies import (  # noqa: F401
    ABSENT, MAX_UNROLL, Absent, BodyInliner, build_structure, has_structures_within)

SEQUENCE_OPS = frozenset({
    ops.SequenceConstruct, ops.SequenceEmpty, ops.SequenceAt, ops.SequenceInsert,
    ops.SequenceErase, ops.SequenceLength, ops.SplitToSequence, ops.ConcatFromSequence,
    ops.SequenceMap, ops.Optional, ops.OptionalHasElement, ops.OptionalGetElement,
})


@dataclass
class OutputLayout:
    """How the flat outputs of the flattened graph make the original outputs: per original
    output, "tensor", ("seq", k) for a list of the next k, ("opt", None) for an empty optional
    or ("opt", inner) for a present one."""

    entries: list

    def regroup(self, flat: list) -> list:
        it = iter(flat)
        return [build_structure(e, it, absent=None) for e in self.entries]


def has_structures(graph: Graph) -> bool:
    """Does the graph, or a body nested in it, hold sequence or optional values (or ops that
    make them)?"""
    return any(not isinstance(v.type, TensorType) for v in graph.values()) or \
        any(n.op in SEQUENCE_OPS or any(map(has_structures, subgraphs(n))) for n in graph.nodes)


def flatten_sequences(graph: Graph) -> OutputLayout:
    """Rewrite `graph` in place (see the module docstring); returns how to regroup its outputs.
    Raises LoweringError for structure that is not static."""
    for v in graph.inputs:
        if not isinstance(v.type, TensorType):
            raise LoweringError(
                f"graph input '{v.name}' is a {v.type}: its structure (length, presence) is "
                "only known from the feed, and native code needs it when compiling",
                hint="feed its tensors as separate inputs, or run the model with the "
                     "interpreter (backend 'interpreter')")
    f = _Flattener(graph)
    f.run()
    layout = OutputLayout([])
    flat = []
    for v in graph.outputs:
        entry, values = f.output(v)
        layout.entries.append(entry)
        flat += values
    graph.outputs = flat
    for node in graph.nodes:                # types again, now that elements are known
        for v, t in zip(node.outputs, infer_node(node)):
            if v is not None:
                v.type = t
    return layout


# --- sequence/optional graph inputs: fixed to the structure of a feed ------------------------------

def structure_key(value) -> tuple:
    """What of a fed sequence/optional value a graph specialized on it depends on: its length
    or presence and its elements' dtypes and shapes."""
    if value is None:
        return ("absent",)
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(structure_key(e) for e in value))
    a = np.asarray(value)
    return ("tensor", a.dtype.str, a.shape)


def flat_feeds(name: str, value) -> list:
    """The tensors of a fed sequence/optional `name`, named as `bind_input_structures` names
    the inputs that replace it."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [(f"{name}.{k}", np.asarray(e)) for k, e in enumerate(value)]
    return [(f"{name}.value", np.asarray(value))]


def bind_input_structures(graph: Graph, values: dict) -> int:
    """Make each sequence/optional graph input named in `values` a structure of static shape:
    its tensors become graph inputs of their fed shapes (named as `flat_feeds` names them) and
    nodes at the front of the graph build the sequence/optional from them, so flatten_sequences
    can follow it. Returns the number of nodes put in front."""
    front, inputs = [], []
    for v in graph.inputs:
        if v.name not in values or isinstance(v.type, TensorType):
            inputs.append(v)
            continue
        t, value = v.type, values[v.name]
        elem = t.elem
        if isinstance(t, OptionalType) and value is None:
            front.append(Node(ops.Optional, [], {"type": elem}, [v]))
            continue
        if isinstance(t, OptionalType):
            t, elem = elem, getattr(elem, "elem", elem)
        if isinstance(elem, SequenceType) or isinstance(t, SequenceType) and \
                not isinstance(elem, TensorType):
            raise LoweringError(f"graph input '{v.name}' ({v.type}) nests sequences; the back "
                                "end takes sequences of tensors")
        parts = []
        for name, a in flat_feeds(v.name, value):
            parts.append(Value(graph.claim(graph.fresh_name(name)),
                               TensorType(elem.dtype, tuple(a.shape))))
        inputs += parts
        seq = v if not isinstance(v.type, OptionalType) else graph.new_value(v.name, t)
        if isinstance(t, SequenceType):
            front.append(Node(ops.SequenceConstruct, parts, {}, [seq]) if parts else
                         Node(ops.SequenceEmpty, [], {"dtype": elem.dtype}, [seq]))
        else:
            seq = parts[0]
        if isinstance(v.type, OptionalType):
            front.append(Node(ops.Optional, [seq], {}, [v]))
    graph.inputs = inputs
    graph.nodes[0:0] = front
    return len(front)


class _Flattener(BodyInliner):
    sequence_ops = SEQUENCE_OPS

    def __init__(self, graph: Graph):
        self.graph = graph
        self.struct: dict[int, object] = {}        # id(Value) -> list[Value] | Absent | Value
        self.copies: set[int] = set()              # ids of nodes copied from bodies

    def run(self) -> None:
        g = self.graph
        k = 0
        while k < len(g.nodes):
            node = g.nodes[k]
            if id(node) in self.copies and self.settle_copy(node):
                g.nodes[k:k + 1] = []           # evaluated: its outputs are constants now
                continue
            if node.op in SEQUENCE_OPS or (node.op is ops.Identity and self._is_struct(
                    node.inputs[0])) or (node.op is ops.Loop and self._touches_structures(node)) \
                    or (node.op is ops.If and self.if_touches_structures(node)):
                new = self.handle(node)
                g.nodes[k:k + 1] = new
                if not new:
                    for v in node.outputs:
                        if v is not None:
                            g._names.discard(v.name)
                continue            # the new nodes are looked at next
            for v in node.inputs:
                if v is not None and self._is_struct(v):
                    self.fail(node, f"{node.op.name} reads the {v.type} %{v.name}, which the "
                              "native back end cannot pass to it")
            for sub in subgraphs(node):
                if has_structures_within(sub) or \
                        any(id(v) in self.struct for v in sub.captured_values()):
                    self.fail(node, f"a sequence or optional inside the body of {node.op.name} "
                              "(its structure changes per iteration)")
            k += 1

    # --- structures -------------------------------------------------------------------------

    def _touches_structures(self, node: Node) -> bool:
        """Does a Loop carry or read a sequence/optional (then it is unrolled)?"""
        body = node.attrs.get("body")
        return any(self._is_struct(v) for v in node.inputs) or body is not None and (
            has_structures_within(body) or
            any(self._is_struct(v) for v in body.captured_values()))

    def _is_struct(self, v: Value | None) -> bool:
        return v is not None and (id(v) in self.struct or not isinstance(v.type, TensorType))

    def seq(self, node: Node, v: Value) -> list:
        s = self.struct.get(id(v))
        if not isinstance(s, list):
            self.fail(node, f"%{v.name} is not a sequence known when compiling")
        return s

    def output(self, v: Value) -> tuple:
        s = self.struct.get(id(v))
        if s is None:
            if not isinstance(v.type, TensorType):
                raise LoweringError(f"graph output '{v.name}' ({v.type}) has a structure "
                                    "known only at run time")
            return "tensor", [v]
        if isinstance(s, list):
            return ("seq", len(s)), list(s)
        if s is ABSENT:
            return ("opt", None), []
        entry, values = self.output(s)
        return ("opt", entry), values

    @staticmethod
    def fail(node: Node, message: str):
        raise LoweringError(message, node=node, ops=[node.op.name],
                            hint="make the sequence's length and positions constants, or run "
                                 "the model with the interpreter (backend 'interpreter')")

    def position(self, node: Node, i: int, length: int, allow_end: bool, default: int) -> int:
        v = node.inputs[i] if i < len(node.inputs) else None
        if v is None:
            return default
        name = node.op.inputs[min(i, len(node.op.inputs) - 1)].name
        if v.data is None:
            self.fail(node, f"input '{name}' must be known when compiling (it picks a "
                      "sequence position)")
        p = int(np.asarray(v.data).reshape(-1)[0])
        hi = length if allow_end else length - 1
        if not -length <= p <= hi:
            self.fail(node, f"position {p} is out of range for a sequence of length {length}")
        return p + length if p < 0 else p

    # --- one node ---------------------------------------------------------------------------

    def handle(self, node: Node) -> list[Node]:
        """Record the node's structure (or rewire its readers); returns nodes replacing it."""
        op, ins, out = node.op, node.inputs, node.outputs[0]
        if op is ops.SequenceConstruct:
            self.struct[id(out)] = list(ins)
        elif op is ops.SequenceEmpty:
            self.struct[id(out)] = []
        elif op is ops.Identity or op is ops.Optional and ins and ins[0] is not None:
            self.struct[id(out)] = self.struct.get(id(ins[0]), ins[0])
        elif op is ops.Optional:
            self.struct[id(out)] = ABSENT
        elif op is ops.SequenceAt:
            s = self.seq(node, ins[0])
            self._alias(out, s[self.position(node, 1, len(s), False, 0)])
        elif op is ops.SequenceInsert:
            s = self.seq(node, ins[0])
            at = self.position(node, 2, len(s), True, len(s))
            self.struct[id(out)] = s[:at] + [ins[1]] + s[at:]
        elif op is ops.SequenceErase:
            s = self.seq(node, ins[0])
            if not s:
                self.fail(node, "cannot erase from an empty sequence")
            at = self.position(node, 1, len(s), False, len(s) - 1)
            self.struct[id(out)] = s[:at] + s[at + 1:]
        elif op is ops.SequenceLength:
            self._alias(out, self.graph.add_constant(
                np.array(len(self.seq(node, ins[0])), np.int64), out.name))
        elif op is ops.OptionalHasElement:
            v = ins[0] if ins else None
            present = v is not None and self.struct.get(id(v)) is not ABSENT
            self._alias(out, self.graph.add_constant(np.array(present), out.name))
        elif op is ops.OptionalGetElement:
            s = self.struct.get(id(ins[0]), ins[0])
            if s is ABSENT:
                self.fail(node, "OptionalGetElement of an optional that is always empty")
            self._alias(out, s)
        elif op is ops.SplitToSequence:
            return self.split(node)
        elif op is ops.ConcatFromSequence:
            return self.concat(node)
        elif op is ops.SequenceMap:
            return self.inline_map(node)
        elif op is ops.Loop:
            return self.unroll_loop(node)
        elif op is ops.If:
            return self.handle_if(node)
        return []

    def _alias(self, old: Value, new) -> None:
        """Readers of `old` read `new` (a tensor value, or a structure)."""
        if isinstance(new, Value) and id(new) in self.struct:
            new = self.struct[id(new)]
        if isinstance(new, Value):
            self.graph.replace_all_uses(old, new)
        else:
            self.struct[id(old)] = new

    def _node(self, op, inputs, attrs, hint: str, outputs: int = 1) -> Node:
        outs = [self.graph.new_value(hint, TensorType(_first_dtype(inputs), None))
                for _ in range(outputs)]
        node = Node(op, inputs, attrs, outs)
        for v, t in zip(outs, infer_node(node)):
            v.type = t
        return node

    def _const(self, values, name: str) -> Value:
        return self.graph.add_constant(np.array(values, np.int64), name)

    def split(self, node: Node) -> list[Node]:
        x = node.inputs[0]
        split = node.inputs[1] if len(node.inputs) > 1 else None
        a = node.op.full_attrs(node.attrs, node)
        t = x.type
        if t.shape is None:
            self.fail(node, f"SplitToSequence of %{x.name} of unknown rank")
        axis = a["axis"] % len(t.shape)
        n = t.shape[axis]
        if split is not None and split.data is None:
            self.fail(node, "input 'split' must be known when compiling (it decides the "
                      "number of parts)")
        if not isinstance(n, int) and split is not None and np.ndim(split.data) == 1 and \
                isinstance(n, str) and any(v is x for v in self.graph.inputs):
            n = self._fix_symbol(n, int(np.sum(split.data)))    # the sizes must add up to n
        if not isinstance(n, int):
            self.fail(node, f"input 'input' has the symbolic size {n} along axis {axis}: the "
                      "number of parts is only known at run time")
        base = node.outputs[0].name
        nodes, parts = [], []
        if split is None:
            for k in range(n):
                if a["keepdims"]:
                    nodes.append(self._node(ops.Slice, [x, self._const([k], "start"), self._const(
                        [k + 1], "end"), self._const([axis], "axis")], {}, f"{base}.{k}"))
                else:
                    nodes.append(self._node(ops.Gather, [x, self._const(k, "index")],
                                            {"axis": axis}, f"{base}.{k}"))
                parts.append(nodes[-1].outputs[0])
        else:
            s = np.asarray(split.data)
            if (s < 0).any() or (s.ndim == 0 and int(s) == 0 and n):
                self.fail(node, f"split sizes must be positive, got {s.tolist()}")
            sizes = ([int(s)] * (n // int(s)) + ([n % int(s)] if n % int(s) else [])
                     if int(s) else []) if s.ndim == 0 else [int(v) for v in s]
            if sum(sizes) != n:
                self.fail(node, f"split sizes {sizes} sum to {sum(sizes)}, not {n}")
            start = 0
            for k, size in enumerate(sizes):
                nodes.append(self._node(ops.Slice, [x, self._const([start], "start"), self._const(
                    [start + size], "end"), self._const([axis], "axis")], {}, f"{base}.{k}"))
                parts.append(nodes[-1].outputs[0])
                start += size
        self.struct[id(node.outputs[0])] = parts
        return nodes

    def _fix_symbol(self, name: str, size: int) -> int:
        """Every graph input dim named `name` becomes `size` (the input check then rejects
        other sizes with ShapeMismatchError)."""
        for v in self.graph.inputs:
            if isinstance(v.type, TensorType) and v.type.shape is not None:
                v.type = v.type.with_shape(size if d == name else d for d in v.type.shape)
        return size

    def concat(self, node: Node) -> list[Node]:
        s = self.seq(node, node.inputs[0])
        if not s:
            self.fail(node, "cannot concatenate an empty sequence")
        a = node.op.full_attrs(node.attrs, node)
        out, nodes = node.outputs[0], []
        parts = s
        if a["new_axis"]:
            rank = s[0].type.rank if isinstance(s[0].type, TensorType) else None
            if rank is None:
                self.fail(node, "ConcatFromSequence with new_axis of elements of unknown rank")
            axis = self._const([a["axis"] % (rank + 1)], "axis")
            nodes = [self._node(ops.Unsqueeze, [v, axis], {}, f"{out.name}.part") for v in s]
            parts = [n.outputs[0] for n in nodes]
        concat = Node(ops.Concat, parts, {"axis": a["axis"]}, [out])
        return nodes + [concat]


def _first_dtype(inputs):
    return inputs[0].type.dtype
