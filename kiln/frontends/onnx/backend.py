"""kiln as an `onnx.backend` Backend: prepare a model once, run it many times.

    rep = KilnBackend.prepare(model)                 # imports the model
    outputs = rep.run([x])                           # by position, or {name: array}

`opt_level=` runs kiln's pass pipeline of that level first (0: the graph as imported).
`backend=` picks what executes the Graph. "interpreter" (the default) runs kiln's
reference interpreter; "native" compiles the graph to machine code through
`kiln.runtime.compile_graph(graph)`. A graph whose shapes depend on the values of some inputs
(Reshape's shape fed as an input) does not lower as it is; "native" then compiles it per set of
fed values with those inputs fixed as constants (kiln/runtime/specialize.py), and the executor's
`execution`/`note` say so. An executor is any object with `run(feeds) -> list` (feeds by
input name); `EXECUTORS` maps names to factories `factory(graph) -> executor`, so a new back
end plugs in with one entry.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx
import onnx.backend.base as onnx_backend
from onnx import helper

from ...errors import InputNameError, KilnError, LoweringError
from ...ir.graph import Graph
from ...ir.interpreter import interpret
from .importer import import_model


class InterpreterExecutor:
    """Runs a Graph with kiln's NumPy reference interpreter."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def run(self, feeds) -> list:
        return interpret(self.graph, feeds)


def _native_executor(graph: Graph):
    try:
        from ...runtime import SpecializingModel, compile_graph
    except ImportError:
        raise KilnError("the native back end is not available in this build of kiln",
                        hint="use backend='interpreter'") from None
    try:
        return compile_graph(graph)
    except LoweringError as e:
        return SpecializingModel(graph, e)   # re-raises `e` when no input value would help


EXECUTORS: dict[str, Callable[[Graph], Any]] = {
    "interpreter": InterpreterExecutor,
    "native": _native_executor,
}


def backend_available(backend: str) -> str | None:
    """None when `backend` can run here, else why not."""
    if backend not in EXECUTORS:
        return f"unknown back end {backend!r} (choose one of {sorted(EXECUTORS)})"
    if backend == "native":
        try:
            from ...runtime import compile_graph  # noqa: F401
        except ImportError:
            return "the native back end is not available in this build of kiln"
    return None


def make_executor(graph: Graph, backend: str = "interpreter"):
    try:
        factory = EXECUTORS[backend]
    except KeyError:
        raise KilnError(f"unknown back end {backend!r}",
                        hint=f"choose one of {sorted(EXECUTORS)}") from None
    return factory(graph)


def optimize(graph: Graph, level: int) -> Graph:
    """Run kiln's pass pipeline of optimization level `level` over an imported graph."""
    from ...options import CompileOptions
    from ...pipeline import pipeline
    from ...rewrite.pass_manager import PassContext, PassManager
    return PassManager(pipeline(level)).run(graph, PassContext(CompileOptions(opt_level=level)))


class KilnRep(onnx_backend.BackendRep):
    """A prepared model: the imported Graph and the executor that runs it.

    Initializers that old models also list as graph inputs are constants; feeding one by name
    (a dict input) prepares, once, a variant of the model in which it is a real input."""

    def __init__(self, graph: Graph, executor, model: onnx.ModelProto | None = None,
                 rebuild: Callable[[frozenset], "KilnRep"] | None = None):
        self.graph = graph
        self.executor = executor
        self.model = model
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        self._rebuild = rebuild
        self._variants: dict[frozenset, KilnRep] = {}

    def run(self, inputs, **kwargs) -> tuple:
        feeds = self._feeds(inputs)
        extra = frozenset(feeds) - frozenset(self.input_names)
        if extra and self._rebuild is not None and extra <= self._overridable():
            if extra not in self._variants:
                self._variants[extra] = self._rebuild(extra)
            return self._variants[extra].run(feeds)
        return tuple(self.executor.run(feeds))

    def _overridable(self) -> frozenset:
        if self.model is None:
            return frozenset()
        inits = {t.name for t in self.model.graph.initializer}
        return frozenset(i.name for i in self.model.graph.input if i.name in inits)

    def _feeds(self, inputs):
        if isinstance(inputs, Mapping):
            return dict(inputs)
        if isinstance(inputs, np.ndarray) or not isinstance(inputs, Sequence):
            inputs = [inputs]
        inputs = list(inputs)
        if len(inputs) != len(self.input_names):
            raise InputNameError(
                f"the model takes {len(self.input_names)} input(s) {self.input_names}, "
                f"got {len(inputs)}", hint="pass one array per model input, in order")
        return dict(zip(self.input_names, inputs))


class KilnBackend(onnx_backend.Backend):
    """onnx.backend API over kiln. Devices: CPU only."""

    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model, device: str = "CPU", backend: str = "interpreter",
                opt_level: int = 0, **kwargs) -> KilnRep:
        """Import `model`, optimize it at `opt_level` (0: as imported), and ready `backend`."""
        if not cls.supports_device(device):
            raise KilnError(f"kiln runs on the CPU only, not on {device!r}", hint="use device='CPU'")
        if backend == "native" and "expand" not in kwargs:
            from ...runtime import needs_expansion   # ops with no lowering: their ONNX bodies
            kwargs["expand"] = needs_expansion
        graph = import_model(model, **kwargs)
        if opt_level > 0:
            graph = optimize(graph, opt_level)
        proto = model if isinstance(model, onnx.ModelProto) else None

        def rebuild(fed: frozenset) -> KilnRep:
            return cls.prepare(model, device, backend, opt_level,
                               **{**kwargs, "feed_initializers": sorted(fed)})
        return KilnRep(graph, make_executor(graph, backend), proto, rebuild)

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs) -> tuple:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs, device: str = "CPU",
                 outputs_info=None, **kwargs) -> tuple:
        """Run one node on `inputs` (a list in input order, or a dict by input name)."""
        names = [n for n in node.input if n]
        if isinstance(inputs, Mapping):
            arrays = [np.asarray(inputs[n]) for n in names]
        else:
            arrays = [np.asarray(x) for x in inputs]
        if len(arrays) != len(names):
            raise InputNameError(f"node {node.op_type} reads {len(names)} inputs, got {len(arrays)}")
        graph_inputs = [helper.make_tensor_value_info(n, _elem_type(x), x.shape)
                        for n, x in zip(names, arrays)]
        outs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o]
        graph = helper.make_graph([node], f"{node.op_type}_node", graph_inputs, outs)
        opset = kwargs.pop("opset_version", None) or onnx.defs.onnx_opset_version()
        imports = [helper.make_opsetid("", opset)]
        if node.domain not in ("", "ai.onnx"):
            imports.append(helper.make_opsetid(node.domain, 1))
        model = helper.make_model(graph, opset_imports=imports)
        return cls.run_model(model, arrays, device, **kwargs)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper().split(":")[0] == "CPU"


def _elem_type(x: np.ndarray) -> int:
    if x.dtype == object or x.dtype.kind in "US":
        return onnx.TensorProto.STRING
    from ...ir.dtypes import DType
    return DType.from_numpy(x.dtype).onnx


prepare = KilnBackend.prepare
run_model = KilnBackend.run_model
run_node = KilnBackend.run_node
supports_device = KilnBackend.supports_device
