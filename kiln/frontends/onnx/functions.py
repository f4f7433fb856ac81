"""Function bodies: ONNX schema functions and model-local functions, and their attribute references."""

from __future__ import annotations

import onnx
from onnx import AttributeProto, defs

from .protos import type_to_proto

A = AttributeProto

def schema_function(schema, opset_version: int | None, node: onnx.NodeProto,
                    inputs) -> onnx.FunctionProto | None:
    """The function body ONNX defines for `schema` at the model's opset (None if unavailable).

    Context-dependent bodies need the input types; with `inputs` None they are not built."""
    version = opset_version if opset_version is not None else defs.onnx_opset_version()
    data = b""
    if schema.has_function:
        data = schema.get_function_with_opset_version(version)
    if not data and schema.has_context_dependent_function and inputs is not None:
        versions = [v for v in schema.context_dependent_function_opset_versions if v <= version]
        if versions:
            full = onnx.NodeProto()
            full.CopyFrom(node)
            given = {a.name for a in node.attribute}
            for name, a in schema.attributes.items():
                if name not in given and a.default_value.type != A.UNDEFINED:
                    full.attribute.append(a.default_value)
            types = [type_to_proto(v.type if v is not None else None).SerializeToString()
                     for v in inputs]
            try:
                data = schema.get_context_dependent_function_with_opset_version(
                    max(versions), full.SerializeToString(), types)
            except Exception:   # the builder rejects these inputs: treat as unavailable
                data = b""
    if not data:
        return None
    fproto = onnx.FunctionProto()
    fproto.ParseFromString(data)
    return fproto if len(fproto.node) else None


def schema_attrs(schema) -> dict[str, AttributeProto]:
    out = {}
    for name, a in schema.attributes.items():
        if a.default_value.type != A.UNDEFINED:
            d = AttributeProto()
            d.CopyFrom(a.default_value)
            d.name = name
            out[name] = d
    return out


def local_function_attrs(fproto: onnx.FunctionProto) -> dict[str, AttributeProto]:
    return {a.name: a for a in fproto.attribute_proto}


def resolve_attribute_refs(node: onnx.NodeProto, caller: dict[str, AttributeProto]) -> onnx.NodeProto:
    """A copy of a function-body node with `ref_attr_name` attributes replaced by the caller's."""
    if not any(a.ref_attr_name or a.type in (A.GRAPH, A.GRAPHS) for a in node.attribute):
        return node
    out = onnx.NodeProto()
    out.CopyFrom(node)
    del out.attribute[:]
    for a in node.attribute:
        if a.ref_attr_name:
            if a.ref_attr_name not in caller:
                continue
            b = AttributeProto()
            b.CopyFrom(caller[a.ref_attr_name])
            b.name = a.name
            out.attribute.append(b)
            continue
        b = AttributeProto()
        b.CopyFrom(a)
        if a.type == A.GRAPH:
            _resolve_graph_refs(b.g, caller)
        for g in b.graphs:
            _resolve_graph_refs(g, caller)
        out.attribute.append(b)
    return out


def _resolve_graph_refs(g: onnx.GraphProto, caller) -> None:
    nodes = [resolve_attribute_refs(n, caller) for n in g.node]
    del g.node[:]
    g.node.extend(nodes)
