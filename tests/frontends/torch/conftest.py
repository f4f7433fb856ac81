"""Fixtures shared by the torch.compile tests (torch is imported only when one is used)."""

from __future__ import annotations

import pytest


@pytest.fixture
def kiln_compiles(monkeypatch):
    """Every KilnGraphFunction kiln_backend builds in the test (graphs kiln really compiled)."""
    import torch
    from kiln.frontends.torch import dynamo

    made = []
    original = dynamo.KilnGraphFunction.compile.__func__

    def compile(cls, *args, **kwargs):
        made.append(original(cls, *args, **kwargs))
        return made[-1]
    monkeypatch.setattr(dynamo.KilnGraphFunction, "compile", classmethod(compile))
    torch._dynamo.reset()
    yield made
    torch._dynamo.reset()
