"""kiln's Graph IR: types, the op table, graphs, builder, printer/parser, verifier, interpreter."""

from . import ops
from .builder import GraphBuilder
from .dtypes import DType
from .graph import Graph, Node, Value
from .opdef import FusionKind, OpDef, Trait
from .types import OptionalType, SequenceType, TensorType, tensor

__all__ = ["ops", "GraphBuilder", "DType", "Graph", "Node", "Value", "FusionKind", "OpDef",
           "Trait", "OptionalType", "SequenceType", "TensorType", "tensor"]
