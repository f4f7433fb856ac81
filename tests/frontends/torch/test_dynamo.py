"""torch.compile(backend="kiln"): registration, graph breaks, dynamic shapes, eager fallback."""

import inspect
import warnings

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

from torch import nn  # noqa: E402

from kiln.errors import KilnError  # noqa: E402
from kiln.frontends.torch.dynamo import KilnFallbackWarning, kiln_backend  # noqa: E402


class Counting:
    """kiln_backend, counting the graphs Dynamo hands it."""

    def __init__(self, **options):
        self.graphs = []
        self.options = options

    def __call__(self, gm, example_inputs):
        self.graphs.append(gm)
        return kiln_backend(gm, example_inputs, options=self.options)


def no_fallback(fn, *args):
    """fn(*args) under no_grad, failing on any KilnFallbackWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", KilnFallbackWarning)
        with torch.no_grad():
            return fn(*args)


def test_registered_as_a_dynamo_backend():
    from torch._dynamo import list_backends, lookup_backend
    assert "kiln" in list_backends()
    assert lookup_backend("kiln") is kiln_backend


def test_a_small_module_by_name(kiln_compiles):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4), nn.Softmax(-1)).eval()
    x = torch.randn(3, 8)
    got = no_fallback(torch.compile(model, backend="kiln"), x)
    torch.testing.assert_close(got, model(x), rtol=1e-4, atol=1e-5)
    assert len(kiln_compiles) == 1
    # frozen by default, guarded: a new weight is seen (test_dynamo_freeze.py has the cases)
    with torch.no_grad():
        model[0].weight.mul_(2)
    got = no_fallback(torch.compile(model, backend="kiln"), x)
    torch.testing.assert_close(got, model(x), rtol=1e-4, atol=1e-5)


def test_freeze_compiles_weights_as_constants(kiln_compiles):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4)).eval()
    x = torch.randn(5, 8)
    compiled = torch.compile(model, backend="kiln", options={"freeze": True, "opt_level": 3})
    torch.testing.assert_close(no_fallback(compiled, x), model(x), rtol=1e-4, atol=1e-5)
    (made,) = kiln_compiles
    assert made.model.input_names and len(made.model.input_names) == 1     # only x
    assert len(made.frozen) == 4 and made.model.options.opt_level == 3


def test_unknown_option_is_a_kiln_error():
    gm = torch.fx.symbolic_trace(nn.ReLU())
    with pytest.raises(KilnError, match="unknown torch.compile option.*'fuze'"):
        kiln_backend(gm, [torch.randn(2)], options={"fuze": False})


def toy_example(a, b):
    x = a / (torch.abs(a) + 1)
    if b.sum() < 0:
        b = b * -1
    return x * b


def test_graph_break_compiles_each_graph(kiln_compiles):
    backend = Counting()
    compiled = torch.compile(toy_example, backend=backend)
    a, b = torch.randn(10), -torch.rand(10) - 0.1           # b.sum() < 0: the branch is taken
    torch.testing.assert_close(no_fallback(compiled, a, b), toy_example(a, b))
    assert len(backend.graphs) == 2                         # before and after the branch
    assert len(kiln_compiles) == 2                          # both compiled natively
    b = torch.rand(10) + 0.1                                # the other branch
    torch.testing.assert_close(no_fallback(compiled, a, b), toy_example(a, b))
    # the first graph is reused; the code after the branch not taken before is compiled now
    assert len(backend.graphs) == len(kiln_compiles) == 3


@pytest.mark.parametrize("freeze", [False, True])
def test_dynamic_batch_compiles_once(kiln_compiles, freeze):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4)).eval()
    backend = Counting(freeze=freeze)
    compiled = torch.compile(model, backend=backend, dynamic=True)
    for batch in (2, 5, 9):
        x = torch.randn(batch, 8)
        torch.testing.assert_close(no_fallback(compiled, x), model(x), rtol=1e-4, atol=1e-5)
    assert len(backend.graphs) == 1 and len(kiln_compiles) == 1
    (made,) = kiln_compiles
    symbolic = [v.type.shape for v in made.model.graph.inputs
                if any(isinstance(d, str) for d in v.type.shape)]
    assert len(symbolic) == 1 and symbolic[0][1] == 8       # x, with a symbolic batch dim


def test_graphs_that_need_gradients_run_eagerly_with_a_warning(kiln_compiles):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    x = torch.randn(3, 4)
    compiled = torch.compile(model, backend="kiln")
    with pytest.warns(KilnFallbackWarning, match="needs gradients.*torch.no_grad"):
        y = compiled(x)
    y.sum().backward()                                      # eager autograd still works
    assert model.weight.grad is not None and kiln_compiles == []
    torch.testing.assert_close(y, model(x))


def with_unsupported_op(x):
    y = torch.relu(x) + 1
    return torch.lgamma(y) * 2


UNSUPPORTED_LINE = inspect.getsourcelines(with_unsupported_op)[1] + 2


def test_unsupported_op_warns_with_op_and_line_and_runs_eagerly(kiln_compiles):
    from kiln.frontends.torch import supported_ops
    assert "aten.lgamma.default" not in supported_ops(), "kiln has lgamma now: pick another op"
    backend = Counting()
    x = torch.rand(3, 5)
    with pytest.warns(KilnFallbackWarning) as caught:
        with torch.no_grad():
            got = torch.compile(with_unsupported_op, backend=backend)(x)
    torch.testing.assert_close(got, with_unsupported_op(x))
    assert len(backend.graphs) == 1 and kiln_compiles == []
    (message,) = [str(w.message) for w in caught if w.category is KilnFallbackWarning]
    assert "aten.lgamma.default" in message
    assert f"{__file__}:{UNSUPPORTED_LINE}" in message
    assert "runs eagerly" in message


def test_strided_inputs_and_integer_outputs(kiln_compiles):
    def f(x, idx):
        y = x * 2 + 1
        return y.argmax(dim=1), y[idx]
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3).t()     # not contiguous
    idx = torch.tensor([2, 0])
    got = no_fallback(torch.compile(f, backend="kiln"), x, idx)
    want = f(x, idx)
    assert got[0].dtype == torch.int64
    torch.testing.assert_close(got, want)
    assert len(kiln_compiles) == 1


def with_a_lowering_gap(x):
    return torch.tanh(x) * 3


LOWERING_GAP_LINE = inspect.getsourcelines(with_a_lowering_gap)[1] + 1


def test_lowering_error_names_the_aten_op_and_line(kiln_compiles, monkeypatch):
    """An op that converts but has no native lowering: the warning leads from the Graph IR
    node back to the ATen op and the user's line."""
    from kiln.errors import LoweringError
    from kiln.runtime import compiled_model

    def refuse(graph, *args):
        (node,) = [n for n in graph.nodes if n.op.name == "Tanh"]
        raise LoweringError("no lowering for Tanh", node=node, ops=["Tanh"])
    monkeypatch.setattr(compiled_model, "compile_graph", refuse)
    x = torch.randn(4)
    with pytest.warns(KilnFallbackWarning) as caught:
        with torch.no_grad():
            got = torch.compile(with_a_lowering_gap, backend=Counting(fuse=False))(x)
    torch.testing.assert_close(got, with_a_lowering_gap(x))
    (message,) = [str(w.message) for w in caught if w.category is KilnFallbackWarning]
    assert "Tanh node" in message and "no lowering for Tanh" in message
    assert f"from aten.tanh.default at {__file__}:{LOWERING_GAP_LINE}" in message


def test_in_place_ops_and_input_mutation(kiln_compiles):
    """Functionalized by aot_autograd: kiln computes the new value, torch writes it back."""
    def f(x, y):
        x.add_(1)
        z = y * 2
        z.relu_()
        return x * z
    a, b = torch.randn(4), torch.randn(4)
    a_eager = a.clone()
    got = no_fallback(torch.compile(f, backend="kiln"), a, b)
    torch.testing.assert_close(got, f(a_eager, b))
    torch.testing.assert_close(a, a_eager)                  # the caller's x was updated
    assert len(kiln_compiles) == 1


def test_bfloat16_tensors_cross_both_ways(kiln_compiles):
    """NumPy has no bfloat16: inputs and outputs go through an int16 view (ml_dtypes)."""
    def f(x, y):
        return x * y + 1, x.float().sum()
    torch.manual_seed(0)
    x, y = torch.randn(4, 8).to(torch.bfloat16), torch.randn(4, 8).to(torch.bfloat16)
    got = no_fallback(torch.compile(f, backend="kiln"), x, y)
    want = f(x, y)
    assert got[0].dtype == torch.bfloat16 and got[1].dtype == torch.float32
    torch.testing.assert_close(got, want)
    assert len(kiln_compiles) == 1
