import math

import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(1)
TOL = {"rtol": 1e-4, "atol": 1e-5}


def randn(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def infer(op, *types, outputs=1, **attrs):
    b = GraphBuilder("t")
    vals = [b.input(f"x{i}", t) for i, t in enumerate(types)]
    return [v.type for v in b.add(get_op(op), vals, attrs, outputs=outputs)]


# --- Softmax, LogSoftmax, Hardmax --------------------------------------------------------------

@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_softmax_family(op, axis):
    attrs = {} if axis is None else {"axis": axis}
    check_op(op, [randn(3, 5, 7)], attrs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_edge_shapes_and_dtypes(op):
    check_op(op, [randn(1)], rtol=1e-6)
    check_op(op, [np.zeros((0, 3), np.float32)])
    check_op(op, [randn(2, 0)], {"axis": 0})
    check_op(op, [randn(4, 7, dtype=np.float64)], rtol=1e-12)
    got = check_op(op, [randn(4, 7, dtype=np.float16)], rtol=2e-3, atol=2e-3)
    assert got[0].dtype == np.float16


def test_softmax_is_stable_and_hardmax_picks_the_first_max():
    x = np.array([[1000.0, 1000.0, -1000.0]], np.float32)
    np.testing.assert_allclose(run_kiln("Softmax", [x])[0], [[0.5, 0.5, 0.0]], atol=1e-7)
    np.testing.assert_allclose(run_kiln("LogSoftmax", [x])[0][0, :2], [-np.log(2)] * 2, rtol=1e-6)
    assert run_kiln("Hardmax", [x])[0].tolist() == [[1.0, 0.0, 0.0]]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax", "Hardmax"])
def test_softmax_family_bad_input(op):
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [np.ones((2, 3), np.int32)])
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [np.ones((2, 3), np.float32)], {"axis": 2})
    with pytest.raises(TypeInferenceError):
        run_kiln(op, [np.array(1.0, np.float32)])


# --- BatchNormalization ------------------------------------------------------------------------

def bn_inputs(shape, c):
    return [randn(*shape), randn(c), randn(c), randn(c), np.abs(randn(c)) + 0.1]


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 3), (5, 3, 1), (0, 3, 2)])
def test_batch_norm_inference(shape):
    check_op("BatchNormalization", bn_inputs(shape, 3), **TOL)
    check_op("BatchNormalization", bn_inputs(shape, 3), {"epsilon": 1e-2}, **TOL)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 3)])
def test_batch_norm_training(shape):
    got = check_op("BatchNormalization", bn_inputs(shape, 3), {"training_mode": 1, "momentum": 0.7},
                   num_outputs=3, **TOL)
    assert got[1].shape == (3,) and got[2].shape == (3,)


def test_batch_norm_float16():
    inputs = [x.astype(np.float16) for x in bn_inputs((2, 3, 4), 3)]
    check_op("BatchNormalization", inputs, rtol=5e-3, atol=5e-3)


def test_batch_norm_bad_input():
    with pytest.raises(TypeInferenceError):
        run_kiln("BatchNormalization", bn_inputs((2, 3, 4), 3)[:4] + [randn(4)])
    with pytest.raises(TypeInferenceError):
        run_kiln("BatchNormalization", bn_inputs((2, 3, 4), 3), num_outputs=3)
    with pytest.raises(TypeInferenceError):
        run_kiln("BatchNormalization", [randn(3)] + bn_inputs((2, 3), 3)[1:])
    with pytest.raises(AttributeValueError):
        run_kiln("BatchNormalization", bn_inputs((2, 3), 3), {"training_mode": 2})


# --- LayerNormalization, RMSNormalization --------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_layer_norm_axes(axis):
    x = randn(2, 3, 5)
    scale, bias = randn(*x.shape[axis:]), randn(*x.shape[axis:])
    got = check_op("LayerNormalization", [x, scale, bias], {"axis": axis}, num_outputs=3, **TOL)
    assert got[1].shape == x.shape[:axis % 3] + (1,) * (3 - axis % 3)


def test_layer_norm_defaults_broadcast_scale_and_no_bias():
    check_op("LayerNormalization", [randn(4, 7), randn(7)], **TOL)
    check_op("LayerNormalization", [randn(4, 7), randn(1)], {"epsilon": 0.1}, **TOL)
    check_op("LayerNormalization", [randn(7), randn(7), randn(7)], **TOL)
    check_op("LayerNormalization", [randn(0, 5), randn(5), randn(5)], num_outputs=3)


def test_layer_norm_float16_stashes_in_float32():
    x, s, b = randn(3, 8, dtype=np.float16), randn(8, dtype=np.float16), randn(8, dtype=np.float16)
    check_op("LayerNormalization", [x, s, b], rtol=5e-3, atol=5e-3)
    y, mean, inv_std = run_kiln("LayerNormalization", [x, s, b], num_outputs=3)
    assert y.dtype == np.float16 and mean.dtype == np.float32 and inv_std.dtype == np.float32
    np.testing.assert_allclose(mean[:, 0], x.astype(np.float32).mean(axis=1), rtol=1e-5)


def test_layer_norm_infers_symbolic_dims():
    x = TensorType(DType.float16, ("batch", "seq", 8))
    y, mean, inv = infer("LayerNormalization", x, TensorType(DType.float16, (8,)), outputs=3)
    assert y == x and mean == TensorType(DType.float32, ("batch", "seq", 1)) and inv == mean


def test_layer_norm_bad_input():
    with pytest.raises(TypeInferenceError):
        run_kiln("LayerNormalization", [randn(2, 3), randn(4)])
    with pytest.raises(TypeInferenceError):
        run_kiln("LayerNormalization", [randn(2, 3), randn(3)], {"axis": 2})
    with pytest.raises(TypeInferenceError):
        run_kiln("LayerNormalization", [np.ones((2, 3), np.int64), np.ones(3, np.int64)])
    with pytest.raises(AttributeValueError):
        run_kiln("LayerNormalization", [randn(2, 3), randn(3)], {"stash_type": DType.int32})


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_rms_norm(axis):
    x = randn(3, 5, 2)
    check_op("RMSNormalization", [x, randn(*x.shape[axis:])], {"axis": axis}, **TOL)


def test_rms_norm_defaults_float16_and_errors():
    check_op("RMSNormalization", [randn(4, 9), randn(9)], {"epsilon": 1e-3}, **TOL)
    check_op("RMSNormalization", [randn(3, 6, dtype=np.float16), randn(6, dtype=np.float16)],
             rtol=5e-3, atol=5e-3)
    with pytest.raises(TypeInferenceError):
        run_kiln("RMSNormalization", [randn(2, 3), randn(2)])
    with pytest.raises(TypeInferenceError):
        run_kiln("RMSNormalization", [np.array(1.0, np.float32), np.ones(1, np.float32)])


# --- GroupNormalization, InstanceNormalization --------------------------------------------------

@pytest.mark.parametrize("groups", [1, 2, 3, 6])
@pytest.mark.parametrize("shape", [(2, 6, 5, 3), (3, 6, 7), (1, 6)])
def test_group_norm(groups, shape):
    check_op("GroupNormalization", [randn(*shape), randn(6), randn(6)], {"num_groups": groups},
             **TOL)


def test_group_norm_epsilon_float16_and_errors():
    check_op("GroupNormalization", [randn(2, 4, 3), randn(4), randn(4)],
             {"num_groups": 2, "epsilon": 0.01}, **TOL)
    check_op("GroupNormalization", [randn(2, 4, 3, dtype=np.float16), randn(4, dtype=np.float16),
                                    randn(4, dtype=np.float16)], {"num_groups": 2},
             rtol=1e-2, atol=1e-2)
    with pytest.raises(TypeInferenceError):
        run_kiln("GroupNormalization", [randn(2, 6, 3), randn(6), randn(6)], {"num_groups": 4})
    with pytest.raises(AttributeValueError):
        run_kiln("GroupNormalization", [randn(2, 6, 3), randn(6), randn(6)], {"num_groups": 0})
    with pytest.raises(AttributeValueError):
        run_kiln("GroupNormalization", [randn(2, 6, 3), randn(6), randn(6)])
    with pytest.raises(TypeInferenceError):
        run_kiln("GroupNormalization", [randn(2, 6, 3), randn(3), randn(3)], {"num_groups": 3})


@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 3, 5, 2), (2, 3, 2, 1, 3), (0, 3, 4)])
def test_instance_norm(shape):
    check_op("InstanceNormalization", [randn(*shape), randn(3), randn(3)], **TOL)
    check_op("InstanceNormalization", [randn(*shape), randn(3), randn(3)], {"epsilon": 0.5}, **TOL)


def test_instance_norm_bad_input():
    with pytest.raises(TypeInferenceError):
        run_kiln("InstanceNormalization", [randn(2, 3, 4), randn(4), randn(4)])
    with pytest.raises(TypeInferenceError):
        run_kiln("InstanceNormalization", [randn(3), randn(3), randn(3)])


# --- MeanVarianceNormalization, LpNormalization, LRN --------------------------------------------

@pytest.mark.parametrize("axes", [None, [1], [0, -1], [1, 2, 3]])
def test_mvn(axes):
    attrs = {} if axes is None else {"axes": axes}
    check_op("MeanVarianceNormalization", [randn(3, 2, 5, 3)], attrs, **TOL)


def test_mvn_bad_axes():
    with pytest.raises(TypeInferenceError):
        run_kiln("MeanVarianceNormalization", [randn(3, 4)])      # default axes need rank 4
    with pytest.raises(AttributeValueError):
        run_kiln("MeanVarianceNormalization", [randn(3, 4)], {"axes": [0, -2]})


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [0, -1, 1])
def test_lp_norm(p, axis):
    x = np.abs(randn(3, 4, 5)) if p == 1 else randn(3, 4, 5)   # onnx.reference skips |x| for p=1
    check_op("LpNormalization", [x], {"p": p, "axis": axis}, rtol=1e-5, atol=1e-6)


def test_lp_norm_uses_absolute_values_and_zero_norm():
    x = np.array([[3.0, -4.0], [0.0, 0.0]], np.float32)
    np.testing.assert_allclose(run_kiln("LpNormalization", [x], {"p": 1})[0],
                               [[3 / 7, -4 / 7], [0, 0]], rtol=1e-6)
    check_op("LpNormalization", [x])
    with pytest.raises(AttributeValueError):
        run_kiln("LpNormalization", [x], {"p": 3})


def lrn_by_definition(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    square_sum = np.zeros_like(x)
    c = x.shape[1]
    for ch in range(c):
        lo, hi = max(0, ch - (size - 1) // 2), min(c, ch + math.ceil((size - 1) / 2) + 1)
        square_sum[:, ch] = np.sum(x[:, lo:hi] ** 2, axis=1)
    return x / (bias + alpha / size * square_sum) ** beta


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size):
    # onnx.reference's LRN is right only when N == C, so check it there ...
    check_op("LRN", [randn(5, 5, 3, 2)], {"size": size, "alpha": 0.01, "bias": 2.0}, rtol=1e-5)
    # ... and against the definition for other shapes and ranks
    for shape in [(2, 7, 3, 3), (3, 4, 5), (1, 2, 2, 1, 2)]:
        x = randn(*shape)
        got = run_kiln("LRN", [x], {"size": size, "beta": 0.5})[0]
        np.testing.assert_allclose(got, lrn_by_definition(x, size, beta=0.5), rtol=1e-5)


def test_lrn_bad_input():
    with pytest.raises(AttributeValueError):
        run_kiln("LRN", [randn(2, 3, 4)])
    with pytest.raises(AttributeValueError):
        run_kiln("LRN", [randn(2, 3, 4)], {"size": 0})
    with pytest.raises(TypeInferenceError):
        run_kiln("LRN", [randn(2, 3)], {"size": 3})
