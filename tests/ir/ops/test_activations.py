import ml_dtypes
import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.types import tensor
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(1)

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 3.0, -3.0, 1e-30,
                     50.0, -50.0, 200.0, -200.0], np.float32)
SHAPES = [(), (1,), (0,), (7,), (3, 5), (2, 0, 3), (2, 3, 1, 5)]
TOL = {np.float16: 2e-3, ml_dtypes.bfloat16: 2e-2}

# op -> attribute sets to try besides the defaults
ACTIVATIONS = {
    "Relu": [],
    "LeakyRelu": [{"alpha": 0.3}],
    "ThresholdedRelu": [{"alpha": -0.5}, {"alpha": 2.0}],
    "Elu": [{"alpha": 0.5}],
    "Selu": [{"alpha": 2.0, "gamma": 3.0}],
    "Celu": [{"alpha": 2.5}],
    "Sigmoid": [],
    "HardSigmoid": [{"alpha": 0.5, "beta": 0.25}],
    "HardSwish": [],
    "Softplus": [],
    "Softsign": [],
    "Mish": [],
    "Swish": [{"alpha": 1.702}],
    "Gelu": [{"approximate": "tanh"}],
    "Shrink": [{"bias": 1.5, "lambd": 1.0}, {"lambd": 0.0}],
}


def rand(shape, dtype=np.float32):
    return rng.uniform(-4, 4, size=shape).astype(dtype)


def tol(dtype):
    t = TOL.get(dtype, 1e-6)
    return {"rtol": t, "atol": t}


@pytest.mark.parametrize("op", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_shapes_default_attrs(op, shape):
    x = rand(shape)
    if op == "Softsign" and shape == ():
        # onnx.reference's Softsign fails on rank 0: compare with the one-element vector
        got = run_kiln(op, [x])[0]
        assert got.shape == () and got.dtype == np.float32
        np.testing.assert_allclose(got.reshape(1), check_op(op, [x.reshape(1)])[0], rtol=1e-6)
    else:
        check_op(op, [x], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op,attrs", [(op, a) for op, sets in ACTIVATIONS.items() for a in sets])
def test_activation_attributes(op, attrs):
    check_op(op, [rand((4, 7))], attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ACTIVATIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, ml_dtypes.bfloat16])
def test_activation_special_values_keep_dtype(op, dtype):
    with np.errstate(over="ignore"):
        x = SPECIALS.astype(dtype)
    if op == "Shrink" and dtype == ml_dtypes.bfloat16:
        # ONNX's Shrink schema leaves out bfloat16 (kiln takes it): compare in float32
        got = run_kiln(op, [x])[0]
        want = check_op(op, [x.astype(np.float32)])[0]
        np.testing.assert_allclose(got.astype(np.float32), want, rtol=1e-2)
    else:
        got = check_op(op, [x], **tol(dtype))[0]
    assert got.dtype == dtype


def test_activations_stay_finite_for_large_inputs():
    x = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    for op in ("Sigmoid", "Softplus", "Mish", "Swish", "Gelu"):
        got = check_op(op, [x])[0]
        assert np.isfinite(got).all(), op


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_relu_integers(dtype):
    info = np.iinfo(dtype)
    check_op("Relu", [np.array([info.min, -3, 0, 5, info.max], dtype)])


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_shrink_integers(dtype):
    x = np.arange(0, 9, dtype=dtype) if np.issubdtype(dtype, np.unsignedinteger) \
        else np.arange(-4, 5, dtype=dtype)
    check_op("Shrink", [x], {"bias": 1.0, "lambd": 1.5})


# --- PRelu -------------------------------------------------------------------------------------

@pytest.mark.parametrize("sx,ss", [((3, 4, 5), (5,)), ((3, 4, 5), (4, 1)), ((3, 4, 5), (3, 4, 5)),
                                   ((2, 3, 5, 5), (3, 1, 1)), ((7,), ()), ((), ()), ((0, 3), (3,)),
                                   ((4, 1), (1, 1))])
def test_prelu_slope_broadcasts(sx, ss):
    check_op("PRelu", [rand(sx), rand(ss)])


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.int64, np.uint32, np.uint64])
def test_prelu_dtypes(dtype):
    x = rng.integers(0 if dtype in (np.uint32, np.uint64) else -5, 5, (3, 4)).astype(dtype)
    check_op("PRelu", [x, rng.integers(0, 3, (4,)).astype(dtype)])


def test_prelu_slope_must_broadcast_to_x():
    with pytest.raises(TypeInferenceError, match="does not broadcast"):
        run_kiln("PRelu", [rand((3, 4)), rand((2, 3, 4))])
    with pytest.raises(TypeInferenceError):
        run_kiln("PRelu", [rand((3, 4)), rand((3,))])


# --- SwiGLU ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_swiglu(shape):
    check_op("SwiGLU", [rand(shape), rand(shape)], rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float16, np.float64, ml_dtypes.bfloat16])
def test_swiglu_alpha_and_dtypes(dtype):
    a = np.concatenate([SPECIALS, rand((4,))]).astype(dtype)
    got = check_op("SwiGLU", [a, rand(a.shape, dtype)], {"alpha": 1.702}, **tol(dtype))[0]
    assert got.dtype == dtype


def test_swiglu_needs_equal_shapes_and_dtypes():
    with pytest.raises(TypeInferenceError, match="same shape"):
        run_kiln("SwiGLU", [rand((3, 4)), rand((4,))])
    with pytest.raises(TypeInferenceError, match="different dtypes"):
        run_kiln("SwiGLU", [rand((3,)), rand((3,), np.float64)])


def test_swiglu_infers_from_either_side():
    b = GraphBuilder()
    x = b.input("x", tensor(DType.float32, "batch", None))
    y = b.input("y", tensor(DType.float32, None, 8))
    assert b.SwiGLU(x, y).type == tensor(DType.float32, "batch", 8)


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Sigmoid", "LeakyRelu", "Gelu", "Swish", "HardSwish"])
def test_integer_input_is_rejected(op):
    with pytest.raises(TypeInferenceError, match="takes"):
        run_kiln(op, [np.ones(3, np.int32)])


def test_relu_rejects_unsigned():
    with pytest.raises(TypeInferenceError):
        run_kiln("Relu", [np.ones(3, np.uint8)])


def test_bad_attributes():
    with pytest.raises(AttributeValueError):
        run_kiln("Gelu", [rand((3,))], {"approximate": "erf"})
    with pytest.raises(AttributeValueError):
        run_kiln("Elu", [rand((3,))], {"beta": 1.0})
    with pytest.raises(AttributeValueError):
        run_kiln("LeakyRelu", [rand((3,))], {"alpha": "big"})
