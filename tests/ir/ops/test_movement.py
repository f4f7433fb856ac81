import numpy as np
import pytest

from kiln.errors import ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.ops.movement import slice_range
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln, infer, strings
from tests.ir.ops.ort_check import check_op_ort

rng = np.random.default_rng(1)
f32, i64 = DType.float32, DType.int64
INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)




def other_dtypes(*shape):
    """The same shape as int, bool and string tensors."""
    return [rng.integers(-50, 50, shape).astype(np.int32), rng.random(shape) > 0.5, strings(*shape)]




# --- Transpose ---

@pytest.mark.parametrize("perm", [None, [0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1]])
def test_transpose(perm):
    check_op("Transpose", [randn(2, 3, 5)], {} if perm is None else {"perm": perm})


@pytest.mark.parametrize("x", [np.array(3.0, np.float32), randn(7), np.zeros((0, 3), np.float32),
                               *other_dtypes(3, 1, 2)])
def test_transpose_odd_shapes_and_dtypes(x):
    check_op("Transpose", [x])


def test_transpose_inference_and_errors():
    assert infer("Transpose", tensor(f32, "b", 3, 4), perm=[0, 2, 1]) == tensor(f32, "b", 4, 3)
    assert infer("Transpose", TensorType(f32, None), perm=[1, 0]) == tensor(f32, None, None)
    for perm in ([0, 0], [0, 1, 2], [1, 2]):
        with pytest.raises(TypeInferenceError):
            infer("Transpose", tensor(f32, 2, 3), perm=perm)


# --- Concat, Split ---

@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_concat(axis):
    shapes = [[2, 3, 5], [2, 3, 5], [2, 3, 5]]
    for s in shapes[1:]:
        s[axis] = 1
    check_op("Concat", [randn(*s) for s in shapes], {"axis": axis})


@pytest.mark.parametrize("xs", [[randn(0, 3), randn(2, 3)], [randn(1)], other_dtypes(2, 3)[:1] * 2,
                                [strings(2), strings(3)],
                                [np.array([True]), np.array([False, True])]])
def test_concat_odd_inputs(xs):
    check_op("Concat", xs, {"axis": 0})


def test_concat_inference_and_errors():
    assert infer("Concat", tensor(f32, "b", 3), tensor(f32, "b", 4), axis=-1) == tensor(f32, "b", 7)
    assert infer("Concat", tensor(f32, "b", 3), tensor(f32, None, "n"), axis=1) == \
        tensor(f32, "b", None)
    assert infer("Concat", TensorType(f32, None), tensor(f32, 2, 3), axis=0) == tensor(f32, None, 3)
    bad = [(tensor(f32, 2, 3), tensor(f32, 2, 4), 0), (tensor(f32, 2), tensor(f32, 2, 1), 0),
           (tensor(f32), tensor(f32), 0), (tensor(f32, 2), tensor(f32, 2), 1),
           (tensor(f32, 2), tensor(DType.int32, 2), 0)]
    for a, b, axis in bad:
        with pytest.raises(TypeInferenceError):
            infer("Concat", a, b, axis=axis)


@pytest.mark.parametrize("sizes,axis", [([2, 3], 1), ([1, 1, 3], -1), ([0, 5], 1), ([5], 1),
                                        ([0, 0, 5], -1)])
def test_split_with_sizes(sizes, axis):
    x = randn(3, 5)
    check_op("Split", [x, np.array(sizes, np.int64)], {"axis": axis}, num_outputs=len(sizes),
             const_inputs=[1])
    check_op("Split", [x, np.array(sizes, np.int64)], {"axis": axis}, num_outputs=len(sizes))


@pytest.mark.parametrize("n,dim", [(3, 7), (2, 6), (4, 7), (1, 5), (3, 9), (2, 1)])
def test_split_num_outputs_uneven(n, dim):
    got = check_op("Split", [randn(dim, 2)], {"num_outputs": n}, num_outputs=n)
    assert sum(g.shape[0] for g in got) == dim


def test_split_uneven_matches_onnxruntime():
    check_op_ort("Split", [randn(7, 2)], {"num_outputs": 3}, num_outputs=3, opset=18)


def test_split_default_equal_parts_and_dtypes():
    check_op("Split", [randn(2, 6)], {"axis": 1}, num_outputs=3)
    for x in other_dtypes(4, 3):
        check_op("Split", [x], {"axis": 0}, num_outputs=2)


def test_split_inference_and_errors():
    assert infer("Split", tensor(f32, "b", 7), np.array([3, 4]), axis=1, outputs=2) == \
        (tensor(f32, "b", 3), tensor(f32, "b", 4))
    assert infer("Split", tensor(f32, "b", 8), axis=0, num_outputs=2, outputs=2) == \
        (tensor(f32, None, 8), tensor(f32, None, 8))
    assert infer("Split", tensor(f32, 7), num_outputs=3, outputs=3) == \
        (tensor(f32, 3), tensor(f32, 3), tensor(f32, 1))
    with pytest.raises(TypeInferenceError):   # sizes do not add up
        infer("Split", tensor(f32, 7), np.array([3, 3]), outputs=2)
    with pytest.raises(TypeInferenceError):   # both split and num_outputs
        infer("Split", tensor(f32, 6), np.array([3, 3]), num_outputs=2, outputs=2)
    with pytest.raises(TypeInferenceError):   # num_outputs disagrees with the node
        infer("Split", tensor(f32, 6), num_outputs=3, outputs=2)
    # 4 chunks of 2 overrun 5: an error only if it runs (dead If branches hold such nodes)
    assert infer("Split", tensor(f32, 5), num_outputs=4, outputs=4) == (tensor(f32, None),) * 4
    with pytest.raises(ExecutionError, match="Split node"):
        run_kiln("Split", [randn(5)], {"num_outputs": 4}, num_outputs=4)


# --- Slice ---

SLICES = [  # starts, ends, axes, steps
    ([0, 1], [3, 4], None, None), ([1], [-1], [1], None), ([0, 0, 3], [20, 10, 4], [0, 1, 2], None),
    ([20, 10, 4], [0, 0, 1], [0, 1, 2], [-1, -3, -2]), ([0], [-1], [-1], None),
    ([1], [1000], [1], [2]), ([1000], [1000], [1], [1]), ([-1], [-1000], [1], [-1]),
    ([INT64_MAX], [INT64_MIN], [2], [-1]), ([0], [INT64_MAX], [0], None),
    ([2, 1], [-1, 4], [-2, 0], [1, 2]),
    ([-3], [-1], [2], [1]), ([4], [0], [1], [-2]), ([0], [0], [0], None)]


@pytest.mark.parametrize("starts,ends,axes,steps", SLICES)
def test_slice(starts, ends, axes, steps):
    x = randn(5, 7, 4)
    inputs = [x, np.array(starts, np.int64), np.array(ends, np.int64)]
    inputs += [None if axes is None else np.array(axes, np.int64)] if axes or steps else []
    inputs += [np.array(steps, np.int64)] if steps else []
    check_op("Slice", inputs, const_inputs=[1, 2, 3, 4])
    check_op("Slice", inputs)


def test_slice_int32_operands_and_dtypes():
    i32 = lambda v: np.array(v, np.int32)  # noqa: E731
    for x in other_dtypes(4, 6):
        check_op("Slice", [x, i32([1, -1]), i32([3, 0]), i32([0, 1]), i32([1, -2])],
                 const_inputs=[1, 2])
    check_op("Slice", [np.zeros((0, 3), np.float32), i32([0]), i32([2]), i32([1])])


def test_slice_clamps_like_onnx_for_large_negative_starts():
    # ONNX clamps a negative-step start into [0, dim-1], so element 0 is taken; Python slicing
    # would give nothing here.
    assert slice_range(5, -100, INT64_MIN, -1) == (0, -1, 1)
    assert slice_range(0, 0, -1, -1)[2] == 0
    x = np.arange(5, dtype=np.float32)
    operands = [np.array([v]) for v in (-100, INT64_MIN, 0, -1)]
    got = check_op_ort("Slice", [x, *operands])
    assert got[0].tolist() == [0.0]


def test_slice_inference():
    x = tensor(f32, "batch", 10)
    c = lambda *v: np.array(v, np.int64)  # noqa: E731
    assert infer("Slice", x, c(2), c(-1), c(1)) == tensor(f32, "batch", 7)
    assert infer("Slice", x, c(0), c(INT64_MAX), c(0)) == x
    assert infer("Slice", x, c(-1), c(INT64_MIN), c(0), c(-1)) == x
    assert infer("Slice", x, c(1), c(INT64_MAX), c(0)) == tensor(f32, None, 10)
    assert infer("Slice", x, tensor(i64, 1), c(5), c(1)) == tensor(f32, "batch", None)
    assert infer("Slice", x, c(0), c(5), tensor(i64, 1)) == tensor(f32, None, None)


@pytest.mark.parametrize("operands", [([0], [1], [2]), ([0, 0], [1], [0]), ([0], [1], [0], [0]),
                                      ([0, 0], [1, 1], [1, -1])])
def test_slice_errors(operands):
    """Out-of-range axis, length mismatch, zero step, repeated axis: caught by inference when the
    operands are constants, and at run time otherwise."""
    inputs = [randn(3, 4)] + [np.array(v, np.int64) for v in operands]
    with pytest.raises(TypeInferenceError):
        run_kiln("Slice", inputs, const_inputs=[1, 2, 3, 4])
    with pytest.raises(ExecutionError, match="Slice node"):
        run_kiln("Slice", inputs)


# --- Pad, Tile ---

@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads,axes", [([1, 2, 2, 0], None), ([0, 0, 0, 0], None), ([3, 1], [1]),
                                       ([2, 1], [-2]), ([0, 3, 1, 4], [0, -1])])
def test_pad(mode, pads, axes):
    inputs = [randn(3, 5), np.array(pads, np.int64)]
    if axes is not None:
        inputs += [None, np.array(axes, np.int64)]
    check_op("Pad", inputs, {"mode": mode}, const_inputs=[1, 3])
    check_op("Pad", inputs, {"mode": mode})


def test_pad_constant_value_and_dtypes():
    check_op("Pad", [randn(2, 3), np.array([1, 0, 0, 2], np.int64), np.array(1.5, np.float32)])
    for x in other_dtypes(2, 3):
        if x.dtype != object:   # onnx.reference pads strings with 0 rather than ""
            check_op("Pad", [x, np.array([0, 1, 1, 0], np.int64)], const_inputs=[1])
        check_op("Pad", [x, np.array([2, 1, 1, 2], np.int64)], {"mode": "edge"})
    got = run_kiln("Pad", [strings(2), np.array([1, 1], np.int64)])[0]
    assert got.tolist() == ["", "s0", "s1", ""]
    check_op("Pad", [np.zeros((0, 2), np.float32), np.array([1, 0, 1, 0], np.int64)])


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_negative_pads_crop_then_pad(mode):
    # onnx.reference cannot crop; ONNX Runtime crops first, then pads what remains
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    pads = np.array([-1, 1, 0, -2], np.int64)
    got = check_op_ort("Pad", [x, pads], {"mode": mode}, const_inputs=[1])[0]
    if mode == "edge":
        want = np.concatenate([x[1:, :1], x[1:, :2]], axis=1)
        np.testing.assert_array_equal(got, want)


def test_pad_reflect_is_limited_to_the_mirror_image():
    with pytest.raises(TypeInferenceError, match="reflect"):
        infer("Pad", tensor(f32, 3, 4), np.array([3, 0, 0, 0]), mode="reflect")
    with pytest.raises(ExecutionError, match="reflect"):
        run_kiln("Pad", [randn(1, 4), np.array([1, 0, 0, 0], np.int64)], {"mode": "reflect"})
    check_op_ort("Pad", [randn(3, 4), np.array([2, 3, 0, 3], np.int64)], {"mode": "reflect"})


def test_pad_inference_and_errors():
    c = lambda *v: np.array(v, np.int64)  # noqa: E731
    assert infer("Pad", tensor(f32, "b", 3), c(0, 1, 0, 2)) == tensor(f32, "b", 6)
    assert infer("Pad", tensor(f32, "b", 3), c(1, 0), None, c(0)) == tensor(f32, None, 3)
    assert infer("Pad", tensor(f32, "b", 3), tensor(i64, 4)) == tensor(f32, None, None)
    with pytest.raises(TypeInferenceError):
        infer("Pad", tensor(f32, 2, 3), c(1, 1))
    with pytest.raises(TypeInferenceError):
        infer("Pad", tensor(f32, 2, 3), c(0, -2, 0, -2))
    with pytest.raises(TypeInferenceError):
        infer("Pad", tensor(f32, 2, 3), c(0, 1, 0, 1), np.array(1, np.int64))
    with pytest.raises(TypeInferenceError):   # crops 1 from an empty axis
        infer("Pad", tensor(f32, 0, 3), c(1, 0, -1, 0))
    with pytest.raises(TypeInferenceError):   # edge-pads an axis that cropping emptied
        infer("Pad", tensor(f32, 1, 3), c(2, 0, -1, 0), mode="edge")
    with pytest.raises(ExecutionError):
        run_kiln("Pad", [np.zeros((0, 2), np.float32), c(1, 0, 0, 0)], {"mode": "edge"})
    got = run_kiln("Pad", [np.array(2.5, np.float32), c()], const_inputs=[1])[0]
    assert got.shape == () and got == 2.5   # a scalar has nothing to pad


@pytest.mark.parametrize("shape,reps", [((2, 3), [1, 1]), ((2, 3), [3, 2]), ((1, 5, 1), [2, 1, 7]),
                                        ((2, 3), [0, 2]), ((), []), ((0, 2), [3, 1])])
def test_tile(shape, reps):
    check_op("Tile", [randn(*shape), np.array(reps, np.int64)], const_inputs=[1])
    check_op("Tile", [randn(*shape), np.array(reps, np.int64)])


def test_tile_dtypes_inference_and_errors():
    for x in other_dtypes(2, 1):
        check_op("Tile", [x, np.array([2, 3], np.int64)])
    assert infer("Tile", tensor(f32, "b", 3), np.array([1, 2])) == tensor(f32, "b", 6)
    assert infer("Tile", tensor(f32, "b", 3), np.array([2, 2])) == tensor(f32, None, 6)
    with pytest.raises(TypeInferenceError):
        infer("Tile", tensor(f32, 2, 3), np.array([2]))
    with pytest.raises(TypeInferenceError):
        infer("Tile", tensor(f32, 2, 3), np.array([2, -1]))
