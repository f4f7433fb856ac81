"""nn.Module -> kiln Graph through torch.export.

    graph = export_program(model, (x,))                                  # static shapes
    graph = export_program(model, (ids,), dynamic_shapes=({0: Dim("batch"), 1: Dim("seq")},))
    graph = import_exported_program(ep)                                  # an ExportedProgram

The module is exported for inference (eval mode, no_grad, strict=False), decomposed to core
ATen ops (`run_decompositions()`, keeping scaled_dot_product_attention and matmul whole),
and its parameters, buffers and lifted constants are frozen into graph constants; the user
inputs become the graph inputs, in order. A dim given a torch.export.Dim is named after it
("batch"), not after torch's symbol ("s77").
"""

from __future__ import annotations

import torch

from ...errors import ModelLoadError
from ...ir.graph import Graph
from ...ir.types import TensorType
from .fx_import import import_fx


def export_program(module: torch.nn.Module, example_inputs, *, dynamic_shapes=None) -> Graph:
    """Export `module` called on `example_inputs` (a tuple of tensors) and import it."""
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"export_program needs a torch.nn.Module, not "
                             f"{type(module).__name__}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            ep = torch.export.export(module, example_inputs, dynamic_shapes=dynamic_shapes,
                                     strict=False)
    finally:
        module.train(was_training)
    graph = import_exported_program(ep, name=type(module).__name__)
    rename_dims(graph, dim_names(graph, module, example_inputs, dynamic_shapes))
    return graph


def dim_names(graph: Graph, module, example_inputs, dynamic_shapes) -> dict[str, str]:
    """torch's symbol of each input dim given a torch.export.Dim -> the Dim's name ("s77" ->
    "batch"), read from `dynamic_shapes` (a tuple/list per input, or a dict by argument name)."""
    if dynamic_shapes is None:
        return {}
    if isinstance(dynamic_shapes, dict):
        import inspect
        try:
            bound = inspect.signature(module.forward).bind(*example_inputs)
        except TypeError:           # a signature kiln cannot line up: keep torch's names
            return {}
        specs = [dynamic_shapes.get(name) for name in bound.arguments]
    else:
        specs = list(dynamic_shapes)
    names = {}
    for value, spec in zip(graph.inputs, specs):
        if not isinstance(spec, (dict, list, tuple)) or value.type.shape is None:
            continue
        axes = spec.items() if isinstance(spec, dict) else enumerate(spec)
        for axis, dim in axes:
            name = getattr(dim, "__name__", None)
            symbol = value.type.shape[axis] if axis < len(value.type.shape) else None
            if isinstance(name, str) and isinstance(symbol, str):
                names.setdefault(symbol, name)
    taken = {d for v in graph.inputs for d in (v.type.shape or ()) if isinstance(d, str)}
    return {s: n for s, n in names.items() if n not in taken and
            list(names.values()).count(n) == 1}


def rename_dims(graph: Graph, names: dict[str, str]) -> None:
    """Rename symbolic dims in the type of every value of `graph`."""
    if not names:
        return
    values = list(graph.inputs) + [v for n in graph.nodes for v in n.outputs if v is not None]
    for v in values:
        t = v.type
        if isinstance(t, TensorType) and t.shape is not None and \
                any(isinstance(d, str) and d in names for d in t.shape):
            v.type = TensorType(t.dtype, tuple(names.get(d, d) if isinstance(d, str) else d
                                               for d in t.shape))


# composite ops kept whole: kiln converts them to fewer, better ops than their decompositions
# (MatMul broadcasts batch dims where matmul's decomposition expands the weight for bmm; the
# attention decomposition guards fully masked rows by a pass over the scores)
KEEP = ("scaled_dot_product_attention.default", "matmul.default")


def decompositions():
    """torch.export's core ATen decomposition table, less the KEEP ops."""
    table = torch.export.default_decompositions()
    for name in KEEP:
        packet, overload = name.split(".")
        table.pop(getattr(getattr(torch.ops.aten, packet), overload), None)
    return table


def import_exported_program(ep, *, name: str = "torch", decompose: bool = True) -> Graph:
    """Decompose an ExportedProgram to core ATen (unless `decompose` is False: the ATen ops
    as export recorded them, linear, layer_norm, softmax.int...) and import it, weights frozen
    as constants."""
    if decompose:
        ep = ep.run_decompositions(decompositions())
    sig = ep.graph_signature
    frozen = {}
    for spec in sig.input_specs:
        if spec.kind == torch.export.graph_signature.InputKind.USER_INPUT:
            continue
        if spec.target in ep.state_dict:
            frozen[spec.arg.name] = ep.state_dict[spec.target]
        elif spec.target in ep.constants:
            frozen[spec.arg.name] = ep.constants[spec.target]
        else:
            raise ModelLoadError(f"exported input '{spec.arg.name}' ({spec.kind.name}) has no "
                                 f"value to freeze")
    user_outputs = [s for s in sig.output_specs
                    if s.kind != torch.export.graph_signature.OutputKind.USER_OUTPUT]
    if user_outputs:
        raise ModelLoadError("the exported program mutates buffers or inputs",
                             hint="kiln compiles inference graphs: export the model in eval "
                                  "mode without in-place updates of its state")
    return import_fx(ep.graph_module, name=name, constants=frozen)
