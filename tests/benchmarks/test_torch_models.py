"""The PyTorch ports of the model suite compute what kiln's interpreter computes on the graphs
they take their weights from (the PyTorch column of the benchmark is only meaningful then)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from benchmarks.models import SUITE, example_inputs  # noqa: E402
from benchmarks.torch_models import TORCH_SUITE, from_graph, run  # noqa: E402
from kiln.ir.interpreter import interpret  # noqa: E402

# small sizes keep the interpreter fast; batch 2 pads the last row of BERT's attention mask
SIZES = {"mlp": {}, "resnet18": {"image": 32}, "bert": {}, "gpt2": {}}


@pytest.mark.parametrize("name", list(SUITE))
def test_torch_model_matches_the_interpreter(name):
    graph = SUITE[name](seed=3, **SIZES[name])
    feeds = example_inputs(graph, batch=2, seq=13, seed=1)
    expected = interpret(graph, feeds)
    got = run(from_graph(name, graph), feeds, [v.name for v in graph.inputs])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_weights_come_from_the_graph():
    """Two seeds give two graphs; each port follows its own graph's weights."""
    a, b = SUITE["mlp"](seed=0), SUITE["mlp"](seed=1)
    feeds = example_inputs(a, batch=3)
    out_a = run(from_graph("mlp", a), feeds)[0]
    out_b = run(from_graph("mlp", b), feeds)[0]
    assert not np.allclose(out_a, out_b)
    np.testing.assert_allclose(out_b, interpret(b, feeds)[0], rtol=1e-4, atol=1e-5)


def test_every_weight_is_loaded():
    """The ports have as many parameters as their graphs have float weights of rank >= 1
    (scalars like eps and the Shape arithmetic's int64 constants are not parameters)."""
    for name in SUITE:
        graph = SUITE[name](**SIZES[name])
        module = from_graph(name, graph)
        tensors = list(module.parameters()) + list(module.buffers())
        loaded = sum(t.numel() for t in tensors if t.dtype == torch.float32)
        weights = sum(v.data.size for v in graph.constants
                      if v.data.dtype == np.float32 and v.data.ndim >= 1 and "causal" not in v.name)
        assert loaded == weights, name


def test_a_missing_weight_is_named():
    graph = SUITE["mlp"]()
    graph.constants = [v for v in graph.constants if v.name != "fc1.bias"]
    with pytest.raises(KeyError, match="fc1.bias"):
        from_graph("mlp", graph)


def test_tiny_is_an_add():
    x, y = np.float32([1.5]), np.float32([-4.0])
    (out,) = run(TORCH_SUITE["tiny"](None), {"x": x, "y": y})
    np.testing.assert_array_equal(out, x + y)
