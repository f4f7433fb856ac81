"""MatMul, Gemm and Einsum lowered to Loop IR, against the Graph IR interpreter."""

from __future__ import annotations

import numpy as np
import pytest

from .compare_backends import backend, check, one_node, rand  # noqa: F401  (fixture)

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
    rng = np.random.default_rng(1)
    a, b = (rand(rng, s) for s in shapes)
    g, feeds = one_node("MatMul", [a, b])
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)


def test_matmul_symbolic_batch_and_rows(backend):
    rng = np.random.default_rng(2)
    a, b = rand(rng, (3, 2, 5)), rand(rng, (5, 7))
    g, feeds = one_node("MatMul", [a, b], dims={0: ("batch", "seq", 5)})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)
    g, feeds = one_node("MatMul", [a, rand(rng, (3, 5, 2))], dims={0: ("n", 2, 5),
                                                                    1: ("n", 5, 2)})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float64, np.float16])
def test_matmul_dtypes(dtype, backend):
    rng = np.random.default_rng(3)
    a, b = rand(rng, (3, 4), dtype), rand(rng, (2, 4, 5), dtype)
    g, feeds = one_node("MatMul", [a, b])
    tol = 2e-3 if dtype == np.float16 else 1e-6
    check(g, feeds, backend, rtol=tol, atol=tol)


def test_gemm(backend):
    rng = np.random.default_rng(4)
    for ta in (0, 1):
        for tb in (0, 1):
            a = rand(rng, (5, 3) if ta else (3, 5))
            b = rand(rng, (2, 5) if tb else (5, 2))
            for c_shape in ((3, 2), (2,), (1, 2), (3, 1), ()):
                g, feeds = one_node("Gemm", [a, b, rand(rng, c_shape)],
                                    {"transA": ta, "transB": tb, "alpha": 0.5, "beta": -1.5})
                check(g, feeds, backend, rtol=1e-5, atol=1e-5)


def test_gemm_without_c_symbolic_and_beta_zero(backend):
    rng = np.random.default_rng(5)
    a, b = rand(rng, (4, 3)), rand(rng, (3, 6))
    g, feeds = one_node("Gemm", [a, b], dims={0: ("m", 3)})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)
    g, feeds = one_node("Gemm", [a, b, rand(rng, (4, 6))], {"beta": 0.0})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)


def test_gemm_integers(backend):
    rng = np.random.default_rng(6)
    a, b, c = rand(rng, (3, 4), np.int32), rand(rng, (4, 2), np.int32), rand(rng, (2,), np.int32)
    g, feeds = one_node("Gemm", [a, b, c])
    check(g, feeds, backend)
    g, feeds = one_node("Gemm", [a, b, c], {"alpha": 2.0, "beta": 3.0})
    check(g, feeds, backend)


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
    rng = np.random.default_rng(7)
    xs = [rand(rng, s) for s in shapes]
    g, feeds = one_node("Einsum", xs, {"equation": eq})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)


def test_einsum_symbolic_batch(backend):
    rng = np.random.default_rng(8)
    a, b = rand(rng, (3, 2, 4)), rand(rng, (3, 4, 5))
    g, feeds = one_node("Einsum", [a, b], {"equation": "bij,bjk->bik"},
                        dims={0: ("n", 2, 4), 1: ("n", 4, 5)})
    check(g, feeds, backend, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_matmul_integer(dtype, backend):
    rng = np.random.default_rng(9)
    info = np.iinfo(dtype)

    def q(shape):
        return rng.integers(info.min, info.max + 1, size=shape).astype(dtype)
    a, b = q((2, 3, 4)), q((4, 5))
    for a_zp, b_zp in ((None, None), (q(()), q(())), (q((3,)), q((5,))), (q((1,)), None)):
        g, feeds = one_node("MatMulInteger", [a, b, a_zp, b_zp])
        check(g, feeds, backend)
    g, feeds = one_node("MatMulInteger", [q((4,)), b, q(()), q((5,))])
    check(g, feeds, backend)
