"""Softmax family and the statistics-based normalizations lowered to Loop IR, against the
Graph IR interpreter (`backend` runs the program with the Loop IR interpreter and natively)."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.ir.dtypes import DType
from kiln.loops.expr import Const

from .harness import check_op, rand


def vectors(n: int, count: int, dtype=np.float32, low=-2.0, high=2.0) -> list:
    """`count` different random vectors of length n (scales, biases, statistics)."""
    return [rand((n,), dtype, seed=100 + k, low=low, high=high) for k in range(count)]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family(op, backend):
    x = rand((3, 5, 2), seed=1, low=-4, high=4)
    for axis in (0, 1, -1, -3):
        check_op(backend, op, [x], {"axis": axis}, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_symbolic_large_and_empty(op, backend):
    x = rand((4, 7), seed=2, low=450, high=550)      # exp would overflow unshifted
    check_op(backend, op, [x], {"axis": -1}, dims={0: ("n", 7)}, rtol=1e-5, atol=1e-5)
    check_op(backend, op, [np.zeros((0, 3), np.float32)], {"axis": 1})


def test_softmax_float16(backend):
    check_op(backend, "Softmax", [rand((3, 9), np.float16, seed=3)], {"axis": 1}, rtol=2e-3,
             atol=1e-3)


def test_hardmax_ties_pick_the_first(backend):
    x = np.array([[1, 3, 3, 0], [2, 2, 2, 2], [0, 0, 1, 1]], np.float32)
    check_op(backend, "Hardmax", [x], {"axis": 1})


def test_layer_norm(backend):
    x = rand((2, 3, 5), seed=4)
    for axis in (-1, 1, -3):
        shape = x.shape[axis % 3:]
        scale, bias = rand(shape, seed=5), rand(shape, seed=6)
        check_op(backend, "LayerNormalization", [x, scale, bias],
                 {"axis": axis, "epsilon": 1e-3}, outputs=3, rtol=1e-4, atol=1e-5)


def test_layer_norm_broadcast_scale_no_bias_symbolic(backend):
    check_op(backend, "LayerNormalization", [rand((4, 3, 5), seed=7), rand((5,), seed=8)],
             {"axis": 1}, dims={0: ("batch", 3, 5)}, rtol=1e-4, atol=1e-5)


def test_layer_norm_float16_stats_in_float32(backend):
    check_op(backend, "LayerNormalization", [rand((3, 7), np.float16, seed=9),
                                             rand((7,), np.float16, seed=10)],
             outputs=3, rtol=5e-3, atol=5e-3)


def test_layer_norm_float64_with_float32_stash(backend):
    x = rand((3, 4), np.float64, seed=11)
    scale, bias = vectors(4, 2, np.float64)
    check_op(backend, "LayerNormalization", [x, scale, bias], outputs=3, rtol=1e-5, atol=1e-6)
    check_op(backend, "LayerNormalization", [x, scale], {"stash_type": DType.float64},
             outputs=2, rtol=1e-10, atol=1e-12)


def test_rms_norm(backend):
    x = rand((2, 3, 5), seed=12)
    for axis, scale_shape in ((-1, (5,)), (1, (3, 5)), (1, (1, 5))):
        check_op(backend, "RMSNormalization", [x, rand(scale_shape, seed=13)],
                 {"axis": axis, "epsilon": 1e-4}, dims={0: ("n", 3, 5)}, rtol=1e-4, atol=1e-5)


def test_group_norm(backend):
    x = rand((2, 6, 3, 2), seed=14)
    for groups in (1, 2, 3, 6):
        check_op(backend, "GroupNormalization", [x, *vectors(6, 2)], {"num_groups": groups},
                 dims={0: ("n", 6, 3, 2)}, rtol=1e-4, atol=1e-5)


def test_instance_norm(backend):
    for shape in ((2, 3, 5), (1, 2, 3, 3), (2, 1, 1, 2, 3)):
        check_op(backend, "InstanceNormalization", [rand(shape, seed=15), *vectors(shape[1], 2)],
                 {"epsilon": 1e-2}, rtol=1e-4, atol=1e-5)


def test_batch_norm_inference(backend):
    for shape in ((3, 4), (2, 3, 5), (2, 3, 2, 3)):
        c = shape[1]
        ins = [rand(shape, seed=16), *vectors(c, 3), rand((c,), seed=17, low=0.1, high=2.0)]
        check_op(backend, "BatchNormalization", ins, {"epsilon": 1e-3},
                 dims={0: ("n", *shape[1:])}, rtol=1e-5, atol=1e-5)


def test_batch_norm_training(backend):
    ins = [rand((3, 4, 5), seed=18), *vectors(4, 3), rand((4,), seed=19, low=0.1)]
    check_op(backend, "BatchNormalization", ins, {"training_mode": 1, "momentum": 0.7},
             outputs=3, rtol=1e-4, atol=1e-5)


def test_mean_variance_normalization(backend):
    x = rand((2, 3, 2, 3), seed=20)
    for axes in ((0, 2, 3), (1,), (-1, -2)):
        check_op(backend, "MeanVarianceNormalization", [x], {"axes": axes}, rtol=1e-4,
                 atol=1e-5)


def test_lp_norm(backend):
    x = rand((3, 5, 2), seed=21)
    x[1, :, 0] = 0        # a zero norm gives 0, not NaN
    for p in (1, 2):
        for axis in (0, 1, -1):
            check_op(backend, "LpNormalization", [x], {"axis": axis, "p": p}, rtol=1e-5,
                     atol=1e-6)


def test_lrn(backend):
    x = rand((2, 5, 3), seed=22)
    for size in (1, 2, 3, 6):
        check_op(backend, "LRN", [x], {"size": size, "alpha": 0.01, "beta": 0.6, "bias": 1.5},
                 rtol=1e-5, atol=1e-6)


# --- one kernel per row normalization, with its producers composed in ---------------------------

def _row_kernel_parts(program):
    """(kernels, Reduce expressions, accumulator updates, VECTORIZED loops holding one, exp
    calls) of a program."""
    from kiln.loops.expr import Reduce, Unary, children
    from kiln.loops.stmt import Assign, Loop, LoopKind, exprs_of, walk

    def nodes(e):
        yield e
        for c in children(e):
            yield from nodes(c)
    stmts = [s for k in program.kernels for s in walk(k.body)]
    exprs = [n for s in stmts for e in exprs_of(s) for n in nodes(e)]
    vector_accumulators = [s for s in stmts if isinstance(s, Loop) and
                           s.kind is LoopKind.VECTORIZED and
                           any(isinstance(b, Assign) for b in walk(s.body))]
    return (len(program.kernels), sum(isinstance(e, Reduce) for e in exprs),
            sum(isinstance(s, Assign) for s in stmts), len(vector_accumulators),
            sum(isinstance(e, Unary) and e.op == "exp" for e in exprs))


@pytest.mark.parametrize("op, attrs, reduces", [
    ("Softmax", {"axis": -1}, 1), ("LogSoftmax", {"axis": -1}, 2),
    ("Softmax", {"axis": 1}, 1), ("LogSoftmax", {"axis": 0}, 2),
    ("LayerNormalization", {"axis": -1}, 2), ("LayerNormalization", {"axis": 1}, 2),
    ("RMSNormalization", {"axis": -1}, 1), ("RMSNormalization", {"axis": 1}, 1)])
def test_row_normalization_is_one_kernel_with_statistics_in_locals(op, attrs, reduces, backend):
    """One kernel, each statistic a Local. Softmax's sum is an explicit pass that stores each
    exp into the output while updating an accumulator (a vector loop when the row is the
    contiguous last axis), so exp is called once per element; the other statistics stay
    Reduces (LLVM vectorizes those itself)."""
    x = rand((3, 17, 6), seed=20, low=-5, high=5)
    ins = [x]
    if op != "Softmax" and op != "LogSoftmax":
        axis = attrs["axis"] % 3
        ins += [rand(x.shape[axis:], seed=21)] + ([rand(x.shape[axis:], seed=22)]
                                                   if op == "LayerNormalization" else [])
    program = check_op(backend, op, ins, attrs, rtol=1e-5, atol=1e-5)
    kernels, found_reduces, updates, vector_passes, exps = _row_kernel_parts(program)
    softmax = op == "Softmax"
    assert (kernels, found_reduces, updates) == (1, reduces, int(softmax))
    assert vector_passes == int(softmax and attrs["axis"] == -1)
    assert exps == (1 if "Softmax" in op else 0)


def test_softmax_float16_computes_exp_again_instead_of_reading_rounded_output(backend):
    """A float16 output cannot hold the float32 exp: the last pass recomputes it."""
    program = check_op(backend, "Softmax", [rand((4, 40), np.float16, seed=3, low=-6, high=6)],
                       {"axis": -1}, rtol=2e-3, atol=1e-3)
    assert _row_kernel_parts(program)[4] == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_with_masks_infinities_and_nan(dtype, backend):
    """-inf masks, a fully masked row (NaN, as the reference), +inf and NaN in a row, over a row
    long enough for whole vectors and a tail."""
    x = rand((6, 37), dtype, seed=40, low=-8, high=8)
    x[0, ::3] = -np.inf
    x[1, :] = -np.inf
    x[2, 5] = np.inf
    x[3, 7] = np.nan
    x[4, :] = 1e30 if dtype == np.float64 else 3e38
    for op in ("Softmax", "LogSoftmax"):
        check_op(backend, op, [x], {"axis": -1}, rtol=1e-6, atol=1e-7)


def test_layer_norm_extra_outputs_still_written(backend):
    """Mean and InvStdDev used: they are written too, and agree with the one-kernel output."""
    x = rand((5, 9), seed=23)
    program = check_op(backend, "LayerNormalization", [x, rand((9,), seed=24)],
                       {"epsilon": 1e-2}, outputs=3, rtol=1e-5, atol=1e-5)
    assert len(program.kernels) == 3


def _fused(graph):
    from kiln.passes.fuse import Fuse
    from kiln.rewrite.pass_manager import PassContext, PassManager
    return PassManager([Fuse()]).run(graph, PassContext())


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "LayerNormalization",
                                "RMSNormalization"])
def test_fused_producers_compose_into_the_row_kernel(op, backend):
    """(a * 0.5 + mask) -> op: the producers fuse into the normalization's group, and the group
    is one kernel reading only a and mask (no intermediate buffer), symbolic rows included."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.loops.buffer import BufferKind
    from .harness import check_graph
    b = GraphBuilder("g")
    a = b.input("a", tensor(DType.float32, "n", 13))
    m = b.input("m", tensor(DType.float32, 1, 13))
    h = b.Add(b.Mul(a, b.constant(np.float32(0.5), "half")), m)
    if op == "LayerNormalization":
        h = b.LayerNormalization(h, b.constant(rand((13,), seed=25), "g"),
                                 b.constant(rand((13,), seed=26), "b"))
    elif op == "RMSNormalization":
        h = b.RMSNormalization(h, b.constant(rand((13,), seed=25), "g"))
    else:
        h = getattr(b, op)(h, axis=-1)
    b.output(h)
    graph = _fused(b.graph)
    assert [n.op.name for n in graph.nodes] == ["Fused"]
    feeds = {"a": rand((7, 13), seed=27, low=-9, high=9), "m": rand((1, 13), seed=28)}
    program = check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)
    assert len(program.kernels) == 1
    assert not [buf for buf in program.buffers if buf.kind is BufferKind.TEMP]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "LayerNormalization",
                                "RMSNormalization"])
def test_matmul_fused_into_a_static_row_normalization_keeps_the_row_on_the_stack(op, backend):
    """x·W + b (+ residual) -> op over a static row of 11: fusion makes it one group, and its
    one kernel computes each row of the product once into a LOCAL buffer (not once per pass)."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.loops.buffer import BufferKind
    from .harness import check_graph
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, "n", 7))
    r = b.input("r", tensor(DType.float32, "n", 11))
    h = b.Add(b.Add(b.MatMul(x, b.constant(rand((7, 11), seed=30), "w")),
                    b.constant(rand((11,), seed=31), "bias")), r)
    if op == "LayerNormalization":
        h = b.LayerNormalization(h, b.constant(rand((11,), seed=32), "g"))
    elif op == "RMSNormalization":
        h = b.RMSNormalization(h, b.constant(rand((11,), seed=32), "g"))
    else:
        h = getattr(b, op)(h, axis=1)
    b.output(h)
    graph = _fused(b.graph)
    assert [n.op.name for n in graph.nodes] == ["Fused"]
    feeds = {"x": rand((5, 7), seed=33), "r": rand((5, 11), seed=34)}
    program = check_graph(backend, graph, feeds, rtol=1e-5, atol=1e-5)
    assert len(program.kernels) == 1
    assert [buf.shape for buf in program.buffers if buf.kind is BufferKind.LOCAL] == [(Const(11),)]
    from kiln.loops.expr import Reduce, children
    from kiln.loops.stmt import Local, Store, walk

    def reduces(e):
        return ([e] if isinstance(e, Reduce) else []) + [r for c in children(e)
                                                        for r in reduces(c)]
    found = [r for s in walk(program.kernels[0].body) if isinstance(s, (Local, Store))
             for r in reduces(s.value if isinstance(s, Store) else s.init)]
    products = [e for e in found if len(e.axes) == 1 and e.axes[0][2] == Const(7)]
    assert len(products) == 1          # the product is computed in one place: the row fill


def test_matmul_is_not_fused_into_a_symbolic_or_large_row():
    from kiln.ir import GraphBuilder, tensor
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, 3, 7))
    y = b.input("y", tensor(DType.float32, 7, "m"))
    b.output(b.Softmax(b.MatMul(x, y), axis=1),
             b.Softmax(b.MatMul(x, b.constant(rand((7, 5000), seed=35), "w")), axis=1))
    graph = _fused(b.graph)
    assert sorted(n.op.name for n in graph.nodes) == ["MatMul", "MatMul", "Softmax", "Softmax"]


@pytest.mark.parametrize("op", ["Softmax", "LayerNormalization"])
@pytest.mark.parametrize("batch", [1, 3])
def test_rows_under_a_symbolic_batch_are_one_parallel_loop(op, batch, backend):
    """[batch, heads, seq, row] with batch and seq symbolic: a parallel loop over batch alone
    runs every row on one thread when batch is 1, so the rows are one parallel loop over their
    flat number (indices unravelled per row) and the answer is the same."""
    from kiln.loops.stmt import Loop, LoopKind
    x = rand((batch, 3, 5, 8), seed=30, low=-4, high=4)
    ins = [x] if op == "Softmax" else [x, rand((8,), seed=31), rand((8,), seed=32)]
    program = check_op(backend, op, ins, {"axis": -1}, dims={0: ("batch", 3, "seq", 8)},
                       rtol=1e-5, atol=1e-5)
    (kernel,) = program.kernels
    outer = [s for s in kernel.body if isinstance(s, Loop)]
    assert len(outer) == 1 and outer[0].kind is LoopKind.PARALLEL
    assert {"batch", "seq"} <= {v.name for v in _vars(outer[0].stop)}    # every row
    assert not any(isinstance(s, Loop) and s.kind is LoopKind.PARALLEL
                   for s in _walk(outer[0].body))


def _vars(e):
    from kiln.loops.expr import Var, children
    stack, out = [e], []
    while stack:
        x = stack.pop()
        if isinstance(x, Var):
            out.append(x)
        stack.extend(children(x))
    return out


def _walk(stmts):
    for s in stmts:
        yield s
        for attr in ("body", "then", "orelse"):
            inner = getattr(s, attr, None)
            if isinstance(inner, list):
                yield from _walk(inner)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "LayerNormalization"])
def test_first_statistic_of_a_block_of_rows_is_computed_ahead(op, backend):
    """The rows go in blocks of ROWS_AHEAD along the innermost row axis: the block's first
    statistic (max, mean) is computed for all its rows into a LOCAL buffer before any row is
    normalized. 19 rows per block axis leave a partial last block; symbolic rows too."""
    from kiln.loops.buffer import BufferKind
    from kiln.lowering.normalization import ROWS_AHEAD
    x = rand((2, 19, 33), seed=41, low=-6, high=6)
    ins = [x] if "Softmax" in op else [x, rand((33,), seed=42), rand((33,), seed=43)]
    program = check_op(backend, op, ins, {"axis": -1}, dims={0: ("batch", "seq", 33)},
                       rtol=1e-5, atol=1e-5)
    local = [b for b in program.buffers if b.kind is BufferKind.LOCAL]
    assert [b.shape for b in local] == [(Const(ROWS_AHEAD),)]
    assert local[0].name.startswith("row_max" if "Softmax" in op else "mean")


def test_softmax_flushes_subnormal_exps_to_zero_and_keeps_masked_zeros_exact():
    """exp(x - max) below float32's normal range is 0 (computing a subnormal stalls the CPU on
    every masked score): such outputs are exactly 0, -inf masks too, the rest as NumPy's."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.runtime.compiled_model import compile_graph
    b = GraphBuilder("g")
    x_in = b.input("x", tensor(DType.float32, "n", 40))
    b.output(b.Softmax(x_in, axis=-1), b.LogSoftmax(x_in, axis=-1))
    model = compile_graph(b.graph)
    x = rand((3, 40), seed=44, low=-3, high=3)
    x[0, 20:] = -np.inf
    x[1, 20:] = -10000.0
    x[2, 20:] = -95.0                  # exp(-95 - max) is subnormal: flushed
    soft, log_soft = model.run([x])
    assert (soft[:, 20:] == 0).all()
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    want = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soft[:, :20], want[:, :20], rtol=2e-6)
    np.testing.assert_allclose(log_soft[1:], shifted[1:] - np.log(np.exp(shifted[1:]).sum(
        axis=1, keepdims=True)), rtol=2e-6)
