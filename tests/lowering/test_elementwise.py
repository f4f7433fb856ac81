"""Elementwise and broadcasting lowerings against the Graph IR interpreter."""

import numpy as np
import pytest

from kiln.ir import ops
from kiln.ir.dtypes import DType
from kiln.lowering.elementwise import SCALAR
from kiln.lowering.registry import lowering_for

from .harness import check_op, rand

SHAPE = (3, 5)

# op -> (low, high) of its float test domain
UNARY_FLOAT = {
    "Abs": (-3, 3), "Neg": (-3, 3), "Sign": (-3, 3), "Reciprocal": (0.5, 3), "Ceil": (-3, 3),
    "Floor": (-3, 3), "Round": (-3, 3), "Sqrt": (0, 4), "Exp": (-3, 3), "Log": (0.1, 4),
    "Erf": (-3, 3), "Sin": (-3, 3), "Cos": (-3, 3), "Tan": (-1.2, 1.2), "Asin": (-0.99, 0.99),
    "Acos": (-0.99, 0.99), "Atan": (-3, 3), "Sinh": (-3, 3), "Cosh": (-3, 3), "Tanh": (-3, 3),
    "Asinh": (-3, 3), "Acosh": (1, 4), "Atanh": (-0.99, 0.99), "Relu": (-3, 3),
    "Sigmoid": (-6, 6), "Softplus": (-20, 20), "Softsign": (-3, 3), "Mish": (-5, 5),
    "HardSwish": (-5, 5), "IsNaN": (-3, 3),
}


@pytest.mark.parametrize("op", sorted(UNARY_FLOAT))
def test_unary_float32(backend, op):
    lo, hi = UNARY_FLOAT[op]
    check_op(backend, op, [rand(SHAPE, np.float32, low=lo, high=hi)])


@pytest.mark.parametrize("op,attrs", [
    ("LeakyRelu", {}), ("LeakyRelu", {"alpha": 0.3}), ("ThresholdedRelu", {"alpha": 0.5}),
    ("Elu", {"alpha": 0.7}), ("Selu", {}), ("Celu", {"alpha": 2.0}),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}), ("Swish", {"alpha": 1.5}), ("Gelu", {}),
    ("Gelu", {"approximate": "tanh"}), ("Shrink", {"bias": 0.5, "lambd": 1.0}),
    ("IsInf", {}), ("IsInf", {"detect_negative": 0}), ("IsInf", {"detect_positive": 0}),
    ("IsInf", {"detect_negative": 0, "detect_positive": 0}),
])
def test_activation_attributes(backend, op, attrs):
    x = rand((2, 7), np.float32)
    x[0, :3] = [np.inf, -np.inf, np.nan]
    check_op(backend, op, [x], attrs)


@pytest.mark.parametrize("dtype", [np.float16, DType.bfloat16.np, np.float64])
@pytest.mark.parametrize("op", ["Exp", "Tanh", "Gelu", "Sigmoid", "Sqrt", "Neg", "Relu"])
def test_unary_other_floats(backend, op, dtype):
    check_op(backend, op, [rand((2, 3), dtype, low=0.1, high=3)])


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow", "Equal", "Greater",
                                "GreaterOrEqual", "Less", "LessOrEqual", "Max", "Min", "Sum",
                                "Mean", "PRelu"])
def test_binary_float(backend, op):
    a = rand((3, 1, 5), np.float32, seed=1, low=0.2 if op == "Pow" else -3)
    b = rand((4, 1), np.float32, seed=2, nonzero=True)
    if op == "PRelu":
        a, b = rand((3, 4, 5), np.float32, seed=1), rand((4, 1), np.float32, seed=2)
    if op in ("Equal", "GreaterOrEqual", "LessOrEqual"):
        b[0, 0] = a[0, 0, 0]
    check_op(backend, op, [a, b])


@pytest.mark.parametrize("shapes", [
    ((3, 5), (3, 5)), ((3, 5), (5,)), ((5,), (3, 5)), ((3, 1), (1, 5)), ((1, 5), (3, 1)),
    ((), (2, 3)), ((2, 3), ()), ((), ()), ((2, 1, 3), (4, 1)), ((0, 3), (1, 3)), ((1, 3), (0, 1)),
])
def test_broadcasting_positions(backend, shapes):
    a, b = rand(shapes[0], seed=3), rand(shapes[1], seed=4)
    check_op(backend, "Sub", [a, b])


@pytest.mark.parametrize("dtype", [np.float16, DType.bfloat16.np, np.float64])
@pytest.mark.parametrize("op", ["Add", "Mul", "Div", "Pow", "Mod", "Less"])
def test_binary_other_floats(backend, op, dtype):
    a = rand((2, 3), dtype, seed=5, low=0.5, high=3)
    b = rand((3,), dtype, seed=6, low=0.5, high=3)
    check_op(backend, op, [a, b])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.uint32])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Mod", "Max", "Min", "Equal",
                                "Greater", "LessOrEqual", "BitwiseAnd", "BitwiseOr", "BitwiseXor"])
def test_binary_integers(backend, op, dtype):
    lo = 0 if np.dtype(dtype).kind == "u" else -100
    a = rand((2, 5), dtype, seed=7, low=lo, high=100)
    b = rand((5,), dtype, seed=8, low=lo, high=100, nonzero=True)
    if np.dtype(dtype).itemsize == 1 and op in ("Add", "Sub", "Mul"):
        a[0, :2], b[:2] = 120 if lo else 250, 100 if lo else 200   # wraps around
    check_op(backend, op, [a, b])


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_integer_division_and_modulo_signs(backend, dtype):
    a = np.array([7, -7, 7, -7, 6, -6, 0], dtype)
    b = np.array([2, 2, -2, -2, 3, -3, 5], dtype)
    check_op(backend, "Div", [a, b])
    check_op(backend, "Mod", [a, b])
    check_op(backend, "Mod", [a, b], {"fmod": 1})


@pytest.mark.parametrize("fmod", [0, 1])
def test_float_modulo(backend, fmod):
    a = np.array([5.5, -5.5, 5.5, -5.5, 0.0, 3.0], np.float32)
    b = np.array([2.0, 2.0, -2.0, -2.0, 1.5, 3.0], np.float32)
    check_op(backend, "Mod", [a, b], {"fmod": fmod})


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logic(backend, op):
    check_op(backend, op, [rand((3, 4), np.bool_, seed=9), rand((4,), np.bool_, seed=10)])


def test_not_and_bitwise_not(backend):
    check_op(backend, "Not", [rand((3, 4), np.bool_)])
    for dtype in (np.int8, np.uint16, np.int64):
        check_op(backend, "BitwiseNot", [rand((5,), dtype, low=0, high=50)])


def test_unary_integers(backend):
    for dtype in (np.int8, np.int32, np.int64):
        x = rand((7,), dtype, low=-50, high=50)
        for op in ("Abs", "Neg", "Sign", "Relu"):
            check_op(backend, op, [x])
    check_op(backend, "Abs", [np.array([0, 3, 255], np.uint8)])
    check_op(backend, "Shrink", [np.array([-5, -1, 0, 1, 5], np.int32)],
             {"bias": 1.5, "lambd": 1.0})
    check_op(backend, "PRelu", [np.array([[-5, 3], [2, -1]], np.int32), np.array([2, 3], np.int32)])


@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.int64])
def test_bit_shift(backend, direction, dtype):
    bits = np.dtype(dtype).itemsize * 8
    x = np.array([1, 5, 100, 7, 3, 9], dtype)
    if np.dtype(dtype).kind == "i":
        x[4] = -3
    y = np.array([0, 1, 3, bits - 1, bits, 2], dtype)
    check_op(backend, "BitShift", [x, y], {"direction": direction})


def test_pow_mixed_dtypes(backend):
    x = rand((2, 3), np.float32, low=0.5, high=2)
    check_op(backend, "Pow", [x, np.array([2, 3, -1], np.int64)])
    check_op(backend, "Pow", [np.array([2, 3, -4, 5], np.int64), np.array([3, 2, 3, 0], np.int64)])
    check_op(backend, "Pow", [np.array([2, 3, 5], np.int32), np.array([0.5, 2.0, 1.0], np.float32)])


def test_variadic_three_inputs_broadcast(backend):
    a, b, c = rand((2, 1, 3), seed=11), rand((4, 1), seed=12), rand((3,), seed=13)
    for op in ("Max", "Min", "Sum", "Mean"):
        check_op(backend, op, [a, b, c])
    check_op(backend, "Sum", [a])
    check_op(backend, "Max", [np.array([1, 9, -4], np.int32), np.array([[3], [-7]], np.int32)])


def test_max_min_propagate_nan(backend):
    a = np.array([np.nan, 1.0, 2.0], np.float32)
    b = np.array([0.0, np.nan, 1.0], np.float32)
    check_op(backend, "Max", [a, b])
    check_op(backend, "Min", [a, b])


def test_where_broadcasts_all_three(backend):
    c = rand((3, 1), np.bool_, seed=14)
    x, y = rand((1, 4), seed=15), rand((3, 4), seed=16)
    check_op(backend, "Where", [c, x, y])
    check_op(backend, "Where", [rand((2, 3), np.bool_), np.array(7, np.int64),
                                np.arange(3, dtype=np.int64)])


@pytest.mark.parametrize("bounds", [(None, None), (-1.0, None), (None, 0.5), (-0.5, 1.0),
                                    (1.0, -1.0)])
def test_clip(backend, bounds):
    x = rand((3, 5))
    x[0, 0] = np.nan
    lo, hi = (None if b is None else np.array(b, np.float32) for b in bounds)
    check_op(backend, "Clip", [x, lo, hi])


def test_clip_integers_and_one_element_bounds(backend):
    x = rand((4,), np.int32, low=-10, high=10)
    check_op(backend, "Clip", [x, np.array([-3], np.int32), np.array([4], np.int32)])
    check_op(backend, "Clip", [np.array(5.0, np.float32), np.array([-1.0], np.float32),
                               np.array([1.0], np.float32)])
    check_op(backend, "Clip", [x, np.array(-2, np.int32)], consts=[1])


CASTS = [(np.float32, np.int32), (np.float32, np.bool_), (np.bool_, np.float32),
         (np.int64, np.float16), (np.float32, DType.bfloat16.np), (np.float64, np.float32),
         (np.uint8, np.int8), (np.int32, np.float64), (np.float16, np.float32),
         (DType.bfloat16.np, np.float16), (np.int32, np.bool_), (np.bool_, np.int64),
         (np.float32, np.uint8), (np.int8, np.uint64), (np.float64, np.float16)]


@pytest.mark.parametrize("src,dst", CASTS, ids=[f"{np.dtype(a)}-{np.dtype(b)}" for a, b in CASTS])
def test_cast(backend, src, dst):
    x = np.array([0.0, 1.5, -2.5, 3.7, 100.25, -0.0, 7.0], np.float64)
    if np.dtype(dst).kind == "u" or np.dtype(src).kind == "u":
        x = np.abs(x)
    x = x.astype(src)
    check_op(backend, "Cast", [x], {"to": DType.from_numpy(dst)})
    check_op(backend, "CastLike", [x, np.zeros(1, dst)])


def test_rank0_and_empty(backend):
    check_op(backend, "Exp", [np.array(0.5, np.float32)])
    check_op(backend, "Add", [np.array(2, np.int32), np.array(3, np.int32)])
    check_op(backend, "Tanh", [np.zeros((0, 3), np.float32)])
    check_op(backend, "Where", [np.zeros((2, 0), bool), np.zeros((2, 0), np.float32),
                                np.zeros((1,), np.float32)])


def test_symbolic_dims(backend):
    a, b = rand((4, 3), seed=17), rand((4, 1), seed=18)
    check_op(backend, "Mul", [a, b], dims={0: ("n", 3), 1: ("n", 1)})
    check_op(backend, "Relu", [rand((2, 5))], dims={0: ("n", "m")})


@pytest.mark.parametrize("n", [1, 3])
def test_symbolic_dim_broadcast_decided_at_run_time(backend, n):
    """x: f32[n] against y: f32[3]: n may be 1 (broadcast) or 3."""
    check_op(backend, "Add", [rand((n,), seed=19), rand((3,), seed=20)], dims={0: ("n",)})
    check_op(backend, "Add", [rand((n, 1), seed=19), rand((1, 2), seed=20)],
             dims={0: ("n", 1), 1: ("m", 2)})


def test_constant_operands(backend):
    x = rand((2, 3))
    check_op(backend, "Add", [x, np.float32(1.5)], consts=[1])          # splat: a Const
    prog = check_op(backend, "Mul", [x, rand((3,), seed=21)], consts=[1])   # loaded
    assert [b.name for b in prog.buffers if b.kind.value == "const"] == ["c1"]


def test_every_scalar_row_is_registered():
    for op in SCALAR:
        assert lowering_for(op) is not None
    for op in (ops.Clip, ops.CastLike):
        assert lowering_for(op) is not None


def test_binarizer(backend):
    x = np.array([[-1.0, 0.0, 0.5], [0.25, 2.0, -0.1]], np.float32)
    check_op(backend, "Binarizer", [x], {"threshold": 0.25})
    check_op(backend, "Binarizer", [np.array([-2, 0, 1, 5], np.int64)], {"threshold": 0.5})


@pytest.mark.parametrize("target", [np.uint8, np.int8, np.uint16, np.int16])
def test_quantize_per_tensor(backend, target):
    x = np.array([[-300.0, -2.5, -1.5, -0.5], [0.5, 1.5, 2.49, 1e4]], np.float32)
    zp = np.array(3 if np.dtype(target).kind == "u" else -2, target)
    check_op(backend, "QuantizeLinear", [x, np.array(0.5, np.float32), zp])
    check_op(backend, "QuantizeLinear", [x, np.array(2.0, np.float32), zp], consts=[1, 2])
    check_op(backend, "DequantizeLinear", [rand((2, 4), target, low=0, high=100), np.float32(0.25),
                                           zp])


def test_quantize_per_axis_and_blocked(backend):
    x = rand((2, 3, 4), low=-10, high=10)
    scales, zps = np.array([0.5, 0.1, 2.0], np.float32), np.array([1, 0, 250], np.uint8)
    check_op(backend, "QuantizeLinear", [x, scales, zps], {"axis": 1})
    check_op(backend, "QuantizeLinear", [x, scales], {"axis": -2})
    blocked = rand((2, 3, 2), low=0.1, high=1)
    bzp = rand((2, 3, 2), np.int8, low=-5, high=5)
    check_op(backend, "QuantizeLinear", [x, blocked, bzp], {"axis": 2, "block_size": 2})
    q = rand((2, 3, 4), np.int8, low=-100, high=100)
    check_op(backend, "DequantizeLinear", [q, blocked, bzp], {"axis": -1, "block_size": 2})
    check_op(backend, "DequantizeLinear", [q, scales, zps.astype(np.int8)], {"axis": 1})
    check_op(backend, "DequantizeLinear", [rand((5,), np.int32, low=-9, high=9),
                                           np.array(0.5, np.float32)])


def test_quantize_narrow_floats(backend):
    x = rand((2, 3), np.float16, low=-4, high=4)
    check_op(backend, "QuantizeLinear", [x, np.array(0.05, np.float16)])
    q = rand((2, 3), np.uint8, low=0, high=255)
    check_op(backend, "DequantizeLinear", [q, np.array(0.5, np.float16)])
    check_op(backend, "DequantizeLinear", [q, np.array(0.5, np.float32)],
             {"output_dtype": DType.bfloat16})
