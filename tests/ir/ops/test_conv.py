import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln
from tests.ir.ops.ort_check import check_op_ort

rng = np.random.default_rng(0)
f32 = np.float32
TOL = dict(rtol=1e-5, atol=1e-5)


def randn(*shape, dtype=f32):
    return rng.standard_normal(shape).astype(dtype)


def infer(op, *types, name="", **attrs):
    """Output types of one node whose inputs have the given types (None = absent)."""
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    outs = b.add(get_op(op), vals, attrs, name=name)
    return [v.type for v in outs]


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


# --- Conv ------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 1, 7), (1, 1, 3), {}),
    ((2, 3, 11), (5, 3, 2), {"strides": [2], "pads": [1, 2]}),
    ((2, 3, 7, 5), (4, 3, 3, 2), {}),
    ((1, 2, 5, 7), (3, 2, 1, 1), {}),
    ((2, 4, 7, 5), (6, 2, 3, 2), {"group": 2, "strides": [2, 1], "dilations": [1, 2],
                                  "pads": [1, 0, 2, 1]}),
    ((1, 3, 5, 4, 3), (2, 3, 2, 2, 2), {"pads": [1, 0, 1, 0, 1, 1]}),
    ((1, 4, 5, 4, 3), (4, 1, 2, 3, 2), {"group": 4, "strides": [2, 1, 2]}),
    ((0, 3, 5, 5), (2, 3, 3, 3), {}),
    ((1, 2, 13, 11), (3, 2, 3, 3), {"dilations": [3, 2], "kernel_shape": [3, 3]}),
])
def test_conv_shapes(x_shape, w_shape, attrs):
    check_op("Conv", [randn(*x_shape), randn(*w_shape)], attrs, **TOL)
    check_op("Conv", [randn(*x_shape), randn(*w_shape), randn(w_shape[0])], attrs, **TOL)


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_auto_pad(auto_pad, nd):
    spatial = (7, 6, 5)[:nd]
    kernel = (3, 2, 3)[:nd]
    attrs = {"auto_pad": auto_pad, "strides": [2, 3, 1][:nd], "dilations": [1, 1, 2][:nd]}
    check_op("Conv", [randn(1, 2, *spatial), randn(3, 2, *kernel), randn(3)], attrs, **TOL)


def test_conv_depthwise_with_multiplier():
    check_op("Conv", [randn(2, 3, 9, 8), randn(6, 1, 3, 3), randn(6)],
             {"group": 3, "pads": [1, 1, 1, 1]}, **TOL)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-10), (np.float16, 1e-2)])
def test_conv_dtypes(dtype, tol):
    (y,) = check_op("Conv", [randn(1, 2, 5, 6, dtype=dtype), randn(3, 2, 2, 3, dtype=dtype)],
                    {"pads": [1, 1, 0, 0]}, rtol=tol, atol=tol)
    assert y.dtype == dtype


def test_conv_matches_direct_sum():
    x, w = randn(1, 2, 6, 5), randn(3, 2, 3, 2)
    (y,) = run_kiln("Conv", [x, w], {"strides": [2, 1]})
    want = np.zeros((1, 3, 2, 4), f32)
    for m in range(3):
        for i in range(2):
            for j in range(4):
                want[0, m, i, j] = np.sum(x[0, :, 2 * i:2 * i + 3, j:j + 2] * w[m])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_conv_infers_symbolic_dims():
    (t,) = infer("Conv", T("N", 3, "H", "W"), T(8, 3, 3, 3), auto_pad="SAME_UPPER")
    assert t == T("N", 8, "H", "W")
    (t,) = infer("Conv", T("N", 3, "H", 9), T(8, 3, 3, 3), strides=[2, 2], pads=[1, 1, 1, 1])
    assert t == T("N", 8, None, 5)
    (t,) = infer("Conv", T("N", 3, "H", 9), T(8, 3, 3, 1), pads=[1, 0, 1, 0])
    assert t == T("N", 8, "H", 9)
    (t,) = infer("Conv", TensorType(DType.float32, None), T(8, 3, 3, 3))
    assert t == T(None, 8, None, None)
    (t,) = infer("Conv", TensorType(DType.float32, None), TensorType(DType.float32, None))
    assert t.shape is None


def test_conv_channel_mismatch_names_node_and_numbers():
    with pytest.raises(TypeInferenceError) as e:
        infer("Conv", T(1, 5, 8, 8), T(4, 3, 3, 3), name="conv1", group=2)
    msg = str(e.value)
    assert "conv1" in msg and "5" in msg and "6" in msg


@pytest.mark.parametrize("types,attrs", [
    ((T(1, 3, 2, 8), T(4, 3, 3, 3)), {}),                               # kernel taller than input
    ((T(1, 3, 4, 8), T(4, 3, 3, 3)), {"dilations": [2, 1]}),            # dilated kernel too tall
    ((T(1, 3, 8), T(4, 3, 3, 3)), {}),                                  # rank mismatch
    ((T(1, 3), T(4, 3)), {}),                                           # no spatial axes
    ((T(1, 4, 8, 8), T(3, 2, 3, 3)), {"group": 2}),                     # M not divisible
    ((T(1, 3, 8, 8), T(4, 3, 3, 3), T(5)), {}),                         # bias length
    ((T(1, 3, 8, 8), T(4, 3, 3, 3, dtype=DType.float64)), {}),          # dtype mismatch
    ((T(1, 3, 8, 8, dtype=DType.int32), T(4, 3, 3, 3, dtype=DType.int32)), {}),
    ((T(1, 3, 8, 8), T(4, 3, 3, 3)), {"kernel_shape": [2, 2]}),
])
def test_conv_bad_input(types, attrs):
    with pytest.raises(TypeInferenceError):
        infer("Conv", *types, **attrs)


@pytest.mark.parametrize("attrs", [{"pads": [1, 1]}, {"strides": [1, 1, 1]}, {"strides": [0, 1]},
                                   {"dilations": [1]}, {"auto_pad": "SAME"}, {"pads": [-1, 0, 0, 0]}])
def test_conv_bad_attributes(attrs):
    with pytest.raises(AttributeValueError):
        infer("Conv", T(1, 3, 8, 8), T(4, 3, 3, 3), **attrs)


# --- ConvTranspose ---------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,w_shape,attrs", [
    ((1, 1, 3), (1, 2, 3), {}),
    ((2, 3, 5), (3, 2, 2), {"strides": [3], "pads": [1, 1], "output_padding": [1]}),
    ((2, 3, 4, 5), (3, 2, 3, 2), {}),
    ((1, 3, 4, 5), (3, 2, 3, 2), {"strides": [2, 3], "pads": [1, 0, 0, 2],
                                  "output_padding": [1, 1], "dilations": [2, 1]}),
    ((1, 2, 3, 2, 3), (2, 1, 2, 3, 2), {"strides": [2, 1, 2], "pads": [0, 1, 0, 1, 1, 0]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    ((1, 1, 3, 3), (1, 2, 3, 3), {"strides": [3, 2], "output_padding": [1, 1],
                                  "output_shape": [10, 8]}),
])
def test_conv_transpose(x_shape, w_shape, attrs):
    check_op("ConvTranspose", [randn(*x_shape), randn(*w_shape)], attrs, **TOL)
    check_op("ConvTranspose", [randn(*x_shape), randn(*w_shape), randn(w_shape[1])], attrs,
             **TOL)


def test_conv_transpose_empty_batch():
    (y,) = run_kiln("ConvTranspose", [randn(0, 3, 4, 5), randn(3, 2, 3, 2)], {"strides": [2, 2]})
    assert y.shape == (0, 2, 9, 10) and y.dtype == f32


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_transpose_auto_pad(auto_pad):
    attrs = {"strides": [2, 3], "auto_pad": auto_pad}
    check_op("ConvTranspose", [randn(1, 3, 4, 5), randn(3, 2, 3, 3), randn(2)], attrs, **TOL)


def test_conv_transpose_output_shape_crops_as_onnxruntime_does():
    x, w = randn(1, 2, 4), randn(2, 3, 3)
    for size in (3, 4, 5):
        check_op_ort("ConvTranspose", [x, w], {"output_shape": [size]})
        check_op_ort("ConvTranspose", [x, w], {"output_shape": [size], "auto_pad": "SAME_UPPER"})


@pytest.mark.parametrize("group,c,mg", [(2, 4, 3), (3, 3, 1), (2, 2, 2)])
def test_conv_transpose_groups(group, c, mg):
    # onnx.reference slices grouped weights wrongly, so onnxruntime is the oracle here
    check_op_ort("ConvTranspose", [randn(2, c, 3, 4), randn(c, mg, 2, 3), randn(mg * group)],
                 {"group": group, "strides": [2, 1], "pads": [0, 1, 1, 0]})


def test_conv_transpose_is_the_adjoint_of_conv():
    # <conv(x, w), y> == <x, conv_transpose(y, w)> for matching geometry
    x, w, y = randn(1, 2, 7, 6), randn(3, 2, 3, 2), randn(1, 3, 4, 3)
    attrs = {"strides": [2, 2], "pads": [1, 0, 1, 1]}
    (cx,) = run_kiln("Conv", [x, w], attrs)
    (ty,) = run_kiln("ConvTranspose", [y, w], {**attrs, "output_padding": [0, 1]})
    assert ty.shape == x.shape
    np.testing.assert_allclose(np.sum(cx * y), np.sum(x * ty), rtol=1e-4)


def test_conv_transpose_infers_shapes():
    (t,) = infer("ConvTranspose", T("N", 4, 4, 5), T(4, 2, 3, 3), group=2, strides=[2, 2])
    assert t == T("N", 4, 9, 11)
    (t,) = infer("ConvTranspose", T("N", 3, "H", "W"), T(3, 2, 3, 3), auto_pad="SAME_UPPER")
    assert t == T("N", 2, "H", "W")
    (t,) = infer("ConvTranspose", T("N", 3, "H", "W"), T(3, 2, 3, 3), strides=[2, 1],
                 pads=[1, 1, 1, 1])
    assert t == T("N", 2, None, "W")
    (t,) = infer("ConvTranspose", T("N", 3, "H", "W"), T(3, 2, 3, 3), output_shape=[10, 8])
    assert t == T("N", 2, 10, 8)
    (t,) = infer("ConvTranspose", TensorType(DType.float32, None), T(3, 2, 3, 3), group=3)
    assert t == T(None, 6, None, None)


@pytest.mark.parametrize("types,attrs", [
    ((T(1, 4, 5, 5), T(3, 2, 3, 3)), {}),                  # C != W's dim 0
    ((T(1, 3, 5, 5), T(3, 2, 3, 3)), {"group": 2}),        # C not divisible by group
    ((T(1, 3, 1, 1), T(3, 2, 3, 3)), {"pads": [2, 2, 2, 2]}),
    ((T(1, 3, 5, 5), T(3, 2, 3, 3), T(3)), {}),            # bias length
])
def test_conv_transpose_bad_input(types, attrs):
    with pytest.raises(TypeInferenceError):
        infer("ConvTranspose", *types, **attrs)


# --- ConvInteger -----------------------------------------------------------------------------

def _ints(dtype, *shape):
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("xt,wt", [(np.uint8, np.uint8), (np.uint8, np.int8),
                                   (np.int8, np.uint8), (np.int8, np.int8)])
def test_conv_integer_dtypes(xt, wt):
    x, w = _ints(xt, 1, 2, 5, 6), _ints(wt, 3, 2, 2, 3)
    check_op("ConvInteger", [x, w])
    (y,) = check_op("ConvInteger", [x, w, _ints(xt), _ints(wt)], {"pads": [1, 1, 0, 1],
                                                                   "strides": [2, 1]})
    assert y.dtype == np.int32


def test_conv_integer_per_channel_zero_point_and_groups():
    x, w = _ints(np.uint8, 2, 4, 7, 5), _ints(np.uint8, 6, 2, 3, 3)
    check_op("ConvInteger", [x, w, np.uint8(100), _ints(np.uint8, 6)],
             {"group": 2, "auto_pad": "SAME_UPPER", "dilations": [2, 1]})


def test_conv_integer_1d_and_3d():
    check_op("ConvInteger", [_ints(np.uint8, 1, 3, 11), _ints(np.uint8, 2, 3, 3), np.uint8(3)],
             {"strides": [2]})
    check_op("ConvInteger", [_ints(np.int8, 1, 2, 3, 4, 5), _ints(np.int8, 2, 2, 2, 2, 2)],
             {"pads": [1, 0, 1, 0, 1, 0]})


def test_conv_integer_bad_input():
    with pytest.raises(TypeInferenceError):
        infer("ConvInteger", T(1, 2, 5, 5), T(3, 2, 3, 3))           # float input
    with pytest.raises(TypeInferenceError):
        infer("ConvInteger", T(1, 2, 5, 5, dtype=DType.uint8), T(3, 2, 3, 3, dtype=DType.uint8),
              T(dtype=DType.int8))                                   # zero point dtype
    with pytest.raises(TypeInferenceError):
        infer("ConvInteger", T(1, 3, 5, 5, dtype=DType.uint8), T(3, 2, 3, 3, dtype=DType.uint8))


# --- DeformConv ------------------------------------------------------------------------------

def test_deform_conv_with_mask_bias_and_groups():
    x, w = randn(1, 4, 5, 6), randn(6, 2, 3, 3)
    offset = randn(1, 2 * 9 * 2, 3, 4) * 0.7
    mask = rng.random((1, 2 * 9, 3, 4)).astype(f32)
    check_op("DeformConv", [x, w, offset, randn(6), mask], {"group": 2, "offset_group": 2},
             **TOL)


def test_deform_conv_strided_dilated_padded():
    x, w = randn(2, 4, 5, 6), randn(6, 2, 3, 3)
    offset = randn(2, 9 * 2, 3, 1) * 1.3
    check_op("DeformConv", [x, w, offset],
             {"group": 2, "pads": [1, 0, 1, 1], "strides": [2, 3], "dilations": [1, 2]}, **TOL)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_deform_conv_zero_offsets_equal_conv(nd):
    spatial, kernel = (6, 5, 4)[:nd], (3, 2, 2)[:nd]
    x, w = randn(1, 2, *spatial), randn(3, 2, *kernel)
    attrs = {"pads": [1] * (2 * nd)}
    (want,) = run_kiln("Conv", [x, w], attrs)
    offset = np.zeros((1, int(np.prod(kernel)) * nd, *want.shape[2:]), f32)
    (got,) = run_kiln("DeformConv", [x, w, offset], attrs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_deform_conv_integer_offset_shifts_the_window():
    x, w = randn(1, 1, 9), randn(1, 1, 3)
    offset = np.full((1, 3, 7), 2.0, f32)                    # every tap reads two to the right
    (got,) = run_kiln("DeformConv", [x, w, offset])
    (want,) = run_kiln("Conv", [x, w])
    np.testing.assert_allclose(got[:, :, :5], want[:, :, 2:], rtol=1e-5, atol=1e-5)
    # past the end the taps read zeros
    np.testing.assert_allclose(got[0, 0, 6], x[0, 0, 8] * w[0, 0, 0], rtol=1e-5)


def test_deform_conv_bad_input():
    with pytest.raises(TypeInferenceError):   # offset channels != offset_group * taps * axes
        infer("DeformConv", T(1, 4, 5, 5), T(2, 4, 3, 3), T(1, 17, 3, 3))
    with pytest.raises(TypeInferenceError):   # offset spatial != output spatial
        infer("DeformConv", T(1, 4, 5, 5), T(2, 4, 3, 3), T(1, 18, 4, 3))
    with pytest.raises(TypeInferenceError):   # channels not divisible by offset_group
        infer("DeformConv", T(1, 4, 5, 5), T(2, 4, 3, 3), T(1, 54, 3, 3), offset_group=3)
    (t,) = infer("DeformConv", T("N", 4, 5, 5), T(2, 4, 3, 3), T("N", 18, 3, 3))
    assert t == T("N", 2, 3, 3)
