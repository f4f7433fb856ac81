"""kiln's front door: `kiln.compile(model) -> CompiledModel`.

    import kiln
    model = kiln.compile("model.onnx")                  # or bytes, an onnx.ModelProto, a Graph
    (y,) = model(x)                                     # NumPy in, a list of NumPy out
    model = kiln.compile(graph, kiln.CompileOptions(opt_level=3))
    model = kiln.compile(graph, opt_level=1)            # fields of CompileOptions as keywords
    model = kiln.compile(torch_module, (x,))            # an nn.Module, through torch.export
    model = kiln.compile(torch_module, (x,), dynamic_shapes=({0: Dim("batch")},))

A torch.nn.Module is exported with torch.export for inference and decomposed to core ATen ops
(kiln/frontends/torch, docs/torch.md); the compiled model then also takes torch tensors and
returns torch tensors when called with them (NumPy arrays otherwise).

The pipeline, one function per arrow:
    import_model (ONNX -> Graph IR) -> pipeline(options.opt_level, fuse=options.fuse) (graph passes, kiln/pipeline.py)
    -> lower_graph (Loop IR) -> compile_program (LLVM -O3 -> machine code) -> CompiledModel
`options.opt_level` picks the graph pipeline; the machine code is always optimized by LLVM at -O3.
A Graph given to `compile` is copied first, never changed.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

from .errors import ModelLoadError
from .ir.graph import Graph
from .options import CompileOptions
from .runtime.compiled_model import CompiledModel, compile_graph


def compile(model, example_inputs=None, options: CompileOptions | None = None,
            dynamic_shapes=None, **fields) -> CompiledModel:
    """Compile `model` (a path, the bytes of an ONNX file, an onnx.ModelProto, a kiln Graph, or
    a torch.nn.Module with its `example_inputs` and optional torch.export `dynamic_shapes`) to
    native code. Raises ModelLoadError, UnsupportedOpError (an op the importer lacks) or
    LoweringError (an op or dtype without a native lowering, listed all at once).
    `kiln.compile(graph, CompileOptions(...))` still works: options may come second."""
    if isinstance(example_inputs, CompileOptions):
        example_inputs, options = None, example_inputs
    options = options or CompileOptions()
    if fields:
        options = dataclasses.replace(options, **fields)
    t0 = time.perf_counter()
    is_torch = is_torch_module(model)
    if is_torch:
        from .frontends.torch import export_program
        if example_inputs is None:
            raise ModelLoadError("compiling a torch.nn.Module needs example_inputs",
                                 hint="kiln.compile(module, (x,)): torch.export traces the "
                                      "module on them")
        graph = export_program(model, example_inputs, dynamic_shapes=dynamic_shapes)
    elif example_inputs is not None or dynamic_shapes is not None:
        raise ModelLoadError("example_inputs and dynamic_shapes are for torch.nn.Modules",
                             hint="an ONNX model or a Graph declares its own input types")
    else:
        graph = load_graph(model)
    t1 = time.perf_counter()
    graph = optimize_graph(graph, options)
    t2 = time.perf_counter()
    compiled = compile_graph(graph)
    compiled.timings = {"import": t1 - t0, "optimize": t2 - t1, **compiled.timings}
    compiled.options = options
    if is_torch:
        from .frontends.torch.compiled import as_torch_model
        compiled = as_torch_model(compiled, example_inputs)
    return compiled


def is_torch_module(model) -> bool:
    """Is `model` a torch.nn.Module? (Without importing torch: if torch is not loaded, no object
    can be one.)"""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


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
