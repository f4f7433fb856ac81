"""`kiln compile --emit ...`, `kiln run --backend native|interpreter` and `kiln bench`."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kiln.cli import main


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, -2.0, 0.5])
    nodes = [helper.make_node("Add", ["x", "bias"], ["t"], name="add_bias"),
             helper.make_node("Neg", ["t"], ["u"], name="neg1"),
             helper.make_node("Neg", ["u"], ["v"], name="neg2"),
             helper.make_node("Relu", ["v"], ["y"], name="relu")]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], [bias]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path_factory.mktemp("cli") / "tiny.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("emit,expected", [
    ("graph", "graph @tiny(%x: f32[batch,3])"),
    ("loops", "program @tiny(%x: f32[batch,3] in)"),
    ("llvm", 'define i32 @"kiln_entry"'),
    ("asm", "kiln_entry:"),
])
def test_compile_emits_each_level(model_path, capsys, emit, expected):
    assert main(["compile", str(model_path), "--emit", emit]) == 0
    out = capsys.readouterr().out
    assert expected in out


def test_compile_levels_and_output_file(model_path, tmp_path, capsys):
    assert main(["compile", str(model_path), "--emit", "graph", "-O0"]) == 0
    assert "Neg" in capsys.readouterr().out
    out_file = tmp_path / "tiny.ll"
    assert main(["compile", str(model_path), "--emit", "llvm-opt", "-O2", "-o", str(out_file)]) == 0
    assert "wrote" in capsys.readouterr().err
    assert "kiln_entry" in out_file.read_text()
    assert main(["compile", str(model_path)]) == 0
    out = capsys.readouterr().out
    assert "compiled" in out and "kernels" in out and "--emit" in out


def test_run_native_is_the_default_and_agrees_with_the_interpreter(model_path, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.array([[0, 0, 0], [1, 2, 3]], np.float32))
    outs = []
    for backend in ([], ["--backend", "native"], ["--backend", "interpreter"]):
        assert main(["run", str(model_path), "--input", f"x={x}", *backend]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] == outs[2]
    assert "y: shape [2, 3] float32  min 0  max 3.5  mean 1.16667" in outs[0]
    assert main(["run", str(model_path), "--dim", "batch=5"]) == 0
    assert "y: shape [5, 3] float32" in capsys.readouterr().out


def test_run_native_reports_what_it_cannot_lower(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.STRING, [6])
    y = helper.make_tensor_value_info("y", TensorProto.STRING, None)
    path = tmp_path / "strings.onnx"
    node = helper.make_node("StringNormalizer", ["x"], ["y"], case_change_action="UPPER")
    onnx.save(helper.make_model(helper.make_graph([node], "s", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), path)
    data = tmp_path / "x.npy"
    np.save(data, np.array(["a", "b", "c", "d", "e", "f"]))
    assert main(["run", str(path), "--input", f"x={data}"]) == 1
    err = capsys.readouterr().err
    assert "no native lowering for StringNormalizer" in err and "Traceback" not in err
    assert main(["run", str(path), "--input", f"x={data}", "--backend", "interpreter"]) == 0


def test_bench_model_and_call_overhead(model_path, capsys):
    assert main(["bench", str(model_path), "--runs", "3", "--dim", "batch=8"]) == 0
    out = capsys.readouterr().out
    assert "interpreter:" in out and "native:" in out and "max |native - interpreter|" in out
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    assert "kiln CompiledModel call:" in out and "us" in out
