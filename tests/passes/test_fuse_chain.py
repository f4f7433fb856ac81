"""Back-to-back GEMM chains (kiln/passes/fuse.py `chain_gemm_groups`, lowered by
kiln/lowering/gemm_chain.py): which product groups merge, and that the merged kernel computes
what the interpreter and the unfused program compute."""

import numpy as np
import pytest

from kiln.codegen import compile_program
from kiln.ir import GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.loops.buffer import BufferKind
from kiln.lowering import lower_graph
from kiln.passes.fuse import Fuse
from tests.passes.helpers import check_pass, clone, run_passes

f32 = DType.float32


def dense_net(sizes, rows="batch", act="Relu", softmax=True, seed=0, extra_reader=False,
              runtime_weight=False):
    rng = np.random.default_rng(seed)
    b = GraphBuilder("net")
    h = x = b.input("x", tensor(f32, rows, sizes[0]))
    outs = []
    for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (b.input(f"w{i}", tensor(f32, k, n)) if runtime_weight and i == 1 else
             b.constant((rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32), f"w{i}"))
        h = b.Gemm(h, w, b.constant(rng.standard_normal(n).astype(np.float32) * 0.1, f"b{i}"))
        if i < len(sizes) - 2:
            h = getattr(b, act)(h)
            if extra_reader and i == 0:
                outs.append(b.Neg(h))
    b.output(b.Softmax(h, axis=-1) if softmax else h, *outs)
    return b.graph, x


def fused_groups(graph):
    return [[n.op.name for n in f.attrs["body"].nodes] for f in graph.nodes if f.op is ops.Fused]


def feeds_for(graph, rows, seed=1):
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal([rows if isinstance(d, str) else d for d in v.type.shape])
            .astype(np.float32) for v in graph.inputs}


def run_native(graph, feeds):
    native = compile_program(lower_graph(graph))
    try:
        return native.run(feeds)
    finally:
        native.close()


def test_dense_layers_chain_into_one_group_and_one_kernel():
    graph, _ = dense_net((13, 50, 19, 7))
    out, ctx = check_pass(graph, [Fuse()], feeds_for(graph, 37))
    assert fused_groups(out) == [["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]]
    record = next(r for r in ctx.records if r.name == "fuse")
    assert record.counters["chained"] == 2
    program = lower_graph(out)
    assert len(program.kernels) == 1
    local = [b for b in program.buffers if b.kind is BufferKind.LOCAL]
    assert sum(int(np.prod([d.value for d in b.shape])) * 4 for b in local) <= 64 * 1024
    temps = [b for b in program.buffers if b.kind is BufferKind.TEMP]
    assert temps == []          # no intermediate goes through memory


@pytest.mark.parametrize("rows", [1, 8, 37])
@pytest.mark.parametrize("act,softmax", [("Relu", True), ("Tanh", False), ("Sigmoid", True)])
def test_chain_native_matches_interpreter_and_unfused(rows, act, softmax):
    graph, _ = dense_net((13, 50, 19, 7), act=act, softmax=softmax, seed=rows)
    fused, _ = run_passes(clone(graph), [Fuse()])
    assert len(fused_groups(fused)) == 1
    feeds = feeds_for(graph, rows)
    want = interpret(graph, feeds)[0]
    got = run_native(fused, feeds)[0]
    unfused = run_native(graph, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, unfused, rtol=1e-5, atol=1e-6)


def test_no_chain_when_the_hidden_result_has_another_reader():
    graph, _ = dense_net((5, 6, 4), extra_reader=True)
    out, _ = check_pass(graph, [Fuse()], feeds_for(graph, 3))
    assert all(g.count("Gemm") == 1 for g in fused_groups(out))


def test_no_chain_when_the_next_weight_is_not_constant():
    graph, _ = dense_net((5, 6, 4), runtime_weight=True)
    out, _ = check_pass(graph, [Fuse()], feeds_for(graph, 3))
    assert all(g.count("Gemm") == 1 for g in fused_groups(out))


def test_no_chain_past_the_local_tile_bound():
    # 8 rows x 2100 hidden floats = 67,200 bytes > 64 KiB: the layers stay two groups
    graph, _ = dense_net((3, 2100, 2), softmax=False)
    out, _ = run_passes(graph, [Fuse()])
    assert [n.op.name for n in out.nodes].count("Gemm") + \
        sum(g.count("Gemm") for g in fused_groups(out)) == 2
    assert all(g.count("Gemm") <= 1 for g in fused_groups(out))


def test_no_chain_through_a_row_mixing_epilogue():
    """An Add of a second runtime tensor reads rows the chain would not have in its tile
    rule (only constants broadcast along rows are allowed), so the products stay apart."""
    rng = np.random.default_rng(3)
    b = GraphBuilder("net")
    x = b.input("x", tensor(f32, "batch", 5))
    r = b.input("r", tensor(f32, "batch", 6))
    w0 = b.constant(rng.standard_normal((5, 6)).astype(np.float32), "w0")
    h = b.Relu(b.Add(b.Gemm(x, w0), r))
    b.output(b.Gemm(h, b.constant(rng.standard_normal((6, 4)).astype(np.float32), "w1")))
    out, _ = check_pass(b.graph, [Fuse()], feeds_for(b.graph, 4))
    assert all(g.count("Gemm") <= 1 for g in fused_groups(out))
