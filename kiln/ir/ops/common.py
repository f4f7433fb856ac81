"""Building blocks shared by the op families: attribute shorthands and common inference rules."""

from __future__ import annotations

from ..dtypes import DType
from ..opdef import REQUIRED, Attr, AttrKind, InferContext
from ..shapes import broadcast_shapes
from ..types import TensorType



def INT(name, default=REQUIRED, choices=None):
    return Attr(name, AttrKind.INT, default, choices)


def FLOAT(name, default=REQUIRED):
    return Attr(name, AttrKind.FLOAT, default)


def STRING(name, default=REQUIRED, choices=None):
    return Attr(name, AttrKind.STRING, default, choices)


def INTS(name, default=REQUIRED):
    return Attr(name, AttrKind.INTS, default)


def FLOATS(name, default=REQUIRED):
    return Attr(name, AttrKind.FLOATS, default)


def STRINGS(name, default=REQUIRED):
    return Attr(name, AttrKind.STRINGS, default)


def TENSOR(name, default=REQUIRED):
    return Attr(name, AttrKind.TENSOR, default)


def GRAPH(name, default=REQUIRED):
    return Attr(name, AttrKind.GRAPH, default)


def DTYPE(name, default=REQUIRED):
    return Attr(name, AttrKind.DTYPE, default)


def TYPE(name, default=REQUIRED):
    return Attr(name, AttrKind.TYPE, default)


# --- inference rules ---------------------------------------------------------------------------

def same_as_input(i: int = 0):
    """Output 0 has exactly the type of input i."""
    def infer(ctx: InferContext):
        return [ctx.type(i)]
    return infer


def broadcast_infer(out_dtype: DType | None = None):
    """Outputs the broadcast shape of all present inputs; dtype of input 0 unless given."""
    def infer(ctx: InferContext):
        ts = [ctx.tensor(i) for i in range(ctx.num_inputs) if ctx.has_input(i)]
        shape = broadcast_shapes(*(t.shape for t in ts), node=ctx.node)
        return [TensorType(out_dtype or ts[0].dtype, shape)]
    return infer


def require_same_dtype(ctx: InferContext, *indices: int) -> DType:
    """All listed inputs (those present) share one dtype; returns it."""
    dts = {ctx.tensor(i).dtype for i in indices if ctx.has_input(i)}
    if len(dts) > 1:
        ctx.fail(f"inputs must share one dtype, got {sorted(d.short for d in dts)}",
                 hint="insert a Cast so the operands agree")
    return dts.pop()
