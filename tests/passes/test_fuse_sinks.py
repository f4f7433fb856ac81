"""Where a conv/matmul group may end besides an elementwise epilogue: a row normalization whose
static row its kernel keeps on the stack, and a global pool over a small image."""

import numpy as np
import pytest

from kiln.codegen import compile_program
from kiln.ir import GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.lowering import lower_graph
from kiln.passes.fuse import Fuse
from tests.passes.helpers import check_pass

f32 = DType.float32
rng = np.random.default_rng(1)


def conv_head(image: int, pool: str):
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "n", 4, image, image))
    w = b.constant(rng.standard_normal((4, 4, 3, 3)).astype(np.float32), "w")
    y = b.Relu(b.Add(b.Conv(x, w, pads=[1, 1, 1, 1], kernel_shape=[3, 3]), x))
    b.output(getattr(b, pool)(y))
    return b.graph


@pytest.mark.parametrize("pool", ["GlobalAveragePool", "GlobalMaxPool"])
def test_conv_group_ends_in_a_small_global_pool_one_kernel(pool):
    graph = conv_head(7, pool)
    feeds = {"x": rng.standard_normal((2, 4, 7, 7)).astype(np.float32)}
    out, _ = check_pass(graph, [Fuse()], feeds, rtol=1e-5, atol=1e-5)
    assert [n.op.name for n in out.nodes] == ["Fused"]
    program = lower_graph(out)
    assert len(program.kernels) == 1
    got = compile_program(program).run(feeds)
    np.testing.assert_allclose(got[0], interpret(graph, feeds)[0], rtol=1e-5, atol=1e-5)


def test_a_large_image_keeps_the_pool_apart():
    out, _ = check_pass(conv_head(17, "GlobalAveragePool"), [Fuse()],
                        {"x": rng.standard_normal((1, 4, 17, 17)).astype(np.float32)},
                        rtol=1e-5, atol=1e-5)
    assert sorted(n.op.name for n in out.nodes) == ["Fused", "GlobalAveragePool"]


def test_gemm_softmax_one_group_but_not_past_the_softmax():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "n", 6))
    y = b.Softmax(b.Gemm(x, b.constant(rng.standard_normal((6, 5)).astype(np.float32), "w"),
                         b.constant(rng.standard_normal(5).astype(np.float32), "c")))
    b.output(b.Relu(y))
    out, _ = check_pass(b.graph, [Fuse()], {"x": rng.standard_normal((3, 6)).astype(np.float32)})
    assert [n.op.name for n in out.nodes] == ["Fused", "Relu"]
    assert sorted(n.op.name for n in out.nodes[0].attrs["body"].nodes) == ["Gemm", "Softmax"]


def test_layer_norm_with_statistics_outputs_is_not_a_matmul_sink():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3, 6))
    h = b.MatMul(x, b.constant(rng.standard_normal((6, 5)).astype(np.float32), "w"))
    y, mean, inv = b.add(ops.LayerNormalization, [h, b.constant(np.ones(5, np.float32), "g")],
                         {}, outputs=3)
    b.output(y, mean, inv)
    out, _ = check_pass(b.graph, [Fuse()], {"x": rng.standard_normal((3, 6)).astype(np.float32)})
    assert sorted(n.op.name for n in out.nodes) == ["LayerNormalization", "MatMul"]
