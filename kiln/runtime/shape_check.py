"""Do the inputs' actual shapes fit the graph's ops? Checked once per set of input shapes.

`bind_inputs` checks each input against its declared type, but a graph with symbolic dims can
accept inputs that no op would: `MatMul(a: [n,k], b: [j,m])` with k != j passes the declared
types, and native code built for k == j would read past the end of `b`. So before the first
call with new shapes, the graph's type inference runs again with those concrete shapes; an op
that rejects them raises ShapeMismatchError naming the node, and the machine code never runs.
Values only known at run time (a Shape feeding a Reshape) stay unknown here, as they were when
compiling: the check never rejects what inference accepted with less information.
"""

from __future__ import annotations

from ..errors import ShapeMismatchError, TypeInferenceError, describe_node
from ..ir.graph import Graph
from ..ir.opdef import InferContext
from ..ir.types import TensorType


def check_shapes(graph: Graph, arrays: list) -> None:
    """Raise ShapeMismatchError when an op of `graph` rejects the shapes of `arrays` (the
    graph's inputs, in order)."""
    types = {id(v): TensorType(v.type.dtype, tuple(a.shape)) for v, a in zip(graph.inputs, arrays)}
    for node in graph.nodes:
        ins = [None if v is None else types.get(id(v), v.type) for v in node.inputs]
        consts = [None if v is None else v.data for v in node.inputs]
        try:
            ctx = InferContext(node.op, ins, node.op.full_attrs(node.attrs, node), consts,
                               len(node.outputs), node)
            outs = list(node.op.infer(ctx))
        except TypeInferenceError as e:
            shapes = ", ".join(f"{v.name}: {list(a.shape)}" for v, a in zip(graph.inputs, arrays))
            raise ShapeMismatchError(f"the inputs' shapes ({shapes}) do not fit "
                                     f"{describe_node(node)}: {e.message}",
                                     hint="inputs sharing a dimension must agree on its size "
                                          "the way the model's ops need") from None
        for v, t in zip(node.outputs, outs):
            if v is not None:
                types[id(v)] = t
