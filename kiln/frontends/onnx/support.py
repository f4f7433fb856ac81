"""Which ONNX nodes kiln can run, and the check that lists every op it cannot before importing."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import onnx
from onnx import AttributeProto, defs

from ...errors import UnsupportedOpError
from ...ir.ops import OP_TABLE
from . import adapters
from .functions import schema_function
from .protos import normalize_domain


def schema_since(op_type: str, version: int | None, domain: str) -> int | None:
    """since_version of the schema the model's opset selects, None if ONNX has no such op."""
    try:
        if version is None:
            return defs.get_schema(op_type, domain=domain).since_version
        return defs.get_schema(op_type, version, domain).since_version
    except defs.SchemaError:
        return None


def classify(imp, node: onnx.NodeProto, opsets: dict) -> tuple[str, Any, int | None]:
    """How a node (of the model importer `imp`, which knows the model-local functions) is handled:
    ("kiln", op name, since) | ("local", FunctionProto, None) |
    ("schema", OpSchema, since) | ("unsupported", reason, since)."""
    domain = normalize_domain(node.domain)
    key = (domain, node.op_type, node.overload)
    if key in imp.functions:
        return "local", imp.functions[key], None
    version = opsets.get(domain)
    since = schema_since(node.op_type, version, domain)
    if since is not None:
        reason = adapters.unsupported_form(node.op_type, since, domain)
        if reason:
            return "unsupported", f"old form {reason}", since
    if domain == "" and since is None and node.op_type in adapters.LEGACY_OPS:
        return "kiln", node.op_type, None
    name = adapters.target_name(node.op_type) if domain == "" else node.op_type
    op = OP_TABLE.get(name)
    if op is not None and normalize_domain(op.domain) == domain:
        return "kiln", name, since
    if since is not None:
        schema = defs.get_schema(node.op_type, version, domain) if version is not None else \
            defs.get_schema(node.op_type, domain=domain)
        if schema.has_function or schema.has_context_dependent_function:
            return "schema", schema, since
    return "unsupported", "", since


def check_supported(imp) -> None:
    """Walk the whole model and raise one UnsupportedOpError naming every op kiln cannot run."""
    missing: dict[str, list[str]] = defaultdict(list)
    reasons: dict[str, str] = {}
    seen_functions: set = set()

    def walk(nodes, opsets):
        for node in nodes:
            domain = normalize_domain(node.domain)
            for a in node.attribute:
                if a.type == AttributeProto.GRAPH:
                    walk(a.g.node, opsets)
                for g in a.graphs:
                    walk(g.node, opsets)
            if domain == "" and node.op_type == "Constant":
                continue
            how, what, _ = classify(imp, node, opsets)
            if how == "local":
                key = (domain, node.op_type, node.overload)
                if key not in seen_functions:
                    seen_functions.add(key)
                    fops = dict(opsets)
                    fops.update({normalize_domain(o.domain): o.version for o in what.opset_import})
                    walk(what.node, fops)
            elif how == "schema":
                if what.has_function:
                    key = ("schema", domain, node.op_type)
                    if key not in seen_functions:
                        seen_functions.add(key)
                        fproto = schema_function(what, opsets.get(domain), node, None)
                        if fproto is not None:
                            fops = dict(opsets)
                            fops.update({normalize_domain(o.domain): o.version
                                         for o in fproto.opset_import})
                            walk(fproto.node, fops)
            elif how == "unsupported":
                label = qualified_name(domain, node.op_type)
                missing[label].append(node.name)
                if what:
                    reasons[label] = what

    walk(imp.model.graph.node, imp.opsets)
    if missing:
        parts = []
        for label, names in sorted(missing.items()):
            named = [repr(n) for n in names if n][:3]
            s = f"{label} ({len(names)} node{'s' if len(names) != 1 else ''}"
            s += f", e.g. {', '.join(named)})" if named else ")"
            if label in reasons:
                s += f" [{reasons[label]}]"
            parts.append(s)
        raise UnsupportedOpError(
            f"the model uses {len(missing)} op type(s) kiln does not support: " + "; ".join(parts),
            ops=sorted(missing), hint="see docs/ir.md for the ops kiln supports")


def qualified_name(domain: str, op_type: str) -> str:
    return f"{domain}::{op_type}" if domain else op_type
