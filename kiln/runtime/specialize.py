"""Compiling graphs whose shapes depend on input values, by fixing those inputs to their feeds.

Native code is compiled for shapes known when compiling (static, or symbolic sizes of the
inputs). A graph input that decides a shape or a position (Reshape's `shape`, Slice's `starts`,
a reduction's `axes`, TopK's `k` fed as inputs, common in ONNX's node tests) makes lowering raise
LoweringError. The ONNX backend (kiln/frontends/onnx/backend.py, backend="native") then uses a
`SpecializingModel`: at each run it turns those inputs into constants holding the fed values,
compiles that graph natively, and keeps the compiled model for as long as the same values come
again. Which inputs to fix is found from the errors: the inputs upstream of the operand the
error names (or, failing that, of the node's other operands), repeated until the graph lowers.

This is the ONNX backend's policy only: `kiln.compile` reports the LoweringError instead. The
reason (the first LoweringError) is kept in `note` so the conformance report can say which
cases ran on specialized graphs.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Mapping

import numpy as np

from ..errors import LoweringError
from ..ir.graph import Graph, Node
from ..ir.infer import infer_node
from ..ir.parser import parse_graph
from ..ir.printer import collect_weights, print_graph
from ..ir.signature import bind_inputs
from ..ir.types import TensorType
from ..passes.flatten_sequences import bind_input_structures, flat_feeds, structure_key
from .compiled_model import CompiledModel, compile_graph

MAX_VARIANTS = 8          # compiled variants kept per model (one per set of fixed values)
MAX_ROUNDS = 16           # attempts to find the inputs to fix


def copy_graph(graph: Graph) -> Graph:
    """An independent copy of `graph` (constants shared by reference), through the text IR."""
    return parse_graph(print_graph(graph, inline_limit=0), collect_weights(graph))


def fix_inputs(graph: Graph, values: dict[str, np.ndarray]) -> Graph:
    """A copy of `graph` in which the inputs named in `values` are constants holding them, and
    whose node types are inferred again with those values known: values that do not fit the
    graph (a Reshape to a different element count) raise TypeInferenceError here, before
    lowering could build loops from them."""
    g = copy_graph(graph)
    for v in list(g.inputs):
        if v.name in values:
            data = np.asarray(values[v.name])
            g.inputs.remove(v)
            v.data = data
            v.type = TensorType(v.type.dtype, tuple(data.shape))
            g.constants.append(v)
    for node in g.nodes:
        for v, t in zip(node.outputs, infer_node(node)):
            if v is not None:
                v.type = t
    return g


def inputs_to_fix(graph: Graph, error: LoweringError) -> set[str]:
    """Graph inputs whose values would let the node `error` names lower: those upstream of the
    operand the message names, else of every operand but the first, else of every operand."""
    node = error.node
    if not isinstance(node, Node):
        return set()
    named = set(re.findall(r"input '([^']+)'", error.message))
    slots = node.op.inputs
    operands = [v for i, v in enumerate(node.inputs) if v is not None and slots and
                slots[min(i, len(slots) - 1)].name in named]
    for group in (operands, node.inputs[1:], node.inputs):
        found = _graph_inputs_upstream(graph, [v for v in group if v is not None])
        if found:
            return found
    return set()


def _graph_inputs_upstream(graph: Graph, values: list) -> set[str]:
    inputs = {id(v): v.name for v in graph.inputs}
    names = set(inputs.values())      # a node copied from a body, in a copy of `graph`, reads
    found, seen, stack = set(), set(), list(values)     # the copy's inputs: same names
    while stack:
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if id(v) in inputs:
            found.add(inputs[id(v)])
        elif v.producer is None and v.data is None and v.name in names:
            found.add(v.name)
        elif v.producer is not None:
            stack.extend(i for i in v.producer.inputs if i is not None)
    return found


class SpecializingModel:
    """Runs a graph that does not lower as it is: compiled per set of values of the inputs that
    decide its shapes (see the module docstring). Same `run(feeds) -> list` as CompiledModel."""

    execution = "native-specialized"

    def __init__(self, graph: Graph, error: LoweringError, codegen_options=None):
        self.graph = graph
        self.error = error.with_traceback(None)    # its frames would hold this model in a cycle
        self.codegen_options = codegen_options
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = [v.name for v in graph.outputs]
        # sequence/optional inputs: compiled per structure fed (passes/flatten_sequences.py)
        self.structured = [v.name for v in graph.inputs if not isinstance(v.type, TensorType)]
        self.fixed: set[str] = inputs_to_fix(graph, error) - set(self.structured)
        if not self.fixed and not self.structured:
            raise error
        self._variants: OrderedDict[tuple, CompiledModel] = OrderedDict()

    @property
    def note(self) -> str:
        reason = str(self.error).splitlines()[0]
        return f"inputs {sorted(self.fixed)} fixed to the fed values ({reason})"

    def __call__(self, *args, **kwargs) -> list[np.ndarray]:
        return self.run(kwargs or (args[0] if len(args) == 1 and isinstance(args[0], Mapping)
                                   else args))

    def run(self, feeds) -> list[np.ndarray]:
        values, _ = bind_inputs(self.graph.inputs, feeds)
        by_name = dict(zip(self.input_names, values))
        model = self._variant(by_name)
        if self.structured:
            by_name = {**by_name, **{k: a for n in self.structured
                                     for k, a in flat_feeds(n, by_name[n])}}
        return model.run([by_name[n] for n in model.input_names])

    def _variant(self, by_name: dict) -> CompiledModel:
        key = tuple((n, by_name[n].dtype.str, by_name[n].shape, by_name[n].tobytes())
                    for n in sorted(self.fixed))
        key += tuple((n, structure_key(by_name[n])) for n in self.structured)
        model = self._variants.get(key)
        if model is not None:
            self._variants.move_to_end(key)
            return model
        model = self._compile(by_name)
        self._variants[key] = model
        if len(self._variants) > MAX_VARIANTS:
            self._variants.popitem(last=False)[1].close()
        return model

    def _compile(self, by_name: dict) -> CompiledModel:
        for _ in range(MAX_ROUNDS):
            graph = fix_inputs(self.graph, {n: by_name[n] for n in self.fixed})
            front = bind_input_structures(graph, {n: by_name[n] for n in self.structured})
            try:
                return compile_graph(graph, self.codegen_options)
            except LoweringError as e:
                more = inputs_to_fix(self.graph, _in_original(e, graph, self.graph, front))
                more -= self.fixed | set(self.structured)
                if not more:
                    raise
                self.fixed |= more
        raise self.error

    def close(self) -> None:
        for model in self._variants.values():
            model.close()
        self._variants.clear()


def _in_original(error: LoweringError, copy: Graph, original: Graph,
                 front: int = 0) -> LoweringError:
    """The error with its node mapped from the specialized copy back to `original` (nodes keep
    their position, after the `front` nodes the copy put first), so upstream inputs are
    searched in the graph that still has them."""
    node = error.node
    if isinstance(node, Node):
        for k, n in enumerate(copy.nodes):
            if n is node and k >= front:
                error.node = original.nodes[k - front]
                break
    return error
