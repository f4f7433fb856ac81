"""The reference interpreter: runs a Graph node by node with each op's NumPy reference.

It is the ground truth for every pass and backend. Inputs are checked against the declared types
first; each node's outputs are checked against its declared output types, so a wrong reference or
wrong inference shows up at the node that caused it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ExecutionError, KilnError
from .dtypes import DType
from .graph import Graph, Node, Value
from .opdef import RunContext
from .signature import bind_inputs
from .types import TensorType


class _Env:
    """Values by identity, falling back to the enclosing graph's environment."""

    def __init__(self, parent: "_Env | None" = None):
        self.vals: dict[int, Any] = {}
        self.parent = parent

    def __setitem__(self, v: Value, x):
        self.vals[id(v)] = x

    def __getitem__(self, v: Value):
        env = self
        while env is not None:
            if id(v) in env.vals:
                return env.vals[id(v)]
            env = env.parent
        raise ExecutionError(f"value %{v.name} is read before it is defined",
                             hint="run the verifier: the graph is not in topological order")


def interpret(graph: Graph, feeds: Mapping[str, Any] | Sequence[Any]) -> list:
    """Run `graph` on `feeds` (by input name, or in input order); returns outputs in order."""
    values, _ = bind_inputs(graph.inputs, feeds)
    with np.errstate(all="ignore"):
        outputs = _run(graph, values, None)
    # an output may be a view of a constant or an input (Reshape, Slice...): hand out copies, so
    # a caller writing into a result never changes the graph
    borrowed = {id(x) for x in values} | {id(c.data) for c in graph.constants}
    return [_own(x, borrowed) for x in outputs]


def _own(x, borrowed: set):
    if isinstance(x, np.ndarray):
        return x.copy() if id(x) in borrowed or x.base is not None or not x.flags.owndata else x
    if isinstance(x, list):
        return [_own(e, borrowed) for e in x]
    return x


def interpret_named(graph: Graph, feeds: Mapping[str, Any] | Sequence[Any]) -> dict[str, Any]:
    return {v.name: x for v, x in zip(graph.outputs, interpret(graph, feeds))}


def _run(graph: Graph, inputs: Sequence[Any], parent: _Env | None) -> list:
    env = _Env(parent)
    for v, x in zip(graph.inputs, inputs):
        env[v] = x
    for c in graph.constants:
        env[c] = c.data
    for node in graph.nodes:
        _run_node(node, env)
    return [env[v] for v in graph.outputs]


def _run_node(node: Node, env: _Env) -> None:
    args = [env[v] if v is not None else None for v in node.inputs]

    def run_subgraph(g: Graph, sub_inputs: Sequence[Any]) -> list:
        return _run(g, sub_inputs, env)

    for v, x in zip(node.outputs, evaluate_node(node, args, run_subgraph)):
        if v is not None:
            env[v] = x


def evaluate_node(node: Node, args: Sequence[Any], run_subgraph=None) -> list:
    """Run one node's reference on concrete inputs; returns one entry per node output (None for
    an output the node does not keep). Used by the interpreter and by constant folding."""
    ctx = RunContext(node.op, node.op.full_attrs(node.attrs, node), node, run_subgraph,
                     len(node.outputs), [v.type if v is not None else None for v in node.outputs])
    try:
        with np.errstate(all="ignore"):
            result = node.op.reference(ctx, *args)
    except KilnError as e:
        if e.node is None:
            e.node = node
            e.args = (e._format(),)
        raise
    except Exception as e:
        raise ExecutionError(f"{type(e).__name__}: {e}", node=node,
                             hint="check the node's input values and shapes") from e
    if not isinstance(result, tuple):
        result = (result,)
    if len(result) < sum(1 for v in node.outputs if v is not None):
        raise ExecutionError(f"reference returned {len(result)} outputs, node has {len(node.outputs)}",
                             node=node)
    return [None if v is None else _conform(node, v, x) for v, x in zip(node.outputs, result)]


def _conform(node: Node, v: Value, x: Any):
    """Check a produced value against its declared type; fix up only a NumPy scalar or dtype drift."""
    t = v.type
    if not isinstance(t, TensorType):
        return x
    if not isinstance(x, np.ndarray):
        x = np.asarray(x, dtype=t.dtype.np)
    if x.dtype != t.dtype.np:
        if t.dtype is DType.string and x.dtype.kind in "USO":
            x = x.astype(object)
        else:
            x = x.astype(t.dtype.np)
    if t.shape is not None:
        ok = x.ndim == len(t.shape) and all(
            not isinstance(d, int) or d == s for d, s in zip(t.shape, x.shape))
        if not ok:
            raise ExecutionError(
                f"output %{v.name} has shape {x.shape} but its type says {t}", node=node,
                hint="the inputs do not match the shapes the graph was built for")
    return x
