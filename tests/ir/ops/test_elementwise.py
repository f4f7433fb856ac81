import ml_dtypes
import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir import ops
from kiln.ir.dtypes import DType
from kiln.ir.opdef import FusionKind, Trait
from kiln.ir.types import TensorType, tensor
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(0)

SHAPES = [(), (1,), (0,), (7,), (3, 5), (2, 0, 3), (2, 3, 1, 5)]
SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -3.5, 1e-30,
                     88.0, -100.0, 1e30], np.float32)
FLOAT_DTYPES = [np.float32, np.float16, np.float64, ml_dtypes.bfloat16]
TOL = {np.float16: 2e-3, ml_dtypes.bfloat16: 1e-2}


def specials(dtype):
    """SPECIALS in dtype (1e30 becomes inf in the narrow floats)."""
    with np.errstate(over="ignore"):
        return SPECIALS.astype(dtype)


def rand(shape, dtype=np.float32, low=-3.0, high=3.0):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), size=shape, endpoint=True,
                            dtype=dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def tol(dtype):
    t = TOL.get(dtype, 1e-6)
    return {"rtol": t, "atol": t}


FLOAT_UNARY = ["Reciprocal", "Ceil", "Floor", "Round", "Sqrt", "Exp", "Log", "Erf", "Sin", "Cos",
               "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Tanh", "Asinh", "Acosh", "Atanh"]
NUMERIC_UNARY = ["Abs", "Neg", "Sign"]


@pytest.mark.parametrize("op", FLOAT_UNARY + NUMERIC_UNARY)
@pytest.mark.parametrize("shape", SHAPES)
def test_unary_math_shapes(op, shape):
    # uniform in (-1.5, 1.5) reaches both the inside and outside of the arcus domains
    check_op(op, [rand(shape, low=-1.5, high=1.5)], rtol=1e-5)


@pytest.mark.parametrize("op", FLOAT_UNARY + NUMERIC_UNARY)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_unary_math_special_values_keep_dtype(op, dtype):
    x = specials(dtype)
    # exp/cosh/sinh of 88 overflow to inf in float16/bfloat16 on both sides
    check_op(op, [x], **tol(dtype))


def test_round_is_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001], np.float32)
    got = check_op("Round", [x])[0]
    np.testing.assert_array_equal(got, [0, 2, 2, -0, -2, -2, 2, 3])


@pytest.mark.parametrize("op", NUMERIC_UNARY)
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_signed_int_unary_wraps(op, dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, info.min + 1, -5, 0, 3, info.max], dtype)
    got = check_op(op, [x])[0]
    assert got.dtype == dtype


@pytest.mark.parametrize("op", ["Abs", "Sign"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_unsigned_int_unary(op, dtype):
    check_op(op, [np.array([0, 1, 7, np.iinfo(dtype).max], dtype)])


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64, np.int64])
def test_bitwise_not(dtype):
    check_op("BitwiseNot", [rand((3, 7), dtype)])
    check_op("BitwiseNot", [np.array(np.iinfo(dtype).max, dtype)])


def test_not():
    check_op("Not", [rng.random((3, 5)) > 0.5])
    check_op("Not", [np.zeros((0, 2), bool)])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2])
def test_isnan(dtype):
    check_op("IsNaN", [specials(dtype)])


@pytest.mark.parametrize("neg,pos", [(1, 1), (0, 1), (1, 0), (0, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_isinf(neg, pos, dtype):
    x = specials(dtype)
    got = check_op("IsInf", [x], {"detect_negative": neg, "detect_positive": pos})[0]
    np.testing.assert_array_equal(got, (np.isposinf(x) & pos) | (np.isneginf(x) & neg))


# --- binary ------------------------------------------------------------------------------------

BCAST = [((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 5), (7, 1)), ((7, 1), (2, 1, 5)), ((1,), (3,)),
         ((), (2, 3)), ((2, 3), ()), ((), ()), ((0, 3), (1, 3)), ((5, 1, 3), (5, 0, 1))]
ARITH = ["Add", "Sub", "Mul", "Div"]
COMPARE = ["Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual"]


@pytest.mark.parametrize("op", ARITH + COMPARE + ["Pow", "Mod"])
@pytest.mark.parametrize("sa,sb", BCAST)
def test_binary_broadcasts(op, sa, sb):
    a, b = rand(sa), rand(sb)
    if op in ("Pow", "Mod"):
        a = np.abs(a) + 0.5
    check_op(op, [a, b], rtol=1e-5)


@pytest.mark.parametrize("op", ARITH + COMPARE)
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32,
                                   np.int64, np.uint64, np.float16, np.float64, ml_dtypes.bfloat16])
def test_binary_dtypes(op, dtype):
    a, b = rand((3, 1, 5), dtype), rand((4, 1), dtype)
    if op == "Div" and np.issubdtype(dtype, np.integer):
        b[b == 0] = 3
    got = check_op(op, [a, b], **tol(dtype))[0]
    assert got.dtype == (bool if op in COMPARE else dtype)


def test_comparisons_with_nan_and_equal_values():
    a = np.array([np.nan, 1, 2, np.inf, -0.0], np.float32)
    b = np.array([np.nan, 1, 3, np.inf, 0.0], np.float32)
    for op in COMPARE:
        check_op(op, [a, b])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_integer_division_truncates_toward_zero(dtype):
    a = np.array([7, -7, 7, -7, 6, -6, 0, 1], dtype)
    b = np.array([2, 2, -2, -2, 3, -3, 5, -5], dtype)
    got = check_op("Div", [a, b])[0]
    np.testing.assert_array_equal(got, [3, -3, -3, 3, 2, 2, 0, 0])


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int64])
def test_integer_overflow_wraps(dtype):
    info = np.iinfo(dtype)
    a, b = np.array([info.max, info.min], dtype), np.array([1, 1], dtype)
    got = run_kiln("Add", [a, b])[0]
    np.testing.assert_array_equal(got, np.array([info.min, info.min + 1], dtype))
    check_op("Mul", [a, np.array([2, 3], dtype)])


def test_equal_strings_and_bools():
    check_op("Equal", [np.array(["a", "bc", ""], dtype=object), np.array(["a", "b", ""], dtype=object)])
    check_op("Equal", [np.array([["x"], ["y"]], dtype=object), np.array(["x", "y", "z"], dtype=object)])
    check_op("Equal", [np.array([True, False]), np.array([[True], [False]])])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
@pytest.mark.parametrize("sa,sb", BCAST)
def test_logic(op, sa, sb):
    check_op(op, [rng.random(sa) > 0.5, rng.random(sb) > 0.5])


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint32, np.int64, np.uint64])
def test_bitwise(op, dtype):
    check_op(op, [rand((2, 3, 5), dtype), rand((3, 1), dtype)])
    check_op(op, [rand((), dtype), rand((0, 4), dtype)])


# --- Mod ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint64])
def test_mod_integers(fmod, dtype):
    a = np.array([7, -7, 7, -7, 0, 5, 3], dtype) if np.issubdtype(dtype, np.signedinteger) \
        else np.array([7, 9, 0, 5, 250], dtype)
    b = np.array([3, 3, -3, -3, 4, 5, -2], dtype) if np.issubdtype(dtype, np.signedinteger) \
        else np.array([3, 4, 2, 5, 7], dtype)
    got = check_op("Mod", [a, b], {"fmod": fmod})[0]
    if dtype == np.int32:
        np.testing.assert_array_equal(got, [1, -1, 1, -1, 0, 0, 1] if fmod else [1, 2, -2, -1, 0, 0, -1])


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_mod_floats_with_special_values(fmod, dtype):
    a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, -0.0, np.inf, 3.0, 3.0, -3.0, np.nan, 2.0], dtype)
    b = np.array([2.0, 2.0, -2.0, -2.0, -3.0, 3.0, 2.0, 0.0, np.inf, np.inf, 1.0, np.nan], dtype)
    got = check_op("Mod", [a, b], {"fmod": fmod})[0]
    # the signs of zero results follow B for mod and A for fmod
    assert np.signbit(got[4]) == (not fmod)
    check_op("Mod", [rand((3, 4), dtype), np.abs(rand((4,), dtype)) + 0.25], {"fmod": fmod},
             **tol(dtype))


# --- Pow ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("xd,yd", [(np.float32, np.float32), (np.float32, np.int64),
                                   (np.float32, np.int8), (np.float16, np.float32),
                                   (np.float64, np.float16), (np.int32, np.float32),
                                   (np.int64, np.int64), (np.int32, np.uint8),
                                   (np.int64, np.float64), (ml_dtypes.bfloat16, np.float32)])
def test_pow_mixed_dtypes_keep_base_dtype(xd, yd):
    x = rand((3, 4), xd, 0.5, 3)
    y = rng.integers(0, 4, (4,)).astype(yd)
    got = check_op("Pow", [x, y], **tol(xd))[0]
    assert got.dtype == xd


def test_pow_special_values():
    x = np.array([0.0, -0.0, -2.0, np.nan, 1.0, np.inf, -np.inf, 2.0], np.float32)
    y = np.array([-1.0, 0.5, 0.5, 0.0, np.nan, -1.0, 3.0, 200.0], np.float32)
    check_op("Pow", [x, y])


def test_pow_negative_integer_exponent_truncates_like_c():
    x = np.array([2, -1, 1, 4, -2, 3], np.int64)
    y = np.array([-1, -1, -5, -2, 3, 4], np.int64)
    np.testing.assert_array_equal(run_kiln("Pow", [x, y])[0], [0, -1, 1, 0, -8, 81])


# --- BitShift ----------------------------------------------------------------------------------

@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16,
                                   np.int32, np.int64])
def test_bitshift(direction, dtype):
    bits = np.dtype(dtype).itemsize * 8
    x = np.array([1, 5, 100, np.iinfo(dtype).max, np.iinfo(dtype).min, 3, 7], dtype)
    if np.issubdtype(dtype, np.signedinteger):
        x[-1] = -7
    y = np.array([0, 1, 3, 2, bits - 1, bits, 2], dtype)
    check_op("BitShift", [x, y], {"direction": direction})
    check_op("BitShift", [rand((2, 3), dtype), np.array([1], dtype)], {"direction": direction})


def test_bitshift_out_of_range_amounts_fill():
    x = np.array([-8, 8, -8, 8], np.int32)
    y = np.array([40, 40, -1, 32], np.int32)
    np.testing.assert_array_equal(run_kiln("BitShift", [x, y], {"direction": "RIGHT"})[0],
                                  [-1, 0, -1, 0])
    np.testing.assert_array_equal(run_kiln("BitShift", [x, y], {"direction": "LEFT"})[0],
                                  [0, 0, 0, 0])


# --- variadic ----------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
@pytest.mark.parametrize("shapes", [[(3, 4)], [(3, 4), (4,)], [(1,), (2, 1), (2, 1, 3)],
                                    [(), (5,), (1,), (5,)], [(0, 2), (2,)]])
def test_variadic_broadcasts(op, shapes):
    xs = [rand(s) for s in shapes]
    if op == "Mean" and np.broadcast(*xs).shape != xs[0].shape:
        # onnx.reference's Mean accumulates in place into input 0, so it cannot broadcast it
        got = run_kiln(op, xs)[0]
        np.testing.assert_allclose(got, sum(xs) / np.float32(len(xs)), rtol=1e-6)
        assert got.dtype == np.float32
    else:
        check_op(op, xs, rtol=1e-6)


@pytest.mark.parametrize("op", ["Max", "Min"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint64, np.int64, np.float16,
                                   np.float64])
def test_max_min_dtypes(op, dtype):
    check_op(op, [rand((2, 5), dtype), rand((5,), dtype), rand((1, 1), dtype)])


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
def test_variadic_propagates_nan(op):
    a = np.array([np.nan, 1.0, np.inf], np.float32)
    b = np.array([1.0, np.nan, -1.0], np.float32)
    got = check_op(op, [a, b])[0]
    assert np.isnan(got[:2]).all()


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float64])
def test_sum_mean_keep_dtype(dtype):
    for op in ("Sum", "Mean"):
        got = check_op(op, [rand((2, 3), dtype), rand((2, 1), dtype), rand((), dtype)], **tol(dtype))[0]
        assert got.dtype == dtype


# --- Clip and Where ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int32,
                                   np.int64, np.uint64])
def test_clip(dtype):
    x = rand((3, 7), dtype)
    lo, hi = np.array(-2, dtype) if np.issubdtype(dtype, np.signedinteger) or \
        np.issubdtype(dtype, np.floating) else np.array(5, dtype), np.array(40, dtype)
    check_op("Clip", [x, lo, hi])
    check_op("Clip", [x, lo])
    check_op("Clip", [x, None, hi])
    check_op("Clip", [x])
    check_op("Clip", [x, hi, lo])      # min > max: max everywhere


def test_clip_rank0_size0_and_nan():
    check_op("Clip", [np.array(5.0, np.float32), np.array(0.0, np.float32), np.array(1.0, np.float32)])
    check_op("Clip", [np.zeros((0, 3), np.float32), np.array(0.0, np.float32)])
    got = check_op("Clip", [SPECIALS, np.array(-1.0, np.float32), np.array(1.0, np.float32)])[0]
    assert np.isnan(got[0]) and got[1] == 1 and got[2] == -1


def test_clip_accepts_one_element_bounds():
    got = run_kiln("Clip", [np.array(5.0, np.float32), np.array([0.0], np.float32),
                            np.array([1.0], np.float32)])[0]
    assert got.shape == () and got == 1.0


@pytest.mark.parametrize("sc,sx,sy", [((3, 4), (3, 4), (3, 4)), ((4,), (3, 1), ()),
                                      ((2, 1, 1), (1, 5), (3, 1)), ((), (0, 2), (2,))])
def test_where_broadcasts(sc, sx, sy):
    check_op("Where", [rng.random(sc) > 0.5, rand(sx), rand(sy)])


@pytest.mark.parametrize("dtype", [np.int8, np.uint64, np.int64, np.float16, bool])
def test_where_dtypes(dtype):
    x = rand((3, 2), dtype) if dtype is not bool else rng.random((3, 2)) > 0.5
    check_op("Where", [rng.random((2,)) > 0.5, x, x[::-1].copy()])


def test_where_strings():
    check_op("Where", [np.array([True, False]), np.array(["a", "b"], dtype=object),
                       np.array(["c"], dtype=object)])


# --- types, traits, errors ---------------------------------------------------------------------

def test_symbolic_and_unknown_dims_infer():
    b = GraphBuilder()
    x = b.input("x", tensor(DType.float32, "batch", 1, 4))
    y = b.input("y", tensor(DType.float32, 3, None))
    z = b.Add(x, y)
    assert z.type == tensor(DType.float32, "batch", 3, 4)
    assert b.Less(x, y).type == tensor(DType.bool, "batch", 3, 4)
    assert b.Sqrt(x).type == x.type
    assert b.Max(x, y, b.Neg(x)).type == z.type
    unknown = b.input("u", TensorType(DType.float32, None))
    assert b.Mul(x, unknown).type.shape is None


def test_kinds_and_traits():
    assert ops.Add.kind is FusionKind.BROADCAST and ops.Exp.kind is FusionKind.ELEMENTWISE
    for name in ["Add", "Mul", "Max", "Min", "And", "Or", "Xor", "Equal", "BitwiseAnd",
                 "BitwiseOr", "BitwiseXor", "Sum"]:
        assert ops.OP_TABLE[name].has(Trait.COMMUTATIVE), name
    for name in ["Neg", "Not", "Reciprocal", "BitwiseNot"]:
        assert ops.OP_TABLE[name].has(Trait.INVOLUTION), name
    for name in ["Abs", "Ceil", "Floor", "Round"]:
        assert ops.OP_TABLE[name].has(Trait.IDEMPOTENT), name
    assert not ops.Sub.has(Trait.COMMUTATIVE) and not ops.Div.has(Trait.COMMUTATIVE)


def test_mismatched_operand_dtypes_raise():
    with pytest.raises(TypeInferenceError, match="different dtypes"):
        run_kiln("Add", [np.ones(3, np.float32), np.ones(3, np.int64)])
    with pytest.raises(TypeInferenceError, match="different dtypes"):
        run_kiln("Where", [np.ones(3, bool), np.ones(3, np.float32), np.ones(3, np.float64)])
    with pytest.raises(TypeInferenceError, match="different dtypes"):
        run_kiln("Max", [np.ones(3, np.float32), np.ones(3, np.float32), np.ones(1, np.float16)])


@pytest.mark.parametrize("op,inputs", [
    ("Sqrt", [np.ones(3, np.int32)]),
    ("Neg", [np.ones(3, np.uint8)]),
    ("And", [np.ones(3, np.int32), np.ones(3, np.int32)]),
    ("BitwiseAnd", [np.ones(3, np.float32), np.ones(3, np.float32)]),
    ("Sum", [np.ones(3, np.int64)]),
    ("Pow", [np.ones(3, np.uint8), np.ones(3, np.uint8)]),
    ("Where", [np.ones(3, np.int32), np.ones(3, np.float32), np.ones(3, np.float32)]),
    ("Add", [np.ones((2, 3), np.float32), np.ones((4,), np.float32)]),
    ("Clip", [np.ones(3, np.float32), np.ones(2, np.float32)]),
    ("Clip", [np.ones(3, np.float32), np.ones((), np.float64)]),
])
def test_bad_inputs_raise_type_inference_error(op, inputs):
    with pytest.raises(TypeInferenceError):
        run_kiln(op, inputs)


def test_bad_attributes_raise():
    x = np.ones(3, np.int32)
    with pytest.raises(AttributeValueError):
        run_kiln("BitShift", [x, x], {"direction": "UP"})
    with pytest.raises(AttributeValueError):
        run_kiln("BitShift", [x, x])
    with pytest.raises(AttributeValueError):
        run_kiln("Mod", [x, x], {"fmod": 2})
