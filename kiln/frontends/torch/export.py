"""nn.Module -> kiln Graph through torch.export.

    graph = export_program(model, (x,))                                  # static shapes
    graph = export_program(model, (ids,), dynamic_shapes=({0: Dim("batch"), 1: Dim("seq")},))
    graph = import_exported_program(ep)                                  # an ExportedProgram

The module is exported for inference (eval mode, no_grad, strict=False), decomposed to core
ATen ops (`run_decompositions()`, keeping scaled_dot_product_attention and matmul whole), and its parameters, buffers and lifted constants are frozen
into graph constants; the user inputs become the graph inputs, in order.
"""

from __future__ import annotations

import torch

from ...errors import ModelLoadError
from ...ir.graph import Graph
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
    return import_exported_program(ep, name=type(module).__name__)


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


def import_exported_program(ep, *, name: str = "torch") -> Graph:
    """Decompose an ExportedProgram to core ATen and import it, weights frozen as constants."""
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
