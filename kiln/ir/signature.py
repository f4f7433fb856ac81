"""Checking run-time inputs against a graph's declared input types.

Shared by the interpreter and the native runtime: every name present, every dtype right, every
static dimension equal, and every symbolic dimension bound to one size across all inputs.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DTypeMismatchError, InputNameError, ShapeMismatchError
from .dtypes import DType
from .types import OptionalType, SequenceType, TensorType, Type


def bind_inputs(declared: Sequence, feeds: Mapping[str, Any] | Sequence[Any]) -> tuple[list, dict]:
    """Match feeds to declared input Values. Returns (values in declared order, symbol bindings)."""
    names = [v.name for v in declared]
    if isinstance(feeds, Mapping):
        unknown = [k for k in feeds if k not in names]
        missing = [n for n in names if n not in feeds]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing input(s) {missing}")
            if unknown:
                parts.append(f"unknown input(s) {unknown}")
            raise InputNameError("; ".join(parts), hint=f"the graph's inputs are {names}")
        values = [feeds[n] for n in names]
    else:
        values = list(feeds)
        if len(values) != len(names):
            raise InputNameError(f"expected {len(names)} inputs {names}, got {len(values)}")
    bindings: dict[str, int] = {}
    out = []
    for v, x in zip(declared, values):
        out.append(check_value(v.name, v.type, x, bindings))
    return out, bindings


def check_value(name: str, t: Type, x: Any, bindings: dict[str, int]):
    if isinstance(t, TensorType):
        return check_tensor(name, t, x, bindings)
    if isinstance(t, SequenceType):
        if not isinstance(x, (list, tuple)):
            raise DTypeMismatchError(f"input '{name}' must be a sequence (list) of {t.elem}")
        return [check_value(name, t.elem, e, dict(bindings)) for e in x]
    if isinstance(t, OptionalType):
        return None if x is None else check_value(name, t.elem, x, bindings)
    raise DTypeMismatchError(f"input '{name}' has unsupported type {t}")


def check_tensor(name: str, t: TensorType, x: Any, bindings: dict[str, int]) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        if isinstance(x, (list, tuple, int, float, bool, np.generic)):
            x = np.asarray(x, dtype=t.dtype.np)
        else:
            raise DTypeMismatchError(f"input '{name}' must be a NumPy array, got {type(x).__name__}")
    try:
        got = DType.from_numpy(x.dtype)
    except KeyError:
        raise DTypeMismatchError(f"input '{name}' has unsupported dtype {x.dtype}") from None
    if got is not t.dtype:
        raise DTypeMismatchError(
            f"input '{name}' has dtype {x.dtype}, but the model expects {t.dtype.name}",
            hint=f"convert it first, e.g. x.astype(np.{t.dtype.np.name})")
    if t.shape is None:
        return x
    if x.ndim != len(t.shape):
        raise ShapeMismatchError(
            f"input '{name}' has shape {x.shape} (rank {x.ndim}), but the model expects "
            f"{t} (rank {len(t.shape)})")
    for axis, (want, have) in enumerate(zip(t.shape, x.shape)):
        if isinstance(want, int) and want != have:
            raise ShapeMismatchError(
                f"input '{name}' has shape {x.shape}, but dimension {axis} must be {want} ({t})")
        if isinstance(want, str):
            bound = bindings.setdefault(want, have)
            if bound != have:
                raise ShapeMismatchError(
                    f"input '{name}' binds symbolic dimension '{want}' to {have}, but an earlier "
                    f"input bound it to {bound}", hint="inputs sharing a dimension name must agree")
    return x
