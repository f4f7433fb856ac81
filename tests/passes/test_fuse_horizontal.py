"""Horizontal fusion: sibling products of one activation merged into one product and a Split."""

import numpy as np
import pytest

from kiln.ir import GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.lowering import lower_graph
from kiln.passes.eliminate_dead_code import EliminateDeadCode
from kiln.passes.fuse import Fuse
from kiln.passes.fuse_horizontal import FuseHorizontal
from kiln.pipeline import ALL_PASSES, pipeline
from tests.passes.helpers import check_pass, run_passes

f32 = DType.float32
rng = np.random.default_rng(0)


def w(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def op_names(graph):
    return [n.op.name for n in graph.nodes]


def qkv(bias=(True, True, True), sizes=(8, 8, 5), k=8, swap_first=False, extra_use=False,
        relu_on=None):
    """x [batch, seq, k] -> q, k, v = x·W (+ b) -> (q·kᵀ)·v, attention without the softmax."""
    b = GraphBuilder("qkv")
    x = b.input("x", tensor(f32, "batch", "seq", k))
    parts, extra = [], []
    for i, (has_bias, n) in enumerate(zip(bias, sizes)):
        y = b.MatMul(x, b.constant(w(k, n), f"w{i}"), name=f"proj{i}")
        if extra_use and i == 1:
            extra.append(y)
        if has_bias:
            c = b.constant(w(n), f"b{i}")
            y = b.Add(c, y) if swap_first and i == 0 else b.Add(y, c)
        parts.append(b.Relu(y) if relu_on == i else y)
    q, kk, v = parts
    b.output(b.MatMul(b.MatMul(q, b.Transpose(kk, perm=[0, 2, 1])), v), *extra)
    return b.graph


def feeds(batch=2, seq=5, k=8):
    return {"x": w(batch, seq, k)}


def test_three_projections_with_biases_become_one_matmul_add_split():
    graph = qkv(sizes=(8, 8, 5), swap_first=True)
    out, ctx = check_pass(graph, [FuseHorizontal()], feeds())
    assert op_names(out)[:3] == ["MatMul", "Add", "Split"]
    assert op_names(out).count("MatMul") == 3 and "Add" not in op_names(out)[3:]
    mm, add, split = out.nodes[:3]
    assert mm.inputs[1].data.shape == (8, 21)
    assert add.inputs[1].data.shape == (21,)
    assert split.inputs[1].data.tolist() == [8, 8, 5] and split.attr("axis") == 2
    assert [v.name for v in split.outputs] == [n.outputs[0].name for n in graph.nodes
                                               if n.op is ops.Add]
    assert ctx.records[-1].counters == {"merged 3 MatMul": 1}


def test_bias_with_leading_ones_two_members():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3, 6))
    y0 = b.Add(b.constant(w(1, 4), "b0"), b.MatMul(x, b.constant(w(6, 4), "w0")))
    y1 = b.Add(b.MatMul(x, b.constant(w(6, 4), "w1")), b.constant(w(4), "b1"))
    b.output(b.MatMul(y0, b.Transpose(y1)))
    out, _ = check_pass(b.graph, [FuseHorizontal()], {"x": w(3, 6)})
    assert op_names(out)[:3] == ["MatMul", "Add", "Split"]


def test_members_with_and_without_bias_merge_separately():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3, 6))
    ys = [b.MatMul(x, b.constant(w(6, 4), f"w{i}")) for i in range(4)]
    ys[0] = b.Add(ys[0], b.constant(w(4), "b0"))
    ys[1] = b.Add(ys[1], b.constant(w(4), "b1"))
    b.output(b.Concat(*ys, axis=0))
    out, ctx = check_pass(b.graph, [FuseHorizontal()], {"x": w(3, 6)})
    assert ctx.records[-1].counters == {"merged 2 MatMul": 2}
    assert sorted(op_names(out)) == ["Add", "Concat", "MatMul", "MatMul", "Split", "Split"]


def test_a_lone_member_without_bias_is_left_alone():
    out, _ = check_pass(qkv(bias=(True, False, True)), [FuseHorizontal()], feeds())
    assert op_names(out)[:3] == ["MatMul", "Add", "Split"]
    assert op_names(out).count("MatMul") == 4       # q/v merged, k's own, the two products


def test_members_whose_result_is_an_output_or_feeds_elementwise_stay():
    # k's product is also a graph output: its Add cannot be taken in, and the product itself
    # would be copied out of the merged result -> k stays; q and v merge.
    out, ctx = check_pass(qkv(extra_use=True), [FuseHorizontal()], feeds())
    assert ctx.records[-1].counters == {"merged 2 MatMul": 1}
    # v feeds a Relu, which fusion makes the product's epilogue -> v stays; q and k merge.
    out, ctx = check_pass(qkv(relu_on=2), [FuseHorizontal()], feeds())
    assert ctx.records[-1].counters == {"merged 2 MatMul": 1}
    assert out.nodes[0].inputs[1].data.shape == (8, 16)
    # graph outputs only: nothing to gain
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3, 6))
    b.output(*(b.MatMul(x, b.constant(w(6, 4), f"w{i}")) for i in range(3)))
    out, ctx = check_pass(b.graph, [FuseHorizontal()], {"x": w(3, 6)})
    assert op_names(out) == ["MatMul"] * 3 and not ctx.records[-1].counters


def test_not_merged_different_inputs_k_dtypes_or_dynamic_weights():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3, 6))
    z = b.input("z", tensor(f32, 3, 6))
    dyn = b.input("dyn", tensor(f32, 6, 4))
    x64 = b.input("x64", tensor(DType.float64, 3, 6))
    parts = [b.MatMul(x, b.constant(w(6, 4), "w0")),                 # alone with its K and A
             b.MatMul(z, b.constant(w(6, 4), "w1")),                 # another activation
             b.MatMul(x, dyn),                                       # a weight known at run time
             b.Cast(b.MatMul(x64, b.constant(w(6, 4, dtype=np.float64), "w2")), to=f32)]
    b.output(b.Concat(*parts, axis=0))
    fd = {"x": w(3, 6), "z": w(3, 6), "dyn": w(6, 4), "x64": w(3, 6, dtype=np.float64)}
    out, ctx = check_pass(b.graph, [FuseHorizontal()], fd)
    assert op_names(out).count("MatMul") == 4 and not ctx.records[-1].counters


def test_gemm_siblings_with_c():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "n", 6))
    y0 = b.Gemm(x, b.constant(w(4, 6), "w0"), b.constant(w(4), "c0"), transB=1)
    y1 = b.Gemm(x, b.constant(w(6, 3), "w1"), b.constant(w(1, 3), "c1"))
    y2 = b.Gemm(x, b.constant(w(6, 2), "w2"))            # no C: a group of its own kind
    b.output(b.Concat(y0, y1, y2, axis=1))
    out, ctx = check_pass(b.graph, [FuseHorizontal()], {"x": w(5, 6)})
    assert op_names(out) == ["Gemm", "Split", "Gemm", "Concat"]
    assert out.nodes[0].inputs[1].data.shape == (6, 7)
    assert out.nodes[0].inputs[2].data.shape == (7,)
    assert ctx.records[-1].counters == {"merged 2 Gemm": 1}


def test_gemm_with_alpha_or_trans_a_is_left_alone():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 6, 5))
    ys = [b.Gemm(x, b.constant(w(6, 4), "w0"), transA=1),
          b.Gemm(x, b.constant(w(6, 4), "w1"), transA=1),
          b.Gemm(x, b.constant(w(5, 5), "w2"), alpha=2.0),
          b.Gemm(x, b.constant(w(5, 5), "w3"), alpha=2.0)]
    b.output(b.Concat(ys[0], ys[1], axis=0), b.Concat(ys[2], ys[3], axis=0))
    out, _ = check_pass(b.graph, [FuseHorizontal()], {"x": w(6, 5)})
    assert op_names(out).count("Gemm") == 4 and "Split" not in op_names(out)


def test_replaced_weights_are_dead_and_the_merged_graph_lowers_to_fewer_kernels():
    graph = qkv()
    out, _ = run_passes(graph, [FuseHorizontal(), EliminateDeadCode()])
    assert sorted(c.data.shape for c in out.constants) == [(3,), (8, 21), (21,)]
    before, _ = run_passes(graph, [Fuse()])
    after, _ = run_passes(graph, [FuseHorizontal(), EliminateDeadCode(), Fuse()])
    assert len(lower_graph(before).kernels) == 5
    assert len(lower_graph(after).kernels) == 3
    from kiln.codegen import compile_program
    fd = feeds(3, 7)
    for got, want in zip(compile_program(lower_graph(after)).run(fd), interpret(graph, fd)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_registered_in_o2_before_fuse():
    names = [p.name for p in pipeline(2)]
    assert ALL_PASSES["fuse_horizontal"] is FuseHorizontal
    assert names.index("fuse_horizontal") < names.index("eliminate_dead_code") < \
        names.index("fuse")


@pytest.mark.parametrize("model", ["bert", "gpt2"])
def test_attention_projections_merge_in_the_model_suite(model):
    from benchmarks.models import SUITE, example_inputs
    graph = SUITE[model]()
    out, ctx = check_pass(graph, pipeline(2)[:-1], example_inputs(graph), rtol=1e-4, atol=1e-5)
    record = next(r for r in ctx.records if r.name == "fuse_horizontal")
    assert record.counters == {"merged 3 MatMul": 2}
    assert sum(n.op is ops.Split for n in out.nodes) == 2
