"""Graph IR → text. The grammar is in docs/ir.md; `parser.parse_graph` reads it back.

    graph @main(%x: f32[batch,4]) {
      const %w: f32[4,4] = #w                  # large constants by reference, never copied
      const %b: f32[4] = [0.5, 1.0, -2.0, 0.0]  # small ones inline
      %h: f32[batch,4] = MatMul(%x, %w)
      %y: f32[batch,4] = Add(%h, %b) loc("fc1/Add")
      return %y
    }
"""

from __future__ import annotations

import json
import math
import re

import numpy as np

from .dtypes import DType
from .graph import Graph, Node, Value
from .opdef import AttrKind
from .types import OptionalType, SequenceType, TensorType, Type, format_dim

INLINE_LIMIT = 16   # constants with at most this many elements are printed inline

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")
_NAME = re.compile(r"[A-Za-z0-9_.]+\Z")


def print_graph(graph: Graph, inline_limit: int = INLINE_LIMIT) -> str:
    return "\n".join(_graph_lines(graph, "", inline_limit)) + "\n"


def quote_name(name: str) -> str:
    """A value/graph name as printed after %, @ or #: bare when simple, else JSON-quoted."""
    return name if _NAME.match(name) else json.dumps(name)


def format_type(t: Type) -> str:
    if isinstance(t, TensorType):
        if t.shape is None:
            return f"{t.dtype.short}[*]"
        return f"{t.dtype.short}[{','.join(_dim(d) for d in t.shape)}]"
    if isinstance(t, SequenceType):
        return f"seq<{format_type(t.elem)}>"
    if isinstance(t, OptionalType):
        return f"opt<{format_type(t.elem)}>"
    raise TypeError(f"not a kiln type: {t!r}")


def _dim(d) -> str:
    if isinstance(d, str) and not _IDENT.match(d):
        return json.dumps(d)
    return format_dim(d)


def _ref(v: Value | None) -> str:
    return "_" if v is None else "%" + quote_name(v.name)


def _graph_lines(g: Graph, indent: str, limit: int) -> list[str]:
    params = ", ".join(f"{_ref(v)}: {format_type(v.type)}" for v in g.inputs)
    lines = [f"{indent}graph @{quote_name(g.name)}({params}) {{"]
    inner = indent + "  "
    for c in g.constants:
        lines.append(f"{inner}const {_ref(c)}: {format_type(c.type)} = {format_tensor_body(c.data, c.name, limit)}")
    for n in g.nodes:
        lines.extend(_node_lines(n, inner, limit))
    lines.append(f"{inner}return {', '.join(_ref(v) for v in g.outputs)}".rstrip())
    lines.append(f"{indent}}}")
    return lines


def _node_lines(n: Node, indent: str, limit: int) -> list[str]:
    results = ", ".join(_ref(v) if v is None else f"{_ref(v)}: {format_type(v.type)}"
                        for v in n.outputs)
    args = ", ".join(_ref(v) for v in n.inputs)
    head = f"{indent}{results} = {n.op.name}({args})"
    loc = f" loc({json.dumps(n.name)})" if n.name else ""
    if not n.attrs:
        return [head + loc]
    simple, graphs = [], []
    for name, value in n.attrs.items():
        kind = n.op.attr_map[name].kind
        if kind in (AttrKind.GRAPH, AttrKind.GRAPHS):
            graphs.append(name)
        else:
            simple.append(f"{name} = {format_attr(value, kind, limit, attr_ref_name(n, name))}")
    if not graphs:
        return [f"{head} {{{', '.join(simple)}}}{loc}"]
    lines = [f"{head} {{" + ", ".join(simple) + ("," if simple else "")]
    for k, name in enumerate(graphs):
        value = n.attrs[name]
        sep = "," if k < len(graphs) - 1 else ""
        if isinstance(value, Graph):
            body = _graph_lines(value, indent + "  ", limit)
            body[0] = f"{indent}  {name} = {body[0].lstrip()}"
            body[-1] += sep
            lines.extend(body)
            continue
        lines.append(f"{indent}  {name} = [")
        for j, g in enumerate(value):
            body = _graph_lines(g, indent + "    ", limit)
            body[-1] += "," if j < len(value) - 1 else ""
            lines.extend(body)
        lines.append(f"{indent}  ]{sep}")
    lines.append(f"{indent}}}{loc}")
    return lines


def attr_ref_name(node: Node, attr: str) -> str:
    """The name a tensor attribute is printed under when it is too large to inline."""
    owner = node.name or next((v.name for v in node.outputs if v is not None), node.op.name)
    return f"{owner}.{attr}"


def collect_weights(graph: Graph, out: dict | None = None) -> dict[str, np.ndarray]:
    """Every tensor the printed text refers to by `#name`, for `parse_graph(text, weights)`."""
    out = {} if out is None else out
    for c in graph.constants:
        out[c.name] = c.data
    for n in graph.nodes:
        for name, value in n.attrs.items():
            if isinstance(value, np.ndarray):
                out[attr_ref_name(n, name)] = value
            elif isinstance(value, Graph):
                collect_weights(value, out)
            elif isinstance(value, tuple) and value and isinstance(value[0], Graph):
                for g in value:
                    collect_weights(g, out)
    return out


def format_attr(value, kind: AttrKind | None, limit: int = INLINE_LIMIT, ref_name: str = "attr") -> str:
    if kind is AttrKind.DTYPE:
        return value.short
    if kind is AttrKind.TYPE:
        return f"type<{format_type(value)}>"
    if kind is AttrKind.TENSOR:
        t = TensorType(DType.from_numpy(value.dtype), value.shape)
        return f"tensor<{format_type(t)}> {format_tensor_body(value, ref_name, limit)}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_scalar(x) for x in value) + "]"
    return _scalar(value)


def _scalar(x) -> str:
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, np.floating):
        return format_float(x)
    if isinstance(x, float):
        return format_float(x)
    if isinstance(x, str):
        return json.dumps(x)
    if isinstance(x, bytes):
        return json.dumps(x.decode("utf-8", "surrogateescape"))
    raise TypeError(f"cannot print attribute value {x!r}")


def format_float(x) -> str:
    """The shortest text that reads back to the same value: float32-sized values (all ONNX
    float attributes, float32/float16 tensors) print in float32's shortest form (0.1, not
    0.10000000149011612)."""
    v = float(x)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(x, (np.float16, np.float32)) or float(np.float32(v)) == v:
        s = str(np.float32(v))
    else:
        s = repr(v)
    return s if any(c in s for c in ".en") else s + ".0"


def format_tensor_body(data: np.ndarray, name: str, limit: int = INLINE_LIMIT) -> str:
    """`[1.0, 2.0]` (flat, row-major) when small and printable, else `#name` (by reference)."""
    if data.size <= limit and data.dtype.kind in "biufO" and data.dtype.kind != "c":
        flat = data.reshape(-1)
        items = list(flat) if data.dtype.kind == "f" and data.itemsize <= 4 else flat.tolist()
        try:
            return "[" + ", ".join(_scalar(x) for x in items) + "]"
        except TypeError:
            pass
    return "#" + quote_name(name)
