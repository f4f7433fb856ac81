"""CompiledModel: a Graph compiled to one native entry point, called like a function.

    model = compile_graph(graph)               # lower_graph -> compile_program
    (probs,) = model(images)                   # positional, in input order
    (probs,) = model(image=images)             # or by name (also model({"image": images}))

A call always returns a list of NumPy arrays, one per graph output, even when there is one
output (the convention of the interpreter and of ONNX Runtime), so `(y,) = model(x)` unpacks it.

Before native code runs, the inputs are checked against the graph's declared input types with
`kiln.ir.signature.bind_inputs` (names, dtypes, static dims, symbolic dims bound consistently):
a wrong input raises InputNameError, DTypeMismatchError or ShapeMismatchError, never reaches
the machine code; shapes that fit the declared types but not the ops (two symbolic dims a
MatMul needs equal) raise ShapeMismatchError too (shape_check.py). The checks' verdict depends
only on each array's dtype and shape, so they run once per distinct (dtype, shape) signature;
a model compiled for a symbolic batch runs any batch size without recompiling (each new size
is checked and plans its memory once).

The machine code lives as long as the CompiledModel: `close()`, or the CompiledModel becoming
garbage, releases it. The release is a `weakref.finalize`: it runs before any `__del__` even when
the model is collected as part of a reference cycle, so LLVM's objects are always freed in order
(execution engine, then its context), never in the arbitrary order a cycle's finalizers run in.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, Mapping

import numpy as np

from ..errors import InputNameError, LoweringError
from ..ir.graph import Graph
from ..ir.signature import bind_inputs
from ..ir.types import TensorType
from .native_entry import NativeEntry
from .shape_check import check_shapes


class CompiledModel:
    """A compiled Graph. Call it with arrays; read its IR at every level (see module docstring).

    `graph` is the Graph IR that was lowered, `program` its Loop IR, `native` the
    NativeProgram (LLVM IR, assembly, machine code); `timings` has seconds per compile phase.
    """

    execution = "native"       # what runs it (the conformance report counts this)
    note = ""
    regroup = None             # flat outputs -> sequences/optionals (passes/flatten_sequences.py)
    options = None             # the CompileOptions it was compiled with, when kiln.compile made it

    def __init__(self, graph: Graph, program, native, timings: dict | None = None):
        self.graph = graph
        self.program = program
        self.native = native
        self.timings = dict(timings or {})
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        self._entry = NativeEntry(native)
        self._plans: dict[tuple, Any] = {}    # (dtype, shape) per input, once accepted -> plan
        self._release = weakref.finalize(self, _release, self._entry, native)

    # --- calling ----------------------------------------------------------------------------

    def __call__(self, *args, **kwargs) -> list[np.ndarray]:
        if kwargs:
            if args:
                raise InputNameError("pass the inputs by position or by name, not both",
                                     hint=f"the model's inputs are {self.input_names}")
            return self.run(kwargs)
        if len(args) == 1 and isinstance(args[0], Mapping):
            return self.run(args[0])
        return self.run(args)

    def run(self, feeds: Mapping[str, Any] | list | tuple) -> list[np.ndarray]:
        """Run on `feeds`: a mapping by input name, or a sequence in input order."""
        values = self._in_order(feeds)
        plan = None
        if values is not None and all(type(x) is np.ndarray for x in values):
            plan = self._plans.get(tuple([(x.dtype, x.shape) for x in values]))
        if plan is None:
            values, plan = self._accept(feeds)
        for k, x in enumerate(values):
            flags = x.flags
            if not (flags.c_contiguous and flags.aligned):
                values[k] = np.require(x, requirements=("C", "A"))
        if self.regroup is not None:
            return self.regroup(self._entry.call(plan, values))
        return self._entry.call(plan, values)

    def _accept(self, feeds) -> tuple[list, Any]:
        """Check feeds whose (dtype, shape) signature is new with bind_inputs and check_shapes
        (raises on a wrong input); plan their memory; remember the signature.
        Returns (arrays, plan)."""
        values, _ = bind_inputs(self.graph.inputs, feeds)
        check_shapes(self.graph, values)
        plan = self._entry.plan(tuple(x.shape for x in values))
        if len(self._plans) >= 256:
            self._plans.clear()
        self._plans[tuple((x.dtype, x.shape) for x in values)] = plan
        return values, plan

    def _in_order(self, feeds) -> list | None:
        """The feeds in input order when their names/count are right, else None (bind_inputs
        then explains what is wrong)."""
        names = self.input_names
        if type(feeds) is tuple or type(feeds) is list:
            return list(feeds) if len(feeds) == len(names) else None
        if isinstance(feeds, Mapping):
            if len(feeds) != len(names):
                return None
            try:
                return [feeds[n] for n in names]
            except KeyError:
                return None
        values = list(feeds)
        return values if len(values) == len(names) else None

    # --- looking inside ---------------------------------------------------------------------

    @property
    def graph_ir(self) -> str:
        from ..ir.printer import print_graph
        return print_graph(self.graph)

    @property
    def loop_ir(self) -> str:
        from ..loops.printer import print_program
        return print_program(self.program)

    @property
    def llvm_ir(self) -> str:
        """The LLVM IR kiln emitted (before LLVM's own optimizations)."""
        return self.native.llvm_ir

    @property
    def optimized_llvm_ir(self) -> str:
        """The LLVM IR after LLVM's -O3 pipeline: what became the machine code."""
        return self.native.optimized_ir

    @property
    def asm(self) -> str:
        return self.native.asm

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release the machine code now; calling the model afterwards raises ExecutionError."""
        self._release()

    def __enter__(self) -> "CompiledModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        from ..ir.printer import format_type
        ins = ", ".join(f"{v.name}: {format_type(v.type)}" for v in self.graph.inputs)
        outs = ", ".join(f"{v.name}: {format_type(v.type)}" for v in self.graph.outputs)
        return f"<CompiledModel {self.graph.name}({ins}) -> ({outs})>"


def _release(entry: NativeEntry, native) -> None:
    entry.close()
    native.close()


def compile_graph(graph: Graph, codegen_options=None) -> CompiledModel:
    """Lower `graph` to Loop IR and compile it to machine code (no graph passes: run them first,
    as kiln.compile does). Raises LoweringError when an op or dtype has no native lowering.
    Unknown dims of the graph's inputs are named first (`name_unknown_dims`)."""
    from ..codegen.jit import gc_paused
    with gc_paused():
        return _compile_graph(graph, codegen_options)


def _compile_graph(graph: Graph, codegen_options=None) -> CompiledModel:
    from ..codegen import compile_program
    from ..lowering import lower_graph
    from ..passes.flatten_sequences import flatten_sequences, has_structures
    layout, names, original = None, [v.name for v in graph.outputs], graph
    if has_structures(graph):         # sequences/optionals of static structure -> tensors
        from .specialize import copy_graph
        graph = copy_graph(graph)
        at = {id(n): k for k, n in enumerate(graph.nodes)}
        try:
            layout = flatten_sequences(graph)
            name_unknown_dims(graph)
            t0 = time.perf_counter()
            program = lower_graph(graph)
        except LoweringError as e:     # name the node of the graph we were given
            if id(e.node) in at:
                e.node = original.nodes[at[id(e.node)]]
            raise
    else:
        name_unknown_dims(graph)
        t0 = time.perf_counter()
        program = lower_graph(graph)
    t1 = time.perf_counter()
    native = compile_program(program, codegen_options)
    t2 = time.perf_counter()
    model = CompiledModel(graph, program, native, {"lower": t1 - t0, "codegen": t2 - t1})
    if layout is not None:
        model.output_names, model.regroup = names, layout.regroup
    return model


def name_unknown_dims(graph: Graph) -> None:
    """Give each unknown (None) dim of a graph input a symbolic name of its own, `<input>.<axis>`,
    so the model compiles for any size there: native code needs every input dim sized or named.
    The inputs' types change in place; nothing else does."""
    taken = {d for v in graph.inputs if isinstance(v.type, TensorType) and v.type.shape
             for d in v.type.shape if isinstance(d, str)}
    for v in graph.inputs:
        t = v.type
        if not isinstance(t, TensorType) or t.shape is None or None not in t.shape:
            continue
        dims = []
        for axis, d in enumerate(t.shape):
            if d is None:
                d, k = f"{v.name}.{axis}", 0
                while d in taken:
                    k += 1
                    d = f"{v.name}.{axis}_{k}"
                taken.add(d)
            dims.append(d)
        v.type = t.with_shape(dims)
