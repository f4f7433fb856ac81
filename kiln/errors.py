"""One exception hierarchy for everything kiln reports to its users.

Every error says what went wrong, where (the op and node, and the node's name in the source model),
and what to do about it. Catch `KilnError` to catch them all.
"""

from __future__ import annotations


class KilnError(Exception):
    """Base of every error kiln raises on purpose."""

    def __init__(self, message: str, *, node=None, hint: str | None = None):
        self.node = node
        self.hint = hint
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = describe_node(self.node) if self.node is not None else ""
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def describe_node(node) -> str:
    """`Conv node 'conv1'`, or `Conv node #3` when the node has no name."""
    op = getattr(getattr(node, "op", None), "name", None) or "?"
    name = getattr(node, "name", None)
    return f"{op} node '{name}'" if name else f"{op} node"


class ModelLoadError(KilnError):
    """The model file is missing, malformed, truncated, or points outside its folder."""


class UnsupportedOpError(KilnError):
    """The model uses ops kiln does not implement; `ops` lists every one of them."""

    def __init__(self, message: str, *, ops=(), node=None, hint=None):
        self.ops = tuple(ops)
        super().__init__(message, node=node, hint=hint)


class LoweringError(UnsupportedOpError):
    """A node cannot be lowered to loops: op without lowering, dtype, or operand not constant."""


class AttributeValueError(KilnError):
    """A node has a missing, unknown or ill-typed attribute, or a value out of range."""


class TypeInferenceError(KilnError):
    """Input types of a node do not fit the op (wrong rank, dtype or incompatible shapes)."""


class VerificationError(KilnError):
    """A graph breaks an IR invariant (SSA, order, types, attributes); names the rule."""

    def __init__(self, message: str, *, rule: str, node=None, hint=None):
        self.rule = rule
        super().__init__(f"[{rule}] {message}", node=node, hint=hint)


class ScheduleError(KilnError):
    """A schedule transform cannot apply: no such loop, loops not nested as it needs, or a
    change that could alter the kernel's results."""


class IRParseError(KilnError):
    """The Graph IR text is malformed; the message gives line and column."""


class InputError(KilnError):
    """The inputs passed to a graph or compiled model do not match what it declares."""


class InputNameError(InputError):
    """An input is missing, or a name that is not an input was given."""


class DTypeMismatchError(InputError):
    """An input has the wrong element type."""


class ShapeMismatchError(InputError):
    """An input has the wrong rank or size, or binds a symbolic dimension inconsistently."""


class ExecutionError(KilnError):
    """An op failed while running (for example an index out of range in Gather)."""
