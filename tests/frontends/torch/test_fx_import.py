"""import_fx and export_program: inputs, constants, outputs, SymInt placeholders, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import kiln  # noqa: E402
from kiln.errors import ModelLoadError, UnsupportedOpError  # noqa: E402
from kiln.frontends.torch import export_program, import_fx  # noqa: E402
from kiln.ir.interpreter import interpret  # noqa: E402
from kiln.ir.types import TensorType  # noqa: E402
from kiln.ir.verifier import verify  # noqa: E402


class SinCos(torch.nn.Module):
    def forward(self, x):
        return torch.sin(x) + torch.cos(x)


def test_sin_plus_cos_through_the_interpreter_and_native():
    x = torch.randn(3, 4)
    graph = export_program(SinCos(), (x,))
    verify(graph)
    assert [n.op.name for n in graph.nodes] == ["Sin", "Cos", "Add"]
    assert graph.inputs[0].type == TensorType(kiln.ir.dtypes.DType.float32, (3, 4))
    want = (torch.sin(x) + torch.cos(x)).numpy()
    np.testing.assert_allclose(interpret(graph, {"x": x.numpy()})[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(kiln.compile(graph)(x.numpy())[0], want, rtol=1e-4, atol=1e-5)
