"""Sequence and optional ops in the lowering table: they never reach it in a working compile.

`compile_graph` first runs kiln/passes/flatten_sequences.py, which replaces every sequence and
optional of static structure by its tensors, so no node of these ops is left to lower. They are
in the table so that the ONNX importer keeps them as they are (an op without a lowering is
imported through its ONNX function body: SequenceMap would become a Loop over a sequence, whose
structure changes per iteration), and so that a graph lowered without that pass gets a
LoweringError naming the node instead of a missing-op report.
"""

from __future__ import annotations

from ..passes.flatten_sequences import SEQUENCE_OPS
from .registry import register


@register(*sorted(SEQUENCE_OPS, key=lambda op: op.name))
def lower_sequence_op(ctx, node, inputs):
    ctx.fail(node, f"{node.op.name} works on sequence/optional values, which the back end "
             "handles only when their structure is known when compiling, through the "
             "flatten_sequences pass (kiln.runtime.compile_graph runs it)",
             hint="compile with kiln.runtime.compile_graph, or run the model with the "
                  "interpreter")
