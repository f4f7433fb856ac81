"""Random ops lowered: the numbers are kiln's own counter-based stream, not NumPy's, so these
tests check shape, dtype, determinism for a seed, independence of seeds, and the moments of the
distribution over many draws (bounds are several standard errors wide), natively and with the
Loop IR interpreter (which must draw the same bits)."""

import numpy as np
import pytest

from kiln.ir import GraphBuilder
from kiln.ir.dtypes import DType
from kiln.ir.ops import get_op
from kiln.ir.types import TensorType
from kiln.loops.interpreter import run_program
from kiln.lowering import lower_graph

from .harness import HAVE_CODEGEN, run_backend

native = pytest.mark.skipif(not HAVE_CODEGEN, reason="kiln.codegen missing")


def graph_of(op, attrs, like=None):
    b = GraphBuilder(op.lower())
    ins = []
    if like is not None:
        ins.append(b.input("x", TensorType(DType.from_numpy(like.dtype), like.shape)))
    out, = b.add(get_op(op), ins, attrs)
    b.output(out)
    return b.graph, ({"x": like} if like is not None else {})


def draw(backend, op, attrs, like=None):
    graph, feeds = graph_of(op, attrs, like)
    program = lower_graph(graph)
    return run_backend(backend, program, feeds)[0], graph


@native
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_uniform_moments(dtype):
    low, high = -2.0, 3.0
    x, graph = draw("native", "RandomUniform", {"shape": [200, 501], "low": low, "high": high,
                                                "seed": 7.0, "dtype": DType.from_numpy(dtype)})
    assert x.dtype == dtype and x.shape == (200, 501)
    x = x.astype(np.float64)
    assert x.min() >= low and x.max() <= high
    n, width = x.size, high - low
    assert abs(x.mean() - (low + high) / 2) < 5 * width / np.sqrt(12 * n)
    assert abs(x.std() - width / np.sqrt(12)) < 0.01
    hist, _ = np.histogram(x, bins=10, range=(low, high))
    assert np.all(np.abs(hist / n - 0.1) < 0.005)
    # neighbours are not correlated
    assert abs(np.corrcoef(x.reshape(-1)[:-1], x.reshape(-1)[1:])[0, 1]) < 0.01


@native
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normal_moments(dtype):
    mean, scale = 1.5, 0.5
    x, _ = draw("native", "RandomNormal", {"shape": [300, 333], "mean": mean, "scale": scale,
                                           "seed": 3.0, "dtype": DType.from_numpy(dtype)})
    assert x.dtype == dtype and x.shape == (300, 333)
    x = x.astype(np.float64)
    n = x.size
    assert abs(x.mean() - mean) < 5 * scale / np.sqrt(n)
    assert abs(x.std() - scale) < 0.01
    z = (x - mean) / scale
    assert abs(np.mean(z ** 3)) < 0.05                 # skewness 0
    assert abs(np.mean(z ** 4) - 3) < 0.1               # kurtosis 3
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.01


@native
@pytest.mark.parametrize("op", ["RandomNormal", "RandomUniform"])
def test_seeded_draws_repeat_and_seeds_differ(op):
    attrs = {"shape": [5, 7], "seed": 11.0}
    a, _ = draw("native", op, attrs)
    b, _ = draw("native", op, attrs)
    c, _ = draw("native", op, {**attrs, "seed": 12.0})
    np.testing.assert_array_equal(a, b)
    assert np.all(a != c)


@pytest.mark.parametrize("op", ["RandomNormal", "RandomUniform"])
def test_loop_interpreter_gives_the_same_bits(op):
    if not HAVE_CODEGEN:
        pytest.skip("kiln.codegen missing")
    graph, _ = graph_of(op, {"shape": [3, 5], "seed": 1.0, "dtype": DType.float64})
    program = lower_graph(graph)
    # the same bits; the normal's log and cos come from different math libraries
    np.testing.assert_allclose(run_program(program, {})[0], run_backend("native", program, {})[0],
                               rtol=1e-13 if op == "RandomNormal" else 0, atol=0)


def test_unseeded_draws_differ_between_compiles():
    a, _ = draw("loops", "RandomUniform", {"shape": [4]})
    b, _ = draw("loops", "RandomUniform", {"shape": [4]})
    assert np.all(a != b)


@pytest.mark.parametrize("op", ["RandomNormalLike", "RandomUniformLike"])
@pytest.mark.parametrize("like", [np.zeros((2, 0, 3), np.float32), np.zeros((), np.float64),
                                  np.zeros((3, 4), np.int32)])
def test_like_shapes_and_dtypes(backend, op, like):
    attrs = {"seed": 5.0}
    if like.dtype == np.int32:
        attrs["dtype"] = DType.float16
    x, graph = draw(backend, op, attrs, like)
    assert x.shape == like.shape
    assert x.dtype == graph.outputs[0].type.dtype.np


@native
def test_like_with_symbolic_shape():
    b = GraphBuilder("g")
    x = b.input("x", TensorType(DType.float32, ("n", 64)))
    out, = b.add(get_op("RandomUniformLike"), [x], {"seed": 2.0})
    b.output(out)
    program = lower_graph(b.graph)
    got = run_backend("native", program, {"x": np.zeros((300, 64), np.float32)})[0]
    assert got.shape == (300, 64)
    assert abs(got.mean() - 0.5) < 0.01
    # the first rows do not depend on how many rows there are
    small = run_backend("native", program, {"x": np.zeros((2, 64), np.float32)})[0]
    np.testing.assert_array_equal(small, got[:2])


@native
def test_bernoulli_frequencies():
    p = np.tile(np.array([0.0, 0.1, 0.5, 0.9, 1.0], np.float32), (20000, 1))
    x, _ = draw("native", "Bernoulli", {"seed": 4.0, "dtype": DType.int32}, p)
    assert x.dtype == np.int32 and set(np.unique(x)) <= {0, 1}
    freq = x.mean(axis=0)
    assert freq[0] == 0 and freq[4] == 1
    np.testing.assert_allclose(freq[1:4], [0.1, 0.5, 0.9], atol=0.015)


@native
@pytest.mark.parametrize("dtype", [DType.int32, DType.int64])
def test_multinomial_frequencies(dtype):
    logits = np.log(np.array([[0.1, 0.2, 0.3, 0.4, 0.0001], [5.0, 1.0, 1.0, 1.0, 1.0]],
                             np.float32))
    logits[1] = [0.0, 0.0, 0.0, 0.0, 0.0]
    n = 40000
    x, _ = draw("native", "Multinomial", {"sample_size": n, "seed": 9.0, "dtype": dtype}, logits)
    assert x.dtype == dtype.np and x.shape == (2, n)
    assert x.min() >= 0 and x.max() <= 4
    np.testing.assert_allclose(np.bincount(x[0], minlength=5) / n,
                               [0.1, 0.2, 0.3, 0.4, 0.0], atol=0.01)
    np.testing.assert_allclose(np.bincount(x[1], minlength=5) / n, [0.2] * 5, atol=0.01)
    again, _ = draw("native", "Multinomial", {"sample_size": n, "seed": 9.0, "dtype": dtype},
                    logits)
    np.testing.assert_array_equal(x, again)


def test_multinomial_loop_interpreter(backend):
    logits = np.array([[0.0, 1.0, -1.0], [2.0, 2.0, 2.0], [-50.0, 0.0, -50.0]], np.float64)
    x, _ = draw(backend, "Multinomial", {"sample_size": 7, "seed": 1.0}, logits)
    assert x.shape == (3, 7) and x.dtype == np.int32
    assert np.all((x >= 0) & (x < 3))
    assert np.all(x[2] == 1)
