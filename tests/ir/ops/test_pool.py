import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
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


def infer(op, *types, name="", outputs=1, **attrs):
    b = GraphBuilder("t")
    vals = [None if t is None else b.input(f"x{i}", t) for i, t in enumerate(types)]
    outs = b.add(get_op(op), vals, attrs, outputs=outputs, name=name)
    return [v.type for v in outs]


def T(*shape, dtype=DType.float32):
    return TensorType(dtype, shape)


SHAPES = [((1, 2, 7), (3,)), ((2, 3, 7, 5), (3, 2)), ((1, 2, 5, 7, 6), (2, 3, 2))]


def window_cases(nd):
    """Strides, pads, ceil_mode, dilations and every auto_pad mode, for nd spatial axes."""
    return [
        {}, {"strides": [2] * nd}, {"pads": [1] * nd + [0] * nd},
        {"pads": [0] * nd + [1] * nd, "strides": [2] * nd},
        {"ceil_mode": 1, "strides": [2] * nd},
        {"ceil_mode": 1, "strides": [3] * nd, "pads": [1] * (2 * nd)},
        {"dilations": [2] * nd},
        {"dilations": [2] * nd, "strides": [2] * nd, "pads": [1] * (2 * nd), "ceil_mode": 1},
        {"auto_pad": "SAME_UPPER", "strides": [2] * nd},
        {"auto_pad": "SAME_LOWER", "strides": [2] * nd},
        {"auto_pad": "SAME_UPPER"}, {"auto_pad": "SAME_LOWER"},
        {"auto_pad": "VALID", "strides": [2] * nd},
    ]


CASES = [(shape, {"kernel_shape": list(k), **a}) for shape, k in SHAPES
         for a in window_cases(len(k))]
IDS = [f"{len(s) - 2}d-{'-'.join(f'{k}{v}' for k, v in a.items() if k != 'kernel_shape') or 'default'}"
       for s, a in CASES]


# --- MaxPool ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,attrs", CASES, ids=IDS)
def test_max_pool_with_indices(shape, attrs):
    # onnx.reference gets Indices (and SAME_LOWER with strides) wrong: onnxruntime is the oracle
    x = randn(*shape)
    check_op_ort("MaxPool", [x], attrs, num_outputs=2)
    check_op_ort("MaxPool", [x], {**attrs, "storage_order": 1}, num_outputs=2)


@pytest.mark.parametrize("attrs", [{"strides": [2, 2]}, {"strides": [2, 1], "pads": [1, 0, 1, 1]},
                                   {"dilations": [2, 1], "ceil_mode": 1, "strides": [2, 2]},
                                   {"auto_pad": "SAME_UPPER", "strides": [2, 3]}])
def test_max_pool_matches_onnx_reference(attrs):
    check_op("MaxPool", [randn(2, 3, 9, 8)], {"kernel_shape": [3, 2], **attrs})


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.float64, np.float16])
def test_max_pool_dtypes(dtype):
    x = rng.integers(-100, 100, (1, 2, 6, 7)).astype(dtype) if np.dtype(dtype).kind == "i" else \
        rng.integers(0, 255, (1, 2, 6, 7)).astype(dtype)
    y, i = check_op_ort("MaxPool", [x], {"kernel_shape": [2, 3], "pads": [1, 1, 1, 1],
                                         "strides": [2, 2]}, num_outputs=2)
    assert y.dtype == dtype and i.dtype == np.int64


def test_max_pool_indices_point_at_the_maxima():
    x = randn(2, 3, 6, 5)
    y, idx = run_kiln("MaxPool", [x], {"kernel_shape": [3, 2], "pads": [1, 0, 1, 1]},
                      num_outputs=2)
    np.testing.assert_array_equal(x.reshape(-1)[idx], y)


def test_max_pool_ties_pick_the_first_tap():
    x = np.ones((1, 1, 3, 3), f32)
    _, idx = run_kiln("MaxPool", [x], {"kernel_shape": [2, 2]}, num_outputs=2)
    np.testing.assert_array_equal(idx, [[[[0, 1], [3, 4]]]])


# --- AveragePool and LpPool ------------------------------------------------------------------

@pytest.mark.parametrize("shape,attrs", CASES, ids=IDS)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool(shape, attrs, count_include_pad):
    check_op("AveragePool", [randn(*shape)], {**attrs, "count_include_pad": count_include_pad},
             **TOL)


def test_average_pool_count_include_pad_onnxruntime():
    x = randn(1, 2, 7, 6)
    for attrs in ({"pads": [1, 2, 2, 1]}, {"pads": [1, 1, 1, 1], "strides": [2, 2], "ceil_mode": 1},
                  {"auto_pad": "SAME_LOWER", "strides": [2, 2]}):
        check_op_ort("AveragePool", [x], {"kernel_shape": [3, 3], "count_include_pad": 1, **attrs})


def test_average_pool_float16():
    (y,) = check_op("AveragePool", [randn(1, 2, 5, 5, dtype=np.float16)],
                    {"kernel_shape": [2, 2]}, rtol=1e-3, atol=1e-3)
    assert y.dtype == np.float16


@pytest.mark.parametrize("shape,attrs", CASES, ids=IDS)
@pytest.mark.parametrize("p", [1, 2, 3])
def test_lp_pool(shape, attrs, p):
    # onnx.reference drops taps past the padding when ceil_mode adds windows; onnxruntime does not
    check_op_ort("LpPool", [randn(*shape)], {**attrs, "p": p}, **TOL)


def test_lp_pool_matches_onnx_reference():
    check_op("LpPool", [randn(2, 3, 7, 6)], {"kernel_shape": [3, 2], "pads": [1, 0, 0, 1],
                                            "strides": [2, 1]}, **TOL)


def test_pool_infers_symbolic_dims():
    y, i = infer("MaxPool", T("N", 3, "H", "W"), outputs=2, kernel_shape=[3, 3],
                 auto_pad="SAME_UPPER")
    assert y == T("N", 3, "H", "W") and i == T("N", 3, "H", "W", dtype=DType.int64)
    (y,) = infer("AveragePool", T("N", 3, "H", 9), kernel_shape=[2, 2], strides=[2, 2],
                 ceil_mode=1)
    assert y == T("N", 3, None, 5)
    (y,) = infer("LpPool", T("N", 3, "H", 9), kernel_shape=[3, 1], pads=[1, 0, 1, 0])
    assert y == T("N", 3, "H", 9)
    (y,) = infer("MaxPool", TensorType(DType.float32, None), kernel_shape=[3, 3])
    assert y == T(None, None, None, None)


def test_ceil_mode_drops_a_window_starting_in_the_padding():
    (y,) = infer("MaxPool", T(1, 1, 2, 2), kernel_shape=[1, 1], strides=[2, 2], ceil_mode=1)
    assert y.shape == (1, 1, 1, 1)
    (y,) = infer("MaxPool", T(1, 1, 4, 4), kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    assert y.shape == (1, 1, 2, 2)


@pytest.mark.parametrize("op,types,attrs,error", [
    ("MaxPool", (T(1, 2, 2, 8),), {"kernel_shape": [3, 3]}, TypeInferenceError),  # too tall
    ("MaxPool", (T(1, 2, 5, 8),), {"kernel_shape": [3, 3], "dilations": [3, 1]},
     TypeInferenceError),
    ("AveragePool", (T(1, 2, 8),), {"kernel_shape": [3, 3]}, AttributeValueError),  # kernel rank
    ("AveragePool", (T(1, 2, 5, 5, dtype=DType.int32),), {"kernel_shape": [2, 2]},
     TypeInferenceError),
    ("MaxPool", (T(1, 2, 5, 5, dtype=DType.int32),), {"kernel_shape": [2, 2]},
     TypeInferenceError),
    ("LpPool", (T(5, 5),), {"kernel_shape": [2]}, TypeInferenceError),           # no spatial axes
])
def test_pool_bad_input(op, types, attrs, error):
    with pytest.raises(error):
        infer(op, *types, **attrs)


@pytest.mark.parametrize("attrs", [{}, {"kernel_shape": [2, 2], "storage_order": 2},
                                   {"kernel_shape": [2, 2], "strides": [1]},
                                   {"kernel_shape": [2, 0]}, {"kernel_shape": [2, 2], "ceil_mode": 2}])
def test_pool_bad_attributes(attrs):
    with pytest.raises(AttributeValueError):
        infer("MaxPool", T(1, 2, 5, 5), **attrs)


def test_lp_pool_needs_positive_p():
    with pytest.raises(AttributeValueError):
        infer("LpPool", T(1, 2, 5, 5), kernel_shape=[2, 2], p=0)
    with pytest.raises(AttributeValueError):
        infer("GlobalLpPool", T(1, 2, 5, 5), p=-1)


# --- global pools ----------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 2, 5, 3), (2, 1, 3, 2, 5), (1, 1, 1, 1)])
@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op, shape):
    # onnx.reference's GlobalMaxPool reduces the wrong axes unless there are two spatial axes
    check_op_ort(op, [randn(*shape)], **TOL)
    if len(shape) == 4:
        check_op(op, [randn(*shape)], **TOL)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_global_lp_pool(p):
    x = randn(2, 3, 5, 4)
    (y,) = run_kiln("GlobalLpPool", [x], {"p": p})
    want = (np.abs(x.astype(np.float64)) ** p).sum(axis=(2, 3), keepdims=True) ** (1 / p)
    np.testing.assert_allclose(y, want, rtol=1e-5)
    check_op_ort("GlobalLpPool", [x], {"p": p}, opset=21)


def test_global_pools_keep_dtype_and_symbolic_dims():
    (y,) = check_op("GlobalAveragePool", [randn(1, 3, 4, 4, dtype=np.float16)], rtol=1e-3,
                    atol=1e-3)
    assert y.dtype == np.float16
    (t,) = infer("GlobalMaxPool", T("N", "C", "H", "W"))
    assert t == T("N", "C", 1, 1)
    with pytest.raises(TypeInferenceError):
        infer("GlobalAveragePool", T(5, dtype=DType.float32))
    with pytest.raises(TypeInferenceError):
        infer("GlobalMaxPool", T(1, 2, 3, dtype=DType.int64))


# --- MaxUnpool -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,attrs", [
    ((1, 2, 8), {"kernel_shape": [2], "strides": [2]}),
    ((2, 3, 6, 4), {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ((1, 2, 7, 5), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 1, 4, 4, 4), {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2]}),
])
def test_max_unpool_inverts_max_pool(shape, attrs):
    x = randn(*shape)
    y, idx = run_kiln("MaxPool", [x], attrs, num_outputs=2)
    (up,) = check_op("MaxUnpool", [y, idx], attrs)
    flat = up.reshape(-1)
    np.testing.assert_array_equal(flat[idx.reshape(-1)], y.reshape(-1))
    assert np.count_nonzero(flat) <= y.size


def test_max_unpool_with_output_shape_addresses_that_shape():
    # as the ONNX spec and onnxruntime define it (onnx.reference pads an unpooled 4x4 instead)
    x = np.array([[[[5, 6], [7, 8]]]], f32)
    idx = np.array([[[[5, 7], [13, 15]]]], np.int64)
    shape = np.array([1, 1, 5, 5], np.int64)
    (y,) = check_op_ort("MaxUnpool", [x, idx, shape], {"kernel_shape": [2, 2], "strides": [2, 2]},
                        const_inputs=[2])
    assert y.shape == (1, 1, 5, 5) and y[0, 0, 1, 0] == 5 and y[0, 0, 3, 0] == 8


def test_max_unpool_restores_an_odd_sized_input():
    x = randn(1, 2, 5, 5)
    y, idx = run_kiln("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, num_outputs=2)
    (up,) = run_kiln("MaxUnpool", [y, idx, np.array([1, 2, 5, 5], np.int64)],
                     {"kernel_shape": [2, 2], "strides": [2, 2]})
    assert up.shape == x.shape
    np.testing.assert_array_equal(up.reshape(-1)[idx.reshape(-1)], y.reshape(-1))
    (pooled,) = run_kiln("MaxPool", [up], {"kernel_shape": [2, 2], "strides": [2, 2]})
    np.testing.assert_array_equal(pooled, np.maximum(y, 0))


def test_max_unpool_index_out_of_range():
    with pytest.raises(ExecutionError):
        run_kiln("MaxUnpool", [randn(1, 1, 2, 2), np.array([[[[0, 1], [2, 16]]]], np.int64)],
                 {"kernel_shape": [2, 2], "strides": [2, 2]})


def test_max_unpool_inference():
    (t,) = infer("MaxUnpool", T("N", 3, 4, "W"), T("N", 3, 4, "W", dtype=DType.int64),
                 kernel_shape=[2, 2], strides=[2, 2])
    assert t == T("N", 3, 8, None)
    b = GraphBuilder("t")
    xs = b.input("x", T(1, 3, 2, 2))
    ix = b.input("i", T(1, 3, 2, 2, dtype=DType.int64))
    shape = b.input("s", T(4, dtype=DType.int64))
    (out,) = b.add(get_op("MaxUnpool"), [xs, ix, shape], {"kernel_shape": [2, 2]})
    assert out.type == T(1, 3, None, None)
    with pytest.raises(TypeInferenceError):
        infer("MaxUnpool", T(1, 3, 4, 4), T(1, 3, 4, 4), kernel_shape=[2, 2])    # float indices
    with pytest.raises(TypeInferenceError):
        infer("MaxUnpool", T(1, 3, 4, 4), T(1, 3, 4, 5, dtype=DType.int64), kernel_shape=[2, 2])
