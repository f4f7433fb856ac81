import itertools

import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import OP_TABLE, get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln
from tests.ir.ops.ort_check import check_op_ort

rng = np.random.default_rng(11)
TOL = {"rtol": 1e-5, "atol": 1e-5}


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def uniform(lo, hi, *shape, dtype=np.float32):
    return rng.uniform(lo, hi, shape).astype(dtype)


def infer(op, types, attrs=None, consts=None):
    b = GraphBuilder("t")
    vals = [b.constant(consts[i], f"c{i}") if consts and i in consts else b.input(f"x{i}", t)
            for i, t in enumerate(types)]
    return b.add(get_op(op), vals, dict(attrs or {}))[0].type


def f32t(*shape):
    return TensorType(DType.float32, shape)


# --- GridSample --------------------------------------------------------------------------------

MODES = list(itertools.product(["nearest", "linear", "cubic"], ["zeros", "border", "reflection"], [0, 1]))


def cubic_pads_taps(mode, padding):
    # cubic with border/reflection pads each tap (PyTorch, ONNX Runtime); onnx.reference clamps
    # the coordinate first, so those cases are checked against ONNX Runtime instead
    return mode == "cubic" and padding != "zeros"


@pytest.mark.parametrize("mode,padding,align", MODES)
def test_grid_sample_2d(mode, padding, align):
    x = randn(2, 3, 5, 7)
    grid = uniform(-1.6, 1.6, 2, 4, 3, 2)         # some points outside [-1, 1]
    check = check_op_ort if cubic_pads_taps(mode, padding) else check_op
    check("GridSample", [x, grid], {"mode": mode, "padding_mode": padding, "align_corners": align},
          **TOL)


@pytest.mark.parametrize("mode,padding,align", MODES)
def test_grid_sample_3d(mode, padding, align):
    if cubic_pads_taps(mode, padding):
        pytest.skip("no reference: ONNX Runtime has no 3-D cubic (see the slice test below)")
    x = randn(1, 2, 3, 4, 5)
    grid = uniform(-1.4, 1.4, 1, 2, 3, 2, 3)
    check_op("GridSample", [x, grid], {"mode": mode, "padding_mode": padding, "align_corners": align},
             **TOL)


@pytest.mark.parametrize("padding", ["border", "reflection"])
def test_grid_sample_3d_cubic_on_a_depth_slice_is_2d_cubic(padding):
    # z = -1 with align_corners hits depth 0 exactly: the cubic weights there are (0, 1, 0, 0)
    x = randn(2, 3, 4, 5, 6)
    xy = uniform(-1.8, 1.8, 2, 1, 3, 7, 2)
    grid = np.concatenate([xy, -np.ones((2, 1, 3, 7, 1), np.float32)], axis=-1)
    attrs = {"mode": "cubic", "padding_mode": padding, "align_corners": 1}
    got = run_kiln("GridSample", [x, grid], attrs)[0]
    want = check_op_ort("GridSample", [x[:, :, 0], xy[:, 0]], attrs, **TOL)[0]
    np.testing.assert_allclose(got[:, :, 0], want, rtol=1e-5, atol=1e-5)


def test_grid_sample_defaults_odd_sizes_and_dtypes():
    check_op("GridSample", [randn(1, 1, 1, 1), uniform(-1, 1, 1, 3, 5, 2)], **TOL)
    check_op("GridSample", [randn(3, 1, 2, 11), uniform(-1.2, 1.2, 3, 1, 7, 2)], **TOL)
    check_op("GridSample", [randn(2, 2, 4, 5, dtype=np.float64),
                            uniform(-1, 1, 2, 3, 3, 2, dtype=np.float64)], **TOL)
    ints = rng.integers(-50, 50, (1, 2, 4, 4)).astype(np.int32)
    got = check_op("GridSample", [ints, uniform(-1.3, 1.3, 1, 3, 3, 2)], {"mode": "nearest"})
    assert got[0].dtype == np.int32
    empty = run_kiln("GridSample", [randn(2, 3, 4, 4), np.zeros((2, 0, 5, 2), np.float32)])
    assert empty[0].shape == (2, 3, 0, 5)


def test_grid_sample_corners_hit_pixels_exactly():
    # with align_corners, -1 and 1 are the centres of the corner pixels
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    grid = np.array([[[[-1, -1], [1, -1], [-1, 1], [1, 1]]]], np.float32)
    got = run_kiln("GridSample", [x, grid], {"align_corners": 1})[0]
    assert got.reshape(-1).tolist() == [0, 3, 8, 11]


def test_grid_sample_inference_and_errors():
    assert infer("GridSample", [f32t("N", 3, 10, 10), f32t("N", 5, 6, 2)]).shape == ("N", 3, 5, 6)
    assert infer("GridSample", [f32t(2, 3, 4, 4, 4), f32t(None, 1, 2, 3, 3)]).shape == (2, 3, 1, 2, 3)
    assert infer("GridSample", [TensorType(DType.float32, None), f32t(2, 5, 6, 2)]).shape == \
        (None, None, None, None)
    with pytest.raises(TypeInferenceError):          # 2-D input, 3 coordinates per point
        infer("GridSample", [f32t(1, 3, 4, 4), f32t(1, 5, 6, 3)])
    with pytest.raises(TypeInferenceError):          # grid rank does not match X
        infer("GridSample", [f32t(1, 3, 4, 4), f32t(1, 5, 6, 2, 2)])
    with pytest.raises(TypeInferenceError):
        infer("GridSample", [f32t(2, 3, 4, 4), f32t(3, 5, 6, 2)])
    with pytest.raises(TypeInferenceError):          # grid must be float
        infer("GridSample", [f32t(1, 3, 4, 4), TensorType(DType.int64, (1, 5, 6, 2))])
    with pytest.raises(AttributeValueError):
        run_kiln("GridSample", [randn(1, 1, 2, 2), randn(1, 1, 1, 2)], {"mode": "bilinear"})


# --- AffineGrid --------------------------------------------------------------------------------

@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("size", [(2, 3, 5, 7), (1, 1, 1, 4), (3, 2, 2, 5, 7), (1, 1, 3, 1, 2)])
def test_affine_grid(align, size):
    r = len(size) - 2
    theta = randn(size[0], r, r + 1)
    got = check_op("AffineGrid", [theta, np.array(size, np.int64)], {"align_corners": align},
                   const_inputs=[1], **TOL)
    assert got[0].shape == (size[0], *size[2:], r)


def test_affine_grid_identity_feeds_grid_sample_back_to_the_input():
    x = randn(2, 3, 5, 6)
    identity = np.tile(np.array([[1, 0, 0], [0, 1, 0]], np.float32), (2, 1, 1))
    for align in (0, 1):
        grid = run_kiln("AffineGrid", [identity, np.array(x.shape, np.int64)], {"align_corners": align})[0]
        y = run_kiln("GridSample", [x, grid], {"align_corners": align})[0]
        np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-5)


def test_affine_grid_float64_and_runtime_size():
    theta = randn(2, 2, 3, dtype=np.float64)
    got = run_kiln("AffineGrid", [theta, np.array([2, 1, 3, 4], np.int64)])[0]
    assert got.dtype == np.float64 and got.shape == (2, 3, 4, 2)
    # x runs along the width, y along the height: the identity grid's first entry is x
    ident = np.array([[[1, 0, 0], [0, 1, 0]]], np.float64)
    g = run_kiln("AffineGrid", [ident, np.array([1, 1, 2, 4], np.int64)], {"align_corners": 1})[0]
    np.testing.assert_allclose(g[0, 0, :, 0], np.linspace(-1, 1, 4))
    np.testing.assert_allclose(g[0, :, 0, 1], [-1, 1])
    assert infer("AffineGrid", [f32t("N", 2, 3), TensorType(DType.int64, (4,))]).shape == \
        ("N", None, None, 2)


def test_affine_grid_errors():
    with pytest.raises(TypeInferenceError):
        infer("AffineGrid", [f32t(2, 2, 3), None], consts={1: np.array([2, 1, 3, 4, 5], np.int64)})
    with pytest.raises(TypeInferenceError):
        infer("AffineGrid", [f32t(2, 2, 3), None], consts={1: np.array([2, 1, 3], np.int64)})
    with pytest.raises(TypeInferenceError):
        infer("AffineGrid", [f32t(2, 2, 3), TensorType(DType.int32, (4,))])
    with pytest.raises(TypeInferenceError):
        infer("AffineGrid", [TensorType(DType.int64, (2, 2, 3)), TensorType(DType.int64, (4,))])


# --- RoiAlign ----------------------------------------------------------------------------------

ROIS = np.array([[0, 0, 9, 9], [0, 5, 4, 9], [5, 5, 9, 9], [-2, -3, 13, 12], [1.3, 2.7, 6.1, 3.2],
                 [3, 3, 3, 3]], np.float32)


@pytest.mark.parametrize("mode", ["avg", "max"])
@pytest.mark.parametrize("coord", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("ratio", [0, 2, 3])
def test_roi_align(mode, coord, ratio):
    x = randn(2, 3, 10, 11)
    batch = np.array([0, 0, 1, 1, 0, 1], np.int64)
    check_op("RoiAlign", [x, ROIS, batch],
             {"mode": mode, "coordinate_transformation_mode": coord, "sampling_ratio": ratio,
              "output_height": 3, "output_width": 4, "spatial_scale": 0.9}, **TOL)


def test_roi_align_defaults_float64_and_no_rois():
    x = randn(1, 2, 7, 5, dtype=np.float64)
    check_op("RoiAlign", [x, ROIS[:3].astype(np.float64) * 0.5, np.zeros(3, np.int64)], **TOL)
    got = check_op("RoiAlign", [randn(1, 2, 5, 5), np.zeros((0, 4), np.float32),
                                np.zeros(0, np.int64)], {"output_height": 2, "output_width": 3})
    assert got[0].shape == (0, 2, 2, 3)


def test_roi_align_inference_and_errors():
    t = infer("RoiAlign", [f32t("N", 16, 32, 32), f32t("R", 4), TensorType(DType.int64, ("R",))],
              {"output_height": 7, "output_width": 5})
    assert t.shape == ("R", 16, 7, 5)
    with pytest.raises(TypeInferenceError):
        infer("RoiAlign", [f32t(1, 3, 8, 8), f32t(2, 5), TensorType(DType.int64, (2,))])
    with pytest.raises(TypeInferenceError):
        infer("RoiAlign", [f32t(1, 3, 8, 8), f32t(2, 4), TensorType(DType.int64, (3,))])
    with pytest.raises(TypeInferenceError):
        infer("RoiAlign", [f32t(1, 3, 8), f32t(2, 4), TensorType(DType.int64, (2,))])
    with pytest.raises(TypeInferenceError):
        infer("RoiAlign", [f32t(1, 3, 8, 8), f32t(2, 4), TensorType(DType.int32, (2,))])
    with pytest.raises(TypeInferenceError):
        infer("RoiAlign", [f32t(1, 3, 8, 8), f32t(2, 4), TensorType(DType.int64, (2,))],
              {"output_height": 0})
    with pytest.raises(ExecutionError):
        run_kiln("RoiAlign", [randn(1, 1, 4, 4), ROIS[:1], np.array([3], np.int64)])


# --- NonMaxSuppression -------------------------------------------------------------------------

def random_boxes(batches, n, center):
    if center:
        return np.concatenate([uniform(0, 10, batches, n, 2), uniform(0, 4, batches, n, 2)], -1)
    return uniform(0, 10, batches, n, 4)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("limit,iou,score", [(0, 0.5, None), (1, 0.5, None), (3, 0.2, 0.3),
                                             (17, 0.0, None), (100, 1.0, 0.5), (5, 0.4, 0.99)])
def test_nms(center, limit, iou, score):
    boxes, scores = random_boxes(2, 17, center), uniform(0, 1, 2, 3, 17)
    scores[0, 0, 3] = scores[0, 0, 5]                     # a tie: the lower index wins
    inputs = [boxes, scores, np.array([limit], np.int64), np.array([iou], np.float32)]
    if score is not None:
        inputs.append(np.array([score], np.float32))
    check_op("NonMaxSuppression", inputs, {"center_point_box": center})


def test_nms_known_answer_and_optional_inputs():
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, -0.1, 1, 0.9], [0, 10, 1, 11],
                       [0, 10.1, 1, 11.1], [0, 100, 1, 101]]], np.float32)
    scores = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3]]], np.float32)
    got = run_kiln("NonMaxSuppression", [boxes, scores, np.array([3], np.int64),
                                         np.array([0.5], np.float32), np.array([0.0], np.float32)])
    assert got[0].tolist() == [[0, 0, 3], [0, 0, 0], [0, 0, 5]]
    # without max_output_boxes_per_class nothing is selected
    assert run_kiln("NonMaxSuppression", [boxes, scores])[0].shape == (0, 3)
    # without an IoU threshold (0), any overlap suppresses
    got = run_kiln("NonMaxSuppression", [boxes, scores, np.array([10], np.int64)])[0]
    assert got[:, 2].tolist() == [3, 0, 5]


def test_nms_iou_equal_to_threshold_keeps_the_box():
    boxes = np.array([[[0, 0, 1, 1], [0.5, 0.5, 1.5, 1.5]]], np.float32)
    scores = np.array([[[0.9, 0.8]]], np.float32)
    thr = np.array([np.float32(0.25 / 1.75)], np.float32)
    got = check_op("NonMaxSuppression", [boxes, scores, np.array([3], np.int64), thr])
    assert got[0].tolist() == [[0, 0, 0], [0, 0, 1]]


def test_nms_inference_and_errors():
    t = infer("NonMaxSuppression", [f32t("B", "N", 4), f32t("B", 80, "N")])
    assert t == TensorType(DType.int64, (None, 3))
    with pytest.raises(TypeInferenceError):
        infer("NonMaxSuppression", [f32t(1, 6, 5), f32t(1, 2, 6)])
    with pytest.raises(TypeInferenceError):
        infer("NonMaxSuppression", [f32t(1, 6, 4), f32t(1, 2, 7)])
    with pytest.raises(TypeInferenceError):
        infer("NonMaxSuppression", [f32t(1, 6, 4), f32t(1, 2, 6), TensorType(DType.float32, (1,))])
    with pytest.raises(AttributeValueError):
        run_kiln("NonMaxSuppression", [randn(1, 2, 4), randn(1, 1, 2)], {"center_point_box": 2})


def test_image_decoder_is_not_defined():
    # decoding JPEG/PNG needs an image codec, which kiln does not depend on
    assert "ImageDecoder" not in OP_TABLE
