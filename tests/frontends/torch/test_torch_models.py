"""The model suite as PyTorch modules (benchmarks/torch_models.py) through kiln.compile, with a
dynamic batch (and sequence), vs eager PyTorch within rtol 1e-4 / atol 1e-5 at several sizes
of one compile. Small configurations (one layer, 32x32 images) keep the module fast."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from torch.export import Dim  # noqa: E402

import kiln  # noqa: E402
from benchmarks.models import SUITE, example_inputs  # noqa: E402
from benchmarks.torch_models import from_graph  # noqa: E402

BUILD = {"mlp": lambda: SUITE["mlp"](), "resnet18": lambda: SUITE["resnet18"](image=32),
         "bert": lambda: SUITE["bert"](layers=1), "gpt2": lambda: SUITE["gpt2"](layers=1)}


def torch_args(graph, **sizes):
    feeds = example_inputs(graph, **sizes)
    return tuple(torch.from_numpy(feeds[v.name]) for v in graph.inputs)


@pytest.fixture(scope="module", params=list(BUILD))
def compiled(request):
    graph = BUILD[request.param]()
    module = from_graph(request.param, graph)
    batch, seq = Dim("batch", max=64), Dim("seq", max=64)
    dims = {0: batch, 1: seq} if request.param in ("bert", "gpt2") else {0: batch}
    args = torch_args(graph, batch=2, seq=8)
    model = kiln.compile(module, args, dynamic_shapes=tuple(dims for _ in args))
    return graph, module, model


@pytest.mark.parametrize("batch,seq", [(2, 8), (1, 5), (3, 16)])
def test_suite_module_matches_eager(compiled, batch, seq):
    graph, module, model = compiled
    args = torch_args(graph, batch=batch, seq=seq, seed=batch + seq)
    with torch.inference_mode():
        want = module(*args)
    (got,) = model(*args)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
