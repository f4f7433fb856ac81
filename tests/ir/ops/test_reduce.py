import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.ops.reduce import REDUCTIONS
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(0)
NAMES = [r.name for r in REDUCTIONS]
I64 = np.int64


def data_for(name, shape, dtype=np.float32):
    x = rng.standard_normal(shape).astype(dtype)
    return np.abs(x) + 0.5 if name == "ReduceLogSum" else x


def infer(op, *types, outputs=1, **attrs):
    """Output types of one node whose inputs have `types` (an np.ndarray is a constant)."""
    b = GraphBuilder("t")
    vals = [b.constant(t, f"c{i}") if isinstance(t, np.ndarray) else b.input(f"x{i}", t)
            for i, t in enumerate(types)]
    return [v.type for v in b.add(get_op(op), vals, attrs, outputs=outputs)]


# --- Reduce*: values against onnx.reference ----------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("axes,const", [([0, -1], True), ([1], False), ([-2], True), (None, False)])
def test_reduce_matches_onnx(name, keepdims, axes, const):
    x = data_for(name, (3, 1, 5))
    inputs = [x] if axes is None else [x, np.array(axes, I64)]
    check_op(name, inputs, {"keepdims": keepdims}, rtol=1e-5, atol=1e-6,
             const_inputs=[1] if const else [])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("noop", [0, 1])
def test_reduce_empty_axes(name, noop):
    x = data_for(name, (2, 7))
    got = check_op(name, [x, np.array([], I64)], {"keepdims": 0, "noop_with_empty_axes": noop},
                   const_inputs=[1], rtol=1e-5)
    assert got[0].shape == ((2, 7) if noop else ())
    check_op(name, [x], {"noop_with_empty_axes": noop}, rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_reduce_over_an_empty_axis_gives_the_identity(name):
    x = np.zeros((2, 0, 3), np.float32)
    got = check_op(name, [x, np.array([1], I64)], {"keepdims": 0}, const_inputs=[1])[0]
    assert got.shape == (2, 3)
    expected = {"ReduceMax": -np.inf, "ReduceMin": np.inf, "ReduceProd": 1.0,
                "ReduceLogSum": -np.inf, "ReduceLogSumExp": -np.inf, "ReduceMean": np.nan}
    np.testing.assert_array_equal(got, np.full((2, 3), expected.get(name, 0.0), np.float32))


@pytest.mark.parametrize("name", NAMES)
def test_reduce_size0_output(name):
    # the reduced axis is not the empty one: the result is empty, not an identity
    check_op(name, [np.zeros((0, 3), np.float32), np.array([1], I64)], {"keepdims": 1},
             const_inputs=[1])


@pytest.mark.parametrize("name", NAMES)
def test_reduce_rank0(name):
    x = np.array(2.5, np.float32)
    if name == "ReduceLogSumExp":   # onnx.reference cannot run it on a scalar
        np.testing.assert_allclose(run_kiln(name, [x], {"keepdims": 0})[0], 2.5, rtol=1e-6)
    else:
        got = check_op(name, [x], {"keepdims": 0}, rtol=1e-6)
        assert got[0].shape == ()


@pytest.mark.parametrize("name", NAMES)
def test_reduce_float16(name):
    check_op(name, [data_for(name, (4, 7), np.float16), np.array([1], I64)], const_inputs=[1],
             rtol=2e-3, atol=2e-3)


def test_reduce_log_sum_exp_is_stable():
    x = np.array([[1000.0, 1000.0], [-np.inf, -np.inf]], np.float32)
    got = run_kiln("ReduceLogSumExp", [x, np.array([1], I64)], {"keepdims": 0}, const_inputs=[1])
    np.testing.assert_allclose(got[0], [1000 + np.log(2), -np.inf], rtol=1e-6)


@pytest.mark.parametrize("name,dtype", [
    ("ReduceSum", np.int32), ("ReduceSum", np.int64), ("ReduceSum", np.uint64),
    ("ReduceMax", np.int32), ("ReduceMax", np.int8), ("ReduceMax", np.uint8),
    ("ReduceMin", np.int64), ("ReduceMin", np.int8), ("ReduceProd", np.int32),
    ("ReduceProd", np.int64), ("ReduceMean", np.int32), ("ReduceL1", np.int64),
    ("ReduceSumSquare", np.int64), ("ReduceL2", np.int64)])
def test_reduce_integers(name, dtype):
    lo = 0 if np.dtype(dtype).kind == "u" else -4
    x = rng.integers(lo, 5, (3, 5, 2)).astype(dtype)
    check_op(name, [x, np.array([-2], I64)], {"keepdims": 0}, const_inputs=[1])
    check_op(name, [x], {"keepdims": 1})


@pytest.mark.parametrize("name", ["ReduceMax", "ReduceMin"])
def test_reduce_bool_and_empty_integer_identity(name):
    check_op(name, [rng.random((3, 4)) > 0.5, np.array([1], I64)], const_inputs=[1])
    got = check_op(name, [np.zeros((0, 2), np.int32), np.array([0], I64)], {"keepdims": 0},
                   const_inputs=[1])[0]
    info = np.iinfo(np.int32)
    assert got.tolist() == [info.min if name == "ReduceMax" else info.max] * 2


# --- Reduce*: inference ------------------------------------------------------------------------

def test_reduce_infers_symbolic_dims_with_constant_axes():
    x = TensorType(DType.float32, ("batch", 4, "seq"))
    axes = np.array([-1], I64)
    assert infer("ReduceSum", x, axes, keepdims=0)[0].shape == ("batch", 4)
    assert infer("ReduceMax", x, axes)[0].shape == ("batch", 4, 1)
    assert infer("ReduceMean", x)[0].shape == (1, 1, 1)
    assert infer("ReduceMean", x, keepdims=0)[0].shape == ()
    assert infer("ReduceL2", x, noop_with_empty_axes=1)[0] == x


def test_reduce_infers_runtime_axes():
    x = TensorType(DType.float32, ("batch", 1, 5))
    two = TensorType(DType.int64, (2,))
    some = TensorType(DType.int64, ("n",))
    assert infer("ReduceSum", x, two)[0].shape == (None, 1, None)
    assert infer("ReduceSum", x, two, keepdims=0)[0].shape == (None,)
    assert infer("ReduceSum", x, some, keepdims=0)[0].shape is None
    assert infer("ReduceSum", x, TensorType(DType.int64, (0,)), keepdims=0)[0].shape == ()


def test_reduce_infers_unknown_rank():
    x = TensorType(DType.float32, None)
    assert infer("ReduceSum", x, keepdims=0)[0].shape == ()
    assert infer("ReduceSum", x)[0].shape is None
    assert infer("ReduceSum", x, np.array([0], I64), keepdims=0)[0].shape is None


def test_reduce_runs_with_runtime_axes_and_keepdims_0():
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    got = run_kiln("ReduceSum", [x, np.array([2, 0], I64)], {"keepdims": 0})[0]
    np.testing.assert_allclose(got, x.sum(axis=(0, 2)), rtol=1e-5)


@pytest.mark.parametrize("axes", [[3], [-4], [0, 0], [1, -2]])
def test_reduce_bad_axes_fail_inference(axes):
    with pytest.raises(TypeInferenceError):
        run_kiln("ReduceSum", [np.ones((2, 3, 4), np.float32), np.array(axes, I64)],
                 const_inputs=[1])


def test_reduce_bad_runtime_axes_fail_at_run_time():
    with pytest.raises(ExecutionError):
        run_kiln("ReduceSum", [np.ones((2, 3), np.float32), np.array([2], I64)])


@pytest.mark.parametrize("name,x", [
    ("ReduceSum", np.array([True, False])), ("ReduceLogSum", np.ones(3, np.int32)),
    ("ReduceLogSumExp", np.ones(3, np.int64)), ("ReduceProd", np.array(["a"], object))])
def test_reduce_bad_dtype(name, x):
    with pytest.raises(TypeInferenceError):
        run_kiln(name, [x])


def test_reduce_bad_axes_dtype_and_attribute():
    with pytest.raises(TypeInferenceError):
        run_kiln("ReduceSum", [np.ones(3, np.float32), np.array([0.0], np.float32)])
    with pytest.raises(AttributeValueError):
        run_kiln("ReduceSum", [np.ones(3, np.float32)], {"keepdims": 2})


# --- ArgMax / ArgMin ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("last", [0, 1])
def test_arg_with_ties(op, axis, keepdims, last):
    x = rng.integers(0, 3, (5, 7)).astype(np.float32)   # many ties
    got = check_op(op, [x], {"axis": axis, "keepdims": keepdims, "select_last_index": last})
    assert got[0].dtype == np.int64


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.int8, np.float16, np.float64])
def test_arg_dtypes(op, dtype):
    check_op(op, [rng.integers(0, 50, (3, 1, 4)).astype(dtype)], {"axis": 2})


def test_arg_default_axis_and_size0_batch():
    check_op("ArgMax", [rng.standard_normal((3, 4)).astype(np.float32)])
    check_op("ArgMin", [np.zeros((0, 4), np.float32)], {"axis": 1})


@pytest.mark.parametrize("x,attrs", [
    (np.array(1.0, np.float32), {}), (np.ones((2, 3), np.float32), {"axis": 2}),
    (np.zeros((2, 0), np.float32), {"axis": 1}), (np.array([True]), {})])
def test_arg_bad_input(x, attrs):
    with pytest.raises(TypeInferenceError):
        run_kiln("ArgMax", [x], attrs)


# --- CumSum / CumProd --------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize("exclusive", [0, 1])
@pytest.mark.parametrize("reverse", [0, 1])
@pytest.mark.parametrize("axis", [0, -1, 1])
def test_scan(op, exclusive, reverse, axis):
    x = rng.uniform(0.5, 1.5, (3, 5, 2)).astype(np.float32)
    check_op(op, [x, np.array(axis, I64)], {"exclusive": exclusive, "reverse": reverse},
             rtol=1e-5, const_inputs=[1])


@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint32, np.float64])
def test_scan_dtypes_and_runtime_axis(op, dtype):
    x = rng.integers(1, 4, (4, 3)).astype(dtype)
    check_op(op, [x, np.array(-1, np.int32)], {"exclusive": 1})
    check_op(op, [x, np.array(0, I64)], {"reverse": 1})


def test_scan_takes_a_one_element_axis_vector():
    # ONNX asks for a scalar axis; a 1-element vector is accepted too (as onnxruntime does)
    x = np.array([[1, 2], [3, 4]], np.int64)
    assert run_kiln("CumSum", [x, np.array([0], I64)])[0].tolist() == [[1, 2], [4, 6]]


def test_scan_size0_and_1d():
    check_op("CumSum", [np.zeros((0, 3), np.float32), np.array(0, I64)], {"exclusive": 1})
    check_op("CumProd", [np.array([2.0, 3.0, 4.0], np.float32), np.array(0, I64)])


def test_scan_bad_input():
    with pytest.raises(TypeInferenceError):
        run_kiln("CumSum", [np.array(1.0, np.float32), np.array(0, I64)])
    with pytest.raises(TypeInferenceError):
        run_kiln("CumSum", [np.ones((2, 3), np.float32), np.array(2, I64)], const_inputs=[1])
    with pytest.raises(TypeInferenceError):
        run_kiln("CumSum", [np.ones((2, 3), np.float32), np.array([0, 1], I64)])
    with pytest.raises(ExecutionError):
        run_kiln("CumProd", [np.ones((2, 3), np.float32), np.array(-3, I64)])


# --- TopK --------------------------------------------------------------------------------------

@pytest.mark.parametrize("largest", [0, 1])
@pytest.mark.parametrize("axis", [0, -1, 1])
@pytest.mark.parametrize("k", [0, 1, 3])
def test_topk_ties_by_lower_index(largest, axis, k):
    x = rng.integers(0, 3, (3, 5, 4)).astype(np.float32)
    got = check_op("TopK", [x, np.array([k], I64)], {"largest": largest, "axis": axis},
                   num_outputs=2, const_inputs=[1])
    assert got[1].dtype == np.int64


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.int8, np.float64, np.float16])
def test_topk_dtypes_runtime_k(dtype):
    x = rng.integers(0, 100, (2, 7)).astype(dtype)
    check_op("TopK", [x, np.array([4], I64)], num_outputs=2)
    check_op("TopK", [x, np.array([2], I64)], {"largest": 0, "sorted": 0}, num_outputs=2)


def test_topk_inference():
    x = TensorType(DType.float32, ("batch", 9))
    values, indices = infer("TopK", x, np.array([3], I64), outputs=2)
    assert values.shape == ("batch", 3) and indices.dtype is DType.int64
    values, _ = infer("TopK", x, TensorType(DType.int64, (1,)), outputs=2)
    assert values.shape == ("batch", None)


def test_topk_bad_k():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeInferenceError):
        run_kiln("TopK", [x, np.array([4], I64)], num_outputs=2, const_inputs=[1])
    with pytest.raises(TypeInferenceError):
        run_kiln("TopK", [x, np.array([-1], I64)], num_outputs=2, const_inputs=[1])
    with pytest.raises(TypeInferenceError):
        run_kiln("TopK", [x, np.array([1], np.int32)], num_outputs=2)
    with pytest.raises(ExecutionError):
        run_kiln("TopK", [x, np.array([5], I64)], num_outputs=2)


def test_reduce_sum_square_keeps_int32():
    # onnx.reference widens this to int64; ONNX's signature says the output type is the input's
    x = np.array([[3, -4], [5, 6]], np.int32)
    got = run_kiln("ReduceSumSquare", [x, np.array([1], I64)], const_inputs=[1])[0]
    assert got.dtype == np.int32 and got.tolist() == [[25], [61]]
