"""import_fx and export_program: inputs, constants, outputs, SymInt placeholders, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[torch]')")

import kiln  # noqa: E402
from kiln.errors import ModelLoadError, UnsupportedOpError  # noqa: E402
from kiln.frontends.torch import (export_program, import_exported_program, import_fx,  # noqa: E402
                                 supported_ops)
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


class Unsupported(torch.nn.Module):
    def forward(self, x):
        a = torch.special.bessel_j0(x)
        b = torch.erfinv(x * 0.1)
        return torch.relu(a) + b


def test_unsupported_ops_are_listed_at_once_with_node_and_source_line():
    with pytest.raises(UnsupportedOpError) as e:
        export_program(Unsupported(), (torch.randn(3),))
    assert set(e.value.ops) == {"aten.special_bessel_j0.default", "aten.erfinv.default"}
    text = str(e.value)
    assert "2 node(s)" in text
    line = Unsupported.forward.__code__.co_firstlineno
    assert f"aten.special_bessel_j0.default (node 'special_bessel_j0', {__file__}:{line + 1})" \
        in text
    assert f"aten.erfinv.default (node 'erfinv', {__file__}:{line + 2})" in text


class Uneven(torch.nn.Module):
    def forward(self, x):
        return torch.nn.functional.adaptive_avg_pool2d(x, 3)


def test_a_converter_refusing_its_arguments_names_node_and_line():
    with pytest.raises(UnsupportedOpError) as e:
        export_program(Uneven(), (torch.randn(1, 2, 7, 7),))
    assert e.value.ops == ("aten._adaptive_avg_pool2d.default",)
    assert "adaptive pooling of [7, 7] to [3, 3]" in str(e.value)
    line = Uneven.forward.__code__.co_firstlineno + 1
    assert any(f"{__file__}:{line}" in note for note in e.value.__notes__)


def test_dtypes_kiln_lacks_are_refused():
    with pytest.raises(UnsupportedOpError, match="complex64"):
        export_program(SinCos(), (torch.randn(3, dtype=torch.complex64),))


def test_import_fx_rejects_what_is_not_a_graph_module():
    with pytest.raises(ModelLoadError):
        import_fx(SinCos())


def symbolic_fx(fn, *args):
    from torch.fx.experimental.proxy_tensor import make_fx
    return make_fx(fn, tracing_mode="symbolic")(*args)


def test_symint_placeholders_are_not_inputs_and_bind_to_a_tensor_dim():
    """As Dynamo passes them: a SymInt placeholder standing for x's batch size."""
    gm = symbolic_fx(lambda x: x.view(x.shape[0] * 2, -1) * 3, torch.randn(4, 6))
    graph = gm.graph
    x = next(n for n in graph.nodes if n.op == "placeholder")
    size = next(n for n in graph.nodes if n.target == torch.ops.aten.sym_size.int
                and n.args[1] == 0)
    with graph.inserting_before(x):
        s = graph.placeholder("s_batch")
    s.meta["val"] = x.meta["val"].shape[0]
    size.replace_all_uses_with(s)
    graph.erase_node(size)
    gm.recompile()
    g = import_fx(gm)
    assert [v.name for v in g.inputs] == [x.name]
    symbol = str(x.meta["val"].shape[0])
    assert g.inputs[0].type.shape[0] == symbol     # make_fx made every dim symbolic
    (record,) = g.symint_inputs
    assert (record.position, record.name, record.symbol, record.source) == \
        (0, "s_batch", symbol, (0, 0))
    model = kiln.compile(g)
    for batch in (4, 1, 5):
        xs = np.random.default_rng(batch).standard_normal((batch, 6)).astype(np.float32)
        (got,) = model(xs)
        np.testing.assert_allclose(got, xs.reshape(batch * 2, 3) * 3, rtol=1e-6)


def test_outputs_that_are_inputs_or_repeated_get_their_own_value():
    gm = symbolic_fx(lambda x: (x, torch.neg(x), torch.neg(x)), torch.randn(2))
    gm.graph.eliminate_dead_code()
    g = import_fx(gm)
    verify(g)
    x = np.array([1.0, -2.0], np.float32)
    outs = interpret(g, {g.inputs[0].name: x})
    np.testing.assert_array_equal(outs[0], x)
    np.testing.assert_array_equal(outs[1], -x)
    np.testing.assert_array_equal(outs[2], -x)


def test_graph_without_meta_is_typed_from_example_inputs():
    gm = symbolic_fx(lambda x: torch.relu(x) * 2, torch.randn(3))
    for n in gm.graph.nodes:
        n.meta.pop("val", None)
    with pytest.raises(ModelLoadError, match="example_inputs"):
        import_fx(gm)
    g = import_fx(gm, (torch.tensor([-1.0, 0.5, 2.0]),))
    assert g.inputs[0].type.shape == (3,)
    np.testing.assert_array_equal(interpret(g, {g.inputs[0].name: np.array([-1, .5, 2],
                                                                             np.float32)})[0],
                                  [0, 1, 4])


class Affine(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.register_buffer("shift", torch.arange(3.0))
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.lin(x)) + self.shift


@pytest.fixture(scope="module")
def affine():
    torch.manual_seed(0)
    module = Affine()
    return module, kiln.compile(module, (torch.randn(2, 4),),
                                dynamic_shapes=({0: torch.export.Dim("batch")},))


def test_compile_a_module_freezes_weights_in_eval_mode(affine):
    module, model = affine
    assert module.training                       # compile left the module as it found it
    x = torch.randn(5, 4)
    with torch.no_grad():
        want = module.eval()(x).numpy()
    module.train()
    (got,) = model(x.numpy())
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_compiled_module_returns_torch_tensors_when_called_with_them(affine):
    module, model = affine
    x = torch.randn(3, 4)
    (got,) = model(x)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    with torch.no_grad():
        want = module.eval()(x)
    module.train()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    (named,) = model(x=x)
    torch.testing.assert_close(named, want, rtol=1e-4, atol=1e-5)


def test_compile_a_module_needs_example_inputs():
    with pytest.raises(ModelLoadError, match="example_inputs"):
        kiln.compile(SinCos())


def test_a_program_that_updates_buffers_is_refused():
    bn = torch.nn.BatchNorm1d(3).train()
    ep = torch.export.export(bn, (torch.randn(4, 3),), strict=False)
    with pytest.raises(ModelLoadError, match="mutates buffers"):
        import_exported_program(ep)


def test_supported_ops_lists_the_converted_overloads():
    ops = supported_ops()
    assert "aten.convolution.default" in ops and "aten.native_layer_norm.default" in ops
    assert len(ops) == len(set(ops)) > 200


def test_symint_arithmetic_and_sizes_used_as_numbers():
    def f(x):
        return (x.view(x.shape[0] // 2, x.shape[1] * 2) + x.numel(),
                torch.arange(x.shape[1] % 4 + 1) * x.shape[0])
    g = import_fx(symbolic_fx(f, torch.randn(4, 6)))
    model = kiln.compile(g)
    for shape in ((4, 6), (8, 3), (2, 5)):
        x = torch.randn(*shape)
        want = f(x)
        got_native = model(x.numpy())
        got_interp = interpret(g, {g.inputs[0].name: x.numpy()})
        for got in (got_native, got_interp):
            for gv, w in zip(got, want):
                assert gv.dtype == w.numpy().dtype
                np.testing.assert_allclose(gv, w.numpy(), rtol=1e-5, atol=1e-6)


def test_a_conversion_contradicting_torchs_shape_is_an_error(monkeypatch):
    from kiln.frontends.torch.aten_table import ATEN_CONVERTERS
    flat = lambda cx, x, *_: cx.b.Reshape(cx.tensor(x), cx.ints([-1]))  # noqa: E731
    monkeypatch.setitem(ATEN_CONVERTERS, torch.ops.aten.neg.default, flat)
    from torch.fx.experimental.proxy_tensor import make_fx
    gm = make_fx(lambda x: -x)(torch.randn(2, 3))
    with pytest.raises(UnsupportedOpError, match=r"kiln's conversion has shape \[6\]"):
        import_fx(gm)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float16, 2e-2),
                                       (torch.bfloat16, 5e-2)])
def test_modules_in_other_float_dtypes(dtype, tol):
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.GELU()).to(dtype)
    x = torch.randn(3, 8, dtype=dtype)
    model = kiln.compile(module, (x,))
    (got,) = model(x)
    assert got.dtype == dtype
    with torch.no_grad():
        want = module(x)
    torch.testing.assert_close(got, want, rtol=tol, atol=tol)


class Scaled(torch.nn.Module):
    def forward(self, x, n: int, parts: dict):
        return x * n + parts["a"] - parts["b"]


def test_compiled_module_is_called_like_the_module():
    x, a, b = torch.randn(3), torch.randn(3), torch.randn(3)
    model = kiln.compile(Scaled(), (x, 2, {"a": a, "b": b}))
    assert [v.name for v in model.graph.inputs] == ["x", "parts_a", "parts_b"]
    (got,) = model(x, 2, {"a": a, "b": b})
    torch.testing.assert_close(got, Scaled()(x, 2, {"a": a, "b": b}))
    (flat,) = model(x.numpy(), a.numpy(), b.numpy())           # or by graph inputs
    np.testing.assert_allclose(flat, got.numpy())
    with pytest.raises(kiln.errors.InputError, match="compiled\\) for 2"):
        model(x, 3, {"a": a, "b": b})


def test_runtime_asserts_on_sizes_convert():
    """export's runtime checks: operator.ge on a SymInt, then _assert_scalar (which kiln
    drops: the compiled code does not re-check torch's guards)."""
    import operator
    gm = symbolic_fx(lambda x: x * 2, torch.randn(4, 3))
    graph = gm.graph
    x = next(n for n in graph.nodes if n.op == "placeholder")
    out = next(n for n in graph.nodes if n.op == "output")
    with graph.inserting_before(out):
        size = graph.call_function(torch.ops.aten.sym_size.int, (x, 0))
        size.meta["val"] = x.meta["val"].shape[0]
        for op in (operator.ge, operator.gt, operator.le, operator.lt, operator.eq, operator.ne):
            check = graph.call_function(op, (size, 2))
            check.meta["val"] = op(size.meta["val"], 2)
            graph.call_function(torch.ops.aten._assert_scalar.default, (check, "size check"))
    gm.recompile()
    g = import_fx(gm)
    compares = [n.op.name for n in g.nodes if n.outputs[0].type.dtype.name == "bool"]
    assert compares[:5] == ["GreaterOrEqual", "Greater", "LessOrEqual", "Less", "Equal"]
    xs = np.ones((5, 3), np.float32)
    np.testing.assert_array_equal(kiln.compile(g)(xs)[0], xs * 2)
