"""Shared by the torch front-end tests: export a module once, run its graph through the
interpreter and the native back end, compare each output with eager PyTorch.

A family of converter tests is one module returning a tuple (one output per case): one
torch.export and one native compile serve every case of the family.
"""

from __future__ import annotations

import numpy as np
import torch

import kiln
from kiln.frontends.torch import export_program, import_exported_program, import_fx
from kiln.ir.interpreter import interpret

RTOL, ATOL = 1e-4, 1e-5


class Cases(torch.nn.Module):
    """forward(*inputs) -> (case_0(*inputs), case_1(*inputs), ...). `layers` are the nn
    modules the cases call, registered so that export sees them as submodules."""

    def __init__(self, cases: dict, layers: dict | None = None):
        super().__init__()
        self.fns = list(cases.values())
        self.layers = torch.nn.ModuleDict(layers or {})

    def forward(self, *inputs):
        return tuple(fn(*inputs) for fn in self.fns)


def eager(module, args) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*args)
    return [o.numpy() for o in torch.utils._pytree.tree_leaves(out)]


def feeds(graph, args) -> dict:
    return {v.name: a.numpy() for v, a in zip(graph.inputs, args)}


class Family:
    """One exported module of cases; interpreter and native results computed on demand."""

    def __init__(self, cases: dict, args, dynamic_shapes=None, trace: str = "export",
                 layers: dict | None = None):
        """`trace`: "export" (torch.export + core ATen decompositions), "export_raw" (the ATen
        ops export records: linear, layer_norm, softmax.int, batch_norm...) or "make_fx" (ATen
        ops as dispatched: silu, native_batch_norm, flash attention...)."""
        self.names = list(cases)
        self.module = Cases(cases, layers).eval()
        self.args = tuple(args)
        if trace == "export":
            self.graph = export_program(self.module, self.args, dynamic_shapes=dynamic_shapes)
        elif trace == "export_raw":
            with torch.no_grad():
                ep = torch.export.export(self.module, self.args, strict=False)
            self.graph = import_exported_program(ep, decompose=False)
        else:
            from torch.fx.experimental.proxy_tensor import make_fx
            with torch.no_grad():
                gm = make_fx(self.module)(*self.args)
            self.graph = import_fx(gm)
        self.expected = eager(self.module, self.args)
        self._interpreted = self._native = None

    def interpreted(self) -> list:
        if self._interpreted is None:
            self._interpreted = interpret(self.graph, feeds(self.graph, self.args))
        return self._interpreted

    def native(self) -> list:
        if self._native is None:
            self.compiled = kiln.compile(self.graph)
            self._native = self.compiled(*[a.numpy() for a in self.args])
        return self._native

    def check(self, name: str, backend: str, rtol=RTOL, atol=ATOL) -> None:
        k = self.names.index(name)
        got = (self.interpreted() if backend == "interpreter" else self.native())[k]
        want = self.expected[k]
        assert got.dtype == want.dtype, (name, got.dtype, want.dtype)
        assert got.shape == want.shape, (name, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
