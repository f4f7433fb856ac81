"""Random ops: seeded draws match onnx.reference (same generator); unseeded draws are checked by
shape, dtype and statistics."""

import ml_dtypes
import numpy as np
import pytest

from kiln.errors import AttributeValueError, TypeInferenceError
from kiln.ir import DType, GraphBuilder, Trait, tensor
from kiln.ir.interpreter import interpret
from kiln.ir.ops import get_op
from tests.ir.ops.harness import check_op, run_kiln

RANDOM_OPS = ["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Multinomial", "Bernoulli"]


def test_random_ops_are_stateful():
    assert all(get_op(name).has(Trait.STATEFUL) for name in RANDOM_OPS)


# --- RandomNormal / RandomUniform --------------------------------------------------------------

@pytest.mark.parametrize("op,attrs", [
    ("RandomNormal", {"shape": [3, 5], "seed": 1.0}),
    ("RandomNormal", {"shape": [7], "seed": 11.0, "mean": 2.0, "scale": 0.5,
                      "dtype": DType.float64}),
    ("RandomUniform", {"shape": [2, 3, 1], "seed": 3.0}),
    ("RandomUniform", {"shape": [13], "seed": 0.0, "low": -4.0, "high": -1.0,
                       "dtype": DType.float64}),
    ("RandomUniform", {"shape": [0, 3], "seed": 2.0}),
])
def test_seeded_draws_match_reference(op, attrs):
    check_op(op, [], attrs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("op", ["RandomNormal", "RandomUniform"])
def test_seeded_half_precision(op):
    (y,) = check_op(op, [], {"shape": [5, 3], "seed": 4.0, "dtype": DType.float16}, rtol=2e-3,
                    atol=2e-3)
    assert y.dtype == np.float16
    (y,) = run_kiln(op, [], {"shape": [5], "seed": 4.0, "dtype": DType.bfloat16})
    assert y.dtype == ml_dtypes.bfloat16 and y.shape == (5,)


@pytest.mark.parametrize("op,like", [("RandomNormal", "RandomNormalLike"),
                                     ("RandomUniform", "RandomUniformLike")])
def test_like_forms_match_the_fixed_forms(op, like):
    x = np.zeros((4, 7), np.float32)
    (fixed,) = run_kiln(op, [], {"shape": [4, 7], "seed": 5.0})
    (liked,) = check_op(like, [x], {"seed": 5.0}, rtol=1e-6)
    np.testing.assert_array_equal(fixed, liked)
    (y,) = check_op(like, [np.zeros((3,), np.int32)], {"seed": 5.0, "dtype": DType.float64})
    assert y.dtype == np.float64
    (y,) = run_kiln(like, [np.float32(0)], {"seed": 5.0})
    assert y.shape == () and y.dtype == np.float32


def test_seed_makes_draws_reproducible_and_no_seed_does_not():
    b = GraphBuilder("t")
    b.output(b.RandomNormal(shape=(64,), seed=7.0), b.RandomNormal(shape=(64,)))
    seeded_1, free_1 = interpret(b.graph, {})
    seeded_2, free_2 = interpret(b.graph, {})
    np.testing.assert_array_equal(seeded_1, seeded_2)
    assert not np.array_equal(free_1, free_2)


def test_statistics():
    (n,) = run_kiln("RandomNormal", [], {"shape": [40000], "mean": 3.0, "scale": 2.0})
    assert abs(n.mean() - 3.0) < 0.05 and abs(n.std() - 2.0) < 0.05
    (u,) = run_kiln("RandomUniform", [], {"shape": [40000], "low": -1.0, "high": 5.0})
    assert u.min() >= -1.0 and u.max() < 5.0 and abs(u.mean() - 2.0) < 0.05


def test_random_errors():
    with pytest.raises(TypeInferenceError, match="floating-point"):
        run_kiln("RandomNormal", [], {"shape": [2], "dtype": DType.int32})
    with pytest.raises(TypeInferenceError, match="floating-point"):
        run_kiln("RandomUniformLike", [np.zeros(3, np.int64)])
    with pytest.raises(AttributeValueError, match="negative"):
        run_kiln("RandomUniform", [], {"shape": [2, -1]})
    with pytest.raises(AttributeValueError, match="shape"):
        run_kiln("RandomUniform", [], {})
    with pytest.raises(AttributeValueError, match="dtype"):
        run_kiln("RandomNormal", [], {"shape": [2], "dtype": 1})


# --- Bernoulli -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,attrs", [
    (np.float32, {"seed": 0.0}), (np.float64, {"seed": 5.0}),
    (np.float32, {"seed": 2.0, "dtype": DType.float64}),
    (np.float64, {"seed": 2.0, "dtype": DType.int32}),
])
def test_bernoulli_seeded_matches_reference(dtype, attrs):
    p = np.random.default_rng(1).random((3, 7)).astype(dtype)
    (y,) = check_op("Bernoulli", [p], attrs)
    assert set(np.unique(y).tolist()) <= {0, 1}


def test_bernoulli_statistics_and_edges():
    p = np.array([0.0, 1.0, 0.25], np.float32)
    (y,) = run_kiln("Bernoulli", [np.tile(p, (20000, 1))])
    assert y.dtype == np.float32 and y.shape == (20000, 3)
    assert y[:, 0].max() == 0 and y[:, 1].min() == 1 and abs(y[:, 2].mean() - 0.25) < 0.02
    (y,) = run_kiln("Bernoulli", [np.zeros((0, 2), np.float16)])
    assert y.shape == (0, 2) and y.dtype == np.float16
    with pytest.raises(TypeInferenceError, match="probabilities"):
        run_kiln("Bernoulli", [np.ones(3, np.int64)])


# --- Multinomial -----------------------------------------------------------------------------

def test_multinomial_statistics_and_types():
    logits = np.array([[np.log(0.2), np.log(0.8), -np.inf], np.log([0.5, 0.25, 0.25])], np.float32)
    (y,) = run_kiln("Multinomial", [logits], {"sample_size": 20000})
    assert y.dtype == np.int32 and y.shape == (2, 20000)
    assert not (y[0] == 2).any()                              # zero probability: never drawn
    assert abs((y[0] == 1).mean() - 0.8) < 0.02
    assert abs((y[1] == 0).mean() - 0.5) < 0.02 and abs((y[1] == 2).mean() - 0.25) < 0.02
    (y,) = run_kiln("Multinomial", [logits + 7], {"sample_size": 3, "dtype": DType.int64})
    assert y.dtype == np.int64 and y.shape == (2, 3)          # logits are unnormalized
    b = GraphBuilder("t")
    out = b.Multinomial(b.input("x", tensor(DType.float32, "batch", 11)), sample_size=5)
    assert out.type == tensor(DType.int32, "batch", 5)


def test_multinomial_seeded_is_reproducible():
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    a = run_kiln("Multinomial", [x], {"sample_size": 9, "seed": 3.0})[0]
    b = run_kiln("Multinomial", [x], {"sample_size": 9, "seed": 3.0})[0]
    np.testing.assert_array_equal(a, b)
    assert a.min() >= 0 and a.max() < 5


def test_multinomial_errors():
    with pytest.raises(TypeInferenceError, match="rank 1"):
        run_kiln("Multinomial", [np.zeros(3, np.float32)])
    with pytest.raises(TypeInferenceError, match="i32 or i64"):
        run_kiln("Multinomial", [np.zeros((1, 3), np.float32)], {"dtype": DType.float32})
    with pytest.raises(AttributeValueError, match="sample_size"):
        run_kiln("Multinomial", [np.zeros((1, 3), np.float32)], {"sample_size": 0})
