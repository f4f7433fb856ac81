import ml_dtypes
import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(0)
f32 = np.float32


def randn(*shape, dtype=f32):
    return rng.standard_normal(shape).astype(dtype)


def infer(op, *types, **attrs):
    """Output types of one node whose inputs have the given types (None = absent)."""
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    outs = b.add(get_op(op), vals, attrs)
    return [v.type for v in outs]


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


# --- MatMul ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sa,sb", [
    ((3, 5), (5, 7)), ((1, 1), (1, 1)), ((5,), (5,)), ((5,), (5, 3)), ((3, 5), (5,)),
    ((2, 3, 5), (5, 7)), ((7,), (2, 3, 7, 4)), ((2, 1, 3, 5), (4, 5, 2)), ((0, 3), (3, 2)),
    ((2, 3, 0), (0, 4)), ((1, 2, 3), (5, 3, 1)),
])
def test_matmul_shapes(sa, sb):
    check_op("MatMul", [randn(*sa), randn(*sb)], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.float64, np.float16])
def test_matmul_dtypes(dtype):
    a = rng.integers(0, 5, (2, 3, 4)).astype(dtype)
    b = rng.integers(0, 5, (4, 5)).astype(dtype)
    (y,) = check_op("MatMul", [a, b], rtol=1e-3)
    assert y.dtype == dtype


def test_matmul_bfloat16_keeps_dtype():
    a = randn(3, 4).astype(ml_dtypes.bfloat16)
    b = randn(4, 2).astype(ml_dtypes.bfloat16)
    (y,) = run_kiln("MatMul", [a, b])
    assert y.dtype == ml_dtypes.bfloat16 and y.shape == (3, 2)
    np.testing.assert_allclose(y.astype(f32), a.astype(f32) @ b.astype(f32), rtol=2e-2, atol=2e-2)


def test_matmul_symbolic_batch():
    (t,) = infer("MatMul", T("batch", 1, "seq", 8), T(4, 8, 16))
    assert t.shape == ("batch", 4, "seq", 16)
    (t,) = infer("MatMul", T("batch", "seq", 8), T(8, 16))
    assert t.shape == ("batch", "seq", 16)
    (t,) = infer("MatMul", T("n"), T(None, "n", 3))
    assert t.shape == (None, 3)
    (t,) = infer("MatMul", TensorType(DType.float32, None), T(8, 16))
    assert t.shape is None


def test_matmul_batch_broadcast_inferred():
    (t,) = infer("MatMul", T("b", 1, 3, 5), T(4, 5, 2))
    assert t.shape == ("b", 4, 3, 2)


@pytest.mark.parametrize("sa,sb", [((3, 4), (5, 2)), ((4,), (5,)), ((2, 3, 4), (3, 4, 1))])
def test_matmul_bad_shapes(sa, sb):
    with pytest.raises(TypeInferenceError):
        infer("MatMul", T(*sa), T(*sb))


def test_matmul_rejects_scalars_and_mixed_dtypes():
    with pytest.raises(TypeInferenceError):
        infer("MatMul", T(), T(3))
    with pytest.raises(TypeInferenceError):
        infer("MatMul", T(2, 3), T(3, 2, dtype=DType.float64))
    with pytest.raises(TypeInferenceError):
        infer("MatMul", T(2, 3, dtype=DType.int8), T(3, 2, dtype=DType.int8))


# --- Gemm ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ta", [0, 1])
@pytest.mark.parametrize("tb", [0, 1])
@pytest.mark.parametrize("c_shape", [None, (), (1,), (7,), (3, 1), (1, 7), (3, 7)])
def test_gemm(ta, tb, c_shape):
    m, k, n = 3, 5, 7
    a = randn(*((k, m) if ta else (m, k)))
    b = randn(*((n, k) if tb else (k, n)))
    c = None if c_shape is None else randn(*c_shape)
    check_op("Gemm", [a, b, c], {"transA": ta, "transB": tb, "alpha": 0.5, "beta": 2.0},
             rtol=1e-5, atol=1e-5)


def test_gemm_defaults_and_zero_beta():
    check_op("Gemm", [randn(1, 1), randn(1, 1)], rtol=1e-6)
    check_op("Gemm", [randn(2, 3), randn(3, 4), randn(2, 4)], {"beta": 0.0})
    check_op("Gemm", [randn(0, 3), randn(3, 4), randn(4)])


def test_gemm_int():
    a = rng.integers(-5, 5, (3, 4)).astype(np.int32)
    b = rng.integers(-5, 5, (4, 2)).astype(np.int32)
    (y,) = run_kiln("Gemm", [a, b, np.int32([1, 2])])
    np.testing.assert_array_equal(y, a @ b + [1, 2])
    assert y.dtype == np.int32


def test_gemm_inference():
    (t,) = infer("Gemm", T("m", 5), T(7, 5), T(7), transB=1)
    assert t.shape == ("m", 7)
    (t,) = infer("Gemm", T(None, 5), T(5, None), T(3, 4))
    assert t.shape == (3, 4)


@pytest.mark.parametrize("sa,sb,sc,attrs", [
    ((2, 3, 4), (4, 5), None, {}),           # rank 3 A
    ((3,), (3, 5), None, {}),                # rank 1 A
    ((3, 4), (5, 2), None, {}),              # inner mismatch
    ((3, 4), (4, 2), None, {"transA": 1}),   # inner mismatch after transpose
    ((3, 4), (4, 2), (5,), {}),              # C does not broadcast
    ((3, 4), (4, 2), (1, 1, 2), {}),         # C rank 3
])
def test_gemm_bad_input(sa, sb, sc, attrs):
    with pytest.raises(TypeInferenceError):
        infer("Gemm", T(*sa), T(*sb), None if sc is None else T(*sc), **attrs)


def test_gemm_bad_trans_value():
    with pytest.raises(AttributeValueError):
        infer("Gemm", T(3, 4), T(4, 2), transA=2)


# --- Einsum ----------------------------------------------------------------------------------

@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(3, 5), (5, 7)]),
    ("ij,jk", [(3, 5), (5, 7)]),                    # implicit output
    ("bij,bjk->bik", [(2, 3, 5), (2, 5, 1)]),
    ("ij->ji", [(3, 5)]),
    ("ij->", [(3, 5)]),                              # full sum
    ("ii->i", [(4, 4)]),                             # diagonal
    ("ii", [(5, 5)]),                                # trace (implicit)
    ("...ii->...i", [(2, 3, 3)]),                    # batch diagonal
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),  # ellipsis broadcasting
    ("i...,i...->...", [(5, 3), (5, 1)]),
    ("i,i", [(7,), (7,)]),                           # inner product
    ("i,j->ij", [(3,), (2,)]),                       # outer product
    ("->", [()]),                                    # scalar
    ("Ab,bC->AC", [(2, 3), (3, 4)]),                 # upper case labels
    ("i j , j k -> i k", [(2, 3), (3, 1)]),          # spaces
    ("...", [(2, 0, 3)]),
    ("ijk,ikl,ilm->ijm", [(2, 3, 4), (2, 4, 5), (2, 5, 1)]),
])
def test_einsum(eq, shapes):
    check_op("Einsum", [randn(*s) for s in shapes], {"equation": eq}, rtol=1e-5, atol=1e-5)


def test_einsum_int_and_bfloat16():
    a = rng.integers(-4, 4, (3, 4)).astype(np.int64)
    check_op("Einsum", [a, a.T.copy()], {"equation": "ij,jk->ik"})
    x = randn(3, 4).astype(ml_dtypes.bfloat16)
    check_op("Einsum", [x], {"equation": "ij->j"}, rtol=1e-2, atol=1e-2)


def test_einsum_inference():
    (t,) = infer("Einsum", T("b", "s", 8), T(8, 4), equation="...k,kn->...n")
    assert t.shape == ("b", "s", 4)
    (t,) = infer("Einsum", T(3, 4), T(4, 5), equation="ij,jk")
    assert t.shape == (3, 5)
    (t,) = infer("Einsum", TensorType(DType.float32, None), equation="...i->...")
    assert t.shape is None
    (t,) = infer("Einsum", TensorType(DType.float32, None), T(4, 5), equation="ij,jk->ik")
    assert t.shape == (None, 5)


@pytest.mark.parametrize("eq,shapes", [
    ("ij,jk->ik", [(3, 4), (5, 6)]),      # j mismatch
    ("ij->ij", [(3, 4, 5)]),              # rank mismatch
    ("ij,jk->ik", [(3, 4)]),              # wrong operand count
    ("ij->iz", [(3, 4)]),                 # unknown output label
    ("i1->i", [(3, 4)]),                  # bad character
    ("ii->i", [(3, 4)]),                  # non-square diagonal
])
def test_einsum_bad(eq, shapes):
    with pytest.raises(TypeInferenceError):
        infer("Einsum", *(T(*s) for s in shapes), equation=eq)


# --- Det -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (5, 5), (2, 3, 3), (2, 0, 4, 4), (0, 0)])
def test_det(shape):
    check_op("Det", [randn(*shape)], rtol=1e-4, atol=1e-5)


def test_det_float64_and_symbolic():
    check_op("Det", [randn(2, 4, 4, dtype=np.float64)], rtol=1e-10)
    (t,) = infer("Det", T("b", "n", "n"))
    assert t.shape == ("b",)


def test_det_bad():
    with pytest.raises(TypeInferenceError):
        infer("Det", T(3, 4))
    with pytest.raises(TypeInferenceError):
        infer("Det", T(3))
    with pytest.raises(TypeInferenceError):
        infer("Det", T(3, 3, dtype=DType.int32))


# --- MatMulInteger ---------------------------------------------------------------------------

def _q(shape, dtype):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max + 1, shape).astype(dtype)


@pytest.mark.parametrize("da,db", [(np.uint8, np.uint8), (np.int8, np.int8), (np.uint8, np.int8)])
@pytest.mark.parametrize("sa,sb", [((3, 5), (5, 7)), ((2, 3, 5), (5, 1)), ((5,), (5, 3))])
def test_matmul_integer(da, db, sa, sb):
    check_op("MatMulInteger", [_q(sa, da), _q(sb, db), _q((), da), _q((), db)])
    check_op("MatMulInteger", [_q(sa, da), _q(sb, db)])


def test_matmul_integer_per_row_and_column_zero_points():
    a, b = _q((4, 5), np.uint8), _q((5, 3), np.uint8)
    za, zb = _q((4,), np.uint8), _q((3,), np.uint8)
    (y,) = run_kiln("MatMulInteger", [a, b, za, zb])
    want = (a.astype(np.int32) - za[:, None]) @ (b.astype(np.int32) - zb)
    np.testing.assert_array_equal(y, want)
    assert y.dtype == np.int32


def test_matmul_integer_bad():
    with pytest.raises(TypeInferenceError):
        infer("MatMulInteger", T(3, 4, dtype=DType.float32), T(4, 2, dtype=DType.uint8))
    with pytest.raises(TypeInferenceError):
        infer("MatMulInteger", T(3, 4, dtype=DType.uint8), T(5, 2, dtype=DType.uint8))
    with pytest.raises(TypeInferenceError):
        infer("MatMulInteger", T(3, 4, dtype=DType.uint8), T(4, 2, dtype=DType.uint8),
              T(dtype=DType.int8))
