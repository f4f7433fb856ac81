import ml_dtypes
import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir.dtypes import DType
from tests.ir.ops.harness import check_op, run_kiln, run_onnx

rng = np.random.default_rng(2)

D = DType
FLOATS = [D.float32, D.float16, D.float64, D.bfloat16]
FLOAT8 = [D.float8e4m3fn, D.float8e4m3fnuz, D.float8e5m2, D.float8e5m2fnuz]
INTS = [D.int8, D.uint8, D.int16, D.uint16, D.int32, D.uint32, D.int64, D.uint64]
SMALL_INTS = [D.int4, D.uint4, D.int2, D.uint2]

F8_VALUES = np.array([0.47892547, 0.48033667, 0.49968487, 0.81910545, 0.47031248, 0.7229038,
                      1000000, 1e-7, np.nan, np.inf, -np.inf, -1e-7, 1e-7, -1000000, 0.0, -0.0,
                      448, 449, 464, 57344, 61440, 240, 241, -3.3, 17.1], np.float32)
VALUES = np.array([0.47892547, -0.48033667, 1.5, 2.5, -2.5, 65504, 70000, -1e-8, np.nan, np.inf,
                   -np.inf, 0.0, -0.0, 3.4e38, 1e-45], np.float32)


def as_np(x, dtype: DType):
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(dtype.np)


@pytest.mark.parametrize("src", FLOATS)
@pytest.mark.parametrize("to", FLOATS)
def test_float_to_float(src, to):
    check_op("Cast", [as_np(VALUES, src)], {"to": to}, rtol=0, atol=0)


@pytest.mark.parametrize("src", [D.float32, D.float16, D.float64, D.bfloat16])
@pytest.mark.parametrize("to", FLOAT8)
@pytest.mark.parametrize("saturate", [1, 0])
def test_float_to_float8(src, to, saturate):
    x = as_np(F8_VALUES, src)
    got = check_op("Cast", [x], {"to": to, "saturate": saturate}, rtol=0, atol=0)[0]
    big = np.abs(x.astype(np.float32)) >= 1e6
    if saturate:  # out of range (and inf) clamps to the largest finite value
        assert np.isfinite(got.astype(np.float32)[big]).all()
    else:
        assert not np.isfinite(got.astype(np.float32)[big]).any()


@pytest.mark.parametrize("src", FLOAT8 + [D.float4e2m1, D.float8e8m0])
@pytest.mark.parametrize("to", [D.float32, D.float16, D.float64, D.bfloat16])
def test_narrow_float_to_float(src, to):
    x = as_np(F8_VALUES, src) if src is not D.float8e8m0 else \
        np.array([0.25, 1, 2, 1024, 2.0 ** -127], np.float32).astype(src.np)
    check_op("Cast", [x], {"to": to}, rtol=0, atol=0)


@pytest.mark.parametrize("src", [D.float32, D.float16])
def test_float_to_float4(src):
    x = as_np(np.array([0.48, 0.25, 1.05, -3.5, -8, 9, 1e6, 1e-7, np.nan, np.inf, -np.inf, -4, 0.01,
                        -0.0, 2.5, 0.75], np.float32), src)
    check_op("Cast", [x], {"to": D.float4e2m1}, rtol=0, atol=0)


@pytest.mark.parametrize("src", [D.float32, D.float16, D.bfloat16])
@pytest.mark.parametrize("saturate", [1, 0])
@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
def test_float_to_e8m0(src, saturate, round_mode):
    x = as_np(np.array([0.0, 0.124, 0.25, 0.5, 1.1, 2.0, 4.0, 8.0, 3.0, 0.75, 1.5, 6.0, 1e30,
                        3.4e38, np.nan, np.inf, 1e-38], np.float32), src)
    check_op("Cast", [x], {"to": D.float8e8m0, "saturate": saturate, "round_mode": round_mode},
             rtol=0, atol=0)


@pytest.mark.parametrize("to", SMALL_INTS)
@pytest.mark.parametrize("src", [D.float32, D.float16])
def test_float_to_small_ints(src, to):
    check_op("Cast", [np.arange(-9, 16).astype(src.np).reshape(5, 5)], {"to": to})


@pytest.mark.parametrize("src", SMALL_INTS)
@pytest.mark.parametrize("to", [D.float32, D.float16, D.int8, D.uint8, D.int64])
def test_small_ints_to_wider(src, to):
    lo, hi = (-8, 8) if src is D.int4 else (0, 16) if src is D.uint4 else \
        (-2, 2) if src is D.int2 else (0, 4)
    check_op("Cast", [np.arange(lo, hi).astype(src.np)], {"to": to})


@pytest.mark.parametrize("src", INTS + [D.bool])
@pytest.mark.parametrize("to", INTS + FLOATS + [D.bool])
def test_integer_and_bool_casts_wrap(src, to):
    if src is D.bool:
        x = np.array([True, False, True])
    else:
        info = np.iinfo(src.np)
        x = np.concatenate([np.array([info.min, info.max], src.np),
                            np.array([0, 1, 200, 255, 256, 7]).astype(src.np)])
    check_op("Cast", [x], {"to": to}, rtol=0, atol=0)


def test_wrapping_examples():
    assert run_kiln("Cast", [np.array([200, -200, 300], np.int16)], {"to": D.int8})[0].tolist() \
        == [-56, 56, 44]
    assert run_kiln("Cast", [np.array([-1], np.int32)], {"to": D.uint8})[0].tolist() == [255]


@pytest.mark.parametrize("src", FLOATS)
@pytest.mark.parametrize("to", [D.bool, D.int32, D.int8, D.uint8, D.int64])
def test_float_to_int_and_bool(src, to):
    x = as_np(np.array([0.0, -0.0, 0.4, -0.6, 1.5, 2.5, -2.5, 100.7, -100.7, 0.1], np.float32), src)
    got = check_op("Cast", [x], {"to": to})[0]
    if to is D.bool:
        assert got.tolist()[:3] == [False, False, True]
    else:
        assert got.tolist()[:8] == [0, 0, 0, 0, 1, 2, -2, 100][:8] or to is D.uint8


def test_nan_to_bool_is_true():
    got = check_op("Cast", [np.array([np.nan, np.inf, 0.0], np.float32)], {"to": D.bool})[0]
    assert got.tolist() == [True, True, False]


@pytest.mark.parametrize("shape", [(), (0,), (1,), (2, 0, 3), (3, 1, 5)])
@pytest.mark.parametrize("to", [D.float16, D.int32, D.float8e4m3fn, D.int4, D.bool])
def test_cast_shapes(shape, to):
    check_op("Cast", [rng.uniform(-5, 5, shape).astype(np.float32)], {"to": to})


# --- strings -----------------------------------------------------------------------------------

def _same_strings(got, want):
    assert got.dtype == object and got.shape == want.shape
    assert got.tolist() == want.astype(object).tolist()


@pytest.mark.parametrize("src", [D.float32, D.float64, D.float16, D.int32, D.int64, D.uint8,
                                 D.int8, D.bool])
def test_numbers_to_strings(src):
    x = np.array([0.47892547, 1.0, -3.25, 1e-5, 1e10, np.nan, np.inf, -np.inf, 0.0], np.float32)
    if src.is_int or src is D.bool:
        x = np.array([0, 1, -1, 100, 7], np.int64)
    x = as_np(x, src).reshape(-1, 1)
    _same_strings(run_kiln("Cast", [x], {"to": D.string})[0],
                  run_onnx("Cast", [x], {"to": D.string})[0])


def test_bfloat16_to_strings():
    got = run_kiln("Cast", [np.array([1.5, -2], ml_dtypes.bfloat16)], {"to": D.string})[0]
    assert got.tolist() == ["1.5", "-2.0"]


@pytest.mark.parametrize("to", [D.float32, D.float64, D.float16, D.bfloat16])
def test_strings_to_floats(to):
    x = np.array(["0.47892547", "1e-5", "1E8", "+INF", "INF", "-inf", "NaN", "nan", "-0", "3",
                  "  2.5 "], dtype=object).reshape(11, 1)
    if to is D.bfloat16:  # onnx.reference cannot parse into bfloat16: go through float64
        got = run_kiln("Cast", [x], {"to": to})[0]
        want = run_onnx("Cast", [x], {"to": D.float64})[0].astype(to.np)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))
    else:
        check_op("Cast", [x], {"to": to}, rtol=0, atol=0)


@pytest.mark.parametrize("to", [D.int8, D.int32, D.int64, D.uint8, D.uint64])
def test_strings_to_ints(to):
    x = np.array(["0", "1", "100", "7", "42"], dtype=object)
    check_op("Cast", [x], {"to": to})
    np.testing.assert_array_equal(run_kiln("Cast", [np.array(["2.7", "1e2"], dtype=object)],
                                           {"to": to})[0], [2, 100])


def test_strings_to_bool_and_back():
    got = run_kiln("Cast", [np.array(["0", "1", "2.5", "true", "False", "0.0"], dtype=object)],
                   {"to": D.bool})[0]
    assert got.tolist() == [False, True, True, True, False, False]
    s = np.array(["a", "b"], dtype=object)
    assert run_kiln("Cast", [s], {"to": D.string})[0].tolist() == ["a", "b"]


# --- CastLike ----------------------------------------------------------------------------------

@pytest.mark.parametrize("src,to", [(D.float32, D.float16), (D.float16, D.float64),
                                    (D.float32, D.bfloat16), (D.float32, D.float8e4m3fn),
                                    (D.float32, D.int4), (D.uint4, D.float32), (D.int64, D.int8),
                                    (D.float32, D.bool), (D.float8e5m2, D.float16)])
def test_cast_like(src, to):
    x = as_np(F8_VALUES, src) if src.is_float else np.arange(0, 9).astype(src.np)
    like = np.zeros((2, 1), to.np)
    check_op("CastLike", [x, like], rtol=0, atol=0)
    check_op("CastLike", [x, like], {"saturate": 0}, rtol=0, atol=0)


def test_cast_like_strings():
    x = np.array(["1.5", "-2"], dtype=object)
    check_op("CastLike", [x, np.zeros((), np.float32)])
    got = run_kiln("CastLike", [np.array([1.5], np.float32), np.array(["z"], dtype=object)])[0]
    assert got.tolist() == ["1.5"]


# --- BitCast -----------------------------------------------------------------------------------

@pytest.mark.parametrize("src,to", [(D.float32, D.int32), (D.int32, D.float32), (D.float64, D.int64),
                                    (D.int64, D.float64), (D.uint32, D.int32), (D.int8, D.uint8),
                                    (D.uint16, D.int16), (D.bool, D.uint8), (D.float16, D.bfloat16),
                                    (D.uint64, D.complex64), (D.float8e4m3fn, D.int8),
                                    (D.complex128, D.complex128)])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (2, 3)])
def test_bitcast(src, to, shape):
    raw = rng.integers(0, 256, size=(int(np.prod(shape)) * src.itemsize,), dtype=np.uint8)
    x = raw.view(src.np).reshape(shape) if src is not D.bool else (raw > 127).reshape(shape)
    got = check_op("BitCast", [x], {"to": to}, rtol=0, atol=0)[0]
    assert got.tobytes() == np.ascontiguousarray(x).tobytes()


def test_bitcast_known_bits():
    got = run_kiln("BitCast", [np.array([1.0, -2.0], np.float32)], {"to": D.uint32})[0]
    assert got.tolist() == [0x3F800000, 0xC0000000]
    got = run_kiln("BitCast", [np.array([-1, 7, -8], ml_dtypes.int4)], {"to": D.uint4})[0]
    assert got.astype(np.int32).tolist() == [15, 7, 8]
    got = run_kiln("BitCast", [np.array([-1, 1], ml_dtypes.int2)], {"to": D.uint2})[0]
    assert got.astype(np.int32).tolist() == [3, 1]


@pytest.mark.parametrize("src,to", [(D.float32, D.int64), (D.int8, D.int4), (D.int4, D.int2),
                                    (D.float32, D.string), (D.float16, D.float32)])
def test_bitcast_needs_one_bit_width(src, to):
    with pytest.raises(TypeInferenceError, match="BitCast"):
        run_kiln("BitCast", [np.zeros(3, src.np)], {"to": to})


def test_bitcast_rejects_strings():
    with pytest.raises(TypeInferenceError):
        run_kiln("BitCast", [np.array(["a"], dtype=object)], {"to": D.uint8})


# --- errors ------------------------------------------------------------------------------------

def test_cast_errors():
    x = np.ones(3, np.float32)
    with pytest.raises(AttributeValueError):
        run_kiln("Cast", [x])                              # `to` is required
    with pytest.raises(AttributeValueError):
        run_kiln("Cast", [x], {"to": 1})                   # a DType, not an ONNX code
    with pytest.raises(AttributeValueError):
        run_kiln("Cast", [x], {"to": D.float8e8m0, "round_mode": "even"})
    with pytest.raises(AttributeValueError):
        run_kiln("Cast", [x], {"to": D.float16, "saturate": 2})
    with pytest.raises(TypeInferenceError):
        run_kiln("Cast", [x], {"to": D.complex64})
    with pytest.raises(TypeInferenceError):
        run_kiln("CastLike", [x, np.ones(1, np.complex64)])
