"""Views (Reshape, Transpose, ... lowered lazily) are not fusion sinks for pure data movement:
alone they cost no kernel, as one group they would be a copy."""

import numpy as np

from kiln.codegen import compile_program
from kiln.ir import GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.lowering import lower_graph
from kiln.passes.fuse import Fuse
from tests.passes.helpers import check_pass

f32 = DType.float32
i64 = DType.int64
rng = np.random.default_rng(2)


def merge_heads_graph():
    """[batch, seq, 16] -> split into 2 heads of 8 (target shape computed from Shape) ->
    per-head product -> merge the heads back (Transpose, Reshape) -> output projection."""
    b = GraphBuilder()
    x = b.input("x", tensor(f32, "batch", "seq", 16))
    shape = b.Shape(x)
    batch = b.Unsqueeze(b.Gather(shape, b.constant(np.array(0, np.int64), "i0"), axis=0),
                        b.constant(np.array([0], np.int64), "ax0"))
    seq = b.Unsqueeze(b.Gather(shape, b.constant(np.array(1, np.int64), "i1"), axis=0),
                      b.constant(np.array([0], np.int64), "ax1"))
    target = b.Concat(batch, seq, b.constant(np.array([2, 8], np.int64), "hd"), axis=0)
    heads = b.Transpose(b.Reshape(x, target), perm=[0, 2, 1, 3])           # [b, 2, s, 8]
    h = b.MatMul(heads, b.constant(rng.standard_normal((8, 8)).astype(np.float32), "wh"))
    merged = b.Reshape(b.Transpose(h, perm=[0, 2, 1, 3]),
                       b.constant(np.array([0, 0, 16], np.int64), "merge"))
    b.output(b.MatMul(merged, b.constant(rng.standard_normal((16, 4)).astype(np.float32), "wo")))
    return b.graph


def test_heads_split_and_merge_stay_views_no_copy_kernel():
    graph = merge_heads_graph()
    feeds = {"x": rng.standard_normal((2, 5, 16)).astype(np.float32)}
    out, _ = check_pass(graph, [Fuse()], feeds, rtol=1e-5, atol=1e-5)
    for n in out.nodes:
        if n.op is ops.Fused:
            body = {m.op.name for m in n.attrs["body"].nodes}
            assert not body & {"Reshape", "Transpose"}, f"a view in a copy group: {body}"
    program = lower_graph(out)
    # the two products only: the Transposes and Reshapes are read through as views
    assert len(program.kernels) == 2
    got = compile_program(program).run(feeds)
    np.testing.assert_allclose(got[0], interpret(graph, feeds)[0], rtol=1e-5, atol=1e-5)


def test_compute_still_fuses_through_a_view():
    # an elementwise op before a view and after it: one group, one kernel
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3, 4))
    y = b.Reshape(b.Exp(x), b.constant(np.array([12], np.int64), "flat"))
    b.output(b.Neg(y))
    feeds = {"x": rng.standard_normal((3, 4)).astype(np.float32)}
    out, _ = check_pass(b.graph, [Fuse()], feeds)
    assert [n.op.name for n in out.nodes] == ["Fused"]
    assert sorted(m.op.name for m in out.nodes[0].attrs["body"].nodes) == ["Exp", "Neg", "Reshape"]
    program = lower_graph(out)
    assert len(program.kernels) == 1
    np.testing.assert_allclose(compile_program(program).run(feeds)[0],
                               -np.exp(feeds["x"]).reshape(12), rtol=1e-6)
