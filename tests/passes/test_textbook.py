"""The textbook cases for constant folding, CSE, DCE and simplification."""

import numpy as np

from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.passes.eliminate_common_subexpressions import EliminateCommonSubexpressions
from kiln.passes.eliminate_dead_code import EliminateDeadCode
from kiln.passes.fold_constants import FoldConstants
from kiln.passes.simplify import Simplify
from kiln.pipeline import pipeline
from tests.passes.helpers import check_pass, flat_ops, run_passes

f32 = DType.float32


def test_constant_propagation_chain_folds_to_zero():
    # x = 14; y = 7 - x / 2; return y * (28 / x + 2)
    b = GraphBuilder()
    x = b.constant(np.float32(14), "x")
    y = b.Sub(b.constant(np.float32(7)), b.Div(x, b.constant(np.float32(2))))
    b.output(b.Mul(y, b.Add(b.Div(b.constant(np.float32(28)), x), b.constant(np.float32(2)))))
    out, ctx = check_pass(b.graph, [FoldConstants(), EliminateDeadCode()], {})
    assert out.nodes == [] and len(out.constants) == 1
    assert out.outputs[0].data == 0


def test_size_of_static_tensor_folds_to_24():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 1, 2, 3, 4))
    b.output(b.Size(x))
    out, _ = check_pass(b.graph, [FoldConstants(), EliminateDeadCode()],
                        {"x": np.zeros((1, 2, 3, 4), np.float32)})
    assert out.nodes == [] and int(out.outputs[0].data) == 24


def test_shape_folds_only_static_dims():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "batch", 3, 4))
    b.output(b.Shape(x, start=1), b.Shape(x))
    out, _ = run_passes(b.graph, [FoldConstants()])
    assert [n.op.name for n in out.nodes] == ["Shape"]
    assert out.outputs[0].data.tolist() == [3, 4]


def test_cascade_of_constant_addn_folds_completely():
    b = GraphBuilder()
    c = [b.constant(np.full((2, 2), i, np.float32), f"c{i}") for i in range(4)]
    s1 = b.Sum(c[0], c[1])
    s2 = b.Sum(s1, c[2], c[3])
    x = b.input("x", tensor(f32, 2, 2))
    b.output(b.Mul(x, s2))
    out, ctx = check_pass(b.graph, [FoldConstants(), EliminateDeadCode()],
                          {"x": np.ones((2, 2), np.float32)})
    assert [n.op.name for n in out.nodes] == ["Mul"]
    assert ctx.records[0].counters["folded constant"] == 2


def test_fold_respects_size_cap():
    from kiln.options import CompileOptions
    b = GraphBuilder()
    shape = b.constant(np.array([1024, 1024], np.int64), "shape")
    b.output(b.ConstantOfShape(shape))
    out, _ = run_passes(b.graph, [FoldConstants()], CompileOptions(fold_size_limit_bytes=1 << 16))
    assert [n.op.name for n in out.nodes] == ["ConstantOfShape"]


def test_cse_shares_b_times_c():
    # a = b*c + g; d = b*c + e
    b = GraphBuilder()
    bb, c, g, e = (b.input(n, tensor(f32, 3)) for n in "bcge")
    b.output(b.Add(b.Mul(bb, c), g), b.Add(b.Mul(c, bb), e))   # commutative operands too
    feeds = {n: np.arange(3, dtype=np.float32) + i for i, n in enumerate("bcge")}
    out, ctx = check_pass(b.graph, [EliminateCommonSubexpressions(), EliminateDeadCode()], feeds)
    assert [n.op.name for n in out.nodes].count("Mul") == 1


def test_cse_never_merges_random_ops():
    b = GraphBuilder()
    r1 = b.RandomUniform(shape=[2], seed=1.0)
    r2 = b.RandomUniform(shape=[2], seed=1.0)
    b.output(r1, r2)
    out, _ = run_passes(b.graph, [EliminateCommonSubexpressions()])
    assert len(out.nodes) == 2


def test_dce_removes_unused_and_keeps_outputs():
    # x and y are dead: return a + b + c
    b = GraphBuilder()
    a, bb, c = (b.input(n, tensor(f32, 2)) for n in "abc")
    b.Mul(a, bb)                    # dead
    b.Exp(b.constant(np.ones(2, np.float32), "unused"))  # dead, with a constant
    kept = b.constant(np.ones(2, np.float32), "const_out")
    b.output(b.Add(b.Add(a, bb), c), kept)
    out, ctx = check_pass(b.graph, [EliminateDeadCode()],
                          {n: np.ones(2, np.float32) for n in "abc"})
    assert [n.op.name for n in out.nodes] == ["Add", "Add"]
    assert [c.name for c in out.constants] == ["const_out"]


def test_dce_bypasses_noops():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 2, 3))
    h = b.Identity(x)
    h = b.Cast(h, to=f32)
    h = b.Transpose(h, perm=[0, 1])
    h = b.Reshape(h, b.constant(np.array([2, 3], np.int64), "s"))
    b.output(b.Relu(h))
    out, _ = check_pass(b.graph, [EliminateDeadCode()], {"x": np.ones((2, 3), np.float32)})
    assert [n.op.name for n in out.nodes] == ["Relu"]


def test_double_transpose_and_nested_reshape_vanish():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 2, 3, 4))
    t = b.Transpose(b.Transpose(x, perm=[2, 0, 1]), perm=[1, 2, 0])
    r = b.Reshape(b.Reshape(t, b.constant(np.array([6, 4], np.int64), "s1")),
                  b.constant(np.array([2, 3, 4], np.int64), "s2"))
    b.output(b.Relu(r))
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)}
    out, _ = check_pass(b.graph, pipeline(2), feeds)
    assert flat_ops(out) == ["Relu"]


def test_identity_elements_and_strength_reduction():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4))
    one, two = b.constant(np.float32(1), "one"), b.constant(np.float32(2), "two")
    y = b.Div(b.Mul(x, one), two)           # -> x * 0.5
    b.output(b.Pow(y, two))                 # -> y * y
    feeds = {"x": np.array([1, -2, np.inf, np.nan], np.float32)}
    out, _ = check_pass(b.graph, pipeline(2), feeds)
    assert flat_ops(out) == ["Mul", "Mul"]


def _bn_params(b, c, rng):
    return [b.constant(rng.uniform(0.5, 2, c).astype(np.float32), "gamma"),
            b.constant(rng.standard_normal(c).astype(np.float32), "beta"),
            b.constant(rng.standard_normal(c).astype(np.float32), "mean"),
            b.constant(rng.uniform(0.1, 3, c).astype(np.float32), "var")]


def test_conv_batchnorm_folds_and_matches():
    from kiln.passes.fold_batchnorm import FoldBatchNorm
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "batch", 3, 7, 7))
    w = b.constant(rng.standard_normal((5, 3, 3, 3)).astype(np.float32), "w")
    bias = b.constant(rng.standard_normal(5).astype(np.float32), "bias")
    y = b.Conv(x, w, bias, pads=[1, 1, 1, 1])
    b.output(b.Relu(b.BatchNormalization(y, *_bn_params(b, 5, rng), epsilon=1e-3)))
    feeds = {"x": rng.standard_normal((2, 3, 7, 7)).astype(np.float32)}
    out, ctx = check_pass(b.graph, [FoldBatchNorm(), EliminateDeadCode()], feeds, rtol=1e-4, atol=1e-5)
    assert [n.op.name for n in out.nodes] == ["Conv", "Relu"]


def test_gemm_batchnorm_folds_and_matches():
    from kiln.passes.fold_batchnorm import FoldBatchNorm
    rng = np.random.default_rng(1)
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "batch", 6))
    w = b.constant(rng.standard_normal((4, 6)).astype(np.float32), "w")
    c = b.constant(rng.standard_normal(4).astype(np.float32), "c")
    b.output(b.BatchNormalization(b.Gemm(x, w, c, transB=1), *_bn_params(b, 4, rng)))
    feeds = {"x": rng.standard_normal((3, 6)).astype(np.float32)}
    out, _ = check_pass(b.graph, [FoldBatchNorm(), EliminateDeadCode()], feeds, rtol=1e-4, atol=1e-5)
    assert [n.op.name for n in out.nodes] == ["Gemm"]
