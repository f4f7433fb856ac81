"""MatMul, Gemm, Einsum and MatMulInteger lowered to Loop IR, against the Graph IR interpreter
(`backend` runs the program with the Loop IR interpreter and natively)."""

from __future__ import annotations

import numpy as np
import pytest

from kiln.ir.dtypes import DType

from .harness import check_graph, check_op, rand

TOL = {"rtol": 1e-5, "atol": 1e-5}

MATMUL_SHAPES = [
    ((3, 5), (5, 2)),
    ((5,), (5, 3)),            # 1-D left operand: promoted, then dropped
    ((2, 5), (5,)),            # 1-D right operand
    ((5,), (5,)),              # dot product: a scalar
    ((2, 3, 5), (5, 4)),       # batch on one side
    ((1, 3, 2), (4, 2, 3)),    # batch dims broadcast
    ((2, 1, 3, 2), (5, 2, 1)),
    ((1, 1), (1, 7)),
    ((3, 0), (0, 2)),          # empty contraction: zeros
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(shapes, backend):
    a, b = (rand(s, seed=k) for k, s in enumerate(shapes))
    check_op(backend, "MatMul", [a, b], **TOL)


def test_matmul_symbolic_batch_and_rows(backend):
    a = rand((3, 2, 5), seed=1)
    check_op(backend, "MatMul", [a, rand((5, 7), seed=2)], dims={0: ("batch", "seq", 5)}, **TOL)
    check_op(backend, "MatMul", [a, rand((3, 5, 2), seed=3)],
             dims={0: ("n", 2, 5), 1: ("n", 5, 2)}, **TOL)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.float16])
def test_matmul_dtypes(dtype, backend):
    a, b = rand((3, 4), dtype, seed=4), rand((2, 4, 5), dtype, seed=5)
    tol = 2e-3 if dtype == np.float16 else 1e-6
    check_op(backend, "MatMul", [a, b], rtol=tol, atol=tol)


def test_gemm(backend):
    for ta in (0, 1):
        for tb in (0, 1):
            a = rand((5, 3) if ta else (3, 5), seed=6)
            b = rand((2, 5) if tb else (5, 2), seed=7)
            for c_shape in ((3, 2), (2,), (1, 2), (3, 1), ()):
                check_op(backend, "Gemm", [a, b, rand(c_shape, seed=8)],
                         {"transA": ta, "transB": tb, "alpha": 0.5, "beta": -1.5}, **TOL)


def test_gemm_without_c_symbolic_and_beta_zero(backend):
    a, b = rand((4, 3), seed=9), rand((3, 6), seed=10)
    check_op(backend, "Gemm", [a, b], dims={0: ("m", 3)}, **TOL)
    check_op(backend, "Gemm", [a, b, rand((4, 6), seed=11)], {"beta": 0.0}, **TOL)


def test_gemm_integers(backend):
    ins = [rand((3, 4), np.int32, seed=12), rand((4, 2), np.int32, seed=13),
           rand((2,), np.int32, seed=14)]
    check_op(backend, "Gemm", ins)
    check_op(backend, "Gemm", ins, {"alpha": 2.0, "beta": 3.0})


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),              # implicit output
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("ii->i", [(4, 4)]),                      # diagonal
    ("ii", [(4, 4)]),                         # trace
    ("ij->ji", [(3, 5)]),
    ("ij->", [(3, 5)]),
    ("i,j->ij", [(3,), (4,)]),                # outer product
    ("i,i->", [(5,), (5,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (1, 4, 2)]),
    ("...i,...i->...", [(3, 1, 4), (2, 4)]),
    ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (1, 3)]),
    ("i...->...", [(3, 2, 2)]),
]


@pytest.mark.parametrize("eq,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum(eq, shapes, backend):
    xs = [rand(s, seed=k) for k, s in enumerate(shapes)]
    check_op(backend, "Einsum", xs, {"equation": eq}, **TOL)


def test_einsum_symbolic_batch(backend):
    check_op(backend, "Einsum", [rand((3, 2, 4), seed=15), rand((3, 4, 5), seed=16)],
             {"equation": "bij,bjk->bik"}, dims={0: ("n", 2, 4), 1: ("n", 4, 5)}, **TOL)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_matmul_integer(dtype, backend):
    info = np.iinfo(dtype)

    def q(shape, seed):
        return rand(shape, dtype, seed=seed, low=info.min, high=info.max)
    a, b = q((2, 3, 4), 17), q((4, 5), 18)
    for a_zp, b_zp in ((None, None), (q((), 19), q((), 20)), (q((3,), 21), q((5,), 22)),
                       (q((1,), 23), None)):
        check_op(backend, "MatMulInteger", [a, b, a_zp, b_zp])
    check_op(backend, "MatMulInteger", [q((4,), 24), b, q((), 25), q((5,), 26)])


# --- the register-blocked float32 GEMM (kiln/lowering/gemm.py) ------------------------------------
# Sizes that are not multiples of the tile (8 or 6 rows, 16/32/48 columns), 1, primes.

GEMM_SHAPES = [
    ((1, 1), (1, 1)),
    ((7, 13), (13, 17)),          # one 8x32 tile, both edges ragged
    ((13, 5), (5, 50)),           # past one 48-column panel
    ((9, 11), (11, 97)),          # several panels, 8x48 chosen
    ((3, 5, 11), (3, 11, 19)),    # batched
    ((2, 1, 9, 7), (3, 7, 20)),   # batch dims broadcast
    ((4, 0), (0, 6)),             # empty contraction
]


@pytest.mark.parametrize("shapes", GEMM_SHAPES, ids=str)
def test_gemm_kernel_shapes(shapes, backend):
    a, b = (rand(s, seed=30 + k) for k, s in enumerate(shapes))
    check_op(backend, "MatMul", [a, b], **TOL)
    if len(shapes[1]) == 2 and b.size > 1:    # B a constant: packed when compiling
        prog = check_op(backend, "MatMul", [a, b], consts=[1], **TOL)
        packed = [buf for buf in prog.buffers if buf.name.startswith("packed_b")]
        assert packed and packed[0].data is not None


def test_gemm_kernel_transposed_and_scaled(backend):
    for ta in (0, 1):
        for tb in (0, 1):
            a = rand((19, 11) if ta else (11, 19), seed=40)
            b = rand((37, 19) if tb else (19, 37), seed=41)
            for consts in ((), (1, 2)):
                check_op(backend, "Gemm", [a, b, rand((37,), seed=42)],
                         {"transA": ta, "transB": tb, "alpha": 0.5, "beta": -1.5},
                         consts=consts, **TOL)


def test_gemm_kernel_symbolic_rows(backend):
    a = rand((2, 13, 7), seed=43)
    check_op(backend, "MatMul", [a, rand((7, 23), seed=44)], dims={0: ("batch", "seq", 7)},
             consts=[1], **TOL)
    check_op(backend, "MatMul", [a, rand((2, 7, 23), seed=45)],
             dims={0: ("n", "s", 7), 1: ("n", 7, 23)}, **TOL)


def _fused(graph):
    from kiln.passes.fuse import Fuse
    from kiln.rewrite.pass_manager import PassContext, PassManager
    return PassManager([Fuse()]).run(graph, PassContext())


def _dense(b, x, k, n, seed, act=None, residual=None):
    rng = np.random.default_rng(seed)
    y = b.Add(b.MatMul(x, b.constant(rng.standard_normal((k, n)).astype(np.float32), f"w{seed}")),
              b.constant(rng.standard_normal(n).astype(np.float32), f"b{seed}"))
    if residual is not None:
        y = b.Add(y, residual)
    return getattr(b, act)(y) if act else y


@pytest.mark.parametrize("act", ["Relu", "Sigmoid", "Tanh", None])
def test_gemm_epilogue_in_registers(act, backend):
    """MatMul + bias (+ residual) + activation fused: one kernel, the epilogue applied to the
    accumulators (no plain Reduce nest left), equal to the interpreter."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.loops.expr import Reduce
    from kiln.loops.stmt import Store
    b = GraphBuilder("dense")
    x = b.input("x", tensor(DType.float32, 10, 21))
    r = b.input("r", tensor(DType.float32, 10, 51))
    b.output(_dense(b, x, 21, 51, 1, act, residual=r))
    graph = _fused(b.graph)
    feeds = {"x": rand((10, 21), seed=46), "r": rand((10, 51), seed=47)}
    prog = check_graph(backend, graph, feeds, **TOL)
    assert len(prog.kernels) == 1
    stores = prog.kernels[0].stores()
    assert stores and not any(isinstance(s.value, Reduce) for s in stores)


def test_gemm_into_softmax_one_kernel(backend):
    """A product flowing into a Softmax over a row of unknown length (grouped by hand: the
    row cannot be cached): the GEMM writes product and bias into a temporary, then the row
    kernel normalizes it; both are one kernel."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.passes.fuse import _Groups, build_fused_nodes
    b = GraphBuilder("head")
    x = b.input("x", tensor(DType.float32, 2, 9, 17))
    w = b.input("w", tensor(DType.float32, 17, "n"))
    b.output(b.Softmax(b.Add(b.MatMul(x, w), b.constant(np.float32(0.5), "half")), axis=-1))
    graph = b.graph
    groups = _Groups(graph.nodes)
    for n in graph.nodes[:-1]:
        groups.union_into(id(n), id(graph.nodes[-1]))
    assert build_fused_nodes(graph, groups) == 1
    feeds = {"x": rand((2, 9, 17), seed=48), "w": rand((17, 30), seed=49)}
    prog = check_graph(backend, graph, feeds, **TOL)
    assert len(prog.kernels) == 1
    assert any(buf.name.startswith("packed_b") for buf in prog.buffers)


def test_gemm_epilogue_over_sizes_spelled_differently(backend):
    """(x @ W) + r with x [m, 7] and r [n, 20]: the sum is [max(m, n), 20]. When m == n at run
    time the GEMM with the epilogue runs; when m is 1 the product broadcasts over r's rows and
    the plain nest (the other arm of the size check) computes it."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.loops.stmt import If, walk
    b = GraphBuilder("g")
    x = b.input("x", tensor(DType.float32, "m", 7))
    r = b.input("r", tensor(DType.float32, "n", 20))
    b.output(b.Relu(b.Add(b.MatMul(x, b.constant(rand((7, 20), seed=50), "w")), r)))
    graph = _fused(b.graph)
    for m, n in ((5, 5), (1, 5), (9, 9)):
        prog = check_graph(backend, graph, {"x": rand((m, 7), seed=51), "r": rand((n, 20), seed=52)},
                           **TOL)
    assert len(prog.kernels) == 1
    assert any(isinstance(s, If) and s.orelse for s in walk(prog.kernels[0].body))


@pytest.mark.parametrize("costly", [False, True])
def test_gemm_epilogue_inline_or_through_an_l1_tile(costly, backend):
    """A short epilogue is copied per accumulator; a long one (erf-GELU over bias and residual)
    runs once per micro-tile row from a LOCAL tile. Both equal the interpreter, ragged edges
    included."""
    from kiln.ir import GraphBuilder, tensor
    from kiln.loops.buffer import BufferKind
    b = GraphBuilder("dense")
    x = b.input("x", tensor(DType.float32, "m", 21))
    r = b.input("r", tensor(DType.float32, "m", 53))
    y = _dense(b, x, 21, 53, 3, residual=r)
    if costly:
        half = b.constant(np.float32(0.5), "half")
        y = b.Mul(b.Mul(y, half), b.Add(b.Erf(b.Mul(y, b.constant(np.float32(0.7071), "s"))),
                                          b.constant(np.float32(1.0), "one")))
    b.output(y)
    feeds = {"x": rand((11, 21), seed=53), "r": rand((11, 53), seed=54)}
    prog = check_graph(backend, _fused(b.graph), feeds, **TOL)
    assert len(prog.kernels) == 1
    tiles = [buf for buf in prog.buffers if buf.kind is BufferKind.LOCAL]
    assert bool(tiles) == costly
