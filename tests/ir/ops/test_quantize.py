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


def randn(*shape, dtype=f32, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


def infer(op, *types, **attrs):
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    return [v.type for v in b.add(get_op(op), vals, attrs, outputs=len(get_op(op).outputs))]


def qrand(shape, dtype):
    info = ml_dtypes.iinfo(dtype)
    return rng.integers(int(info.min), int(info.max) + 1, shape).astype(dtype)


INT_TARGETS = [np.uint8, np.int8, np.uint16, np.int16, ml_dtypes.int4, ml_dtypes.uint4,
               ml_dtypes.int2, ml_dtypes.uint2]


# --- QuantizeLinear --------------------------------------------------------------------------

@pytest.mark.parametrize("zdtype", INT_TARGETS)
def test_quantize_per_tensor(zdtype):
    x = randn(3, 5, scale=40)
    check_op("QuantizeLinear", [x, f32(0.37), qrand((), zdtype)])


def test_quantize_defaults_and_ties():
    # no zero point: uint8; halves round to even; out of range saturates
    x = np.array([0.5, 1.5, 2.5, -3.0, 300.0, 254.5, 255.5], f32)
    (y,) = check_op("QuantizeLinear", [x, f32(1.0)])
    np.testing.assert_array_equal(y, [0, 2, 2, 0, 255, 254, 255])
    assert y.dtype == np.uint8
    check_op("QuantizeLinear", [randn(), f32(0.1)])          # rank 0
    check_op("QuantizeLinear", [randn(0, 3), f32(0.1)])      # size 0


@pytest.mark.parametrize("axis", [0, 1, -1, -3])
def test_quantize_per_axis(axis):
    x = randn(2, 3, 5, scale=10)
    n = x.shape[axis]
    scale = (rng.random(n) + 0.1).astype(f32)
    check_op("QuantizeLinear", [x, scale, qrand((n,), np.int8)], {"axis": axis})


@pytest.mark.parametrize("block,axis", [(2, 1), (3, 1), (5, 1), (2, 0), (4, -1)])
def test_quantize_blocked(block, axis):
    x = randn(3, 7, scale=10)
    shape = list(x.shape)
    shape[axis] = -(-shape[axis] // block)
    scale = (rng.random(shape) + 0.1).astype(f32)
    check_op("QuantizeLinear", [x, scale, qrand(shape, np.uint8)],
             {"axis": axis, "block_size": block})
    check_op("QuantizeLinear", [x, scale], {"axis": axis, "block_size": block,
                                            "output_dtype": DType.int4})


@pytest.mark.parametrize("target", [DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2,
                                    DType.float8e5m2fnuz, DType.float4e2m1])
@pytest.mark.parametrize("saturate", [0, 1])
def test_quantize_float_targets(target, saturate):
    x = np.array([0.0, 1.0, -2.5, 1e6, -1e6, 3.14159, 17.0], f32)
    check_op("QuantizeLinear", [x, f32(2.0)], {"output_dtype": target, "saturate": saturate})


def test_quantize_float_input_types_and_precision():
    check_op("QuantizeLinear", [randn(4, 3, dtype=np.float16, scale=9), np.float16(0.3),
                                np.int8(3)])
    xi = rng.integers(-1000, 1000, (5,)).astype(np.int32)
    check_op("QuantizeLinear", [xi, f32(7.0), np.int16(-2)])
    check_op("QuantizeLinear", [randn(6, scale=20), f32(0.7)], {"precision": DType.float16})
    check_op("QuantizeLinear", [randn(2, 3, scale=5).astype(ml_dtypes.bfloat16),
                                np.array(0.25, ml_dtypes.bfloat16), np.uint8(128)])


def test_quantize_inference():
    (t,) = infer("QuantizeLinear", T("b", 4), T(), T(dtype=DType.int8))
    assert t == TensorType(DType.int8, ("b", 4))
    (t,) = infer("QuantizeLinear", T(2, 4), T(4), axis=1, output_dtype=DType.uint16)
    assert t.dtype == DType.uint16
    (t,) = infer("QuantizeLinear", T(6, 7), T(3, 7), axis=0, block_size=2)
    assert t.shape == (6, 7)


@pytest.mark.parametrize("types,attrs", [
    ((T(2, 4), T(3)), {"axis": 1}),                          # per-axis length mismatch
    ((T(2, 4), T(2, 4)), {}),                                # 2-D scale without block_size
    ((T(6, 7), T(2, 7)), {"axis": 0, "block_size": 2}),      # wrong number of blocks
    ((T(2, 4), T(4)), {"axis": 2}),                          # axis out of range
    ((T(2, 4), T(), T(dtype=DType.int8)), {"output_dtype": DType.uint8}),  # dtype conflict
    ((T(2, 4), T()), {"output_dtype": DType.float32}),       # not a quantized type
    ((T(2, dtype=DType.int8), T()), {}),                     # bad input type
])
def test_quantize_bad(types, attrs):
    with pytest.raises(TypeInferenceError):
        infer("QuantizeLinear", *types, **attrs)


def test_quantize_bad_saturate_value():
    with pytest.raises(AttributeValueError):
        infer("QuantizeLinear", T(2), T(), saturate=3)


# --- DequantizeLinear ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", INT_TARGETS)
def test_dequantize_per_tensor(dtype):
    check_op("DequantizeLinear", [qrand((3, 5), dtype), f32(0.25), qrand((), dtype)])
    check_op("DequantizeLinear", [qrand((3, 5), dtype), f32(0.25)])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_dequantize_per_axis_and_blocked(axis):
    x = qrand((4, 5, 3), np.int8)
    n = x.shape[axis]
    check_op("DequantizeLinear", [x, (rng.random(n) + 0.1).astype(f32), qrand((n,), np.int8)],
             {"axis": axis})
    shape = list(x.shape)
    shape[axis] = -(-shape[axis] // 2)
    check_op("DequantizeLinear", [x, (rng.random(shape) + 0.1).astype(f32), qrand(shape, np.int8)],
             {"axis": axis, "block_size": 2})


def test_dequantize_types():
    check_op("DequantizeLinear", [qrand((7,), np.int32), f32(0.5)])
    check_op("DequantizeLinear", [qrand((0, 2), np.uint8), f32(0.5), np.uint8(3)])
    check_op("DequantizeLinear", [qrand((), np.uint8), np.float16(0.5), np.uint8(3)])
    check_op("DequantizeLinear", [qrand((4,), np.int8), f32(0.5)], {"output_dtype": DType.float16})
    x8 = randn(6, scale=3).astype(ml_dtypes.float8_e4m3fn)
    check_op("DequantizeLinear", [x8, f32(2.0), np.zeros((), ml_dtypes.float8_e4m3fn)])
    check_op("DequantizeLinear", [randn(6, scale=3).astype(ml_dtypes.float8_e5m2), f32(0.5)])
    check_op("DequantizeLinear", [randn(5).astype(ml_dtypes.float4_e2m1fn), f32(3.0)])


def test_dequantize_quantize_round_trip():
    x = randn(4, 6, scale=3)
    scale = f32(0.05)
    (q,) = run_kiln("QuantizeLinear", [x, scale, np.int8(0)])
    (y,) = run_kiln("DequantizeLinear", [q, scale, np.int8(0)])
    assert np.all(np.abs(np.clip(x, -6.4, 6.35) - y) <= 0.025 + 1e-6)


def test_dequantize_bad():
    with pytest.raises(TypeInferenceError):
        infer("DequantizeLinear", T(3, dtype=DType.int8), T(), T(dtype=DType.uint8))
    with pytest.raises(TypeInferenceError):
        infer("DequantizeLinear", T(3, dtype=DType.float32), T())
    with pytest.raises(TypeInferenceError):
        infer("DequantizeLinear", T(3, 4, dtype=DType.int8), T(5), axis=1)


# --- DynamicQuantizeLinear -------------------------------------------------------------------

@pytest.mark.parametrize("x", [
    randn(3, 5, scale=4), np.abs(randn(7)) + 1, -np.abs(randn(2, 3)) - 1,
    np.zeros((4,), f32), np.array(2.5, f32), randn(1),
])
def test_dynamic_quantize(x):
    check_op("DynamicQuantizeLinear", [x], num_outputs=3)


def test_dynamic_quantize_types():
    y, s, z = infer("DynamicQuantizeLinear", T("n", 3))
    assert (y.dtype, y.shape, s, z) == (DType.uint8, ("n", 3), T(), T(dtype=DType.uint8))
    with pytest.raises(TypeInferenceError):
        infer("DynamicQuantizeLinear", T(3, dtype=DType.float16))


# --- QLinearMatMul ---------------------------------------------------------------------------

@pytest.mark.parametrize("da,db,dy", [(np.uint8, np.uint8, np.uint8), (np.int8, np.int8, np.int8),
                                      (np.uint8, np.int8, np.int8)])
@pytest.mark.parametrize("sa,sb", [((3, 5), (5, 7)), ((2, 3, 5), (5, 1)), ((1, 1), (1, 1))])
def test_qlinear_matmul(da, db, dy, sa, sb):
    check_op("QLinearMatMul", [qrand(sa, da), f32(0.02), qrand((), da), qrand(sb, db), f32(0.03),
                               qrand((), db), f32(0.5), qrand((), dy)])


def test_qlinear_matmul_float16_scales_and_per_column():
    a, b = qrand((4, 5), np.uint8), qrand((5, 3), np.uint8)
    check_op("QLinearMatMul", [a, np.float16(0.02), np.uint8(3), b, np.float16(0.05), np.uint8(9),
                               np.float16(0.3), np.uint8(100)])
    b_scale = (rng.random(3) * 0.1).astype(f32)
    check_op("QLinearMatMul", [a, f32(0.02), np.uint8(3), b, b_scale, qrand((3,), np.uint8),
                               f32(0.3), np.uint8(100)])


def test_qlinear_matmul_bad():
    u8 = DType.uint8
    with pytest.raises(TypeInferenceError):
        infer("QLinearMatMul", T(3, 4, dtype=u8), T(), T(dtype=u8), T(5, 2, dtype=u8), T(),
              T(dtype=u8), T(), T(dtype=u8))
    with pytest.raises(TypeInferenceError):
        infer("QLinearMatMul", T(3, 4, dtype=u8), T(), T(dtype=DType.int8), T(4, 2, dtype=u8),
              T(), T(dtype=u8), T(), T(dtype=u8))


# --- QLinearConv -----------------------------------------------------------------------------

def _qconv_inputs(xs, ws, bias=False, per_channel=False, dtype=np.uint8):
    m = ws[0]
    w_scale = (rng.random(m) * 0.05 + 0.01).astype(f32) if per_channel else f32(0.03)
    w_zp = qrand((m,), dtype) if per_channel else qrand((), dtype)
    b = rng.integers(-500, 500, (m,)).astype(np.int32) if bias else None
    return [qrand(xs, dtype), f32(0.05), qrand((), dtype), qrand(ws, dtype), w_scale, w_zp,
            f32(0.4), qrand((), dtype), b]


@pytest.mark.parametrize("xs,ws,attrs", [
    ((1, 1, 5, 5), (1, 1, 3, 3), {}),
    ((2, 3, 7, 6), (4, 3, 3, 2), {"pads": [1, 0, 1, 2], "strides": [2, 1]}),
    ((1, 4, 9, 9), (6, 2, 3, 3), {"group": 2, "dilations": [2, 2]}),
    ((1, 2, 6, 5), (2, 2, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 6, 5), (2, 2, 2, 2), {"auto_pad": "SAME_LOWER"}),
    ((1, 2, 6, 5), (3, 2, 3, 3), {"auto_pad": "VALID", "kernel_shape": [3, 3]}),
    ((1, 3, 5, 5), (3, 1, 3, 3), {"group": 3, "pads": [1, 1, 1, 1]}),
])
@pytest.mark.parametrize("bias,per_channel", [(False, False), (True, True)])
def test_qlinear_conv(xs, ws, attrs, bias, per_channel):
    check_op("QLinearConv", _qconv_inputs(xs, ws, bias, per_channel), attrs)


def test_qlinear_conv_1d():
    # onnx.reference handles per-channel scales for 2-D only, so 1-D is checked per tensor
    check_op("QLinearConv", _qconv_inputs((2, 2, 11), (3, 2, 4), True, False), {"strides": [3]})


def test_qlinear_conv_int8():
    check_op("QLinearConv", _qconv_inputs((1, 2, 5, 5), (3, 2, 3, 3), True, False, np.int8),
             {"pads": [1, 1, 1, 1]})


def test_qlinear_conv_inference_and_bad():
    u8 = DType.uint8
    s = T()
    (t,) = infer("QLinearConv", T("n", 3, 10, 10, dtype=u8), s, T(dtype=u8),
                 T(8, 3, 3, 3, dtype=u8), s, T(dtype=u8), s, T(dtype=u8), strides=[2, 2])
    assert t == TensorType(u8, ("n", 8, 4, 4))
    with pytest.raises(TypeInferenceError):   # channel mismatch
        infer("QLinearConv", T(1, 4, 5, 5, dtype=u8), s, T(dtype=u8), T(2, 3, 3, 3, dtype=u8),
              s, T(dtype=u8), s, T(dtype=u8))
    with pytest.raises(TypeInferenceError):   # kernel larger than input
        infer("QLinearConv", T(1, 3, 2, 2, dtype=u8), s, T(dtype=u8), T(2, 3, 3, 3, dtype=u8),
              s, T(dtype=u8), s, T(dtype=u8))
