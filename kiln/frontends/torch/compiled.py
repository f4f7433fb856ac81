"""A CompiledModel made from a torch nn.Module: it also takes torch tensors.

Called with NumPy arrays it returns NumPy arrays, like every CompiledModel. Called with at least
one torch tensor it returns torch tensors (CPU, sharing the memory of the fresh NumPy outputs,
no copy); torch inputs are read without a copy when they are contiguous CPU tensors.
"""

from __future__ import annotations

from typing import Mapping

import torch

from ...runtime.compiled_model import CompiledModel
from .context import from_numpy, to_numpy


def _to_numpy(x):
    return to_numpy(x) if isinstance(x, torch.Tensor) else x


class TorchCompiledModel(CompiledModel):
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


def as_torch_model(compiled: CompiledModel) -> TorchCompiledModel:
    """The same compiled model (same object), now accepting torch tensors."""
    compiled.__class__ = TorchCompiledModel
    return compiled
