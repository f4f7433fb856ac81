"""Writing graphs in Python.

    b = GraphBuilder("mlp")
    x = b.input("x", tensor(f32, "batch", 4))
    w = b.constant(np.ones((4, 2), np.float32), "w")
    y = b.Relu(b.MatMul(x, w))
    b.output(y)
    g = b.graph

`b.Op(*inputs, **attrs)` adds one node of the op named Op and returns its output (a tuple when
the op has several: pass `outputs=n` to say how many, or a list of their names). Outputs are
named after the node's `name=` when given, else after the op (`relu`, `relu_0`, ...). Types are
inferred as nodes are added.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from .attrs import check_attr_values
from .graph import Graph, Node, Value
from .infer import infer_types
from .opdef import OpDef
from .ops import get_op
from .types import Type


class GraphBuilder:
    def __init__(self, name: str = "main", parent: Graph | None = None):
        self.graph = Graph(name)
        self.graph.parent = parent

    def input(self, name: str, type: Type) -> Value:
        return self.graph.add_input(name, type)

    def constant(self, data, name: str = "c", dtype=None) -> Value:
        arr = np.asarray(data, dtype=dtype.np if hasattr(dtype, "np") else dtype)
        return self.graph.add_constant(arr, name)

    def output(self, *values: Value) -> None:
        self.graph.outputs.extend(values)

    def add(self, op: OpDef, inputs: Sequence[Value | None], attrs: dict | None = None,
            outputs: int | Sequence[str] = 1, name: str = "") -> list[Value]:
        attrs = dict(attrs or {})
        if isinstance(outputs, int):
            hint = re.sub(r"[^A-Za-z0-9_.]", "_", name) if name else op.name.lower()
            names = [hint] * outputs
        else:
            names = list(outputs)
        node = Node(op, inputs, attrs, [None] * len(names), name)
        check_attr_values(op, attrs, node)
        node.attrs = dict(attrs)      # the normalized values (lists become tuples)
        types = infer_types(op, inputs, attrs, len(names), node)
        node.outputs = [self.graph.new_value(n, t) for n, t in zip(names, types)]
        for v in node.outputs:
            v.producer = node
        self.graph.append(node)
        return node.outputs

    def __getattr__(self, opname: str):
        if opname.startswith("_"):
            raise AttributeError(opname)
        op = get_op(opname)

        def make(*inputs: Value | None, outputs: int | Sequence[str] = 1, name: str = "", **attrs):
            outs = self.add(op, inputs, attrs, outputs, name)
            return outs[0] if len(outs) == 1 else tuple(outs)

        return make
