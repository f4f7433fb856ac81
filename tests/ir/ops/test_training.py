"""Optimizer steps (ai.onnx.preview.training) against onnx.reference and the formulas."""

import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import DType, GraphBuilder, tensor
from tests.ir.ops.harness import check_op, run_kiln, run_onnx

rng = np.random.default_rng(0)
TRAINING = "ai.onnx.preview.training"


def tensors(shapes, groups, dtype=np.float32, positive_last=True):
    """groups lists of tensors of the given shapes (the last group, a squared sum, positive)."""
    out = []
    for g in range(groups):
        for s in shapes:
            x = rng.standard_normal(s).astype(dtype)
            out.append(np.abs(x) if positive_last and g == groups - 1 else x)
    return out


R = np.array(0.1, np.float32)
T0, T5 = np.array(0, np.int64), np.array(5, np.int64)
SHAPES = [[(7,)], [(3, 5), ()], [(2,), (0, 3), (1, 1, 3)]]


# --- Momentum --------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("mode", ["standard", "nesterov"])
@pytest.mark.parametrize("t", [T0, T5])
def test_momentum_matches_reference(shapes, mode, t):
    attrs = {"alpha": 0.9, "beta": 0.5, "norm_coefficient": 0.01, "mode": mode}
    outs = check_op("Momentum", [R, t, *tensors(shapes, 3, positive_last=False)], attrs,
                    num_outputs=2 * len(shapes), rtol=1e-5, atol=1e-6)
    assert all(o.dtype == np.float32 for o in outs)


def test_momentum_formula_float64():
    x, g, v = np.array([1.0, -2.0]), np.array([0.5, 0.25]), np.array([0.1, 0.2])
    attrs = {"alpha": 0.9, "beta": 0.3, "norm_coefficient": 0.0, "mode": "standard"}
    x_new, v_new = run_kiln("Momentum", [np.float64(0.5), T5, x, g, v], attrs, num_outputs=2)
    np.testing.assert_allclose(v_new, 0.9 * v + 0.3 * g)
    np.testing.assert_allclose(x_new, x - 0.5 * (0.9 * v + 0.3 * g))
    # the first step (T = 0) takes the whole gradient
    _, v_first = run_kiln("Momentum", [np.float64(0.5), T0, x, g, v], attrs, num_outputs=2)
    np.testing.assert_allclose(v_first, 0.9 * v + g)


# --- Adagrad ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("t", [T0, T5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adagrad_matches_reference(shapes, t, dtype):
    attrs = {"decay_factor": 0.1, "epsilon": 1e-5, "norm_coefficient": 0.001}
    outs = check_op("Adagrad", [R, t, *tensors(shapes, 3, dtype)], attrs,
                    num_outputs=2 * len(shapes), rtol=1e-5, atol=1e-6)
    assert all(o.dtype == dtype for o in outs)


def test_adagrad_defaults():
    check_op("Adagrad", [R, T5, *tensors([(4,)], 3)], {}, num_outputs=2, rtol=1e-5)


# --- Adam ------------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", SHAPES)
def test_adam_first_step_matches_reference(shapes):
    attrs = {"alpha": 0.95, "beta": 0.1, "epsilon": 1e-7, "norm_coefficient": 0.001}
    check_op("Adam", [R, T0, *tensors(shapes, 4)], attrs, num_outputs=3 * len(shapes),
             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shapes", SHAPES)
def test_adam_later_steps_match_reference_values(shapes):
    # onnx.reference computes these in float64 without rounding back; kiln keeps float32
    attrs = {"alpha": 0.9, "beta": 0.99, "epsilon": 1e-3, "norm_coefficient": 0.01,
             "norm_coefficient_post": 0.02}
    inputs = [R, T5, *tensors(shapes, 4)]
    got = run_kiln("Adam", inputs, attrs, num_outputs=3 * len(shapes))
    want = run_onnx("Adam", inputs, attrs, num_outputs=3 * len(shapes), domain=TRAINING)
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == np.shape(w)
        np.testing.assert_allclose(g, np.asarray(w, np.float32), rtol=1e-5, atol=1e-6)


def test_adam_bias_correction_formula():
    x, g, v, h = (np.array([0.5]),) * 4
    a, b, lr, t = 0.9, 0.999, 0.01, 3
    x_new, v_new, h_new = run_kiln("Adam", [np.float64(lr), np.array(t), x, g, v, h],
                                   {"alpha": a, "beta": b, "epsilon": 0.0}, num_outputs=3)
    v_want = a * v + (1 - a) * g
    h_want = b * h + (1 - b) * g * g
    step = lr * np.sqrt(1 - b ** t) / (1 - a ** t) * v_want / np.sqrt(h_want)
    np.testing.assert_allclose(x_new, x - step)
    np.testing.assert_allclose(v_new, v_want)
    np.testing.assert_allclose(h_new, h_want)


# --- types and errors ------------------------------------------------------------------------

def test_output_types_follow_the_optimized_tensors():
    b = GraphBuilder("t")
    r, t = b.input("r", tensor(DType.float32)), b.input("t", tensor(DType.int64))
    xs = [b.input(f"x{i}", tensor(DType.float32, "n", 3)) for i in range(2)]
    gs = [b.input(f"g{i}", tensor(DType.float32, "n", 3)) for i in range(2)]
    vs = [b.input(f"v{i}", tensor(DType.float32, "n", 3)) for i in range(2)]
    hs = [b.input(f"h{i}", tensor(DType.float32, "n", 3)) for i in range(2)]
    outs = b.Adam(r, t, *xs, *gs, *vs, *hs, outputs=6)
    assert [o.type for o in outs] == [tensor(DType.float32, "n", 3)] * 6


def test_training_errors():
    x = np.ones(3, np.float32)
    attrs = {"alpha": 0.9, "beta": 0.5, "norm_coefficient": 0.0, "mode": "standard"}
    with pytest.raises(TypeInferenceError, match="equally long groups"):
        run_kiln("Momentum", [R, T0, x, x], attrs)
    with pytest.raises(TypeInferenceError, match="T i64"):
        run_kiln("Momentum", [R, np.array(0, np.int32), x, x, x], attrs)
    with pytest.raises(TypeInferenceError, match="one shape"):
        run_kiln("Momentum", [R, T0, x, np.ones(4, np.float32), x], attrs)
    with pytest.raises(TypeInferenceError, match="f32/f64"):
        run_kiln("Adagrad", [R, T0, x, x, np.ones(3, np.int64)])
    with pytest.raises(TypeInferenceError, match="scalar"):
        run_kiln("Adagrad", [np.ones(2, np.float32), T0, x, x, x])
    with pytest.raises(AttributeValueError, match="mode"):
        run_kiln("Momentum", [R, T0, x, x, x], {**attrs, "mode": "heavy-ball"})
    with pytest.raises(AttributeValueError, match="alpha"):
        run_kiln("Momentum", [R, T0, x, x, x], {k: v for k, v in attrs.items() if k != "alpha"})
