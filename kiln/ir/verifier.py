"""The Graph IR verifier: the invariants every pass must keep.

Rules (each failure names the node and the rule):
  ssa        every value is defined exactly once (input, constant or one node output)
  names      value names are unique in a graph and the graphs enclosing it
  order      a node reads only values defined before it (here or in an enclosing graph)
  arity      a node has as many inputs as its op allows, and every required one
  attribute  attributes are known to the op, of the right kind, required ones present
  type       declared output types agree with the op's inference
  constant   a constant's data matches its declared type
  output     graph outputs are defined values
"""

from __future__ import annotations

import numpy as np

from ..errors import AttributeValueError, TypeInferenceError, VerificationError
from .attrs import check_attr_values
from .dtypes import DType
from .graph import Graph, subgraphs
from .infer import check_operands, infer_node
from .types import TensorType, types_compatible


def verify(graph: Graph) -> None:
    """Raise VerificationError at the first broken invariant; return None when all hold."""
    _verify(graph, outer_defined=set(), outer_names=set())


def _verify(g: Graph, outer_defined: set, outer_names: set) -> None:
    defined = set(outer_defined)
    names = set()

    def define(v, node=None):
        if id(v) in defined:
            raise VerificationError(f"value %{v.name} is defined more than once", rule="ssa",
                                    node=node)
        if v.name in names or v.name in outer_names:
            raise VerificationError(f"value name %{v.name} is used twice in one scope",
                                    rule="names", node=node)
        defined.add(id(v))
        names.add(v.name)

    for v in g.inputs:
        define(v)
    for c in g.constants:
        define(c)
        _check_constant(c)
    for node in g.nodes:
        for i, v in enumerate(node.inputs):
            if v is not None and id(v) not in defined:
                raise VerificationError(
                    f"input #{i} %{v.name} is used before it is defined", rule="order", node=node,
                    hint="nodes must be in topological order")
        try:
            check_operands(node.op, node.inputs, node)
        except TypeInferenceError as e:
            raise VerificationError(e.message, rule="arity", node=node) from e
        attrs = dict(node.attrs)
        try:
            check_attr_values(node.op, attrs, node)
            node.op.full_attrs(attrs, node)
        except AttributeValueError as e:
            raise VerificationError(e.message, rule="attribute", node=node) from e
        for sub in subgraphs(node):
            _verify(sub, defined, outer_names | names)
        try:
            inferred = infer_node(node)
        except TypeInferenceError as e:
            raise VerificationError(e.message, rule="type", node=node) from e
        for v, t in zip(node.outputs, inferred):
            if v is None:
                continue
            if v.producer is not node:
                raise VerificationError(f"output %{v.name} does not point back to its node",
                                        rule="ssa", node=node)
            if not types_compatible(v.type, t):
                raise VerificationError(
                    f"output %{v.name} is declared {v.type} but the op infers {t}", rule="type",
                    node=node)
            define(v, node)
    for v in g.outputs:
        if v is None or id(v) not in defined:
            raise VerificationError(f"graph @{g.name} returns %{getattr(v, 'name', '?')}, which "
                                    f"is not defined", rule="output")


def _check_constant(c) -> None:
    t = c.type
    if not isinstance(t, TensorType) or not isinstance(c.data, np.ndarray):
        raise VerificationError(f"constant %{c.name} must hold a NumPy array of a tensor type",
                                rule="constant")
    try:
        dt = DType.from_numpy(c.data.dtype)
    except KeyError:
        dt = None
    if dt is not t.dtype or t.shape != tuple(c.data.shape):
        raise VerificationError(
            f"constant %{c.name} holds {c.data.dtype}{list(c.data.shape)} but is declared {t}",
            rule="constant")
