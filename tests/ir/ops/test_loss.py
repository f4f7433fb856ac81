import numpy as np
import pytest

from kiln.errors import AttributeValueError, ExecutionError, TypeInferenceError
from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from tests.ir.ops.harness import check_op, run_kiln

rng = np.random.default_rng(2)
TOL = {"rtol": 1e-5, "atol": 1e-5}
OPS = ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"]


def case(shape, classes=5, dtype=np.float32, tdtype=np.int64):
    x = rng.standard_normal(shape).astype(dtype)
    target = rng.integers(0, classes, (shape[0],) + shape[2:]).astype(tdtype)
    weight = rng.random(classes).astype(dtype)
    return x, target, weight


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", None])
@pytest.mark.parametrize("shape", [(3, 5), (2, 5, 7), (2, 5, 3, 1, 2), (1, 5, 1)])
def test_loss_matches_onnx(op, reduction, shape):
    x, target, weight = case(shape)
    attrs = {} if reduction is None else {"reduction": reduction}
    check_op(op, [x, target], attrs, **TOL)
    check_op(op, [x, target, weight], attrs, **TOL)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("ignore_index", [0, 3, -1])
def test_loss_ignore_index(op, reduction, ignore_index):
    x, target, weight = case((4, 5, 3))
    target[0, 0] = target[1, 2] = ignore_index
    attrs = {"reduction": reduction, "ignore_index": ignore_index}
    check_op(op, [x, target.astype(np.int32), weight], attrs, **TOL)
    if ignore_index == -1 and op == "NegativeLogLikelihoodLoss":
        # onnx.reference reads ignore_index=-1 without weights as "no ignore_index" (mean then
        # divides by every sample); onnxruntime and the spec leave ignored samples out. No
        # weights must equal all-ones weights.
        ones = np.ones(5, np.float32)
        got = run_kiln(op, [x, target], attrs)[0]
        np.testing.assert_allclose(got, check_op(op, [x, target, ones], attrs, **TOL)[0], **TOL)
    else:
        check_op(op, [x, target], attrs, **TOL)


def test_softmax_cross_entropy_log_prob_output():
    x, target, weight = case((3, 5, 2))
    loss, log_prob = check_op("SoftmaxCrossEntropyLoss", [x, target, weight], num_outputs=2, **TOL)
    assert loss.shape == () and log_prob.shape == x.shape


@pytest.mark.parametrize("op", OPS)
def test_loss_float64_and_float16(op):
    x, target, weight = case((4, 5, 2), dtype=np.float64)
    check_op(op, [x, target, weight], {"reduction": "sum"}, rtol=1e-12)
    x, target, weight = case((4, 5, 2), dtype=np.float16)
    got = check_op(op, [x, target, weight], rtol=5e-3, atol=5e-3)
    assert got[0].dtype == np.float16


def test_mean_divides_by_the_applied_weights():
    log_prob = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]], np.float32))
    weight = np.array([1.0, 2.0, 3.0], np.float32)
    target = np.array([0, 2], np.int64)
    got = run_kiln("NegativeLogLikelihoodLoss", [log_prob, target, weight])[0]
    expected = -(1 * np.log(0.5) + 3 * np.log(0.7)) / 4
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # an ignored sample adds neither loss nor weight
    got = run_kiln("NegativeLogLikelihoodLoss", [log_prob, target, weight], {"ignore_index": 2})[0]
    np.testing.assert_allclose(got, -np.log(0.5), rtol=1e-6)


def test_loss_infers_symbolic_shapes():
    b = GraphBuilder("t")
    x = b.input("x", TensorType(DType.float32, ("batch", 10, "h")))
    t = b.input("t", TensorType(DType.int64, (None, "h")))
    loss, log_prob = b.add(get_op("SoftmaxCrossEntropyLoss"), [x, t], {"reduction": "none"},
                           outputs=2)
    assert loss.type == TensorType(DType.float32, ("batch", "h")) and log_prob.type == x.type
    (mean,) = b.add(get_op("NegativeLogLikelihoodLoss"), [x, t], {})
    assert mean.type == TensorType(DType.float32, ())


@pytest.mark.parametrize("op", OPS)
def test_loss_bad_input(op):
    x, target, weight = case((3, 5, 2))
    with pytest.raises(TypeInferenceError):                  # target rank
        run_kiln(op, [x, target[:, 0:1, None]])
    with pytest.raises(TypeInferenceError):                  # target dims
        run_kiln(op, [x, target[:2]])
    with pytest.raises(TypeInferenceError):                  # float target
        run_kiln(op, [x, target.astype(np.float32)])
    with pytest.raises(TypeInferenceError):                  # weights per class
        run_kiln(op, [x, target, weight[:4]])
    with pytest.raises(TypeInferenceError):                  # rank-1 scores
        run_kiln(op, [x[0, :, 0], target[0, 0]])
    with pytest.raises(AttributeValueError):
        run_kiln(op, [x, target], {"reduction": "max"})
    target[0, 0] = 5
    with pytest.raises(ExecutionError):                      # class out of range
        run_kiln(op, [x, target])


def test_nll_has_one_output():
    x, target, _ = case((3, 5))
    with pytest.raises(TypeInferenceError):
        run_kiln("NegativeLogLikelihoodLoss", [x, target], num_outputs=2)
