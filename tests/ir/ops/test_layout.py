import numpy as np
import pytest

from kiln.errors import ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln, infer, strings

rng = np.random.default_rng(2)
f32, i64 = DType.float32, DType.int64


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)






# --- DepthToSpace, SpaceToDepth ---

@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("shape,b", [((1, 8, 2, 3), 2), ((2, 9, 1, 3), 3), ((1, 5, 3, 2), 1),
                                     ((0, 4, 2, 2), 2)])
def test_depth_to_space(mode, shape, b):
    check_op("DepthToSpace", [randn(*shape)], {"blocksize": b, "mode": mode})


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("shape,b", [((1, 2, 4, 6), 2), ((2, 1, 3, 9), 3), ((1, 3, 5, 7), 1)])
def test_space_to_depth(mode, shape, b):
    check_op("SpaceToDepth", [randn(*shape)], {"blocksize": b, "mode": mode})


def test_depth_space_round_trip_other_dtypes():
    for x in (rng.integers(0, 9, (2, 4, 3, 5)).astype(np.int64), strings(1, 4, 1, 3)):
        packed = run_kiln("DepthToSpace", [x], {"blocksize": 2, "mode": "CRD"})[0]
        unpacked = run_kiln("SpaceToDepth", [packed], {"blocksize": 2, "mode": "CRD"})[0]
        assert np.array_equal(unpacked, x)


def test_depth_space_inference_and_errors():
    assert infer("DepthToSpace", tensor(f32, "n", 12, 5, 7), blocksize=2) == \
        tensor(f32, "n", 3, 10, 14)
    assert infer("SpaceToDepth", tensor(f32, "n", 3, 4, 6), blocksize=2) == \
        tensor(f32, "n", 12, 2, 3)
    for op, shape in (("DepthToSpace", (1, 6, 2, 2)), ("SpaceToDepth", (1, 1, 3, 4)),
                      ("DepthToSpace", (4, 2, 2))):
        with pytest.raises(TypeInferenceError):
            infer(op, tensor(f32, *shape), blocksize=2)


# --- Trilu ---

@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 1, -1, 3, -4, 100, -100])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 5, 3), (0, 3), (1, 1)])
def test_trilu(upper, k, shape):
    inputs = [randn(*shape)] + ([] if k is None else [np.array(k, np.int64)])
    check_op("Trilu", inputs, {"upper": upper})


def test_trilu_dtypes_and_errors():
    check_op("Trilu", [rng.integers(-5, 5, (3, 4)).astype(np.int32), np.array(1, np.int64)])
    check_op("Trilu", [rng.random((3, 3)) > 0.3], {"upper": 0})
    with pytest.raises(TypeInferenceError):
        infer("Trilu", tensor(f32, 3))
    with pytest.raises(TypeInferenceError):
        infer("Trilu", tensor(f32, 3, 3), np.array([1, 2]))


# --- ReverseSequence ---

@pytest.mark.parametrize("batch_axis,time_axis", [(1, 0), (0, 1)])
def test_reverse_sequence(batch_axis, time_axis):
    x = randn(4, 5, 3) if batch_axis == 1 else randn(5, 4, 3)
    lens = np.array([4, 0, 1, 2, 3], np.int64)
    check_op("ReverseSequence", [x, lens], {"batch_axis": batch_axis, "time_axis": time_axis})
    check_op("ReverseSequence", [strings(*x.shape[:2]), lens],
             {"batch_axis": batch_axis, "time_axis": time_axis})


def test_reverse_sequence_errors():
    with pytest.raises(TypeInferenceError):
        infer("ReverseSequence", tensor(f32, 3, 4), np.array([1, 2, 3]), batch_axis=0, time_axis=0)
    with pytest.raises(TypeInferenceError):
        infer("ReverseSequence", tensor(f32, 3, 4), np.array([1, 2, 3]))   # batch is axis 1 (4)
    with pytest.raises(ExecutionError):
        run_kiln("ReverseSequence", [randn(3, 2), np.array([1, 4], np.int64)])


# --- CenterCropPad ---

@pytest.mark.parametrize("in_shape,target,axes", [((20, 10, 3), [10, 7, 3], None),
                                                  ((10, 7, 3), [20, 10, 3], None),
                                                  ((20, 8, 3), [10, 10, 3], None),
                                                  ((3, 20, 8), [10, 9], [1, 2]),
                                                  ((20, 8, 3), [11, 10], [-3, -2]),
                                                  ((5, 0), [3, 2], None)])
def test_center_crop_pad(in_shape, target, axes):
    attrs = {} if axes is None else {"axes": axes}
    check_op("CenterCropPad", [randn(*in_shape), np.array(target, np.int64)], attrs,
             const_inputs=[1])
    check_op("CenterCropPad", [randn(*in_shape), np.array(target, np.int32)], attrs)


def test_center_crop_pad_inference():
    x = tensor(f32, "n", 10, 8)
    assert infer("CenterCropPad", x, np.array([5, 9]), axes=[1, 2]) == tensor(f32, "n", 5, 9)
    assert infer("CenterCropPad", x, tensor(i64, 2), axes=[-1, 1]) == tensor(f32, "n", None, None)
    with pytest.raises(TypeInferenceError):
        infer("CenterCropPad", x, np.array([5, 9]))


# --- Col2Im ---

@pytest.mark.parametrize("image,block,attrs", [
    ([5, 5], [1, 5], {}), ([5, 5], [2, 2], {"strides": [1, 1]}),
    ([6, 7], [2, 3], {"strides": [2, 1]}),
    ([5, 5], [2, 2], {"pads": [1, 0, 1, 2]}), ([7, 5], [2, 2], {"dilations": [2, 1]}),
    ([3, 4, 5], [1, 2, 3], {}), ([9], [3], {"strides": [3]})])
def test_col2im(image, block, attrs):
    dil = attrs.get("dilations", [1] * len(image))
    pads = attrs.get("pads", [0] * 2 * len(image))
    strides = attrs.get("strides", [1] * len(image))
    n = len(image)
    blocks = [(image[i] + pads[i] + pads[i + n] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
              for i in range(n)]
    x = randn(2, 3 * int(np.prod(block)), int(np.prod(blocks)))
    inputs = [x, np.array(image, np.int64), np.array(block, np.int64)]
    check_op("Col2Im", inputs, attrs, rtol=1e-5, atol=1e-5, const_inputs=[1, 2])
    check_op("Col2Im", inputs, attrs, rtol=1e-5, atol=1e-5)


def test_col2im_inference_and_errors():
    c = lambda *v: np.array(v, np.int64)  # noqa: E731
    assert infer("Col2Im", tensor(f32, "n", 12, 16), c(5, 5), c(2, 2)) == tensor(f32, "n", 3, 5, 5)
    assert infer("Col2Im", tensor(f32, "n", 12, 16), tensor(i64, 2), c(2, 2)) == \
        tensor(f32, "n", 3, None, None)
    with pytest.raises(TypeInferenceError):   # 15 blocks given, 16 expected
        infer("Col2Im", tensor(f32, 1, 12, 15), c(5, 5), c(2, 2))
    with pytest.raises(TypeInferenceError):   # 10 channels do not divide into 2x2 blocks
        infer("Col2Im", tensor(f32, 1, 10, 16), c(5, 5), c(2, 2))
    with pytest.raises(ExecutionError):
        run_kiln("Col2Im", [randn(1, 12, 15), c(5, 5), c(2, 2)])
