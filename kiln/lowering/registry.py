"""The lowering table: OpDef -> how a node of that op becomes Loop IR.

    @register(ops.Transpose, lazy=True)
    def lower_transpose(ctx, node, inputs):
        ...
        return [Tensor(...)]

A lowering takes the LowerContext, the node and one Tensor per node input (None for an absent
optional input) and returns one Tensor per node output. `lazy=True` says its outputs are index
mappings that cost nothing to recompute (views, shapes, iotas): `lower_graph` composes them into
their consumers instead of writing them to memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..ir.opdef import OpDef


@dataclass(frozen=True)
class Lowering:
    op: OpDef
    fn: Callable            # (ctx, node, inputs: list[Tensor | None]) -> list[Tensor]
    lazy: bool = False      # outputs stay index mappings (composed into consumers)


LOWERINGS: dict[OpDef, Lowering] = {}


def register(*ops: OpDef, lazy: bool = False):
    """Decorator: `fn` lowers every op listed."""
    def deco(fn):
        for op in ops:
            if op in LOWERINGS:
                raise ValueError(f"{op.name} has two lowerings")
            LOWERINGS[op] = Lowering(op, fn, lazy)
        return fn
    return deco


def lowering_for(op: OpDef) -> Lowering | None:
    """The lowering of an op, or None when the back end has none."""
    return LOWERINGS.get(op)
