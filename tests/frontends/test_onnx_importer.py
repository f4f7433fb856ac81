"""The ONNX importer: types, constants, names, subgraphs, functions and opset upgrades."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from kiln.frontends.onnx import KilnBackend, import_model
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.ops import OP_TABLE
from kiln.ir.types import OptionalType, SequenceType, TensorType

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, opset=None, initializers=(), value_info=(), functions=(),
          ir_version=None, extra_opsets=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers),
                          value_info=list(value_info))
    imports = [helper.make_opsetid("", opset or onnx.defs.onnx_opset_version()), *extra_opsets]
    m = helper.make_model(g, opset_imports=imports, functions=list(functions))
    if ir_version is not None:
        m.ir_version = ir_version
    return m


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def run_ort(m, feeds):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


# --- types, constants, names ---------------------------------------------------------------------

def test_dims_static_symbolic_and_unknown():
    x = helper.make_tensor_value_info("x", F, ["batch", 3, None])
    y = helper.make_tensor_value_info("y", TensorProto.INT64, None)  # unknown rank
    g = import_model(model([helper.make_node("Relu", ["x"], ["r"])], [x, y], [vi("r")]))
    assert g.inputs[0].type == TensorType(DType.float32, ("batch", 3, None))
    assert g.inputs[1].type == TensorType(DType.int64, None)
    assert g.outputs[0].type == TensorType(DType.float32, ("batch", 3, None))


def test_initializers_are_constants_held_as_arrays():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    m = model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", shape=[2, 3])], [vi("y")],
              initializers=[numpy_helper.from_array(w, "w")])
    g = import_model(m)
    assert [v.name for v in g.inputs] == ["x"]
    (c,) = g.constants
    assert c.name == "w" and isinstance(c.data, np.ndarray)
    np.testing.assert_array_equal(c.data, w)
    assert g.nodes[0].inputs[1] is c


def test_initializer_listed_as_input_is_constant_unless_fed():
    w = np.full((3,), 2.0, np.float32)
    m = model([helper.make_node("Mul", ["x", "w"], ["y"])], [vi("x", shape=[3]), vi("w", shape=[3])],
              [vi("y", shape=[3])], initializers=[numpy_helper.from_array(w, "w")], ir_version=3)
    g = import_model(m)
    assert [v.name for v in g.inputs] == ["x"]
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(interpret(g, {"x": x})[0], x * 2)
    fed = import_model(m, feed_initializers=["w"])
    assert [v.name for v in fed.inputs] == ["x", "w"] and not fed.constants
    np.testing.assert_array_equal(interpret(fed, {"x": x, "w": x})[0], x * x)


def test_backend_feeds_an_initializer_input_by_name():
    w = np.full((3,), 2.0, np.float32)
    m = model([helper.make_node("Mul", ["x", "w"], ["y"])], [vi("x", shape=[3]), vi("w", shape=[3])],
              [vi("y", shape=[3])], initializers=[numpy_helper.from_array(w, "w")], ir_version=4)
    rep = KilnBackend.prepare(m)
    x = np.array([1, 2, 3], np.float32)
    np.testing.assert_array_equal(rep.run([x])[0], x * 2)
    np.testing.assert_array_equal(rep.run({"x": x, "w": x})[0], x * x)
    np.testing.assert_array_equal(rep.run({"x": x})[0], x * 2)


@pytest.mark.parametrize("attr, value, expected", [
    ("value", numpy_helper.from_array(np.array([[1, 2]], np.int32)), np.array([[1, 2]], np.int32)),
    ("value_float", 1.5, np.array(1.5, np.float32)),
    ("value_floats", [1.0, 2.5], np.array([1.0, 2.5], np.float32)),
    ("value_int", 7, np.array(7, np.int64)),
    ("value_ints", [3, 4, 5], np.array([3, 4, 5], np.int64)),
    ("value_string", "hi", np.array("hi", dtype=object)),
    ("value_strings", ["a", "bc"], np.array(["a", "bc"], dtype=object)),
])
def test_constant_node_forms(attr, value, expected):
    node = helper.make_node("Constant", [], ["c"], **{attr: value})
    g = import_model(model([node, helper.make_node("Identity", ["c"], ["y"])], [], [vi("y", 0)]))
    (c,) = g.constants
    assert c.data.dtype == expected.dtype and c.data.shape == expected.shape
    assert c.data.tolist() == expected.tolist()
    assert interpret(g, {})[0].tolist() == expected.tolist()


def test_constant_sparse_value_is_densified():
    values = numpy_helper.from_array(np.array([5.0, 7.0], np.float32), "v")
    indices = numpy_helper.from_array(np.array([1, 4], np.int64), "i")
    sparse = helper.make_sparse_tensor(values, indices, [2, 3])
    node = helper.make_node("Constant", [], ["c"], sparse_value=sparse)
    g = import_model(model([node, helper.make_node("Identity", ["c"], ["y"])], [], [vi("y")]))
    np.testing.assert_array_equal(g.constants[0].data, [[0, 5, 0], [0, 7, 0]])


def test_output_and_node_names_are_kept():
    nodes = [helper.make_node("Relu", ["x"], ["hidden"], name="first"),
             helper.make_node("Neg", ["hidden"], ["out_name"], name="second")]
    g = import_model(model(nodes, [vi("x", shape=[2])], [vi("out_name", shape=[2])]))
    assert [v.name for v in g.outputs] == ["out_name"]
    assert [n.name for n in g.nodes] == ["first", "second"]


def test_value_info_refines_inferred_types():
    nodes = [helper.make_node("Relu", ["x"], ["h"])]
    m = model(nodes, [vi("x", shape=["n", None])], [vi("h", shape=["n", 4])],
              value_info=[vi("h", shape=[None, 4])])
    g = import_model(m)
    assert g.outputs[0].type == TensorType(DType.float32, ("n", 4))


def test_inconsistent_value_info_is_ignored():
    m = model([helper.make_node("Relu", ["x"], ["h"])], [vi("x", shape=[2, 3])], [vi("h")],
              value_info=[vi("h", shape=[7])])
    assert import_model(m).outputs[0].type == TensorType(DType.float32, (2, 3))


# --- subgraphs -------------------------------------------------------------------------------

def _if_model():
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [], [vi("t")])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e")])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)
    return model([node], [vi("c", TensorProto.BOOL, []), vi("x", shape=[3])], [vi("y", shape=[3])])


def test_if_branches_are_graphs_whose_parent_is_the_enclosing_graph():
    g = import_model(_if_model())
    (node,) = g.nodes
    then_g, else_g = node.attrs["then_branch"], node.attrs["else_branch"]
    assert then_g.parent is g and else_g.parent is g
    x = g.inputs[1]
    assert then_g.nodes[0].inputs[0] is x and else_g.nodes[0].inputs[0] is x
    feeds = {"c": np.array(True), "x": np.array([1, -2, 3], np.float32)}
    np.testing.assert_array_equal(interpret(g, feeds)[0], [2, -4, 6])
    feeds["c"] = np.array(False)
    np.testing.assert_array_equal(interpret(g, feeds)[0], [-1, 2, -3])


def test_loop_body_inputs_without_types_get_them_from_the_loop():
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Add", ["acc", "x"], ["acc_out"])],
        "body", [helper.make_value_info("i", onnx.TypeProto()),
                 helper.make_value_info("cond", onnx.TypeProto()),
                 helper.make_value_info("acc", onnx.TypeProto())],
        [helper.make_value_info("cond_out", onnx.TypeProto()),
         helper.make_value_info("acc_out", onnx.TypeProto())])
    node = helper.make_node("Loop", ["n", "", "a0"], ["acc_final"], body=body)
    m = model([node], [vi("n", TensorProto.INT64, []), vi("a0", shape=[2]), vi("x", shape=[2])],
              [vi("acc_final", shape=[2])])
    g = import_model(m)
    b = g.nodes[0].attrs["body"]
    assert b.parent is g
    assert [v.type.dtype for v in b.inputs] == [DType.int64, DType.bool, DType.float32]
    feeds = {"n": np.array(3, np.int64), "a0": np.zeros(2, np.float32),
             "x": np.array([1, 2], np.float32)}
    np.testing.assert_array_equal(interpret(g, feeds)[0], [3, 6])


def test_sequence_and_optional_types():
    seq_in = helper.make_value_info("s", helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(F, [None])))
    opt_out = helper.make_value_info("o", helper.make_optional_type_proto(
        helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [None]))))
    g = import_model(model([helper.make_node("Optional", ["s"], ["o"])], [seq_in], [opt_out]))
    assert g.inputs[0].type == SequenceType(TensorType(DType.float32, (None,)))
    assert isinstance(g.outputs[0].type, OptionalType)


# --- functions -------------------------------------------------------------------------------

def test_model_local_function_is_expanded_with_attribute_references():
    alpha = helper.make_attribute_ref("alpha", onnx.AttributeProto.FLOAT)
    lrelu = helper.make_node("LeakyRelu", ["a"], ["b"])
    lrelu.attribute.append(alpha)
    f = helper.make_function("custom", "ScaledRelu", ["a"], ["c"],
                             [lrelu, helper.make_node("Add", ["b", "b"], ["c"])],
                             [helper.make_opsetid("", 18)], attributes=["alpha"])
    node = helper.make_node("ScaledRelu", ["x"], ["y"], domain="custom", alpha=0.5, name="call")
    m = model([node], [vi("x", shape=[3])], [vi("y", shape=[3])], functions=[f],
              extra_opsets=[helper.make_opsetid("custom", 1)])
    g = import_model(m)
    assert [n.op.name for n in g.nodes] == ["LeakyRelu", "Add"]
    assert g.nodes[0].attrs["alpha"] == 0.5
    assert [v.name for v in g.outputs] == ["y"]
    x = np.array([-2, 0, 3], np.float32)
    np.testing.assert_allclose(interpret(g, [x])[0], [-2, 0, 6])


def test_op_kiln_implements_is_never_expanded():
    m = model([helper.make_node("Celu", ["x"], ["y"], alpha=2.0)], [vi("x", shape=[4])], [vi("y")])
    g = import_model(m)
    assert [n.op.name for n in g.nodes] == ["Celu"]


def test_op_kiln_lacks_is_expanded_from_its_onnx_function_body(monkeypatch):
    monkeypatch.delitem(OP_TABLE, "Celu")
    m = model([helper.make_node("Celu", ["x"], ["y"], alpha=2.0)], [vi("x", shape=[4])], [vi("y")])
    g = import_model(m)
    assert "Celu" not in [n.op.name for n in g.nodes] and len(g.nodes) > 1
    x = np.array([-3, -0.5, 0, 2], np.float32)
    np.testing.assert_allclose(interpret(g, [x])[0], run_ort(m, {"x": x})[0], rtol=1e-6)


# --- opset upgrades: kiln vs onnxruntime on the old form -------------------------------------

rng = np.random.default_rng(0)
X234 = rng.standard_normal((2, 3, 4)).astype(np.float32)
X4 = rng.standard_normal((1, 2, 2, 3)).astype(np.float32)
I64 = TensorProto.INT64

UPGRADES = [
    # (label, opset, node, {input: array}, number of outputs)
    ("reducesum-11-axes-attr", 11, helper.make_node("ReduceSum", ["x"], ["y"], axes=[1], keepdims=0),
     {"x": X234}, 1),
    ("reducemean-13-axes-attr", 13, helper.make_node("ReduceMean", ["x"], ["y"], axes=[0, 2]),
     {"x": X234}, 1),
    ("reducemax-13-no-axes", 13, helper.make_node("ReduceMax", ["x"], ["y"], keepdims=0),
     {"x": X234}, 1),
    ("squeeze-11", 11, helper.make_node("Squeeze", ["x"], ["y"], axes=[0]),
     {"x": X234[:1]}, 1),
    ("unsqueeze-11", 11, helper.make_node("Unsqueeze", ["x"], ["y"], axes=[0, -1]),
     {"x": X234}, 1),
    ("split-11-attr", 11, helper.make_node("Split", ["x"], ["a", "b"], axis=2, split=[1, 3]),
     {"x": X234}, 2),
    ("split-13-even", 13, helper.make_node("Split", ["x"], ["a", "b"], axis=2), {"x": X234}, 2),
    ("slice-9-attrs", 9, helper.make_node("Slice", ["x"], ["y"], starts=[1, 0], ends=[3, -1],
                                          axes=[2, 1]), {"x": X234}, 1),
    ("pad-10-attrs", 10, helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 0, 1], value=1.5),
     {"x": X234}, 1),
    ("pad-10-reflect", 10, helper.make_node("Pad", ["x"], ["y"], pads=[0, 0, 1, 0, 0, 2],
                                            mode="reflect"), {"x": X234}, 1),
    ("clip-10-attrs", 10, helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7), {"x": X234}, 1),
    ("clip-10-min-only", 10, helper.make_node("Clip", ["x"], ["y"], min=0.1), {"x": X234}, 1),
    ("topk-9-k-attr", 9, helper.make_node("TopK", ["x"], ["v", "i"], k=2, axis=-1), {"x": X234}, 2),
    ("scatter-10", 10, helper.make_node("Scatter", ["x", "i", "u"], ["y"], axis=1),
     {"x": np.zeros((3, 3), np.float32), "i": np.array([[1, 0, 2]], np.int64),
      "u": np.array([[1.0, 2.0, 3.0]], np.float32)}, 1),
    ("upsample-9-nearest", 9, helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest"),
     {"x": X4, "s": np.array([1, 1, 2, 3], np.float32)}, 1),
    ("upsample-7-attr", 7, helper.make_node("Upsample", ["x"], ["y"], scales=[1.0, 1.0, 2.0, 2.0]),
     {"x": X4}, 1),
    ("upsample-9-linear", 9, helper.make_node("Upsample", ["x", "s"], ["y"], mode="linear"),
     {"x": X4, "s": np.array([1, 1, 2, 2], np.float32)}, 1),
    ("roialign-10-output-half-pixel", 10,
     helper.make_node("RoiAlign", ["x", "r", "b"], ["y"], output_height=2, output_width=2,
                      sampling_ratio=2, spatial_scale=0.5),
     {"x": rng.standard_normal((1, 2, 6, 6)).astype(np.float32),
      "r": np.array([[0, 0, 8, 8], [2, 1, 9, 7]], np.float32), "b": np.array([0, 0], np.int64)}, 1),
    ("gridsample-16-bilinear", 16,
     helper.make_node("GridSample", ["x", "g"], ["y"], mode="bilinear", align_corners=1),
     {"x": X4, "g": rng.uniform(-1, 1, (1, 3, 2, 2)).astype(np.float32)}, 1),
    ("gridsample-16-bicubic", 16,
     helper.make_node("GridSample", ["x", "g"], ["y"], mode="bicubic", padding_mode="border"),
     {"x": X4, "g": rng.uniform(-1.2, 1.2, (1, 2, 2, 2)).astype(np.float32)}, 1),
    ("resize-10-nearest", 10, helper.make_node("Resize", ["x", "s"], ["y"], mode="nearest"),
     {"x": X4, "s": np.array([1, 1, 3, 2], np.float32)}, 1),
    ("softmax-11-axis1-3d", 11, helper.make_node("Softmax", ["x"], ["y"], axis=1), {"x": X234}, 1),
    ("softmax-11-default", 11, helper.make_node("Softmax", ["x"], ["y"]), {"x": X234}, 1),
    ("logsoftmax-11-axis0", 11, helper.make_node("LogSoftmax", ["x"], ["y"], axis=0), {"x": X234}, 1),
    ("hardmax-11-axis1", 11, helper.make_node("Hardmax", ["x"], ["y"], axis=1), {"x": X234}, 1),
    ("softmax-11-last-axis", 11, helper.make_node("Softmax", ["x"], ["y"], axis=2), {"x": X234}, 1),
    ("batchnorm-7-spatial", 7, helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                                                spatial=1, epsilon=1e-3),
     {"x": X234, "s": np.ones(3, np.float32), "b": np.arange(3, dtype=np.float32),
      "m": np.full(3, 0.1, np.float32), "v": np.full(3, 2.0, np.float32)}, 1),
    ("dropout-10-ratio", 10, helper.make_node("Dropout", ["x"], ["y"], ratio=0.3), {"x": X234}, 1),
    # opsets below 7: onnxruntime no longer runs them, so NumPy states the expected result
    ("gemm-6-broadcast", 6, helper.make_node("Gemm", ["a", "b", "c"], ["y"], broadcast=1),
     {"a": X234[0], "b": X234[1].T, "c": np.ones((1, 3), np.float32)}, 1,
     lambda f: [f["a"] @ f["b"] + f["c"]]),
    ("add-6-axis-broadcast", 6, helper.make_node("Add", ["x", "b"], ["y"], broadcast=1, axis=1),
     {"x": X234, "b": np.arange(3, dtype=np.float32)}, 1,
     lambda f: [f["x"] + f["b"].reshape(3, 1)]),
    ("mul-6-suffix-broadcast", 6, helper.make_node("Mul", ["x", "b"], ["y"], broadcast=1),
     {"x": X234, "b": np.arange(4, dtype=np.float32)}, 1, lambda f: [f["x"] * f["b"]]),
    ("prelu-6-channel-slope", 6, helper.make_node("PRelu", ["x", "s"], ["y"]),
     {"x": X234, "s": np.array([0.1, 0.2, 0.3], np.float32)}, 1,
     lambda f: [np.where(f["x"] < 0, f["x"] * f["s"].reshape(3, 1), f["x"])]),
    ("reshape-5", 5, helper.make_node("Reshape", ["x", "s"], ["y"]),
     {"x": X234, "s": np.array([4, -1], np.int64)}, 1, lambda f: [f["x"].reshape(4, -1)]),
    ("tile-1-axis", 5, helper.make_node("Tile", ["x", "const_t", "const_a"], ["y"]),
     {"x": X234, "const_t": np.array(3, np.int64), "const_a": np.array(1, np.int64)}, 1,
     lambda f: [np.tile(f["x"], (1, 3, 1))]),
    ("lppool-1-float-p", 1, helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2], p=2.0),
     {"x": X4}, 1, lambda f: [_l2_pool_2x2(f["x"])]),
    # experimental ops ONNX has removed, still found in old models
    ("imagescaler-7", 7, helper.make_node("ImageScaler", ["x"], ["y"], scale=2.0, bias=[1.0, -1.0]),
     {"x": X4}, 1, lambda f: [f["x"] * 2 + np.array([1, -1], np.float32).reshape(1, 2, 1, 1)]),
    ("affine-7", 7, helper.make_node("Affine", ["x"], ["y"], alpha=3.0, beta=0.5), {"x": X234}, 1,
     lambda f: [f["x"] * 3 + 0.5]),
    ("scaledtanh-7", 7, helper.make_node("ScaledTanh", ["x"], ["y"], alpha=2.0, beta=0.5),
     {"x": X234}, 1, lambda f: [2 * np.tanh(0.5 * f["x"])]),
    ("parametricsoftplus-7", 7, helper.make_node("ParametricSoftplus", ["x"], ["y"], alpha=2.0,
                                                 beta=0.5),
     {"x": X234}, 1, lambda f: [(2 * np.log1p(np.exp(0.5 * f["x"]))).astype(np.float32)]),
    ("crop-7-border", 7, helper.make_node("Crop", ["x"], ["y"], border=[1, 0, 0, 1]),
     {"x": rng.standard_normal((1, 2, 4, 5)).astype(np.float32)}, 1,
     lambda f: [f["x"][:, :, 0:3, 1:5]]),
    ("crop-7-scale", 7, helper.make_node("Crop", ["x"], ["y"], border=[1, 1, 0, 0], scale=[2, 3]),
     {"x": rng.standard_normal((1, 2, 4, 5)).astype(np.float32)}, 1,
     lambda f: [f["x"][:, :, 1:3, 1:4]]),
    ("softmax-1-axis1-3d", 6, helper.make_node("Softmax", ["x"], ["y"]), {"x": X234}, 1,
     lambda f: [_softmax2d(f["x"], 1)]),
]


def _scan8_node(directions):
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "x_t"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "x_t"], ["y_t"])],
        "body", [vi("s_in", shape=[2]), vi("x_t", shape=[2])], [vi("s_out", shape=[2]), vi("y_t", shape=[2])])
    return helper.make_node("Scan", ["", "s0", "x"], ["s_final", "ys"], num_scan_inputs=1,
                            body=body, directions=directions)


UPGRADES += [
    ("scan-8-batched", 8, _scan8_node([0]),
     {"s0": rng.standard_normal((3, 2)).astype(np.float32),
      "x": rng.standard_normal((3, 4, 2)).astype(np.float32)}, 2),
    ("scan-8-batched-reverse", 8, _scan8_node([1]),
     {"s0": rng.standard_normal((2, 2)).astype(np.float32),
      "x": rng.standard_normal((2, 5, 2)).astype(np.float32)}, 2),
]


def test_label_encoder_1_is_upgraded():
    ml = helper.make_opsetid("ai.onnx.ml", 1)
    for x, elem, want in [
        (np.array(["b", "z", "a"], dtype=object), TensorProto.STRING, np.array([1, -1, 0])),
        (np.array([2, 0, 7], np.int64), TensorProto.INT64, np.array(["c", "a", "_Unused"], dtype=object)),
    ]:
        node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml",
                                classes_strings=["a", "b", "c"])
        m = model([node], [vi("x", elem, [3])], [helper.make_value_info("y", onnx.TypeProto())],
                  opset=11, extra_opsets=[ml])
        got = KilnBackend.run_model(m, [x])[0]
        assert got.tolist() == want.tolist()


def _old_model(opset, node, feeds, n_out):
    def elem(a):
        return helper.np_dtype_to_tensor_dtype(a.dtype)
    inputs = [vi(k, elem(v), v.shape) for k, v in feeds.items() if not k.startswith("const_")]
    inits = [numpy_helper.from_array(v, k) for k, v in feeds.items() if k.startswith("const_")]
    outputs = [helper.make_value_info(o, onnx.TypeProto()) for o in node.output[:n_out]]
    m = model([node], inputs, outputs, opset=opset, initializers=inits)
    m.ir_version = 3 if opset < 8 else 7
    return m


def _l2_pool_2x2(x):
    n, c, h, w = x.shape
    out = np.empty((n, c, h - 1, w - 1), np.float32)
    for i in range(h - 1):
        for j in range(w - 1):
            out[:, :, i, j] = np.sqrt((x[:, :, i:i + 2, j:j + 2] ** 2).sum(axis=(2, 3)))
    return out


def _softmax2d(x, axis):
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).reshape(x.shape)


@pytest.mark.parametrize("case", UPGRADES, ids=[u[0] for u in UPGRADES])
def test_old_opset_form_matches_onnxruntime(case):
    label, opset, node, feeds, n_out = case[:5]
    m = _old_model(opset, node, feeds, n_out)
    if len(case) > 5:
        want = case[5](feeds)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = run_ort(m, {k: v for k, v in feeds.items() if not k.startswith("const_")})
    got = KilnBackend.run_model(m, [v for k, v in feeds.items() if not k.startswith("const_")])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, label
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=label)


def test_every_signature_change_since_opset_7_is_covered_or_compatible():
    """A schema change that renames, removes or reorders inputs/attributes must have an adapter."""
    from onnx import defs

    from kiln.frontends.onnx.adapters import adapters_for
    problems = []
    by_name = {}
    for s in defs.get_all_schemas_with_history():
        if s.domain in ("", "ai.onnx"):
            by_name.setdefault(s.name, []).append(s)
    for name, schemas in by_name.items():
        schemas.sort(key=lambda s: s.since_version)
        for old, new in zip(schemas, schemas[1:]):
            if new.since_version <= 7 and old.since_version < 6:
                continue   # opsets 1-5 are covered only where models still use them
            removed = set(old.attributes) - set(new.attributes)
            old_in = [i.name for i in old.inputs]
            new_in = [i.name for i in new.inputs]
            moved = removed or old_in != new_in[:len(old_in)]
            if moved and not adapters_for(name, old.since_version):
                problems.append(f"{name} {old.since_version}->{new.since_version}")
    assert not problems, problems


def test_expand_imports_an_op_through_its_onnx_function_body():
    """`expand` asks for an op's ONNX definition in simpler ops (what the native back end
    does for ops it cannot lower); the result computes the same thing."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from kiln.frontends.onnx import import_model
    from kiln.ir.interpreter import interpret

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 5])
    t = helper.make_tensor_value_info("t", TensorProto.INT64, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    node = helper.make_node("NegativeLogLikelihoodLoss", ["x", "t"], ["y"], reduction="mean")
    model = helper.make_model(helper.make_graph([node], "nll", [x, t], [y]),
                              opset_imports=[helper.make_opsetid("", onnx.defs.onnx_opset_version())])
    whole = import_model(model)
    expanded = import_model(model, expand=lambda op: op.name == "NegativeLogLikelihoodLoss")
    assert [n.op.name for n in whole.nodes] == ["NegativeLogLikelihoodLoss"]
    assert "NegativeLogLikelihoodLoss" not in {n.op.name for n in expanded.nodes}
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32),
             "t": np.array([0, 4, 2], np.int64)}
    np.testing.assert_allclose(interpret(expanded, feeds)[0], interpret(whole, feeds)[0], rtol=1e-6)
