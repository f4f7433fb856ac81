"""Shape arithmetic shared by the inference functions: broadcasting, axes, symbolic dims."""

from __future__ import annotations

from typing import Sequence

from ..errors import TypeInferenceError
from .types import Dim


def broadcast_dims(a: Dim, b: Dim, node=None) -> Dim:
    if a == 1:
        return b
    if b == 1:
        return a
    if a is None or b is None:
        # one unknown: the known non-1 side wins if it is not 1; otherwise unknown
        other = b if a is None else a
        return other if other is not None and other != 1 else None
    if a == b:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise TypeInferenceError(f"cannot broadcast dimensions {a} and {b}", node=node,
                                 hint="check the shapes of the node's inputs")
    # symbolic vs int or two different symbols: the int wins (the symbol must equal it or be 1)
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return None


def broadcast_shapes(*shapes: Sequence[Dim] | None, node=None) -> tuple[Dim, ...] | None:
    """NumPy-style multidirectional broadcasting over possibly symbolic shapes."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = [1] * rank
    for s in shapes:
        padded = [1] * (rank - len(s)) + list(s)
        out = [broadcast_dims(x, y, node) for x, y in zip(out, padded)]
    return tuple(out)


def normalize_axis(axis: int, rank: int, node=None) -> int:
    """Map a possibly negative axis into [0, rank); out of range raises."""
    if not -rank <= axis < rank:
        raise TypeInferenceError(f"axis {axis} is out of range for rank {rank}", node=node,
                                 hint=f"use an axis in [{-rank}, {rank - 1}]")
    return axis % rank


def normalize_axes(axes: Sequence[int], rank: int, node=None) -> list[int]:
    return [normalize_axis(int(a), rank, node) for a in axes]


def dim_mul(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    if a == 1:
        return b
    if b == 1:
        return a
    return None


def dim_add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    if b == 0:
        return a
    return None


def dims_product(dims: Sequence[Dim]) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out
