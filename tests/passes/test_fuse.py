"""Operator fusion: the grouping rules, the course's post-dominator example, fused groups as
first-class IR (print, parse, verify, interpret, export), and their native lowering."""

import numpy as np
import onnxruntime as ort
import pytest

from kiln.codegen import compile_program
from kiln.frontends.onnx import export_model
from kiln.ir import GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.verifier import verify
from kiln.lowering import lower_graph
from kiln.passes.fuse import Fuse
from tests.passes.helpers import check_pass, clone, run_passes

f32 = DType.float32
rng = np.random.default_rng(0)


def groups(graph):
    """Each Fused node's body ops, and the ops left alone."""
    return ([sorted(n.op.name for n in f.attrs["body"].nodes) for f in graph.nodes if f.op is ops.Fused],
            sorted(n.op.name for n in graph.nodes if n.op is not ops.Fused))


def test_course_post_dominator_example():
    # 3 -> {4, 5, 6} -> 7 -> 8, with 6 opaque: 3 cannot join 7 (a path to it runs through an
    # opaque op), but 4 and 5 still fuse into 7 and 8 — and the answer stays right.
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 5))
    n3 = b.Relu(x, name="3")
    n4 = b.Exp(n3, name="4")
    n5 = b.Neg(n3, name="5")
    n6 = b.CumSum(n3, b.constant(np.array(0, np.int64), "axis"), name="6")
    n7 = b.Sum(n4, n5, n6, name="7")
    b.output(b.Tanh(n7, name="8"))
    out, ctx = check_pass(b.graph, [Fuse()], {"x": rng.standard_normal(5).astype(np.float32)})
    fused, alone = groups(out)
    assert fused == [["Exp", "Neg", "Sum", "Tanh"]]
    assert alone == ["CumSum", "Relu"]


def test_all_elementwise_diamond_is_one_group():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 5))
    n3 = b.Relu(x)
    b.output(b.Tanh(b.Sum(b.Exp(n3), b.Neg(n3), b.Abs(n3))))
    out, _ = check_pass(b.graph, [Fuse()], {"x": rng.standard_normal(5).astype(np.float32)})
    assert groups(out) == ([["Abs", "Exp", "Neg", "Relu", "Sum", "Tanh"]], [])


def conv_block():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "batch", 3, 8, 8))
    w = b.constant(rng.standard_normal((3, 3, 3, 3)).astype(np.float32), "w")
    bias = b.constant(rng.standard_normal(3).astype(np.float32), "bias")
    y = b.Relu(b.Conv(x, w, bias, pads=[1, 1, 1, 1]))
    y = b.Add(b.Conv(y, w, pads=[1, 1, 1, 1]), x)          # residual
    b.output(b.Relu(y))
    return b.graph


def test_conv_takes_its_epilogue():
    feeds = {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)}
    out, _ = check_pass(conv_block(), [Fuse()], feeds, rtol=1e-5, atol=1e-5)
    assert groups(out) == ([["Conv", "Relu"], ["Add", "Conv", "Relu"]], [])


def test_softmax_absorbs_its_producers_and_reductions_do_not_fuse_forward():
    b = GraphBuilder()
    s = b.input("scores", tensor(f32, 2, 7))
    m = b.input("mask", tensor(f32, 1, 7))
    p = b.Softmax(b.Add(b.Mul(s, b.constant(np.float32(0.5), "scale")), m), axis=-1)
    r = b.ReduceSum(p, b.constant(np.array([-1], np.int64), "axes"), keepdims=1)
    b.output(b.Relu(r))
    feeds = {"scores": rng.standard_normal((2, 7)).astype(np.float32),
             "mask": rng.standard_normal((1, 7)).astype(np.float32)}
    out, _ = check_pass(b.graph, [Fuse()], feeds)
    fused, alone = groups(out)
    assert ["Add", "Mul", "Softmax"] in fused and "Relu" in alone


def test_fused_group_prints_parses_exports_and_runs_natively():
    graph = conv_block()
    fused, _ = run_passes(graph, [Fuse()])
    verify(clone(fused))                                  # the text form round-trips
    feeds = {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)}
    (want,) = interpret(graph, feeds)
    sess = ort.InferenceSession(export_model(fused).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, feeds)[0], want, rtol=1e-4, atol=1e-5)
    unfused_kernels = len(lower_graph(graph).kernels)
    program = lower_graph(fused)
    assert len(program.kernels) < unfused_kernels
    (got,) = compile_program(program).run(feeds)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_fused_node_written_by_hand():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4))
    body = GraphBuilder("body", parent=b.graph)
    bx = body.input("bx", tensor(f32, 4))
    body.output(body.Relu(body.Neg(bx)))
    b.output(b.Fused(x, body=body.graph))
    verify(b.graph)
    x_val = np.array([-1, 2, -3, 0], np.float32)
    np.testing.assert_array_equal(interpret(b.graph, {"x": x_val})[0], np.maximum(-x_val, 0))


def test_fused_body_must_match_its_inputs():
    from kiln.errors import TypeInferenceError
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4))
    body = GraphBuilder("body", parent=b.graph)
    body.output(body.Relu(body.input("bx", tensor(f32, 5))))
    with pytest.raises(TypeInferenceError, match="input 0 is f32\\[4\\]"):
        b.Fused(x, body=body.graph)


def test_compiling_without_fusion_keeps_one_kernel_per_op():
    import kiln
    from kiln.pipeline import pipeline
    assert not any(p.name.startswith("fuse") for p in pipeline(2, fuse=False))
    graph = conv_block()
    fused = kiln.compile(graph)
    unfused = kiln.compile(graph, kiln.CompileOptions(fuse=False))
    assert len(fused.program.kernels) < len(unfused.program.kernels)
    feeds = {"x": rng.standard_normal((2, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_allclose(fused(feeds)[0], unfused(feeds)[0], rtol=1e-5, atol=1e-5)
