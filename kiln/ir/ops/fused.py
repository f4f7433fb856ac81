"""kiln's own graph-level op: a fused group (domain "kiln", never in an ONNX file).

`Fused(inputs...) {body = graph ...}` runs its body graph on its inputs and returns the body's
outputs. The fusion pass (kiln/passes/fuse.py) makes them; lowering turns each into one loop
nest per output with the body's intermediates composed into it, never written to memory. The
body is self-contained: it reads only its own inputs and constants. The ONNX exporter inlines
fused groups back into their ops.
"""

from __future__ import annotations

from ..opdef import FusionKind, InferContext
from ..types import types_compatible
from .common import GRAPH
from .registry import define


def _infer_fused(ctx: InferContext):
    body = ctx.attrs.body
    if len(body.inputs) != ctx.num_inputs:
        ctx.fail(f"the body takes {len(body.inputs)} inputs but the node has {ctx.num_inputs}")
    for i, (v, t) in enumerate(zip(body.inputs, ctx.input_types)):
        if t is not None and not types_compatible(v.type, t):
            ctx.fail(f"input {i} is {t} but the body's input %{v.name} is {v.type}")
    return [v.type for v in body.outputs]


def _run_fused(ctx, *inputs):
    return tuple(ctx.run_graph(ctx.attrs.body, inputs))


Fused = define(
    "Fused", ["inputs*"], ["outputs*"], kind=FusionKind.OPAQUE, domain="kiln", since_version=1,
    attrs=[GRAPH("body")], infer=_infer_fused, reference=_run_fused,
    doc="A fused group: runs its body graph; lowered to one loop nest per output.")
