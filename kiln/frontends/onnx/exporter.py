"""kiln Graph -> ONNX ModelProto.

Every kiln op follows the newest ONNX signature, so a graph exports at the newest opset of each
domain it uses. Constants of the main graph become initializers; constants of subgraphs become
Constant nodes inside them. Attributes are written by their kind (a DType as its ONNX code, a
Type as a TypeProto, a Graph as a GraphProto).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import onnx
from onnx import AttributeProto, defs, helper

from ...ir import ops
from ...ir.dtypes import DType
from ...ir.graph import Graph, Node
from ...ir.opdef import AttrKind
from ...ir.types import OptionalType, SequenceType, TensorType
from .protos import array_to_tensor, normalize_domain, type_to_proto, value_info

A = AttributeProto
_KIND_TYPES = {
    AttrKind.INT: A.INT, AttrKind.FLOAT: A.FLOAT, AttrKind.STRING: A.STRING,
    AttrKind.INTS: A.INTS, AttrKind.FLOATS: A.FLOATS, AttrKind.STRINGS: A.STRINGS,
    AttrKind.TENSOR: A.TENSOR, AttrKind.GRAPH: A.GRAPH, AttrKind.GRAPHS: A.GRAPHS,
    AttrKind.TYPE: A.TYPE_PROTO, AttrKind.DTYPE: A.INT,
}


def export_model(graph: Graph, path: str | os.PathLike | None = None, *,
                 opsets: dict[str, int] | None = None, producer: str = "kiln") -> onnx.ModelProto:
    """The ONNX model of `graph` (also written to `path` when given)."""
    domains: set[str] = set()
    gp = _export_graph(graph, domains, top=True)
    imports = {"": newest_opset("")}
    for d in sorted(domains):
        imports[d] = newest_opset(d)
    imports.update(opsets or {})
    from ... import __version__
    model = helper.make_model(gp, producer_name=producer, producer_version=__version__,
                              opset_imports=[helper.make_opsetid(d, v) for d, v in imports.items()])
    if path is not None:
        save_model(model, path)
    return model


def save_model(model: onnx.ModelProto | Graph, path: str | os.PathLike) -> None:
    if isinstance(model, Graph):
        model = export_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


@functools.cache
def newest_opset(domain: str) -> int:
    if domain == "":
        return defs.onnx_opset_version()
    versions = [s.since_version for s in defs.get_all_schemas_with_history()
                if normalize_domain(s.domain) == domain]
    return max(versions, default=1)


def _export_graph(graph: Graph, domains: set[str], top: bool) -> onnx.GraphProto:
    nodes: list[onnx.NodeProto] = []
    initializers = []
    if top:
        initializers = [array_to_tensor(c.data, c.name) for c in graph.constants]
    else:
        for c in graph.constants:
            nodes.append(helper.make_node("Constant", [], [c.name],
                                          value=array_to_tensor(c.data, c.name)))
    arrays = {id(c.data): c.name for c in graph.constants}   # a weight is written once
    for n in graph.nodes:
        if n.op is ops.Fused:   # kiln's fused groups open back into their ops
            nodes.extend(_export_fused(n, domains, initializers if top else None, arrays))
        else:
            nodes.append(_export_node(n, domains))
    produced = {id(v) for n in graph.nodes for v in n.outputs if v is not None}
    outputs = []
    seen = set()
    for v in graph.outputs:
        name = v.name
        if (not top and id(v) not in produced) or name in seen:
            name = graph.fresh_name(f"{v.name}_out")
            graph.claim(name)
            nodes.append(helper.make_node("Identity", [v.name], [name]))
        seen.add(name)
        outputs.append(value_info(name, v.type))
    return helper.make_graph(nodes, graph.name, [value_info(v.name, v.type) for v in graph.inputs],
                             outputs, initializer=initializers)


def _export_fused(n: Node, domains: set[str], initializers: list | None, arrays: dict) -> list:
    """A Fused node's body as plain ONNX nodes: body inputs and results take the outer names
    (body names are unique in the enclosing graph, so the rest can stay); a body constant that
    holds an array already written is read from there."""
    body = n.attrs["body"]
    rename = {id(b): v.name for b, v in zip(body.inputs, n.inputs)}
    rename.update({id(b): v.name for b, v in zip(body.outputs, n.outputs) if v is not None})
    out = []
    for c in body.constants:
        if id(c.data) in arrays:
            rename[id(c)] = arrays[id(c.data)]
        elif initializers is not None:
            initializers.append(array_to_tensor(c.data, c.name))
            arrays[id(c.data)] = c.name
        else:
            out.append(helper.make_node("Constant", [], [c.name], value=array_to_tensor(c.data, c.name)))
    for m in body.nodes:
        if m.op is ops.Fused:
            out.extend(_export_fused(m, domains, initializers, arrays))
            continue
        proto = _export_node(m, domains)
        proto.input[:] = [rename.get(id(v), v.name) if v is not None else "" for v in m.inputs]
        proto.output[:] = [rename.get(id(v), v.name) if v is not None else "" for v in m.outputs]
        out.append(proto)
    return out


def _export_node(n: Node, domains: set[str]) -> onnx.NodeProto:
    domain = normalize_domain(n.op.domain)
    if domain:
        domains.add(domain)
    inputs = [v.name if v is not None else "" for v in n.inputs]
    outputs = [v.name if v is not None else "" for v in n.outputs]
    node = helper.make_node(n.op.name, inputs, outputs, name=n.name or None, domain=domain or None)
    for name, value in n.attrs.items():
        if value is None:
            continue
        spec = n.op.attr_map.get(name)
        kind = spec.kind if spec is not None else None
        node.attribute.append(_attribute(name, value, kind, domains))
    return node


def _attribute(name: str, value, kind: AttrKind | None, domains: set[str]) -> AttributeProto:
    if kind is AttrKind.DTYPE or isinstance(value, DType):
        return helper.make_attribute(name, value.onnx if isinstance(value, DType) else int(value))
    if kind is AttrKind.TYPE or isinstance(value, (TensorType, SequenceType, OptionalType)):
        a = AttributeProto()
        a.name = name
        a.type = A.TYPE_PROTO
        a.tp.CopyFrom(type_to_proto(value))
        return a
    if isinstance(value, Graph):
        return helper.make_attribute(name, _export_graph(value, domains, top=False))
    if isinstance(value, tuple) and value and isinstance(value[0], Graph):
        return helper.make_attribute(name, [_export_graph(g, domains, top=False) for g in value])
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, array_to_tensor(value))
    if kind is not None and isinstance(value, (tuple, list)) and len(value) == 0:
        return helper.make_attribute(name, [], attr_type=_KIND_TYPES[kind])
    if kind is AttrKind.FLOAT:
        value = float(value)
    elif kind is AttrKind.FLOATS:
        value = [float(x) for x in value]
    return helper.make_attribute(name, list(value) if isinstance(value, tuple) else value)
