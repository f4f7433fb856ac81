"""The op table: every OpDef, by name, and the `define` helper that op modules use to fill it."""

from __future__ import annotations

from typing import Callable, Sequence

from ...errors import UnsupportedOpError
from ..opdef import Attr, FusionKind, OpDef, Operand, Trait

OP_TABLE: dict[str, OpDef] = {}


def parse_operands(specs: Sequence[str]) -> tuple[Operand, ...]:
    """'X' is required, 'B?' optional, 'inputs*' variadic (one or more), 'inputs?*' zero or more."""
    out = []
    for s in specs:
        variadic = s.endswith("*")
        s = s.rstrip("*")
        optional = s.endswith("?")
        out.append(Operand(s.rstrip("?"), optional=optional, variadic=variadic))
    return tuple(out)


def define(name: str, inputs: Sequence[str], outputs: Sequence[str], *,
           infer: Callable, reference: Callable, kind: FusionKind = FusionKind.OPAQUE,
           attrs: Sequence[Attr] = (), traits: Sequence[Trait] = (), domain: str = "",
           since_version: int = 1, doc: str = "") -> OpDef:
    """Create an OpDef and add it to the table. Names are unique across domains."""
    if name in OP_TABLE:
        raise ValueError(f"op {name} defined twice")
    op = OpDef(name=name, inputs=parse_operands(inputs), outputs=parse_operands(outputs),
               infer=infer, reference=reference, kind=kind, attrs=tuple(attrs),
               traits=frozenset(traits), domain=domain, since_version=since_version, doc=doc)
    OP_TABLE[name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return OP_TABLE[name]
    except KeyError:
        raise UnsupportedOpError(f"unknown op '{name}'", ops=[name],
                                 hint="see docs/ir.md for the ops kiln supports") from None
