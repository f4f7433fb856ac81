"""The op table's record: one `OpDef` per op.

An OpDef is data: its operands, its typed attributes with defaults, its fusion kind, its traits
(commutative, ...), a type-inference function and a NumPy reference implementation. Passes look an
op up by its OpDef object (``node.op is ops.Add``) or by group, never by comparing strings.

Inference functions take an `InferContext` and return the output types. References take a
`RunContext` and the input arrays (None for an absent optional input) and return one array or a
tuple of them, one per output.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import AttributeValueError, TypeInferenceError
from .types import TensorType, Type


class FusionKind(enum.Enum):
    """How an op may fuse with its neighbours (TVM's pattern kinds)."""

    ELEMENTWISE = "elementwise"      # out[i] = f(in[i]), all shapes equal
    BROADCAST = "broadcast"          # elementwise after broadcasting its inputs
    INJECTIVE = "injective"          # each output element reads one input element (reshape, transpose, gather)
    REDUCTION = "reduction"          # combines many input elements into one output element
    OUT_ELEMENTWISE_FUSABLE = "out-elementwise-fusable"  # conv, matmul: takes an elementwise epilogue
    OPAQUE = "opaque"                # cannot fuse (sort, control flow, data-dependent shapes)


class AttrKind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    STRING = "string"
    INTS = "ints"
    FLOATS = "floats"
    STRINGS = "strings"
    TENSOR = "tensor"
    GRAPH = "graph"
    GRAPHS = "graphs"
    TYPE = "type"        # a kiln Type (ONNX TypeProto attributes)
    DTYPE = "dtype"      # an element type (ONNX `to`, `dtype`, `output_dtype` ints)


REQUIRED = object()  # default for a required attribute


@dataclass(frozen=True)
class Attr:
    name: str
    kind: AttrKind
    default: Any = REQUIRED
    choices: tuple | None = None   # allowed values, when the attribute is an enumeration

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Operand:
    """One input or output slot. `variadic` takes the rest of the list; `optional` may be absent."""

    name: str
    optional: bool = False
    variadic: bool = False


class Trait(enum.Enum):
    COMMUTATIVE = "commutative"        # op(a, b) == op(b, a)
    ASSOCIATIVE = "associative"
    IDEMPOTENT = "idempotent"          # op(op(x)) == op(x)
    INVOLUTION = "involution"          # op(op(x)) == x
    STATEFUL = "stateful"              # random or otherwise not a pure function: never merged or folded
    SHAPE_ONLY = "shape-only"          # output depends only on the input's type (Shape, Size)
    VIEW = "view"                      # output is a re-indexing of input 0 with no arithmetic


@dataclass(eq=False)
class OpDef:
    name: str
    inputs: tuple[Operand, ...]
    outputs: tuple[Operand, ...]
    infer: Callable[["InferContext"], Sequence[Type]]
    reference: Callable[..., Any]
    kind: FusionKind = FusionKind.OPAQUE
    attrs: tuple[Attr, ...] = ()
    traits: frozenset = frozenset()
    domain: str = ""                  # ONNX domain ("" is ai.onnx)
    since_version: int = 1            # ONNX opset whose signature this OpDef follows
    doc: str = ""
    attr_map: dict = field(init=False, repr=False)

    def __post_init__(self):
        self.attr_map = {a.name: a for a in self.attrs}
        self.traits = frozenset(self.traits)

    def __repr__(self) -> str:
        return f"<OpDef {self.name}>"

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

    @property
    def min_inputs(self) -> int:
        return sum(1 for o in self.inputs if not o.optional and not o.variadic) + \
            sum(1 for o in self.inputs if o.variadic and not o.optional)

    @property
    def max_inputs(self) -> float:
        return float("inf") if any(o.variadic for o in self.inputs) else len(self.inputs)

    def full_attrs(self, given: dict, node=None) -> dict:
        """The node's attributes with defaults filled in; unknown or missing required ones raise."""
        unknown = set(given) - set(self.attr_map)
        if unknown:
            raise AttributeValueError(
                f"unknown attribute(s) {sorted(unknown)}; {self.name} takes {sorted(self.attr_map) or 'none'}",
                node=node)
        out = {}
        for a in self.attrs:
            if a.name in given:
                out[a.name] = given[a.name]
            elif a.required:
                raise AttributeValueError(f"missing required attribute '{a.name}'", node=node)
            else:
                out[a.name] = a.default
        return out


class Attrs(dict):
    """Attribute values with defaults filled in; read as `attrs.axis` or `attrs["axis"]`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class InferContext:
    """What an inference function may look at: input types, attributes and constant inputs."""

    def __init__(self, op: OpDef, input_types: Sequence[Type | None], attrs: dict,
                 consts: Sequence[np.ndarray | None], num_outputs: int, node=None):
        self.op = op
        self.input_types = list(input_types)
        self.attrs = Attrs(attrs)
        self.consts = list(consts)
        self.num_outputs = num_outputs
        self.node = node

    @property
    def num_inputs(self) -> int:
        return len(self.input_types)

    def has_input(self, i: int) -> bool:
        return i < len(self.input_types) and self.input_types[i] is not None

    def type(self, i: int) -> Type:
        return self.input_types[i]

    def tensor(self, i: int) -> TensorType:
        t = self.input_types[i]
        if not isinstance(t, TensorType):
            self.fail(f"input {i} must be a tensor, got {t}")
        return t

    def const(self, i: int) -> np.ndarray | None:
        """The value of input i when it is known at compile time, else None."""
        if i < len(self.consts):
            return self.consts[i]
        return None

    def fail(self, message: str, hint: str | None = None):
        raise TypeInferenceError(message, node=self.node, hint=hint)


class RunContext:
    """What a reference implementation may look at: attributes, and a way to run subgraphs."""

    def __init__(self, op: OpDef, attrs: dict, node=None, run_graph=None, num_outputs: int = 1,
                 output_types: Sequence[Type | None] = ()):
        self.op = op
        self.attrs = Attrs(attrs)
        self.node = node
        self._run_graph = run_graph
        self.num_outputs = num_outputs
        self.output_types = list(output_types)

    def run_graph(self, graph, inputs: Sequence[Any]) -> list:
        """Run a subgraph attribute (If/Loop/Scan bodies) with the enclosing scope visible."""
        return self._run_graph(graph, list(inputs))
