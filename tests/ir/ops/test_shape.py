import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder, Trait, ops, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.ir.types import SequenceType, TensorType
from tests.ir.ops.harness import check_op, run_kiln, infer, strings
from tests.ir.ops.ort_check import check_op_ort

rng = np.random.default_rng(0)
f32, i64 = DType.float32, DType.int64


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)






# --- Shape, Size ---

@pytest.mark.parametrize("attrs", [{}, {"start": 1}, {"end": -1}, {"start": 1, "end": 2},
                                   {"start": -10}, {"end": 10}, {"start": 2, "end": 1},
                                   {"start": -1}])
def test_shape_slices(attrs):
    got = check_op("Shape", [randn(2, 3, 5)], attrs)[0]
    assert got.dtype == np.int64


@pytest.mark.parametrize("x", [np.array(1.5, np.float32), np.zeros((0, 3), np.int32),
                               strings(2, 1), np.ones((1,), bool)])
def test_shape_and_size_of_odd_inputs(x):
    check_op("Shape", [x])
    check_op("Size", [x])


def test_shape_ops_are_shape_only():
    assert ops.Shape.has(Trait.SHAPE_ONLY) and ops.Size.has(Trait.SHAPE_ONLY)
    assert infer("Shape", tensor(f32, "batch", 3, 4), start=1) == tensor(i64, 2)
    assert infer("Shape", TensorType(f32, None)) == tensor(i64, None)
    assert infer("Size", tensor(f32, "batch", 3)) == tensor(i64)


# --- Reshape ---

@pytest.mark.parametrize("in_shape,target", [
    ((2, 3, 4), [4, 2, 3]), ((2, 3, 4), [2, 12]), ((2, 3, 4), [24]), ((2, 3, 4), [2, -1, 2]),
    ((2, 3, 4), [-1, 2, 3, 4]), ((2, 3, 4), [0, 0, 4]), ((2, 3, 4), [0, -1]),
    ((2, 3, 4), [2, 0, 4, 1]), ((1,), []), ((), [1, 1]), ((0, 3), [0, 3, 1]), ((0, 3), [-1, 3]),
    ((7, 11), [11, 7])])
def test_reshape(in_shape, target):
    x = randn(*in_shape)
    check_op("Reshape", [x, np.array(target, np.int64)], const_inputs=[1])
    check_op("Reshape", [x, np.array(target, np.int64)])   # shape known only at run time


def test_reshape_allowzero_keeps_real_zeros():
    x = np.zeros((0, 3, 4), np.float32)
    got = check_op("Reshape", [x, np.array([3, 4, 0], np.int64)], {"allowzero": 1},
                   const_inputs=[1])
    assert got[0].shape == (3, 4, 0)


@pytest.mark.parametrize("x", [rng.integers(-9, 9, (3, 4)).astype(np.int8), strings(3, 4),
                               rng.random((3, 4)) > 0.5])
def test_reshape_other_dtypes(x):
    check_op("Reshape", [x, np.array([2, -1, 3], np.int64)], const_inputs=[1])


def test_reshape_infers_symbolic_dims():
    x = tensor(f32, "batch", 4, 8)
    assert infer("Reshape", x, np.array([0, -1])) == tensor(f32, "batch", 32)
    assert infer("Reshape", x, np.array([-1, 4, 2, 4])) == tensor(f32, "batch", 4, 2, 4)
    assert infer("Reshape", x, np.array([0, 2, -1])) == tensor(f32, "batch", 2, 16)
    assert infer("Reshape", x, np.array([-1, 8])) == tensor(f32, None, 8)
    assert infer("Reshape", tensor(f32, "b", "s", 6), np.array([0, 0, 2, 3])) == \
        tensor(f32, "b", "s", 2, 3)
    # the shape operand unknown at compile time: only its length is known
    assert infer("Reshape", x, tensor(i64, 3)) == tensor(f32, None, None, None)
    assert infer("Reshape", tensor(f32, 3, 4), tensor(i64, 1)) == tensor(f32, 12)
    assert infer("Reshape", x, tensor(i64, "n")) == TensorType(f32, None)


@pytest.mark.parametrize("target,attrs", [([-1, -1], {}), ([5, 5], {}), ([0, -1], {"allowzero": 1}),
                                          ([2, -5], {}), ([7, -1], {}), ([0, 0, 0, 0], {}),
                                          ([-1, 0], {"allowzero": 1})])
def test_reshape_bad_shape(target, attrs):
    with pytest.raises(TypeInferenceError):
        run_kiln("Reshape", [randn(2, 3, 4), np.array(target, np.int64)], attrs, const_inputs=[1])


def test_reshape_cannot_solve_minus_one_next_to_a_zero_dim():
    with pytest.raises(TypeInferenceError, match="-1"):
        run_kiln("Reshape", [np.zeros((2, 0, 1), np.float32), np.array([-1, 0, 3], np.int64)],
                 const_inputs=[1])


def test_reshape_bad_shape_at_run_time_and_bad_dtype():
    with pytest.raises(ExecutionError, match="Reshape node"):
        run_kiln("Reshape", [randn(2, 3), np.array([4, 2], np.int64)])
    with pytest.raises(TypeInferenceError):
        run_kiln("Reshape", [randn(2, 3), np.array([3, 2], np.int32)], const_inputs=[1])


# --- Flatten, Squeeze, Unsqueeze, Identity ---

@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -2, -3])
def test_flatten(axis):
    check_op("Flatten", [randn(2, 3, 5)], {"axis": axis})


def test_flatten_default_size0_and_symbolic():
    check_op("Flatten", [np.zeros((3, 0, 2), np.int64)])
    check_op("Flatten", [strings(2, 3, 2)], {"axis": 2})
    assert infer("Flatten", tensor(f32, "batch", 4, 8)) == tensor(f32, "batch", 32)
    assert infer("Flatten", tensor(f32, 2, "n")) == tensor(f32, 2, "n")
    with pytest.raises(TypeInferenceError):
        infer("Flatten", tensor(f32, 2, 3), axis=3)


@pytest.mark.parametrize("shape,axes", [((1, 3, 1, 5), [0]), ((1, 3, 1, 5), [0, 2]),
                                        ((1, 3, 1, 5), [-2]), ((1, 3, 1, 5), None), ((1,), [0]),
                                        ((1, 1), None), ((0, 1), [1])])
def test_squeeze(shape, axes):
    inputs = [randn(*shape)] + ([] if axes is None else [np.array(axes, np.int64)])
    check_op("Squeeze", inputs, const_inputs=[1])
    check_op("Squeeze", inputs)


def test_scalar_axes_count_as_one_axis():
    # onnx.reference rejects scalar axes; ONNX's own function bodies use them, ONNX Runtime takes
    # them for Unsqueeze
    x = randn(3, 2)
    got = check_op_ort("Unsqueeze", [x, np.array(-1, np.int64)], const_inputs=[1])[0]
    assert got.shape == (3, 2, 1)
    assert run_kiln("Squeeze", [x[:, :1], np.array(1, np.int64)])[0].shape == (3,)
    assert infer("Unsqueeze", tensor(f32, "b"), tensor(i64)) == tensor(f32, None, None)


def test_squeeze_inference_and_errors():
    assert infer("Squeeze", tensor(f32, "batch", 1, 4), np.array([1])) == tensor(f32, "batch", 4)
    assert infer("Squeeze", tensor(f32, "batch", 1, 4)) == TensorType(f32, None)
    assert infer("Squeeze", tensor(f32, 1, 4, 1)) == tensor(f32, 4)
    with pytest.raises(TypeInferenceError):
        infer("Squeeze", tensor(f32, 2, 3), np.array([0]))
    with pytest.raises(TypeInferenceError):
        infer("Squeeze", tensor(f32, 1, 3), np.array([2]))
    with pytest.raises(ExecutionError):
        run_kiln("Squeeze", [randn(2, 3), np.array([0], np.int64)])


@pytest.mark.parametrize("shape,axes", [((3, 5), [0]), ((3, 5), [2]), ((3, 5), [-1]),
                                        ((3, 5), [3, 0]), ((3, 5), [1, -1, 0]), ((), [0]),
                                        ((0,), [0, 2])])
def test_unsqueeze(shape, axes):
    check_op("Unsqueeze", [randn(*shape), np.array(axes, np.int64)], const_inputs=[1])
    check_op("Unsqueeze", [randn(*shape), np.array(axes, np.int64)])


def test_unsqueeze_inference_and_errors():
    x = tensor(f32, "batch", 4)
    assert infer("Unsqueeze", x, np.array([0, -1])) == tensor(f32, 1, "batch", 4, 1)
    assert infer("Unsqueeze", x, tensor(i64, 2)) == tensor(f32, None, None, None, None)
    check_op("Unsqueeze", [strings(2), np.array([1], np.int64)], const_inputs=[1])
    for axes in ([0, 0], [3], [-1, 3]):
        with pytest.raises(TypeInferenceError):
            infer("Unsqueeze", tensor(f32, 2, 3), np.array(axes))


def test_views_are_marked():
    for op in (ops.Reshape, ops.Flatten, ops.Squeeze, ops.Unsqueeze, ops.Identity):
        assert op.has(Trait.VIEW)


@pytest.mark.parametrize("x", [randn(3, 5), np.array(2, np.int32), strings(3),
                               np.zeros((0, 2), bool)])
def test_identity(x):
    check_op("Identity", [x])


def test_identity_on_a_sequence():
    b = GraphBuilder()
    s = b.input("s", SequenceType(tensor(f32, None)))
    out = b.Identity(s)
    assert out.type == s.type
    b.output(out)
    items = [randn(2), randn(3)]
    got = interpret(b.graph, {"s": items})[0]
    assert len(got) == 2 and all(np.array_equal(a, b) for a, b in zip(got, items))


# --- Expand, ConstantOfShape, Range, EyeLike ---

@pytest.mark.parametrize("in_shape,target", [((3, 1), [2, 1, 6]), ((3, 1), [3, 4]), ((1,), [5]),
                                             ((2, 3), [1, 1]), ((), [2, 3]), ((1, 3), [0, 1]),
                                             ((4,), []), ((1, 3), [7, 1])])
def test_expand(in_shape, target):
    x = randn(*in_shape)
    check_op("Expand", [x, np.array(target, np.int64)], const_inputs=[1])
    check_op("Expand", [x, np.array(target, np.int64)])


def test_expand_dtypes_inference_and_errors():
    check_op("Expand", [strings(1, 2), np.array([3, 1], np.int64)], const_inputs=[1])
    check_op("Expand", [np.array([True, False]), np.array([2, 2], np.int64)])
    assert infer("Expand", tensor(f32, "batch", 1), np.array([1, 5])) == tensor(f32, "batch", 5)
    assert infer("Expand", tensor(f32, 3, 1), tensor(i64, 3)) == tensor(f32, None, 3, None)
    with pytest.raises(TypeInferenceError):
        infer("Expand", tensor(f32, 3, 2), np.array([4, 2]))
    with pytest.raises(ExecutionError):
        run_kiln("Expand", [randn(3, 2), np.array([4, 2], np.int64)])


@pytest.mark.parametrize("shape,value", [([2, 3], None), ([4], np.array([7], np.int32)),
                                         ([], np.array([1.5], np.float64)), ([3, 0], None),
                                         ([1, 2], np.array([True]))])
def test_constant_of_shape(shape, value):
    attrs = {} if value is None else {"value": value}
    check_op("ConstantOfShape", [np.array(shape, np.int64)], attrs, const_inputs=[0])
    check_op("ConstantOfShape", [np.array(shape, np.int64)], attrs)


def test_constant_of_shape_inference_and_errors():
    assert infer("ConstantOfShape", np.array([2, 5])) == tensor(f32, 2, 5)
    assert infer("ConstantOfShape", tensor(i64, 3), value=np.array([1], np.int8)) == \
        tensor(DType.int8, None, None, None)
    with pytest.raises(AttributeValueError):
        infer("ConstantOfShape", np.array([2]), value=np.array([1, 2], np.int64))
    with pytest.raises(TypeInferenceError):
        infer("ConstantOfShape", np.array([2, -1]))


@pytest.mark.parametrize("start,limit,delta", [(3, 9, 3), (10, 4, -2), (1, 1, 1), (5, 2, 1),
                                               (-7, 8, 5)])
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.int16, np.float32, np.float64])
def test_range(start, limit, delta, dtype):
    inputs = [np.array(v, dtype) for v in (start, limit, delta)]
    check_op("Range", inputs, const_inputs=[0, 1, 2])
    check_op("Range", inputs)


def test_range_fractional_and_low_precision():
    check_op("Range", [np.array(v, np.float32) for v in (0.5, 2.9, 0.3)], const_inputs=[0, 1, 2])
    import ml_dtypes
    for dt in (np.float16, ml_dtypes.bfloat16):
        check_op("Range", [np.array(v, dt) for v in (1, 5, 0.5)])


def test_range_inference_and_errors():
    c = lambda v: np.array(v, np.int64)  # noqa: E731
    assert infer("Range", c(0), c(10), c(3)) == tensor(i64, 4)
    big = 2 ** 62   # exact integer arithmetic, no float rounding of the length
    assert infer("Range", c(big), c(big + 7), c(2)) == tensor(i64, 4)
    got = run_kiln("Range", [c(big), c(big + 7), c(2)])[0]
    assert got.tolist() == [big, big + 2, big + 4, big + 6]
    assert infer("Range", tensor(i64), c(10), c(3)) == tensor(i64, None)
    with pytest.raises(TypeInferenceError):
        infer("Range", c(0), c(10), c(0))
    with pytest.raises(TypeInferenceError):
        infer("Range", c(0), np.array(10, np.int32), c(1))
    with pytest.raises(ExecutionError):
        run_kiln("Range", [c(0), c(5), c(0)])


@pytest.mark.parametrize("shape,k", [((3, 3), 0), ((3, 5), 1), ((5, 3), -2), ((4, 4), 9),
                                     ((2, 7), -3), ((0, 3), 0)])
def test_eye_like(shape, k):
    check_op("EyeLike", [randn(*shape)], {"k": k})
    ints = rng.integers(0, 5, shape).astype(np.int32)
    check_op("EyeLike", [ints], {"k": k, "dtype": DType.float64})


def test_eye_like_errors():
    with pytest.raises(TypeInferenceError):
        infer("EyeLike", tensor(f32, 3))
    assert infer("EyeLike", tensor(f32, "n", 3), dtype=DType.bool) == tensor(DType.bool, "n", 3)


# --- Dropout ---

@pytest.mark.parametrize("ratio", [None, 0.3])
def test_dropout_in_inference_mode_is_identity(ratio):
    x = randn(3, 5)
    inputs = [x, None if ratio is None else np.array(ratio, np.float32)]
    y, mask = check_op("Dropout", inputs, num_outputs=2)
    assert np.array_equal(y, x) and mask.all()
    check_op("Dropout", inputs + [np.array(False)], num_outputs=2)
    check_op("Dropout", [x])


def test_dropout_training_with_seed_matches_reference():
    x = randn(4, 7)
    y, mask = check_op("Dropout", [x, np.array(0.4, np.float32), np.array(True)], {"seed": 3},
                       num_outputs=2)
    assert 0 < mask.sum() < mask.size
    np.testing.assert_allclose(y[mask], x[mask] / np.float32(0.6), rtol=1e-6)
    assert (y[~mask] == 0).all()
    check_op("Dropout", [x, np.array(0.0, np.float32), np.array(True)], {"seed": 3}, num_outputs=2)


def test_dropout_training_without_seed_is_random_and_stateful():
    assert ops.Dropout.has(Trait.STATEFUL)
    x = np.ones((64, 64), np.float32)
    feeds = [x, np.array(0.5, np.float32), np.array(True)]
    a, ma = run_kiln("Dropout", feeds, num_outputs=2)
    b, mb = run_kiln("Dropout", feeds, num_outputs=2)
    assert not np.array_equal(ma, mb)
    assert 0.4 < ma.mean() < 0.6
    assert set(np.unique(a)) <= {0.0, 2.0}


def test_dropout_errors():
    with pytest.raises(TypeInferenceError):
        infer("Dropout", tensor(DType.int32, 3))
    with pytest.raises(TypeInferenceError):
        infer("Dropout", tensor(f32, 3), tensor(f32), tensor(DType.int64))
    with pytest.raises(ExecutionError):
        run_kiln("Dropout", [randn(3), np.array(1.5, np.float32), np.array(True)])


# --- inference never crashes on unknown ranks or symbolic dims ---

def test_inference_survives_unknown_and_symbolic_shapes():
    """Every shape, movement and indexing op infers (or reports a TypeInferenceError, never an
    internal crash) when its operands have unknown rank, symbolic dims or non-constant values."""
    from kiln.ir.graph import Value
    from kiln.ir.infer import infer_types
    from kiln.ir.ops import OP_TABLE
    modules = {f"kiln.ir.ops.{m}" for m in ("shape", "movement", "layout", "indexing")}
    mine = [op for op in OP_TABLE.values() if op.reference.__module__ in modules]
    assert len(mine) == 34
    shapes = [None, ("a", None, 3), (None,), (), ("n",)]
    special = {("Compress", 1): DType.bool, ("Dropout", 1): f32, ("Dropout", 2): DType.bool}
    attrs = {"Concat": {"axis": 0}, "DepthToSpace": {"blocksize": 2},
             "SpaceToDepth": {"blocksize": 2}}
    for op in mine:
        for shape in shapes:
            for data_dtype in (f32, i64):
                ins = []
                for i in range(len(op.inputs)):
                    data_like = i == 0 or (op.name, i) in {
                        ("ScatterND", 2), ("ScatterElements", 2), ("TensorScatter", 1)}
                    dt = special.get((op.name, i), data_dtype if data_like else i64)
                    ins.append(Value(f"v{i}", TensorType(dt, shape if i == 0 else (None,))))
                try:
                    infer_types(op, ins, attrs.get(op.name, {}), 2 if op.name == "Split" else 1)
                except (TypeInferenceError, AttributeValueError) as e:
                    assert "inference failed" not in str(e), f"{op.name}: {e}"
