"""FX GraphModule of core ATen ops -> kiln Graph.

    graph = import_fx(gm)                      # gm from torch.export / make_fx / aot_autograd
    graph.symint_inputs                        # the SymInt placeholders (see SymIntInput)

The importer first looks at every call_function node and raises one UnsupportedOpError naming
every ATen op kiln has no converter for (each with its FX node and the user's source line);
only then does it convert, node by node, through the op table (aten_table.py):

- a tensor placeholder becomes a graph input named after it, typed from node.meta["val"] (a
  FakeTensor): its dtype, and its shape with each SymInt dimension named after its symbol
  ("s0"); a placeholder listed in `constants` becomes a graph constant instead (the frozen
  parameters and buffers of an exported program);
- a SymInt placeholder (Dynamo passes sizes as arguments under dynamic shapes) is not a graph
  input: its value is read from the shape of the first tensor input that has that symbol as a
  dimension, and it is recorded in `graph.symint_inputs`, so a caller knows to drop it;
- a get_attr node (a parameter or constant tensor of the GraphModule) becomes a graph constant;
- the output node's tensors, flattened, become the graph outputs, in order.

Each kiln value takes the dimensions torch recorded where kiln's own type inference has none
(a reshape to sizes computed at run time), so symbolic dims stay named downstream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.fx

from ...errors import KilnError, ModelLoadError, UnsupportedOpError
from ...ir.builder import GraphBuilder
from ...ir.graph import Graph, Value
from ...ir.types import TensorType
from .aten_table import ATEN_CONVERTERS, IGNORED
from .context import FxContext, dim_of, kiln_dtype, source_line, to_numpy


@dataclass(frozen=True)
class SymIntInput:
    """A SymInt placeholder of the FX graph. `position` is its index among the placeholders,
    `symbol` the size it stands for ("s0", or an int's text for a size torch specialized), and
    `source` the (graph input index, dim) whose size it is read from."""
    position: int
    name: str
    symbol: str
    source: tuple[int, int] | None


def import_fx(gm: torch.fx.GraphModule, example_inputs=None, *, name: str = "torch",
              constants: dict | None = None) -> Graph:
    """Convert `gm` (call_function nodes of torch.ops.aten ops) into a kiln Graph.

    `example_inputs` are only needed when the placeholders carry no meta["val"] (a graph made
    by symbolic_trace): they are then propagated as FakeTensors to type every node.
    `constants` maps placeholder names to tensors that are frozen into graph constants."""
    if not isinstance(gm, torch.fx.GraphModule):
        raise ModelLoadError(f"import_fx needs a torch.fx.GraphModule, not {type(gm).__name__}")
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    if any("val" not in n.meta for n in placeholders):
        _propagate_fake(gm, example_inputs)
    check_supported(gm)
    return _Importer(gm, name, dict(constants or {})).run()


def _propagate_fake(gm, example_inputs) -> None:
    if example_inputs is None:
        raise ModelLoadError("the FX graph has no meta['val'] on its placeholders",
                             hint="pass example_inputs to import_fx, or trace with "
                                  "torch.export / make_fx, which record them")
    from torch.fx.passes.fake_tensor_prop import FakeTensorProp
    FakeTensorProp(gm).propagate(*example_inputs)


def op_name(target) -> str:
    if isinstance(target, torch._ops.OpOverload):
        return str(target)                      # aten.relu.default
    return getattr(target, "__name__", str(target))


def check_supported(gm: torch.fx.GraphModule) -> None:
    """Raise one UnsupportedOpError listing every node kiln cannot convert."""
    missing = []
    for node in gm.graph.nodes:
        if node.op in ("call_module", "call_method"):
            missing.append((f"{node.op} {node.target}", node))
        elif node.op == "call_function" and node.target not in ATEN_CONVERTERS \
                and node.target not in IGNORED:
            missing.append((op_name(node.target), node))
    if not missing:
        return
    lines = []
    for op, node in missing:
        where = source_line(node)
        lines.append(f"  {op} (node '{node.name}'" + (f", {where})" if where else ")"))
    ops = sorted({op for op, _ in missing})
    raise UnsupportedOpError(
        f"{len(missing)} node(s) use ops kiln cannot convert:\n" + "\n".join(lines), ops=ops,
        hint="export with .run_decompositions() to core ATen ops, or rewrite these calls in "
             "terms of ops kiln supports (docs/torch.md lists them)")


def normalize_args(node: torch.fx.Node) -> list:
    """The node's arguments in schema order: positional, then keywords, then defaults."""
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return list(node.args)
    out = []
    for i, arg in enumerate(schema.arguments):
        if i < len(node.args):
            out.append(node.args[i])
        elif arg.name in node.kwargs:
            out.append(node.kwargs[arg.name])
        elif arg.has_default_value():
            out.append(arg.default_value)
        else:
            out.append(None)
    return out


class _Importer:
    def __init__(self, gm, name: str, constants: dict):
        self.gm = gm
        self.b = GraphBuilder(name)
        self.cx = FxContext(self.b)
        self.constants = constants

    def run(self) -> Graph:
        nodes = list(self.gm.graph.nodes)
        self.placeholders(nodes)
        for node in nodes:
            if node.op == "get_attr":
                self.get_attr(node)
            elif node.op == "call_function":
                self.call(node)
            elif node.op == "output":
                self.outputs(node)
        return self.b.graph

    # --- inputs -----------------------------------------------------------------------------
    def placeholders(self, nodes) -> None:
        graph = self.b.graph
        graph.symint_inputs = []
        dims = {}                          # symbol -> (input index, dim)
        sym_nodes = []
        for pos, node in enumerate(n for n in nodes if n.op == "placeholder"):
            val = node.meta.get("val")
            if node.name in self.constants:
                self.cx.node = node
                self.cx.env[node] = self.b.constant(_to_numpy(self.constants[node.name]),
                                                    node.name)
            elif isinstance(val, torch.Tensor):
                shape = tuple(dim_of(d) for d in val.shape)
                t = TensorType(kiln_dtype(val.dtype, f"input '{node.name}'"), shape)
                self.cx.env[node] = self.b.input(node.name, t)
                for axis, d in enumerate(shape):
                    if isinstance(d, str):
                        dims.setdefault(d, (len(graph.inputs) - 1, axis))
            elif isinstance(val, (torch.SymInt, int)):
                sym_nodes.append((pos, node, val))
            else:
                raise ModelLoadError(f"placeholder '{node.name}' holds a "
                                     f"{type(val).__name__}; kiln takes tensors and SymInts")
        for pos, node, val in sym_nodes:
            self.cx.node = node
            symbol = str(val.node.expr) if isinstance(val, torch.SymInt) else str(val)
            source = dims.get(symbol)
            graph.symint_inputs.append(SymIntInput(pos, node.name, symbol, source))
            if isinstance(val, int) or val.node.expr.is_Integer:
                self.cx.env[node] = self.cx.ints([int(symbol)])
            elif source is None:
                raise ModelLoadError(
                    f"SymInt placeholder '{node.name}' ({symbol}) is not the size of any "
                    f"dimension of a tensor input", hint="kiln reads sizes from tensor shapes")
            else:
                index, axis = source
                self.cx.env[node] = self.cx.dim_size(graph.inputs[index], axis)

    def get_attr(self, node) -> None:
        obj = self.gm
        for part in node.target.split("."):
            obj = getattr(obj, part)
        self.cx.node = node
        if isinstance(obj, torch.Tensor):
            self.cx.env[node] = self.b.constant(_to_numpy(obj), node.name)
        else:
            self.cx.env[node] = obj            # a nested GraphModule or other Python object

    # --- nodes ------------------------------------------------------------------------------
    def call(self, node) -> None:
        cx = self.cx
        cx.node = node
        if node.target in IGNORED:
            cx.env[node] = None
            return
        convert = ATEN_CONVERTERS[node.target]
        where = source_line(node)
        try:
            result = convert(cx, *normalize_args(node))
        except KilnError as e:
            e.add_note(f"while converting FX node '{node.name}' ({op_name(node.target)})"
                       + (f" from {where}" if where else ""))
            raise
        except Exception as e:      # a converter meeting arguments it does not expect
            raise UnsupportedOpError(
                f"node '{node.name}' ({op_name(node.target)}"
                + (f", {where}" if where else "") + f"): kiln cannot convert this call: "
                f"{type(e).__name__}: {e}", ops=[op_name(node.target)],
                hint="rewrite the call in terms of ops kiln supports (docs/torch.md)") from e
        if isinstance(result, Value):
            result = self.settle(result, node.meta.get("val"))
        elif isinstance(result, (tuple, list)):
            vals = node.meta.get("val")
            vals = vals if isinstance(vals, (tuple, list)) else [None] * len(result)
            result = tuple(self.settle(r, v) if isinstance(r, Value) else r
                           for r, v in zip(result, vals))
        cx.env[node] = result

    def settle(self, v: Value, fake) -> Value:
        """Give `v` torch's dtype (a cast if a converter left another) and fill the dims kiln
        could not infer with the ones torch recorded. A shape that contradicts torch's is a
        conversion kiln got wrong: an error, never a silently wrong result."""
        if not isinstance(fake, torch.Tensor) or not isinstance(v.type, TensorType):
            return v
        dtype = kiln_dtype(fake.dtype, self.cx.node.name)
        if v.type.dtype != dtype:
            v = self.cx.cast(v, dtype)
        known = tuple(dim_of(d) for d in fake.shape)
        shape = v.type.shape
        if shape is not None and (len(shape) != len(known) or any(
                isinstance(d, int) and isinstance(k, int) and d != k
                for d, k in zip(shape, known))):
            node = self.cx.node
            raise UnsupportedOpError(
                f"node '{node.name}' ({op_name(node.target)}): kiln's conversion has shape "
                f"{list(shape)} where torch has {list(known)}", ops=[op_name(node.target)],
                hint="this is a bug in kiln's converter for this op; please report it")
        if shape is None:
            v.type = TensorType(dtype, known)
        elif len(shape) == len(known) and any(d is None and k is not None
                                              for d, k in zip(shape, known)):
            v.type = TensorType(dtype, tuple(k if d is None else d for d, k in zip(shape, known)))
        return v

    def outputs(self, node) -> None:
        seen = set()
        for i, arg in enumerate(torch.utils._pytree.tree_leaves(node.args[0])):
            self.cx.node = arg if isinstance(arg, torch.fx.Node) else node
            if not isinstance(arg, torch.fx.Node) or not isinstance(self.cx.env.get(arg), Value):
                raise ModelLoadError(f"output {i} of the FX graph is {arg!r}, not a tensor",
                                     hint="return only tensors from the model")
            v = self.cx.env[arg]
            if v.producer is None or id(v) in seen:
                v = self.b.Identity(v, name=f"output_{i}")
            seen.add(id(v))
            self.b.output(v)


def _to_numpy(t) -> np.ndarray:
    """A weight's own copy of its data (a later in-place change of the module's parameter must
    not reach the compiled constants)."""
    return to_numpy(t.detach().contiguous()).copy()


__all__ = ["SymIntInput", "check_supported", "import_fx"]
