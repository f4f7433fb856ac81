"""Attribute values and their kinds.

In memory an attribute value is: int, float, str, tuple of those, np.ndarray (TENSOR), Graph,
tuple of Graphs, a kiln Type (TYPE) or a DType. `check_attr_values` enforces that for a node.
"""

from __future__ import annotations

import numpy as np

from ..errors import AttributeValueError
from .dtypes import DType
from .opdef import AttrKind, OpDef
from .types import OptionalType, SequenceType, TensorType


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_float(v) -> bool:
    return isinstance(v, (float, int, np.floating, np.integer)) and not isinstance(v, bool)


def _is_graph(v) -> bool:
    from .graph import Graph
    return isinstance(v, Graph)


_CHECKS = {
    AttrKind.INT: _is_int,
    AttrKind.FLOAT: _is_float,
    AttrKind.STRING: lambda v: isinstance(v, str),
    AttrKind.INTS: lambda v: isinstance(v, tuple) and all(map(_is_int, v)),
    AttrKind.FLOATS: lambda v: isinstance(v, tuple) and all(map(_is_float, v)),
    AttrKind.STRINGS: lambda v: isinstance(v, tuple) and all(isinstance(s, str) for s in v),
    AttrKind.TENSOR: lambda v: isinstance(v, np.ndarray),
    AttrKind.GRAPH: _is_graph,
    AttrKind.GRAPHS: lambda v: isinstance(v, tuple) and all(map(_is_graph, v)),
    AttrKind.TYPE: lambda v: isinstance(v, (TensorType, SequenceType, OptionalType)),
    AttrKind.DTYPE: lambda v: isinstance(v, DType),
}


def normalize_attr(kind: AttrKind, value):
    """Coerce a Python-friendly value (list, numpy scalar) into the canonical in-memory form."""
    if kind in (AttrKind.INTS, AttrKind.FLOATS, AttrKind.STRINGS, AttrKind.GRAPHS) and \
            isinstance(value, (list, np.ndarray)):
        value = tuple(value.tolist() if isinstance(value, np.ndarray) else value)
    if kind is AttrKind.INT and isinstance(value, np.integer):
        value = int(value)
    if kind is AttrKind.FLOAT and isinstance(value, (int, float, np.floating, np.integer)) and \
            not isinstance(value, bool):
        value = float(np.float32(value))   # ONNX float attributes are 32-bit
    if kind is AttrKind.INTS and isinstance(value, tuple):
        value = tuple(int(x) for x in value)
    if kind is AttrKind.FLOATS and isinstance(value, tuple):
        value = tuple(float(np.float32(x)) for x in value)
    return value


def check_attr_values(op: OpDef, attrs: dict, node=None) -> None:
    """Normalize `attrs` in place and raise AttributeValueError on an unknown or ill-typed one."""
    for name, value in list(attrs.items()):
        spec = op.attr_map.get(name)
        if spec is None:
            raise AttributeValueError(
                f"unknown attribute '{name}'; {op.name} takes {sorted(op.attr_map) or 'none'}",
                node=node)
        value = normalize_attr(spec.kind, value)
        if not _CHECKS[spec.kind](value):
            raise AttributeValueError(
                f"attribute '{name}' must be of kind {spec.kind.value}, got {type(value).__name__} "
                f"{_short(value)}", node=node)
        if spec.choices is not None and value not in spec.choices:
            raise AttributeValueError(
                f"attribute '{name}' is {value!r}; expected one of {list(spec.choices)}", node=node)
        attrs[name] = value


def _short(v) -> str:
    s = repr(v)
    return s if len(s) < 60 else s[:57] + "..."
