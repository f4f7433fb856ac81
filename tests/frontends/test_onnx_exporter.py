"""The ONNX exporter: ONNX -> kiln -> ONNX keeps the model's meaning in onnxruntime and onnx.reference."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from kiln.frontends.onnx import export_model, import_model, save_model
from kiln.frontends.onnx.exporter import newest_opset
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import TensorType

F = TensorProto.FLOAT
rng = np.random.default_rng(1)


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def ort_run(m, feeds):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def ref_run(m, feeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ReferenceEvaluator(m).run(None, feeds)


def mlp_model():
    w1 = numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b1")
    shape = numpy_helper.from_array(np.array([0, -1], np.int64), "shape")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "b1"], ["hb"]),
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("Softmax", ["r"], ["p"], axis=-1),
        helper.make_node("Cast", ["p"], ["p64"], to=TensorProto.DOUBLE),
        helper.make_node("ReduceSum", ["p64"], ["s"], keepdims=0),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
    ]
    g = helper.make_graph(nodes, "mlp", [vi("x", shape=["batch", 4])],
                          [vi("p", shape=["batch", 5]), vi("s", TensorProto.DOUBLE, []),
                           vi("flat", shape=["batch", 5])],
                          initializer=[w1, b1, shape])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])


def if_loop_model():
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "x"], ["t"])], "then", [], [vi("t", shape=[3])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", shape=[3])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("Add", ["acc", "y"], ["acc_out"])],
        "body", [vi("i", TensorProto.INT64, []), vi("c_in", TensorProto.BOOL, []), vi("acc", shape=[3])],
        [vi("c_out", TensorProto.BOOL, []), vi("acc_out", shape=[3])])
    nodes = [helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Loop", ["n", "", "x"], ["z"], body=body)]
    g = helper.make_graph(nodes, "ctl", [vi("c", TensorProto.BOOL, []), vi("x", shape=[3]),
                                         vi("n", TensorProto.INT64, [])],
                          [vi("y", shape=[3]), vi("z", shape=[3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])


CASES = {
    "mlp": (mlp_model, lambda: {"x": rng.standard_normal((3, 4)).astype(np.float32)}),
    "if-loop": (if_loop_model, lambda: {"c": np.array(True), "x": np.array([1, -2, 3], np.float32),
                                        "n": np.array(4, np.int64)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_round_trip_runs_the_same_in_onnxruntime_and_onnx_reference(name):
    """Each runtime gives the exported model the results it gives the original."""
    make, feeds_fn = CASES[name]
    original = make()
    feeds = feeds_fn()
    exported = export_model(import_model(original))
    onnx.checker.check_model(exported, full_check=True)
    for runtime in (ort_run, ref_run):
        want, got = runtime(original, feeds), runtime(exported, feeds)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert np.asarray(g).dtype == w.dtype and np.shape(g) == w.shape
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    for g, w in zip(interpret(import_model(exported), feeds), ort_run(original, feeds)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_export_keeps_names_symbolic_dims_and_uses_the_newest_opset():
    exported = export_model(import_model(mlp_model()))
    assert [o.name for o in exported.graph.output] == ["p", "s", "flat"]
    assert [i.name for i in exported.graph.input] == ["x"]
    dims = exported.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 4
    assert {o.domain: o.version for o in exported.opset_import} == {"": onnx.defs.onnx_opset_version()}
    assert {i.name for i in exported.graph.initializer} == {"w1", "b1", "shape"}
    assert exported.graph.node[0].name == "mm"
    cast = next(n for n in exported.graph.node if n.op_type == "Cast")
    assert helper.get_attribute_value(cast.attribute[0]) == TensorProto.DOUBLE


def test_other_domains_get_their_own_opset_import():
    b = GraphBuilder("ml")
    x = b.input("x", TensorType(DType.float32, (2, 3)))
    b.output(b.Binarizer(x, threshold=0.5))
    exported = export_model(b.graph)
    imports = {o.domain: o.version for o in exported.opset_import}
    assert imports["ai.onnx.ml"] == newest_opset("ai.onnx.ml") and "" in imports
    x = np.array([[0.1, 0.6, 0.5], [1, 0, 2]], np.float32)
    np.testing.assert_array_equal(ort_run(exported, {"x": x})[0], (x > 0.5).astype(np.float32))


def test_save_and_load_again(tmp_path):
    g = import_model(mlp_model())
    path = tmp_path / "m.onnx"
    save_model(g, path)
    again = import_model(path)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    for a, b in zip(interpret(g, [x]), interpret(again, [x])):
        np.testing.assert_array_equal(a, b)
