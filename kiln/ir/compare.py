"""Structural equality of graphs: same ops, attributes, types, constants and wiring.

Values are matched by position, not identity, so a parsed copy equals its original. Returns the
first difference as text (or None), which makes a failing test say where two graphs part.
"""

from __future__ import annotations

import numpy as np

from .graph import Graph


def graph_difference(a: Graph, b: Graph) -> str | None:
    return _diff(a, b, {}, "")


def graphs_equal(a: Graph, b: Graph) -> bool:
    return graph_difference(a, b) is None


def _diff(a: Graph, b: Graph, mapping: dict, where: str) -> str | None:
    where = f"{where}@{a.name}"
    if a.name != b.name:
        return f"{where}: graph name {a.name!r} != {b.name!r}"
    for kind, xs, ys in (("input", a.inputs, b.inputs), ("constant", a.constants, b.constants)):
        if len(xs) != len(ys):
            return f"{where}: {len(xs)} {kind}s != {len(ys)}"
        for x, y in zip(xs, ys):
            if x.name != y.name or x.type != y.type:
                return f"{where}: {kind} %{x.name}: {x.type} != %{y.name}: {y.type}"
            if kind == "constant" and not arrays_equal(x.data, y.data):
                return f"{where}: constant %{x.name} data differs"
            mapping[id(x)] = y
    if len(a.nodes) != len(b.nodes):
        return f"{where}: {len(a.nodes)} nodes != {len(b.nodes)}"
    for i, (n, m) in enumerate(zip(a.nodes, b.nodes)):
        at = f"{where} node #{i} ({n.op.name})"
        if n.op is not m.op or n.name != m.name:
            return f"{at}: op/name {n.op.name} {n.name!r} != {m.op.name} {m.name!r}"
        if len(n.inputs) != len(m.inputs) or any(
                (x is None) != (y is None) or (x is not None and mapping.get(id(x), x) is not y)
                for x, y in zip(n.inputs, m.inputs)):
            return f"{at}: inputs differ"
        if set(n.attrs) != set(m.attrs):
            return f"{at}: attribute names {sorted(n.attrs)} != {sorted(m.attrs)}"
        for k in n.attrs:
            d = _attr_diff(n.attrs[k], m.attrs[k], mapping, f"{at}.{k}")
            if d:
                return d
        if len(n.outputs) != len(m.outputs):
            return f"{at}: output count differs"
        for x, y in zip(n.outputs, m.outputs):
            if (x is None) != (y is None):
                return f"{at}: output presence differs"
            if x is not None:
                if x.name != y.name or x.type != y.type:
                    return f"{at}: output %{x.name}: {x.type} != %{y.name}: {y.type}"
                mapping[id(x)] = y
    if len(a.outputs) != len(b.outputs) or any(mapping.get(id(x), x) is not y
                                               for x, y in zip(a.outputs, b.outputs)):
        return f"{where}: graph outputs differ"
    return None


def _attr_diff(x, y, mapping, where) -> str | None:
    if isinstance(x, Graph):
        return _diff(x, y, mapping, where) if isinstance(y, Graph) else f"{where}: graph vs value"
    if isinstance(x, np.ndarray):
        ok = isinstance(y, np.ndarray) and x.dtype == y.dtype and arrays_equal(x, y)
        return None if ok else f"{where}: tensor differs"
    if isinstance(x, tuple) and x and isinstance(x[0], Graph):
        if not isinstance(y, tuple) or len(x) != len(y):
            return f"{where}: graph list differs"
        for gx, gy in zip(x, y):
            d = _diff(gx, gy, mapping, where)
            if d:
                return d
        return None
    if _scalar_equal(x, y):
        return None
    return f"{where}: {x!r} != {y!r}"


def _scalar_equal(x, y) -> bool:
    if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
        return True
    if isinstance(x, tuple) and isinstance(y, tuple):
        return len(x) == len(y) and all(_scalar_equal(p, q) for p, q in zip(x, y))
    return type(x) is type(y) and x == y


def arrays_equal(x: np.ndarray, y: np.ndarray) -> bool:
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    if x.dtype.kind == "f" or str(x.dtype) in ("bfloat16",) or "float8" in str(x.dtype):
        a, b = x.astype(np.float64), y.astype(np.float64)
        return bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
    return bool(np.array_equal(x, y))
