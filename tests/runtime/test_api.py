"""kiln.compile from every kind of model, the small CNN against the interpreter, and the ONNX
backend's native executor (including graphs whose shapes depend on input values)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import kiln
from kiln.errors import LoweringError, ModelLoadError, TypeInferenceError
from kiln.examples import small_cnn
from kiln.frontends.onnx import KilnBackend, export_model
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.printer import print_graph
from kiln.runtime import CompiledModel, SpecializingModel


def tiny_onnx():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, -2.0, 0.5])
    nodes = [helper.make_node("Add", ["x", "bias"], ["t"], name="add_bias"),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    return helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], [bias]),
                             opset_imports=[helper.make_opsetid("", 17)])


def expected_tiny(x):
    return np.maximum(x + np.array([1.0, -2.0, 0.5], np.float32), 0)


@pytest.mark.parametrize("form", ["path", "str", "bytes", "proto"])
def test_compile_every_onnx_form(form, tmp_path):
    proto = tiny_onnx()
    path = tmp_path / "tiny.onnx"
    onnx.save(proto, path)
    model = {"path": path, "str": str(path), "bytes": proto.SerializeToString(),
             "proto": proto}[form]
    m = kiln.compile(model)
    assert isinstance(m, CompiledModel)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    (y,) = m(x)
    np.testing.assert_array_equal(y, expected_tiny(x))
    assert set(m.timings) == {"import", "optimize", "lower", "codegen"}


def test_compile_a_graph_copies_it_and_options_apply():
    b = GraphBuilder("negs")
    x = b.input("x", tensor(DType.float32, 2, 3))
    b.output(b.Relu(b.Neg(b.Neg(x)), outputs=["y"]))
    g = b.graph
    before = print_graph(g)
    optimized = kiln.compile(g)                                  # -O2 by default
    plain = kiln.compile(g, kiln.CompileOptions(opt_level=0))
    also_plain = kiln.compile(g, opt_level=0)
    assert print_graph(g) == before                              # the caller's graph is intact
    assert "Neg" not in optimized.graph_ir and "Neg" in plain.graph_ir
    assert also_plain.options == kiln.CompileOptions(opt_level=0)
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    for m in (optimized, plain, also_plain):
        np.testing.assert_array_equal(m(x)[0], np.maximum(x, 0))


@pytest.fixture(scope="module")
def cnn():
    return small_cnn(), kiln.compile(small_cnn())


@pytest.mark.parametrize("batch", [1, 3])
def test_small_cnn_matches_the_interpreter(cnn, batch):
    graph, model = cnn
    images = np.random.default_rng(batch).standard_normal((batch, 3, 32, 32)).astype(np.float32)
    (want,) = interpret(graph, {"image": images})
    (got,) = model(images)
    assert got.shape == (batch, 10) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5


def test_unlowerable_ops_raise_one_lowering_error():
    b = GraphBuilder("strings")
    x = b.input("x", tensor(DType.string, 6))
    b.output(b.StringNormalizer(x, outputs=["y"]))
    with pytest.raises(LoweringError) as e:
        kiln.compile(b.graph)
    assert "StringNormalizer" in e.value.ops and "interpreter" in str(e.value)


def test_bad_model_bytes_raise_model_load_error():
    with pytest.raises(ModelLoadError):
        kiln.compile(b"not an onnx model")


def reshape_by_input():
    data = helper.make_tensor_value_info("data", TensorProto.FLOAT, [2, 3, 4])
    shape = helper.make_tensor_value_info("shape", TensorProto.INT64, [2])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, None)
    node = helper.make_node("Reshape", ["data", "shape"], ["r"])
    relu = helper.make_node("Relu", ["r"], ["out"])
    return helper.make_model(helper.make_graph([node, relu], "reshape", [data, shape], [out]),
                             opset_imports=[helper.make_opsetid("", 21)])


def test_compile_reports_shape_inputs_instead_of_specializing():
    with pytest.raises(LoweringError, match="'shape' must be known when compiling"):
        kiln.compile(reshape_by_input())


def test_backend_specializes_shape_deciding_inputs_per_fed_values():
    rep = KilnBackend.prepare(reshape_by_input(), backend="native")
    ex = rep.executor
    assert isinstance(ex, SpecializingModel) and ex.execution == "native-specialized"
    assert "['shape']" in ex.note and "Reshape" in ex.note
    data = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for shape in ([6, 4], [4, 6], [6, 4], [-1, 2]):
        (out,) = rep.run([data, np.array(shape, np.int64)])
        np.testing.assert_array_equal(out, np.maximum(data.reshape(shape), 0))
    assert len(ex._variants) == 3                   # [6, 4] compiled once, reused
    for variant in ex._variants.values():          # 'shape' became a constant
        assert [v.name for v in variant.graph.inputs] == ["data"]
    for bad in ([5, 5], [100, 100]):                # caught before any loop reads out of bounds
        with pytest.raises(TypeInferenceError, match="cannot reshape"):
            rep.run([data, np.array(bad, np.int64)])


def test_backend_runs_plain_graphs_natively():
    rep = KilnBackend.prepare(tiny_onnx(), backend="native")
    assert isinstance(rep.executor, CompiledModel) and rep.executor.execution == "native"
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(rep.run([x])[0], expected_tiny(x))


def test_conformance_result_says_what_ran_the_case():
    from kiln.frontends.onnx.conformance import Case, run_case
    x = np.ones((2, 3), np.float32)
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    plain = Case("tiny", "node", 1e-6, 1e-6, model_bytes=tiny_onnx().SerializeToString(),
                 data_sets=[([x], [expected_tiny(x)])])
    shaped = Case("reshape", "node", 1e-6, 1e-6,
                  model_bytes=reshape_by_input().SerializeToString(),
                  data_sets=[([data, np.array([4, 6], np.int64)], [data.reshape(4, 6)])])
    r = run_case(plain, "native")
    assert (r.status, r.execution, r.message) == ("pass", "native", "")
    r = run_case(shaped, "native")
    assert (r.status, r.execution) == ("pass", "native-specialized") and "['shape']" in r.message
    r = run_case(plain, "interpreter")
    assert (r.status, r.execution) == ("pass", "interpreter")
