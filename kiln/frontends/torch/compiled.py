"""A CompiledModel made from a torch nn.Module: it also takes torch tensors, and the module's
own arguments.

Called with NumPy arrays it returns NumPy arrays, like every CompiledModel. Called with at least
one torch tensor it returns torch tensors (CPU, sharing the memory of the fresh NumPy outputs,
no copy); torch inputs are read without a copy when they are contiguous CPU tensors.

It can be called the way the module was exported: arguments nested like the example inputs
(a dict of tensors, a list...) are flattened in the same order, and a non-tensor argument
(an int, a flag) must equal the value torch.export specialized the program for.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch.utils import _pytree as pytree

from ...errors import InputError
from ...runtime.compiled_model import CompiledModel
from .context import from_numpy, to_numpy


def _to_numpy(x):
    return to_numpy(x) if isinstance(x, torch.Tensor) else x


class TorchCompiledModel(CompiledModel):
    example_spec = None         # the pytree spec of the example inputs
    example_constants = {}      # leaf index -> value of each non-tensor example input

    def __call__(self, *args, **kwargs):
        if args and not kwargs and self.example_spec is not None:
            leaves, spec = pytree.tree_flatten(tuple(args))
            if spec == self.example_spec:
                return self.run(self._tensor_leaves(leaves))
        return super().__call__(*args, **kwargs)

    def _tensor_leaves(self, leaves) -> list:
        for i, value in self.example_constants.items():
            if leaves[i] != value:
                raise InputError(f"argument {i} is {leaves[i]!r}, but the model was exported "
                                 f"(and compiled) for {value!r}",
                                 hint="compile again for this value: torch.export fixes "
                                      "non-tensor arguments")
        return [x for i, x in enumerate(leaves) if i not in self.example_constants]

    def run(self, feeds):
        if isinstance(feeds, Mapping):
            is_torch = any(isinstance(x, torch.Tensor) for x in feeds.values())
            feeds = {k: _to_numpy(x) for k, x in feeds.items()} if is_torch else feeds
        else:
            feeds = list(feeds)
            is_torch = any(isinstance(x, torch.Tensor) for x in feeds)
            feeds = [_to_numpy(x) for x in feeds] if is_torch else feeds
        outputs = super().run(feeds)
        return [from_numpy(o) for o in outputs] if is_torch else outputs


def as_torch_model(compiled: CompiledModel, example_inputs=None) -> TorchCompiledModel:
    """The same compiled model (same object), now accepting torch tensors and arguments shaped
    like `example_inputs`."""
    compiled.__class__ = TorchCompiledModel
    if example_inputs is not None:
        example = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) \
            else (example_inputs,)
        leaves, compiled.example_spec = pytree.tree_flatten(example)
        compiled.example_constants = {i: x for i, x in enumerate(leaves)
                                      if not isinstance(x, torch.Tensor)}
    return compiled
