"""kiln's front door: `kiln.compile(model) -> CompiledModel`.

    import kiln
    model = kiln.compile("model.onnx")                  # or bytes, an onnx.ModelProto, a Graph
    (y,) = model(x)                                     # NumPy in, a list of NumPy out
    model = kiln.compile(graph, kiln.CompileOptions(opt_level=3))
    model = kiln.compile(graph, opt_level=1)            # fields of CompileOptions as keywords

The pipeline, one function per arrow:
    import_model (ONNX -> Graph IR) -> pipeline(options.opt_level, fuse=options.fuse) (graph passes, kiln/pipeline.py)
    -> lower_graph (Loop IR) -> compile_program (LLVM -O3 -> machine code) -> CompiledModel
`options.opt_level` picks the graph pipeline; the machine code is always optimized by LLVM at -O3.
A Graph given to `compile` is copied first, never changed.
"""

from __future__ import annotations

import dataclasses
import os
import time

from .ir.graph import Graph
from .options import CompileOptions
from .runtime.compiled_model import CompiledModel, compile_graph


def compile(model, options: CompileOptions | None = None, **fields) -> CompiledModel:
    """Compile `model` (a path, the bytes of an ONNX file, an onnx.ModelProto or a kiln Graph)
    to native code. Raises ModelLoadError, UnsupportedOpError (an op the importer lacks) or
    LoweringError (an op or dtype without a native lowering, listed all at once)."""
    options = options or CompileOptions()
    if fields:
        options = dataclasses.replace(options, **fields)
    t0 = time.perf_counter()
    graph = load_graph(model)
    t1 = time.perf_counter()
    graph = optimize_graph(graph, options)
    t2 = time.perf_counter()
    compiled = compile_graph(graph)
    compiled.timings = {"import": t1 - t0, "optimize": t2 - t1, **compiled.timings}
    compiled.options = options
    return compiled


def load_graph(model) -> Graph:
    """The Graph of `model`: a copy of a Graph, or an imported ONNX model."""
    if isinstance(model, Graph):
        from .runtime.specialize import copy_graph
        return copy_graph(model)
    from .frontends.onnx import import_model
    from .runtime import needs_expansion
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    return import_model(model, expand=needs_expansion)


def optimize_graph(graph: Graph, options: CompileOptions) -> Graph:
    """Run the graph pass pipeline of `options.opt_level` (kiln/pipeline.py)."""
    from .pipeline import pipeline
    from .rewrite.pass_manager import PassContext, PassManager
    return PassManager(pipeline(options.opt_level, fuse=options.fuse)).run(graph, PassContext(options))
