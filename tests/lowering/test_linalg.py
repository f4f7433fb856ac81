"""MatMul, Gemm, Einsum and MatMulInteger lowered to Loop IR, against the Graph IR interpreter
(`backend` runs the program with the Loop IR interpreter and natively)."""

from __future__ import annotations

import numpy as np
import pytest

from .harness import check_op, rand

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
