"""kiln's PyTorch front end (needs the optional `torch` extra; the only package importing torch).

    from kiln.frontends.torch import export_program, import_fx
    graph = export_program(model, (x,), dynamic_shapes=...)   # nn.Module -> Graph
    graph = import_exported_program(ep)                         # torch.export.ExportedProgram
    graph = import_fx(gm)                                        # FX GraphModule of ATen ops
    model = kiln.compile(torch_module, (x,))                     # the same, then compiled

- `import_fx(gm, example_inputs=None, *, name="torch", constants=None) -> Graph` converts an FX
  GraphModule whose call_function nodes are core ATen ops (torch.export(...).run_decompositions(),
  make_fx, aot_autograd). Tensor placeholders become graph inputs in order (dtype and shape from
  node.meta["val"]; a SymInt dim becomes the symbolic dim named after its symbol, "s0");
  placeholders named in `constants` and get_attr tensors become graph constants. SymInt
  placeholders are not inputs: `graph.symint_inputs` lists them (SymIntInput: position among
  the placeholders, name, symbol, and the (input index, dim) whose size it is). Unsupported
  ops raise one kiln.errors.UnsupportedOpError naming every one (node and source line), with
  `.ops` the op names.
- `export_program(module, example_inputs, *, dynamic_shapes=None) -> Graph`: torch.export in
  eval mode under no_grad, core ATen decompositions (scaled_dot_product_attention and matmul
  kept whole), weights frozen, then import_fx; dims given a torch.export.Dim take its name.
- `import_exported_program(ep, *, decompose=True) -> Graph`: the same for an ExportedProgram
  (decompose=False converts the ATen ops export recorded, undecomposed).
- `supported_ops()`: the ATen overloads the op table (aten_table.py) converts.
"""

from .aten_table import supported_ops
from .export import export_program, import_exported_program
from .fx_import import SymIntInput, import_fx

__all__ = ["SymIntInput", "export_program", "import_exported_program", "import_fx",
           "supported_ops"]
