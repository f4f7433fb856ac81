import itertools

import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(7)
TOL = {"rtol": 1e-5, "atol": 1e-5}
MODES = ["nearest", "linear", "cubic"]
COORDS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
          "asymmetric", "tf_crop_and_resize"]


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def f32(*v):
    return np.array(v, np.float32)


def i64(*v):
    return np.array(v, np.int64)


def infer(types, attrs=None, consts=None):
    """Output type of one Resize node; `consts` maps an input position to a constant value."""
    b = GraphBuilder("t")
    vals = []
    for i, t in enumerate(types):
        if consts and i in consts:
            vals.append(b.constant(consts[i], f"c{i}"))
        else:
            vals.append(None if t is None else b.input(f"x{i}", t))
    return b.add(get_op("Resize"), vals, dict(attrs or {}))[0].type


def resize_inputs(x, scales=None, sizes=None, roi=None):
    """Resize's four operands; the constant ones (scales, sizes) go in as graph constants."""
    return [x, roi, scales, sizes]


# --- every mode x coordinate transform, up and down, against onnx.reference --------------------

@pytest.mark.parametrize("mode,coord", list(itertools.product(MODES, COORDS)))
@pytest.mark.parametrize("scales", [(1, 1, 2.0, 3.0), (1, 1, 0.6, 0.5), (1, 1, 1.7, 0.3)])
def test_modes_and_coordinate_transforms_with_scales(mode, coord, scales):
    x = randn(2, 3, 5, 7)
    roi = f32(0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2) if coord == "tf_crop_and_resize" else None
    got = check_op("Resize", [x, roi, f32(*scales), None],
                   {"mode": mode, "coordinate_transformation_mode": coord},
                   const_inputs=[2], **TOL)
    assert got[0].shape == (2, 3, int(5 * np.float32(scales[2])), int(7 * np.float32(scales[3])))


@pytest.mark.parametrize("mode,coord", list(itertools.product(MODES, COORDS)))
def test_modes_and_coordinate_transforms_with_sizes(mode, coord):
    x = randn(1, 2, 7, 5)
    roi = f32(0.1, 0.3, 0.8, 1.1) if coord == "tf_crop_and_resize" else None
    check_op("Resize", [x, roi, None, i64(11, 3)],
             {"mode": mode, "coordinate_transformation_mode": coord, "axes": [2, 3],
              "extrapolation_value": -2.5}, const_inputs=[3], **TOL)


@pytest.mark.parametrize("nearest_mode", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "asymmetric"])
def test_nearest_rounding_modes(nearest_mode, coord):
    check_op("Resize", [randn(1, 1, 4, 6), None, f32(1, 1, 2.5, 0.7), None],
             {"mode": "nearest", "nearest_mode": nearest_mode,
              "coordinate_transformation_mode": coord}, const_inputs=[2])


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [(1, 1, 0.6, 0.6), (1, 1, 0.13, 0.31), (1, 1, 2.0, 0.5)])
def test_antialias(mode, scales):
    check_op("Resize", [randn(1, 2, 23, 29), None, f32(*scales), None],
             {"mode": mode, "antialias": 1}, const_inputs=[2], **TOL)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_antialias_with_sizes_and_exclude_outside(mode):
    check_op("Resize", [randn(1, 1, 13, 11), None, None, i64(1, 1, 3, 5)],
             {"mode": mode, "antialias": 1, "exclude_outside": 1}, const_inputs=[3], **TOL)


@pytest.mark.parametrize("a", [-0.5, -0.75])
@pytest.mark.parametrize("scales", [(1, 1, 2.0, 2.0), (1, 1, 0.8, 0.8)])
def test_cubic_coefficient_and_exclude_outside(a, scales):
    check_op("Resize", [randn(1, 1, 4, 4), None, f32(*scales), None],
             {"mode": "cubic", "cubic_coeff_a": a, "exclude_outside": 1}, const_inputs=[2], **TOL)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("sizes", [(7, 8), (1, 3), (4, 9)])
def test_keep_aspect_ratio_policy(policy, sizes):
    got = check_op("Resize", [randn(1, 1, 2, 4), None, None, i64(*sizes)],
                   {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": policy},
                   const_inputs=[3])
    if policy != "stretch":
        scale = (min if policy == "not_larger" else max)(sizes[0] / 2, sizes[1] / 4)
        assert got[0].shape == (1, 1, int(2 * scale + 0.5), int(4 * scale + 0.5))


@pytest.mark.parametrize("axes", [[2, 3], [3, 2], [1], [0, 3, 1]])
def test_axes_subsets(axes):
    x = randn(2, 3, 4, 5)
    scales = f32(*[1.5, 0.5, 2.0][:len(axes)])
    check_op("Resize", [x, None, scales, None], {"mode": "linear", "axes": axes},
             const_inputs=[2], **TOL)
    roi = np.concatenate([np.full(len(axes), 0.2), np.full(len(axes), 0.9)]).astype(np.float32)
    check_op("Resize", [x, roi, None, i64(*[3, 6, 2][:len(axes)])],
             {"mode": "cubic", "axes": axes, "coordinate_transformation_mode": "tf_crop_and_resize"},
             const_inputs=[3], **TOL)


def test_negative_axes_mean_the_same_as_positive_ones():
    # onnx.reference cannot take negative axes, so compare with the positive spelling
    x = randn(1, 2, 5, 7)
    for mode in MODES:
        neg = run_kiln("Resize", [x, None, f32(2.5, 0.6), None], {"mode": mode, "axes": [-1, -2]},
                       const_inputs=[2])
        pos = check_op("Resize", [x, None, f32(2.5, 0.6), None], {"mode": mode, "axes": [3, 2]},
                       const_inputs=[2], **TOL)
        np.testing.assert_array_equal(neg[0], pos[0])


# --- dtypes, odd and degenerate shapes ---------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64, np.float64, np.float16])
def test_dtypes(mode, dtype):
    if np.dtype(dtype).kind == "f":
        x = randn(1, 2, 5, 6, dtype=dtype)
    else:
        x = rng.integers(0, 120, (1, 2, 5, 6)).astype(dtype)
    tol = {"rtol": 2e-3, "atol": 2e-3} if dtype == np.float16 else TOL
    got = check_op("Resize", [x, None, f32(1, 1, 2.5, 0.7), None], {"mode": mode},
                   const_inputs=[2], **tol)
    assert got[0].dtype == dtype


def test_integer_results_saturate_instead_of_wrapping():
    x = np.array([[0, 255, 255, 0]], np.uint8)            # cubic overshoots above 255
    got = check_op("Resize", [x, None, f32(1, 3), None], {"mode": "cubic"}, const_inputs=[2])
    assert got[0].max() == 255 and got[0].min() == 0


def test_nearest_keeps_exact_values_of_any_dtype():
    x = np.array([[2**62 + 1, -(2**62) - 3]], np.int64)   # float64 would round these
    got = run_kiln("Resize", [x, None, f32(1, 2), None], {"mode": "nearest"}, const_inputs=[2])
    assert got[0].tolist() == [[2**62 + 1, 2**62 + 1, -(2**62) - 3, -(2**62) - 3]]
    b = np.array([[True, False, True]])
    assert run_kiln("Resize", [b, None, f32(1, 2), None], {}, const_inputs=[2])[0].tolist() == \
        [[True, True, False, False, True, True]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "pytorch_half_pixel", "asymmetric"])
def test_size_one_axes(mode, coord):
    x = randn(1, 1, 1, 1)
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    check_op("Resize", [x, None, f32(1, 1, 3, 1), None], attrs, const_inputs=[2], **TOL)
    check_op("Resize", [randn(1, 1, 5, 3), None, None, i64(1, 1, 1, 1)], attrs, const_inputs=[3], **TOL)


def test_rank_one_and_empty_tensors():
    check_op("Resize", [randn(7), None, f32(2.2), None], {"mode": "linear"}, const_inputs=[2], **TOL)
    check_op("Resize", [randn(13), None, None, i64(5)], {"mode": "cubic"}, const_inputs=[3], **TOL)
    got = check_op("Resize", [np.zeros((0, 3), np.float32), None, f32(1, 2), None],
                   {"mode": "linear"}, const_inputs=[2])
    assert got[0].shape == (0, 6)
    got = run_kiln("Resize", [randn(2, 3), None, f32(1, 0.2), None], {"mode": "linear"},
                   const_inputs=[2])
    assert got[0].shape == (2, 0)


def test_scales_and_sizes_as_runtime_inputs():
    # not constants: inference leaves the resized dims open, the reference still resizes
    x = randn(1, 2, 5, 7)
    got = check_op("Resize", [x, None, f32(1, 1, 1.6, 0.5), None], {"mode": "linear"}, **TOL)
    assert got[0].shape == (1, 2, 8, 3)
    check_op("Resize", [x, None, None, i64(1, 2, 3, 9)], {"mode": "cubic"}, **TOL)


def test_an_empty_scales_operand_counts_as_absent():
    check_op("Resize", [randn(1, 1, 3, 4), None, np.zeros(0, np.float32), i64(1, 1, 5, 2)],
             {"mode": "linear"}, const_inputs=[2, 3], **TOL)


# --- shape inference ---------------------------------------------------------------------------

def test_inference_from_constant_scales_and_sizes():
    x = TensorType(DType.float32, ("N", 3, 10, 15))
    assert infer([x, None, None], consts={2: f32(1, 1, 0.5, 2.5)}).shape == ("N", 3, 5, 37)
    assert infer([x, None, None, None], consts={3: i64(4, 3, 7, 9)}).shape == (4, 3, 7, 9)
    assert infer([x, None, None, None], {"axes": [3, 2], "keep_aspect_ratio_policy": "not_larger"},
                 consts={3: i64(30, 8)}).shape == ("N", 3, 8, 12)
    # a symbolic dim under a scale other than 1 becomes unknown; under 1 it is kept
    y = TensorType(DType.float32, ("N", "C", "H", 4))
    assert infer([y, None, None], consts={2: f32(1, 1, 2, 2)}).shape == ("N", "C", None, 8)


def test_inference_without_constants_and_with_unknown_rank():
    x = TensorType(DType.float32, ("N", 3, 10, 15))
    s = TensorType(DType.float32, (2,))
    assert infer([x, None, s], {"axes": [2, 3]}).shape == ("N", 3, None, None)
    assert infer([TensorType(DType.uint8, None), None, TensorType(DType.float32, (4,))]).shape is None


# --- bad input ---------------------------------------------------------------------------------

def test_both_scales_and_sizes_is_an_error():
    x = randn(1, 1, 2, 2)
    with pytest.raises(TypeInferenceError, match="both"):
        run_kiln("Resize", [x, None, f32(1, 1, 2, 2), i64(1, 1, 4, 4)], const_inputs=[2, 3])
    with pytest.raises(TypeInferenceError, match="both"):      # known lengths, unknown values
        run_kiln("Resize", [x, None, f32(1, 1, 2, 2), i64(1, 1, 4, 4)])
    with pytest.raises(ExecutionError, match="both"):          # only known at run time
        b = GraphBuilder("t")
        xs = b.input("x", TensorType(DType.float32, (1, 1, 2, 2)))
        sc = b.input("s", TensorType(DType.float32, ("k",)))
        sz = b.input("z", TensorType(DType.int64, ("m",)))
        b.output(b.Resize(xs, None, sc, sz))
        from kiln.ir.interpreter import interpret
        interpret(b.graph, {"x": x, "s": f32(1, 1, 2, 2), "z": i64(1, 1, 4, 4)})


def test_neither_scales_nor_sizes_is_an_error():
    with pytest.raises(TypeInferenceError, match="neither"):
        run_kiln("Resize", [randn(1, 1, 2, 2)])
    with pytest.raises(TypeInferenceError, match="neither"):
        run_kiln("Resize", [randn(1, 1, 2, 2), None, np.zeros(0, np.float32)], const_inputs=[2])


def test_wrong_lengths_and_values_are_errors():
    x = randn(1, 1, 2, 2)
    with pytest.raises(TypeInferenceError, match="entries"):
        run_kiln("Resize", [x, None, f32(2, 2)])
    with pytest.raises(TypeInferenceError):
        run_kiln("Resize", [x, None, f32(1, 2, 2)], const_inputs=[2])
    with pytest.raises(TypeInferenceError):
        run_kiln("Resize", [x, None, None, i64(4, 4, 4)], {"axes": [2, 3]}, const_inputs=[3])
    with pytest.raises(TypeInferenceError, match="> 0"):
        run_kiln("Resize", [x, None, f32(1, 1, 0, 2)], const_inputs=[2])
    with pytest.raises(TypeInferenceError):
        run_kiln("Resize", [x, None, f32(2, 2)], {"axes": [2, 2]}, const_inputs=[2])
    with pytest.raises(TypeInferenceError):
        run_kiln("Resize", [x, None, f32(2, 2)], {"axes": [2, 4]}, const_inputs=[2])
    with pytest.raises(ExecutionError, match="roi"):
        run_kiln("Resize", [x, None, f32(1, 1, 2, 2)],
                 {"coordinate_transformation_mode": "tf_crop_and_resize"}, const_inputs=[2])


def test_bad_types_and_attributes():
    with pytest.raises(TypeInferenceError):
        run_kiln("Resize", [np.array([[True, False]]), None, f32(1, 2)], {"mode": "linear"},
                 const_inputs=[2])
    with pytest.raises(TypeInferenceError):
        run_kiln("Resize", [randn(1, 4), None, None, np.array([1, 8], np.float32)], const_inputs=[3])
    with pytest.raises(AttributeValueError):
        run_kiln("Resize", [randn(1, 4), None, f32(1, 2)], {"mode": "bilinear"}, const_inputs=[2])
    with pytest.raises(AttributeValueError):
        run_kiln("Resize", [randn(1, 4), None, f32(1, 2)],
                 {"coordinate_transformation_mode": "corners"}, const_inputs=[2])
