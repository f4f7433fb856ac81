"""kiln's runtime: compiled models you call with NumPy arrays.

    from kiln.runtime import compile_graph
    model = compile_graph(graph)          # Graph IR -> Loop IR -> LLVM -> machine code
    (y,) = model(x)                       # inputs checked, then ONE native call

compiled_model.py  CompiledModel (checks inputs, calls the entry, owns the machine code) and
                   compile_graph; the user-facing `kiln.compile` (kiln/api.py) adds the ONNX
                   import and the graph passes in front of it.
native_entry.py    the hot path: per input-shape CallPlans, pointer tables, the arena.
specialize.py      the ONNX backend's way to run graphs whose shapes depend on input values.
benchmark.py       median latencies and the cost of one call (`kiln bench`, `make demo`).
"""

from .compiled_model import CompiledModel, compile_graph
from .specialize import SpecializingModel


def needs_expansion(op) -> bool:
    """True for an op the native back end cannot lower: front ends import such ops through
    their definition in simpler ops when they have one (ONNX function bodies)."""
    from ..lowering import lowering_for
    return lowering_for(op) is None


__all__ = ["CompiledModel", "SpecializingModel", "compile_graph", "needs_expansion"]
