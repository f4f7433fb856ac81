"""The `kiln` command: show, run, and clean errors (status 1, one message, no traceback)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from kiln.cli import main


@pytest.fixture
def model_path(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, -2.0, 0.5])
    nodes = [helper.make_node("Add", ["x", "bias"], ["t"], name="add_bias"),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], [bias]),
                              opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "tiny.onnx"
    onnx.save(model, path)
    return path


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "show" in capsys.readouterr().out


def test_show_prints_graph_ir(model_path, capsys):
    assert main(["show", str(model_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "graph @tiny(%x: f32[batch,3])" in out
    assert 'Relu(%t) loc("relu")' in out


def test_run_with_random_and_given_inputs(model_path, tmp_path, capsys):
    assert main(["run", str(model_path), "--dim", "batch=4"]) == 0
    assert "y: shape [4, 3] float32" in capsys.readouterr().out
    x = tmp_path / "x.npy"
    np.save(x, np.array([[0, 0, 0]], np.float32))
    assert main(["run", str(model_path), "--input", f"x={x}"]) == 0
    out = capsys.readouterr().out
    assert "y: shape [1, 3] float32  min 0  max 1  mean 0.5" in out


@pytest.mark.parametrize("args,message", [
    (["show", "/nonexistent/model.onnx"], "kiln: error:"),
    (["run", "MODEL", "--input", "nope=x.npy"], "kiln: error:"),
    (["run", "MODEL", "--input", "x=/nonexistent.npy"], "does not exist"),
    (["run", "MODEL", "--input", "x"], "NAME=VALUE"),
])
def test_errors_are_one_clean_message(model_path, capsys, args, message):
    args = [str(model_path) if a == "MODEL" else a for a in args]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_wrong_input_dtype_is_reported(model_path, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3), np.float64))
    assert main(["run", str(model_path), "--input", f"x={x}"]) == 1
    assert "dtype float64" in capsys.readouterr().err


def test_demo_runs(tmp_path, monkeypatch, capsys):
    from kiln import demo
    monkeypatch.chdir(tmp_path)
    demo.main()
    out = capsys.readouterr().out
    assert "match" in out and "MISMATCH" not in out


def test_opt_prints_ir_and_stats_and_writes_onnx(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Neg", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Identity", ["b"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "m", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), path)
    out_path = tmp_path / "opt.onnx"
    assert main(["opt", str(path), "-O2", "--stats", "--verify-each", "-o", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert "%y: f32[2,3] = Relu(%x)" in out
    assert "rule neg-neg: 1" in out and "eliminate_dead_code" in out
    assert [n.op_type for n in onnx.load(out_path).graph.node] == ["Relu"]
    assert main(["opt", str(path), "--passes", "eliminate_dead_code", "--print-after-all", "-q"]) == 0
    out = capsys.readouterr().out
    assert "IR after eliminate_dead_code" in out and "Neg" in out
    assert main(["opt", str(path), "--passes", "no_such_pass"]) == 1
    assert "unknown pass" in capsys.readouterr().err


def test_compile_stats_report_kernels_groups_and_memory(tmp_path, capsys):
    from kiln.demo import small_cnn
    from kiln.frontends.onnx import save_model
    path = tmp_path / "cnn.onnx"
    save_model(small_cnn(), path)
    assert main(["compile", str(path), "--stats", "--dim", "batch=2"]) == 0
    out = capsys.readouterr().out
    assert "ops after the optimizer: 9; kernels after fusion: 5" in out
    assert "relu1: Conv, Relu" in out and "softmax: Gemm, Softmax" in out
    assert "memory (batch=2): arena" in out and "lower bound" in out
