"""Values, nodes and graphs: kiln's typed SSA dataflow IR.

A `Value` is produced exactly once: by a node, as a graph input, or as a constant (whose data is
held by reference, never copied into text). A `Node` applies one OpDef to input values (None for
an absent optional input) and defines its output values (None for an output nobody asked for).
A `Graph` owns its inputs, constants and nodes, in topological order, and names its outputs.
Subgraphs (If/Loop/Scan bodies) are Graph-valued attributes and may read values of the graphs
that enclose them.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np

from .dtypes import DType
from .opdef import OpDef
from .types import TensorType, Type


class Value:
    __slots__ = ("name", "type", "producer", "data")

    def __init__(self, name: str, type: Type, producer: "Node | None" = None,
                 data: np.ndarray | None = None):
        self.name = name
        self.type = type
        self.producer = producer
        self.data = data          # set for constants only

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


class Node:
    __slots__ = ("op", "inputs", "attrs", "outputs", "name")

    def __init__(self, op: OpDef, inputs: Sequence[Value | None], attrs: dict,
                 outputs: Sequence[Value | None], name: str = ""):
        self.op = op
        self.inputs = list(inputs)
        self.attrs = dict(attrs)      # only the attributes set explicitly; defaults come from op
        self.outputs = list(outputs)
        self.name = name              # the node's name in the source model, for messages
        for v in self.outputs:
            if v is not None:
                v.producer = self

    def attr(self, name: str):
        """An attribute's value, or its default."""
        if name in self.attrs:
            return self.attrs[name]
        return self.op.attr_map[name].default

    def __repr__(self) -> str:
        outs = ", ".join(f"%{v.name}" if v else "_" for v in self.outputs)
        ins = ", ".join(f"%{v.name}" if v else "_" for v in self.inputs)
        return f"<Node {outs} = {self.op.name}({ins})>"


class Graph:
    def __init__(self, name: str = "main"):
        self.name = name
        self.inputs: list[Value] = []
        self.constants: list[Value] = []
        self.nodes: list[Node] = []
        self.outputs: list[Value] = []
        self._names: set[str] = set()
        self._counter = itertools.count()
        self.parent: Graph | None = None   # the enclosing graph, for subgraphs

    # --- naming ---------------------------------------------------------------------------
    def _scope_names(self) -> set[str]:
        return self._names

    def taken(self, name: str) -> bool:
        g = self
        while g is not None:
            if name in g._names:
                return True
            g = g.parent
        return False

    def fresh_name(self, hint: str = "t") -> str:
        """A name not yet used in this graph or any graph enclosing it."""
        if hint and not self.taken(hint):
            return hint
        root = hint or "t"
        while True:
            name = f"{root}_{next(self._counter)}"
            if not self.taken(name):
                return name

    def claim(self, name: str) -> str:
        """Reserve `name` here and in every enclosing graph, so a value added to an outer graph
        later never takes a name a subgraph already uses."""
        g = self
        while g is not None:
            g._names.add(name)
            g = g.parent
        return name

    # --- construction -------------------------------------------------------------------
    def add_input(self, name: str, type: Type) -> Value:
        v = Value(self.claim(self.fresh_name(name)), type)
        self.inputs.append(v)
        return v

    def add_constant(self, data: np.ndarray, name: str = "c", type: Type | None = None) -> Value:
        data = np.asarray(data) if not isinstance(data, np.ndarray) else data
        if type is None:
            type = TensorType(DType.from_numpy(data.dtype), tuple(data.shape))
        v = Value(self.claim(self.fresh_name(name)), type, data=data)
        self.constants.append(v)
        return v

    def new_value(self, name: str, type: Type) -> Value:
        return Value(self.claim(self.fresh_name(name)), type)

    def append(self, node: Node) -> Node:
        self.nodes.append(node)
        return node

    # --- queries ------------------------------------------------------------------------
    def values(self) -> Iterator[Value]:
        yield from self.inputs
        yield from self.constants
        for n in self.nodes:
            yield from (v for v in n.outputs if v is not None)

    def users(self, value: Value) -> list[Node]:
        """Nodes of this graph (including nested subgraphs' captures) that read `value`."""
        return [n for n in self.nodes if any(i is value for i in n.inputs) or
                any(value in g.captured_values() for g in subgraphs(n))]

    def captured_values(self) -> set[Value]:
        """Values this graph reads that it does not define (defined by an enclosing graph)."""
        defined = set(map(id, self.values()))
        out = set()
        for n in self.nodes:
            for v in n.inputs:
                if v is not None and id(v) not in defined:
                    out.add(v)
            for g in subgraphs(n):
                for v in g.captured_values():
                    if id(v) not in defined:
                        out.add(v)
        for v in self.outputs:
            if id(v) not in defined:
                out.add(v)
        return out

    # --- mutation (used by passes) ------------------------------------------------------
    def replace_all_uses(self, old: Value, new: Value) -> int:
        """Make every reader of `old` (nodes here and in subgraphs, graph outputs) read `new`."""
        count = 0
        for n in self.nodes:
            for i, v in enumerate(n.inputs):
                if v is old:
                    n.inputs[i] = new
                    count += 1
            for g in subgraphs(n):
                count += g.replace_all_uses(old, new)
        for i, v in enumerate(self.outputs):
            if v is old:
                self.outputs[i] = new
                count += 1
        return count

    def remove_nodes(self, dead) -> None:
        """Drop the given nodes (a set or list of Node) and release their output names."""
        dead_ids = {id(n) for n in dead}
        for n in self.nodes:
            if id(n) in dead_ids:
                for v in n.outputs:
                    if v is not None:
                        self._names.discard(v.name)
        self.nodes = [n for n in self.nodes if id(n) not in dead_ids]

    def remove_constants(self, dead) -> None:
        dead_ids = {id(c) for c in dead}
        for c in self.constants:
            if id(c) in dead_ids:
                self._names.discard(c.name)
        self.constants = [c for c in self.constants if id(c) not in dead_ids]

    def __repr__(self) -> str:
        return f"<Graph {self.name}: {len(self.inputs)} inputs, {len(self.nodes)} nodes>"

    def __str__(self) -> str:
        from .printer import print_graph
        return print_graph(self)


def subgraphs(node: Node) -> list[Graph]:
    """Graph-valued attributes of a node, in attribute order."""
    out = []
    for v in node.attrs.values():
        if isinstance(v, Graph):
            out.append(v)
        elif isinstance(v, (list, tuple)) and v and isinstance(v[0], Graph):
            out.extend(v)
    return out
