"""Running an op's type inference for a node: attributes checked, constant inputs made visible."""

from __future__ import annotations

from typing import Sequence

from ..errors import AttributeValueError, TypeInferenceError
from .graph import Node, Value
from .opdef import InferContext, OpDef
from .types import Type


def check_arity(op: OpDef, num_inputs: int, node=None) -> None:
    if num_inputs < _required_inputs(op) or num_inputs > op.max_inputs:
        hi = "any number of" if op.max_inputs == float("inf") else f"at most {int(op.max_inputs)}"
        raise TypeInferenceError(
            f"{op.name} takes at least {_required_inputs(op)} and {hi} inputs, got {num_inputs}",
            node=node)


def check_operands(op: OpDef, inputs: Sequence[Value | None], node=None) -> None:
    """The right number of inputs, and every required one present."""
    check_arity(op, len(inputs), node)
    for i, (v, slot) in enumerate(zip(inputs, _slots(op, len(inputs)))):
        if v is None and not slot.optional:
            raise TypeInferenceError(f"required input '{slot.name}' (#{i}) is missing", node=node)


def _required_inputs(op: OpDef) -> int:
    n = 0
    for i, o in enumerate(op.inputs):
        if not o.optional:
            n = i + 1
    return n


def infer_types(op: OpDef, inputs: Sequence[Value | None], attrs: dict, num_outputs: int,
                node=None) -> list[Type]:
    """Output types of `op` applied to `inputs` with `attrs` (defaults are filled in here)."""
    check_operands(op, inputs, node)
    full = op.full_attrs(attrs, node=node)
    _check_choices(op, full, node)
    ctx = InferContext(op, [v.type if v is not None else None for v in inputs], full,
                       [v.data if v is not None else None for v in inputs], num_outputs, node)
    try:
        types = list(op.infer(ctx))
    except (TypeInferenceError, AttributeValueError):
        raise
    except Exception as e:  # an inference bug or unexpected input: report it against the node
        raise TypeInferenceError(f"type inference failed: {type(e).__name__}: {e}", node=node) from e
    if len(types) < num_outputs:
        raise TypeInferenceError(
            f"{op.name} produces {len(types)} outputs here, but {num_outputs} are used", node=node)
    return types[:num_outputs]


def infer_node(node: Node) -> list[Type]:
    return infer_types(node.op, node.inputs, node.attrs, len(node.outputs), node)


def _slots(op: OpDef, n: int):
    """The operand slot of each of n actual inputs (a variadic slot repeats)."""
    slots = list(op.inputs)
    out = []
    for i in range(n):
        if i < len(slots) and not slots[i].variadic:
            out.append(slots[i])
        else:
            out.append(next((s for s in slots if s.variadic), slots[-1] if slots else None))
    return out


def _check_choices(op: OpDef, attrs: dict, node) -> None:
    for a in op.attrs:
        if a.choices is not None and attrs.get(a.name) not in a.choices:
            raise AttributeValueError(
                f"attribute '{a.name}' is {attrs.get(a.name)!r}; expected one of {list(a.choices)}",
                node=node)
