import numpy as np
import pytest

from kiln.errors import ExecutionError, TypeInferenceError
from kiln.ir import FusionKind, GraphBuilder, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln, infer, strings
from tests.ir.ops.ort_check import check_op_ort

rng = np.random.default_rng(3)
f32, i64 = DType.float32, DType.int64


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)




def other_dtypes(*shape):
    return [rng.integers(-50, 50, shape).astype(np.int64), rng.random(shape) > 0.5, strings(*shape)]




# --- Gather ---

@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("indices", [np.array([0, -1, 1]), np.array(1), np.array([[2, -2], [0, 0]]),
                                     np.zeros((0,), np.int64)])
def test_gather(axis, indices):
    check_op("Gather", [randn(3, 4, 5), indices.astype(np.int32)], {"axis": axis})
    check_op("Gather", [randn(3, 4, 5), indices.astype(np.int64)], {"axis": axis}, const_inputs=[1])


def test_gather_dtypes_and_inference():
    for x in other_dtypes(3, 2):
        check_op("Gather", [x, np.array([[1, 0]], np.int64)])
    assert infer("Gather", tensor(f32, "v", 8), tensor(i64, "b", "s")) == tensor(f32, "b", "s", 8)
    assert infer("Gather", tensor(f32, 5, "d"), tensor(i64), axis=-1) == tensor(f32, 5)
    with pytest.raises(TypeInferenceError):
        infer("Gather", tensor(f32, 5), tensor(f32, 2))
    with pytest.raises(TypeInferenceError):
        infer("Gather", tensor(f32, 5), tensor(i64, 2), axis=1)
    with pytest.raises(TypeInferenceError):   # a constant index out of range
        infer("Gather", tensor(f32, 5), np.array([5]))


def test_gather_index_out_of_range_names_the_node():
    for idx in ([0, 3], [-4]):
        with pytest.raises(ExecutionError, match="Gather node.*out of range"):
            run_kiln("Gather", [randn(3), np.array(idx, np.int64)])


# --- GatherElements, GatherND ---

@pytest.mark.parametrize("axis", [0, 1, -2])
def test_gather_elements(axis):
    data = randn(4, 5)
    idx = rng.integers(-data.shape[axis], data.shape[axis], (3, 5) if axis % 2 == 0 else (4, 2))
    check_op("GatherElements", [data, idx.astype(np.int32)], {"axis": axis})
    if axis == 1:   # onnx.reference mishandles axis -1, so compare against axis 1
        got = run_kiln("GatherElements", [data, idx], {"axis": -1})[0]
        np.testing.assert_array_equal(got, np.take_along_axis(data, idx % 5, axis=1))


def test_gather_elements_odd_cases():
    data = randn(3, 3)   # indices smaller than data off the axis (onnx.reference rejects this)
    got = check_op_ort("GatherElements", [data, np.array([[1, 2]], np.int64)], {"axis": 1})[0]
    assert got.tolist() == [[data[0, 1], data[0, 2]]]
    check_op("GatherElements", [strings(2, 2), np.array([[0, 0], [1, 0]], np.int64)])
    check_op("GatherElements", [randn(3), np.zeros((0,), np.int64)])
    assert infer("GatherElements", tensor(f32, "b", 5), tensor(i64, "b", 2), axis=1) == \
        tensor(f32, "b", 2)
    with pytest.raises(TypeInferenceError):
        infer("GatherElements", tensor(f32, 3, 5), tensor(i64, 3))
    with pytest.raises(ExecutionError, match="GatherElements node"):
        run_kiln("GatherElements", [randn(3, 3), np.array([[3]], np.int64)])


@pytest.mark.parametrize("data_shape,idx_shape,b", [
    ((2, 2), (2, 2), 0), ((2, 2), (2, 1), 0), ((2, 3, 4), (2, 1), 1), ((2, 3, 4), (2, 5, 2), 1),
    ((3, 4, 5), (3, 4, 1), 2), ((5,), (1,), 0)])
def test_gather_nd(data_shape, idx_shape, b):
    data = randn(*data_shape)
    k = idx_shape[-1]
    bounds = data_shape[b:b + k]
    idx = np.stack([rng.integers(-s, s, idx_shape[:-1]) for s in bounds], axis=-1).astype(np.int64)
    check_op("GatherND", [data, idx], {"batch_dims": b})


def test_gather_nd_dtypes_inference_and_errors():
    check_op("GatherND", [strings(2, 3), np.array([[1, 2], [0, 0]], np.int64)])
    assert infer("GatherND", tensor(f32, "b", 3, 4), tensor(i64, "b", 7, 1), batch_dims=1) == \
        tensor(f32, "b", 7, 4)
    assert infer("GatherND", tensor(f32, 3, 4), tensor(i64, 5, "k")) == TensorType(f32, None)
    with pytest.raises(TypeInferenceError):
        infer("GatherND", tensor(f32, 3, 4), tensor(i64, 5, 3))
    with pytest.raises(TypeInferenceError):
        infer("GatherND", tensor(f32, 3, 4), tensor(i64, 2, 1), batch_dims=1)
    with pytest.raises(ExecutionError, match="GatherND node"):
        run_kiln("GatherND", [randn(3, 4), np.array([[0, 4]], np.int64)])


# --- ScatterND, ScatterElements ---

@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("idx,upd_shape", [([[0], [2]], (2, 4, 5)), ([[1, -1], [0, 2]], (2, 5)),
                                           ([[0, 1, 2]], (1,)), ([[[1]], [[-3]]], (2, 1, 4, 5))])
def test_scatter_nd(reduction, idx, upd_shape):
    check_op("ScatterND", [randn(3, 4, 5), np.array(idx, np.int64), randn(*upd_shape)],
             {"reduction": reduction})


def test_scatter_nd_duplicates_reduce_and_dtypes():
    data = np.arange(4, dtype=np.int32)
    indices, updates = np.array([[1], [1], [3]], np.int64), np.array([5, 6, 7], np.int32)
    got = check_op("ScatterND", [data, indices, updates], {"reduction": "add"})
    assert got[0].tolist() == [0, 12, 2, 10]
    check_op("ScatterND", [strings(3), np.array([[2]], np.int64), np.array(["x"], dtype=object)])
    with pytest.raises(TypeInferenceError):
        infer("ScatterND", tensor(f32, 3, 4), tensor(i64, 2, 1), tensor(f32, 2, 5))
    with pytest.raises(TypeInferenceError):
        infer("ScatterND", tensor(f32, 3, 4), tensor(i64, 2, 1), tensor(DType.float64, 2, 4))
    with pytest.raises(ExecutionError, match="ScatterND node"):
        run_kiln("ScatterND", [randn(3), np.array([[3]], np.int64), randn(1)])


@pytest.mark.parametrize("reduction", ["none", "add", "mul", "max", "min"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scatter_elements(reduction, axis):
    data = randn(4, 5)
    idx_shape = (2, 5) if axis == 0 else (4, 3)
    size = data.shape[axis]
    # distinct indices along the axis so "none" is well defined
    idx = np.argsort(rng.random((size,) + idx_shape[1:] if axis == 0 else idx_shape[:1] + (size,)),
                     axis=axis)
    idx = (idx[:2] if axis == 0 else idx[:, :3]) - (size if reduction == "add" else 0)
    check_op("ScatterElements", [data, idx.astype(np.int64), randn(*idx_shape)],
             {"axis": axis, "reduction": reduction})


def test_scatter_elements_odd_cases():
    check_op("ScatterElements", [randn(5), np.array([1, 1, 4], np.int32), randn(3)],
             {"reduction": "add"})
    check_op("ScatterElements",
             [strings(2, 2), np.array([[1]], np.int64), np.array([["x"]], dtype=object)])
    check_op("ScatterElements", [randn(3, 2), np.zeros((0, 2), np.int64), randn(0, 2)])
    with pytest.raises(TypeInferenceError):
        infer("ScatterElements", tensor(f32, 3, 4), tensor(i64, 2, 4), tensor(f32, 2, 3))
    with pytest.raises(ExecutionError, match="ScatterElements node"):
        run_kiln("ScatterElements", [randn(3, 2), np.array([[0, -4]], np.int64), randn(1, 2)])


# --- TensorScatter ---

@pytest.mark.parametrize("mode", ["linear", "circular"])
@pytest.mark.parametrize("axis", [-2, 1, 2])
def test_tensor_scatter(mode, axis):
    cache_shape = [2, 3, 7, 4]
    upd_shape = list(cache_shape)
    upd_shape[axis] = 2
    cap = cache_shape[axis]
    starts = np.array([0, cap - 2] if mode == "linear" else [cap - 1, 3], np.int64)
    check_op("TensorScatter", [randn(*cache_shape), randn(*upd_shape), starts],
             {"mode": mode, "axis": axis})
    check_op("TensorScatter", [randn(*cache_shape), randn(*upd_shape)],
             {"mode": mode, "axis": axis})


def test_tensor_scatter_errors():
    with pytest.raises(TypeInferenceError):
        infer("TensorScatter", tensor(f32, 2, 5, 4), tensor(f32, 2, 6, 4))
    with pytest.raises(TypeInferenceError):
        infer("TensorScatter", tensor(f32, 2, 5, 4), tensor(f32, 2, 1, 4), axis=0)
    with pytest.raises(ExecutionError, match="TensorScatter node"):
        run_kiln("TensorScatter", [randn(2, 5, 4), randn(2, 2, 4), np.array([0, 4], np.int64)])


# --- Compress, NonZero, Unique ---

@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("cond", [[True, False, True], [False, False, False], [False, True]])
def test_compress(axis, cond):
    attrs = {} if axis is None else {"axis": axis}
    check_op("Compress", [randn(3, 4), np.array(cond)], attrs)


def test_compress_dtypes_inference_and_errors():
    for x in other_dtypes(3, 2):
        check_op("Compress", [x, np.array([True, False, True])], {"axis": 0})
    assert infer("Compress", tensor(f32, "b", 4), tensor(DType.bool, 4), axis=1) == \
        tensor(f32, "b", None)
    assert infer("Compress", tensor(f32, "b", 4), tensor(DType.bool, 4)) == tensor(f32, None)
    cond = np.array([True, False, True])
    assert infer("Compress", tensor(f32, "b", 4), cond, axis=1) == tensor(f32, "b", 2)
    assert infer("Compress", tensor(f32, "b", 4), cond) == tensor(f32, 2)
    check_op("Compress", [randn(3, 4), cond], {"axis": -1}, const_inputs=[1])
    with pytest.raises(TypeInferenceError):
        infer("Compress", tensor(f32, 3, 2), np.ones(3, bool), axis=1)
    with pytest.raises(TypeInferenceError):
        infer("Compress", tensor(f32, 3), tensor(i64, 3))
    with pytest.raises(ExecutionError):
        run_kiln("Compress", [randn(2, 2), np.ones(3, bool)], {"axis": 0})


@pytest.mark.parametrize("x", [randn(3, 4) > 0, np.array([[0, 1], [2, 0]], np.int32),
                               np.zeros((0, 2)),
                               np.array(5.0), np.array(0.0), np.zeros(7, np.float32),
                               np.array([0.0, 1e-30, -2.0, np.nan])])
def test_nonzero(x):
    check_op("NonZero", [x])


def test_data_dependent_ops_are_opaque():
    for op in (ops.NonZero, ops.Unique, ops.Compress):
        assert op.kind is FusionKind.OPAQUE
    assert infer("NonZero", tensor(f32, "b", 3)) == tensor(i64, 2, None)


@pytest.mark.parametrize("sorted_", [0, 1])
@pytest.mark.parametrize("x", [np.array([2, 1, 1, 3, 4, 3], np.int64), np.array([5.0], np.float32),
                               np.array([3, 3, 3], np.int8), np.zeros((0,), np.float32)])
def test_unique_flat(sorted_, x):
    check_op("Unique", [x], {"sorted": sorted_}, num_outputs=4)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unique_along_axis(axis):
    x = rng.integers(0, 2, (4, 3, 5)).astype(np.float32)
    x = np.concatenate([x, x], axis=axis)
    check_op("Unique", [x], {"axis": axis}, num_outputs=4)


def test_unique_unsorted_keeps_first_occurrence_order():
    # onnx.reference only gets this right for 1-D inputs; check the documented example directly
    x = np.array([[1, 0, 0], [2, 3, 4], [1, 0, 0], [0, 5, 5]], np.int32)
    y, idx, inv, cnt = run_kiln("Unique", [x], {"axis": 0, "sorted": 0}, num_outputs=4)
    assert y.tolist() == [[1, 0, 0], [2, 3, 4], [0, 5, 5]]
    assert idx.tolist() == [0, 1, 3] and inv.tolist() == [0, 1, 0, 2] and cnt.tolist() == [2, 1, 1]
    y, idx, inv, cnt = check_op_ort("Unique", [np.array([[4, 2], [4, 9]])], {"sorted": 0},
                                    num_outputs=4)
    assert y.tolist() == [4, 2, 9] and inv.tolist() == [0, 1, 0, 2] and cnt.tolist() == [2, 1, 1]


def test_unique_strings_and_inference():
    check_op("Unique", [np.array(["b", "a", "b"], dtype=object)], num_outputs=4)
    assert infer("Unique", tensor(f32, 3, 4), outputs=4) == \
        (tensor(f32, None), tensor(i64, None), tensor(i64, 12), tensor(i64, None))
    assert infer("Unique", tensor(f32, "b", 4), axis=-1, outputs=3) == \
        (tensor(f32, "b", None), tensor(i64, None), tensor(i64, 4))
    with pytest.raises(TypeInferenceError):
        infer("Unique", tensor(f32, 3), axis=1)


# --- OneHot ---

@pytest.mark.parametrize("axis", [-1, 0, 1, -2, -3])
def test_one_hot(axis):
    indices = np.array([[1, 9, -1], [0, -4, 2]], np.int64)
    check_op("OneHot", [indices, np.array(4, np.int64), np.array([0.0, 2.5], np.float32)],
             {"axis": axis})


def test_one_hot_mixed_dtypes_and_inference():
    check_op("OneHot", [np.array([0.0, 2.0, -1.0], np.float32), np.array(3.0, np.float32),
                        np.array([-1, 5], np.int32)])
    # fractional indices truncate toward zero, as ONNX Runtime does
    got = check_op_ort("OneHot", [np.array([2.7, -0.5], np.float32), np.array(3, np.int64),
                                  np.array([0, 1], np.int64)])[0]
    assert got.tolist() == [[0, 0, 1], [1, 0, 0]]
    check_op("OneHot", [np.array(2, np.int32), np.array(5, np.int64), np.array([0, 1], np.int64)])
    assert infer("OneHot", tensor(i64, "b", 3), np.array(10), tensor(f32, 2)) == \
        tensor(f32, "b", 3, 10)
    assert infer("OneHot", tensor(i64, "b"), tensor(i64), tensor(f32, 2), axis=0) == \
        tensor(f32, None, "b")
    with pytest.raises(TypeInferenceError):
        infer("OneHot", tensor(i64, 3), np.array(4), tensor(f32, 3))
    with pytest.raises(TypeInferenceError):
        infer("OneHot", tensor(i64, 3), np.array(4), tensor(f32, 2), axis=2)
