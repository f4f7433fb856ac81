"""What the ONNX front end reports for bad files, unsupported models and bad inputs."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from kiln.errors import (AttributeValueError, DTypeMismatchError, InputNameError, KilnError,
                         ModelLoadError, ShapeMismatchError, UnsupportedOpError)
from kiln.frontends.onnx import KilnBackend, import_model, load_model

F = TensorProto.FLOAT


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def relu_model(shape=(2, 3)):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g",
                          [vi("x", shape=list(shape))], [vi("y", shape=list(shape))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


# --- files ---------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(ModelLoadError, match="does not exist") as e:
        import_model(path)
    assert str(path) in str(e.value) and e.value.hint


def test_malformed_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\xff\xfe this is not protobuf \x00\x01" * 10)
    with pytest.raises(ModelLoadError, match="malformed or truncated") as e:
        import_model(path)
    assert str(path) in str(e.value) and "re-export" in e.value.hint


def test_truncated_file(tmp_path):
    data = relu_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError) as e:
        import_model(path)
    assert str(path) in str(e.value)


def test_empty_file_and_folder(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        import_model(tmp_path / "empty.onnx")
    with pytest.raises(ModelLoadError, match="folder"):
        import_model(tmp_path)


def test_bytes_that_are_not_a_model():
    with pytest.raises(ModelLoadError):
        import_model(b"\x08\x07\x12")


# --- external data -------------------------------------------------------------------------

def _external_model(folder, location: str, data: np.ndarray, write_to=None):
    """A model whose initializer 'w' is stored externally at `location` (relative to folder)."""
    w = numpy_helper.from_array(data, "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", "0"), ("length", str(data.nbytes))):
        e = w.external_data.add()
        e.key, e.value = k, v
    target = write_to if write_to is not None else folder / location
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data.tobytes())
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [vi("x", shape=[3])], [vi("y", shape=[3])], initializer=[w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    path = folder / "model.onnx"
    path.write_bytes(m.SerializeToString())
    return path


def test_external_data_inside_the_folder_is_loaded(tmp_path):
    data = np.array([1, 2, 3], np.float32)
    path = _external_model(tmp_path, "weights/w.bin", data)
    out = KilnBackend.run_model(str(path), [np.ones(3, np.float32)])
    np.testing.assert_array_equal(out[0], data + 1)
    assert load_model(path).graph.initializer[0].data_location == TensorProto.DEFAULT


def test_external_data_with_dotdot_is_rejected(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    path = _external_model(folder, "../secret.bin", np.zeros(3, np.float32))
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        import_model(path)


def test_external_data_with_absolute_path_is_rejected(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    target = tmp_path / "abs.bin"
    path = _external_model(folder, str(target), np.zeros(3, np.float32), write_to=target)
    with pytest.raises(ModelLoadError, match="absolute path"):
        import_model(path)


def test_external_data_through_a_symlink_leaving_the_folder_is_rejected(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, folder / "link")
    path = _external_model(folder, "link/w.bin", np.zeros(3, np.float32),
                           write_to=outside / "w.bin")
    with pytest.raises(ModelLoadError, match="symbolic link"):
        import_model(path)


def test_external_data_shorter_than_declared_is_rejected(tmp_path):
    path = _external_model(tmp_path, "w.bin", np.zeros(3, np.float32))
    (tmp_path / "w.bin").write_bytes(b"\x00" * 4)
    with pytest.raises(ModelLoadError, match="only 4 bytes"):
        import_model(path)


def test_external_data_in_a_model_given_as_bytes_is_rejected(tmp_path):
    path = _external_model(tmp_path, "w.bin", np.zeros(3, np.float32))
    with pytest.raises(ModelLoadError, match="given as bytes"):
        import_model(path.read_bytes())


# --- unsupported ops and attributes --------------------------------------------------------

def test_unknown_ops_are_all_listed_at_once_including_subgraphs():
    then_g = helper.make_graph([helper.make_node("FancyOp", ["x"], ["t"], domain="acme", name="inner")],
                               "then", [], [vi("t")])
    else_g = helper.make_graph([helper.make_node("Relu", ["x"], ["e"])], "else", [], [vi("e")])
    nodes = [helper.make_node("Frobnicate", ["x"], ["a"], domain="acme", name="f1"),
             helper.make_node("Frobnicate", ["a"], ["b"], domain="acme", name="f2"),
             helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
             helper.make_node("ImageDecoder", ["b"], ["z"], name="dec")]
    g = helper.make_graph(nodes, "g", [vi("x", shape=[2]), vi("c", TensorProto.BOOL, [])],
                          [vi("y"), vi("z")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("acme", 1)])
    with pytest.raises(UnsupportedOpError) as e:
        import_model(m)
    assert set(e.value.ops) == {"acme::Frobnicate", "acme::FancyOp", "ImageDecoder"}
    msg = str(e.value)
    assert "3 op type(s)" in msg and "acme::Frobnicate (2 nodes, e.g. 'f1', 'f2')" in msg
    assert "'inner'" in msg and "'dec'" in msg


def test_attribute_of_the_wrong_onnx_type():
    node = helper.make_node("LeakyRelu", ["x"], ["y"], name="lr", alpha="0.1")
    g = helper.make_graph([node], "g", [vi("x", shape=[2])], [vi("y")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(AttributeValueError, match="alpha") as e:
        import_model(m)
    assert "lr" in str(e.value)


def test_unknown_attribute():
    node = helper.make_node("Relu", ["x"], ["y"], name="r", slope=2.0)
    g = helper.make_graph([node], "g", [vi("x", shape=[2])], [vi("y")])
    with pytest.raises(AttributeValueError, match="slope"):
        import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))


def test_undefined_input_name():
    g = helper.make_graph([helper.make_node("Relu", ["ghost"], ["y"], name="r")], "g",
                          [vi("x", shape=[2])], [vi("y")])
    with pytest.raises(ModelLoadError, match="ghost"):
        import_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))


# --- run time, through the backend ---------------------------------------------------------

def test_wrong_input_dtype_at_run_time():
    rep = KilnBackend.prepare(relu_model())
    with pytest.raises(DTypeMismatchError, match="float64"):
        rep.run([np.zeros((2, 3), np.float64)])


def test_wrong_input_shape_at_run_time():
    rep = KilnBackend.prepare(relu_model())
    with pytest.raises(ShapeMismatchError):
        rep.run([np.zeros((3, 2), np.float32)])
    with pytest.raises(ShapeMismatchError):
        rep.run([np.zeros((2, 3, 1), np.float32)])


def test_wrong_number_of_inputs_and_unknown_names():
    rep = KilnBackend.prepare(relu_model())
    with pytest.raises(InputNameError):
        rep.run([np.zeros((2, 3), np.float32)] * 2)
    with pytest.raises(InputNameError):
        rep.run({"nope": np.zeros((2, 3), np.float32)})


def test_unknown_backend_and_device():
    with pytest.raises(KilnError, match="unknown back end"):
        KilnBackend.prepare(relu_model(), backend="gpu-magic")
    assert KilnBackend.supports_device("CPU") and not KilnBackend.supports_device("CUDA")
    with pytest.raises(KilnError, match="CPU"):
        KilnBackend.prepare(relu_model(), device="CUDA")


def test_run_node_and_run_model():
    node = helper.make_node("Add", ["a", "b"], ["c"])
    a, b = np.ones((2, 2), np.float32), np.full((2,), 3, np.float32)
    np.testing.assert_array_equal(KilnBackend.run_node(node, [a, b])[0], a + b)
    out = KilnBackend.run_model(relu_model(), {"x": -np.ones((2, 3), np.float32)})
    np.testing.assert_array_equal(out[0], np.zeros((2, 3), np.float32))
    assert onnx.backend.base.Backend in KilnBackend.__mro__
