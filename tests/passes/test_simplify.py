"""Every simplification rule, checked numerically.

Exact rules (the default set) must give bit-identical results — NaN, ±Inf, -0 and denormals
included. Rules that change rounding (reassociation, factoring, x/c for any c) run only under
fast-math for floats, and are checked within a tolerance on finite inputs. Each case asserts its
rule actually fired, so a rule that stops matching fails its test.
"""

import math

import numpy as np
import pytest

from kiln.ir import GraphBuilder, tensor
from kiln.ir.dtypes import DType
from kiln.ir.interpreter import interpret
from kiln.options import CompileOptions
from kiln.passes.eliminate_dead_code import EliminateDeadCode
from kiln.passes.rules.algebra import ALGEBRA
from kiln.passes.rules.exporter_patterns import EXPORTER_PATTERNS
from kiln.passes.simplify import Simplify
from tests.passes.helpers import run_passes

f32, i32 = DType.float32, DType.int32
SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.5, -2.0, 1e-40, 3e38, -7.25], np.float32)
FINITE = np.random.default_rng(0).uniform(-3, 3, 10).astype(np.float32)


def const(b, v, dtype=np.float32):
    return b.constant(np.asarray(v, dtype), "c")


# name: (build(b, x) -> output, dtype, exact)
CASES = {
    "add-neg-zero": (lambda b, x: b.Add(x, const(b, -0.0)), f32, True),
    "add-int-zero": (lambda b, x: b.Add(const(b, [0] * 10, np.int32), x), i32, True),
    "add-zero": (lambda b, x: b.Add(x, const(b, 0.0)), f32, False),
    "sub-zero": (lambda b, x: b.Sub(x, const(b, 0.0)), f32, True),
    "mul-one": (lambda b, x: b.Mul(const(b, 1.0), x), f32, True),
    "div-one": (lambda b, x: b.Div(x, const(b, 1.0)), f32, True),
    "pow-one": (lambda b, x: b.Pow(x, const(b, 1.0)), f32, True),
    "neg-neg": (lambda b, x: b.Neg(b.Neg(x)), f32, True),
    "not-not": (lambda b, x: b.Not(b.Not(b.Greater(x, const(b, 0.0)))), f32, True),
    "reciprocal-reciprocal": (lambda b, x: b.Reciprocal(b.Reciprocal(x)), f32, False),
    "transpose-transpose": (lambda b, x: b.Transpose(b.Transpose(b.Reshape(x, const(b, [2, 5], np.int64)), perm=[1, 0]), perm=[1, 0]), f32, True),
    "reshape-reshape": (lambda b, x: b.Reshape(b.Reshape(x, const(b, [5, 2], np.int64)), const(b, [2, 5], np.int64)), f32, True),
    "squeeze-unsqueeze": (lambda b, x: b.Squeeze(b.Unsqueeze(x, const(b, [0], np.int64)), const(b, [0], np.int64)), f32, True),
    "mul-constants": (lambda b, x: b.Mul(b.Mul(x, const(b, 3.0)), const(b, 0.25)), f32, False),
    "add-constants": (lambda b, x: b.Add(b.Add(x, const(b, 3.0)), const(b, 0.25)), f32, False),
    "factor-common-multiplicand": (lambda b, x: b.Add(b.Mul(x, const(b, 2.0)), b.Mul(x, b.Exp(x))), f32, False),
    "reorder-broadcast-scalars": (lambda b, x: b.Add(b.Add(const(b, 1.0), x), b.Add(const(b, 2.0), b.Exp(x))), f32, False),
    "pow-two": (lambda b, x: b.Pow(x, const(b, 2.0)), f32, True),
    "div-by-power-of-two": (lambda b, x: b.Div(x, const(b, 0.25)), f32, True),
    "div-by-constant": (lambda b, x: b.Div(x, const(b, 3.0)), f32, False),
    "mul-zero": (lambda b, x: b.Mul(x, const(b, [0.0] * 10)), f32, False),
    "sub-self": (lambda b, x: b.Sub(x, x), f32, False),
}
INT_CASES = {  # reassociation is exact for integers: it runs by default
    "mul-constants": lambda b, x: b.Mul(b.Mul(x, const(b, 3, np.int32)), const(b, 5, np.int32)),
    "factor-common-multiplicand": lambda b, x: b.Add(b.Mul(x, const(b, 7, np.int32)), b.Mul(x, x)),
}


def build(fn, dtype, n=10):
    """x -> fn -> Identity -> output: a graph output keeps its name, so rules whose result is an
    existing value do not fire at the output itself; the Identity gives them room."""
    b = GraphBuilder()
    x = b.input("x", tensor(dtype, n))
    b.output(b.Identity(fn(b, x)))
    return b.graph


def fired(ctx, rule):
    """How often a rule (or, for a name ending in '*', any rule with that prefix) fired."""
    return sum(v for r in ctx.records for k, v in r.counters.items()
               if k == f"rule {rule}" or (rule.endswith("*") and k.startswith(f"rule {rule[:-1]}")))


def test_every_rule_has_a_case():
    assert {r.name for r in ALGEBRA} == set(CASES)


@pytest.mark.parametrize("rule", CASES)
def test_rule(rule):
    fn, dtype, exact = CASES[rule]
    g = build(fn, dtype)
    fast = not exact
    out, ctx = run_passes(g, [Simplify(), EliminateDeadCode()], CompileOptions(fast_math=fast))
    assert fired(ctx, rule) >= 1, f"{rule} did not fire"
    if exact:
        x = SPECIAL if dtype is f32 else np.arange(-5, 5, dtype=np.int32)
        (want,), (got,) = interpret(g, {"x": x}), interpret(out, {"x": x})
        np.testing.assert_array_equal(got, want)
        if want.dtype.kind == "f":
            assert np.array_equal(np.signbit(got), np.signbit(want)), "sign of zero changed"
    else:
        (want,), (got,) = interpret(g, {"x": FINITE}), interpret(out, {"x": FINITE})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # and without fast-math, the rule stays off for floats
        _, strict = run_passes(g, [Simplify()], CompileOptions(fast_math=False))
        assert fired(strict, rule) == 0, f"{rule} changes float results but fired without fast-math"


@pytest.mark.parametrize("rule", INT_CASES)
def test_integer_reassociation_runs_by_default(rule):
    g = build(INT_CASES[rule], i32)
    out, ctx = run_passes(g, [Simplify(), EliminateDeadCode()])
    assert fired(ctx, rule) >= 1
    x = np.array([-2**31, -7, 0, 5, 2**31 - 1, 123456, -99, 1, 2, 3], np.int32)
    np.testing.assert_array_equal(interpret(out, {"x": x})[0], interpret(g, {"x": x})[0])


def test_add_zero_keeps_negative_zero_by_default():
    g = build(CASES["add-zero"][0], f32)
    out, ctx = run_passes(g, [Simplify()])
    assert fired(ctx, "add-zero") == 0
    (y,) = interpret(out, {"x": SPECIAL})
    assert not np.signbit(y[3])   # -0 + 0 = +0, which the graph still computes


def test_broadcasting_identity_is_not_dropped():
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 3))
    b.output(b.Mul(x, const(b, np.ones((2, 3)))))   # the ones broadcast x to [2, 3]
    out, ctx = run_passes(b.graph, [Simplify()])
    assert fired(ctx, "mul-one") == 0 and out.outputs[0].type.shape == (2, 3)


# --- exporter spellings ----------------------------------------------------------------------

def _layer_norm(b, x, square):
    axes = const(b, [-1], np.int64)
    d = b.Sub(x, b.ReduceMean(x, axes, keepdims=1))
    sq = b.Pow(d, const(b, 2.0)) if square == "pow" else b.Mul(d, d)
    std = b.Sqrt(b.Add(b.ReduceMean(sq, axes, keepdims=1), const(b, 1e-5)))
    return b.Add(b.Mul(b.Div(d, std), const(b, np.linspace(0.5, 1.5, 8))), const(b, np.linspace(-1, 1, 8)))


def _gelu_erf(b, x):
    return b.Mul(b.Mul(x, b.Add(b.Erf(b.Div(x, const(b, math.sqrt(2)))), const(b, 1.0))), const(b, 0.5))


def _gelu_tanh(b, x):
    inner = b.Add(x, b.Mul(b.Pow(x, const(b, 3.0)), const(b, 0.044715)))
    t = b.Tanh(b.Mul(inner, const(b, math.sqrt(2 / math.pi))))
    return b.Mul(b.Mul(const(b, 0.5), x), b.Add(t, const(b, 1.0)))


def _softmax(b, x):
    axes = const(b, [-1], np.int64)
    e = b.Exp(b.Sub(x, b.ReduceMax(x, axes, keepdims=1)))
    return b.Div(e, b.ReduceSum(e, axes, keepdims=1))


def _linear(b, x):
    return b.Add(b.MatMul(x, const(b, np.ones((8, 3)))), const(b, [1.0, 2.0, 3.0]))


PATTERNS = {
    "layer-norm*": (lambda b, x: _layer_norm(b, x, "pow"), "LayerNormalization"),
    "layer-norm-mul": (lambda b, x: _layer_norm(b, x, "mul"), "LayerNormalization"),
    "gelu-erf-a": (_gelu_erf, "Gelu"),
    "gelu-tanh-pow-a": (_gelu_tanh, "Gelu"),
    "softmax": (_softmax, "Softmax"),
    "matmul-add-gemm": (_linear, "Gemm"),
}


@pytest.mark.parametrize("rule", PATTERNS)
def test_exporter_pattern_becomes_one_op(rule):
    fn, op = PATTERNS[rule]
    b = GraphBuilder()
    x = b.input("x", tensor(f32, 4, 8))
    b.output(fn(b, x))
    out, ctx = run_passes(b.graph, [Simplify(), EliminateDeadCode()])
    assert fired(ctx, rule) == 1
    assert [n.op.name for n in out.nodes] == [op]   # the rule's result may be the output
    feeds = {"x": np.random.default_rng(3).standard_normal((4, 8)).astype(np.float32)}
    np.testing.assert_allclose(interpret(out, feeds)[0], interpret(b.graph, feeds)[0], rtol=1e-5, atol=1e-5)


def test_exporter_patterns_all_have_a_case():
    names = {r.name for r in EXPORTER_PATTERNS}
    assert {p for p in PATTERNS if not p.endswith("*")} <= names
