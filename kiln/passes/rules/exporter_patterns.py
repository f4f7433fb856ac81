"""Recognizing what exporters spell out in primitive ops, and putting the op back.

torch.onnx and friends write LayerNorm as nine ops, GELU as five to eight, softmax as five and a
linear layer as MatMul + Add. Each rule here matches one spelling (its variants are generated:
operand order is handled by commutative matching, association order and Pow(d, 2) vs Mul(d, d)
by listing both) and replaces it with the single op, checking the constants (epsilon, sqrt(2),
0.5, 0.044715 ...) and the axes before it fires.
"""

from __future__ import annotations

import math

import numpy as np

from ...rewrite.driver import Rule
from ...rewrite.pattern import Const, P, Var
from ...ir import ops

x = Var("x")


def _near(value: float, rtol: float = 1e-4):
    def check(data: np.ndarray) -> bool:
        return data.size == 1 and data.dtype.kind == "f" and \
            bool(np.isclose(float(data.reshape(-1)[0]), value, rtol=rtol))
    return check


def _last_axis(v, rank) -> bool:
    return v.is_constant and v.data.size == 1 and int(v.data.reshape(-1)[0]) in (-1, rank - 1)


# --- LayerNorm: (x - mean) / sqrt(var + eps) * gamma + beta ----------------------------------

def _centered():
    return P.Sub(x, P.ReduceMean(x, Var("axes1"), keepdims=1, shared=True), name="d", shared=True)


def _layer_norm_rule(square_kind: str) -> Rule:
    d = _centered()
    square = P.Pow(d, Const("two", _near(2.0)), shared=True) if square_kind == "pow" else \
        P.Mul(d, d, shared=True)
    var = P.ReduceMean(square, Var("axes2"), keepdims=1)
    std = P.Sqrt(P.Add(var, Const("eps", lambda a: a.size == 1 and a.dtype.kind == "f")))
    pattern = P.Add(P.Mul(P.Div(d, std), Const("gamma")), Const("beta"), name="root")

    def replace(m, r):
        t = m.x.type
        rank = t.rank
        if rank is None or not (_last_axis(m.axes1, rank) and _last_axis(m.axes2, rank)):
            return None
        width = t.shape[-1]
        gamma, beta = m.gamma.data, m.beta.data
        if not isinstance(width, int) or gamma.shape[-1:] != (width,) or beta.shape[-1:] != (width,) \
                or gamma.size != width or beta.size != width:
            return None
        eps = float(m.eps.data.reshape(-1)[0])
        g = r.constant(gamma.reshape(width), like=m.x)
        b = r.constant(beta.reshape(width), like=m.x)
        out = r.add(ops.LayerNormalization, [m.x, g, b], {"axis": -1, "epsilon": eps})[0]
        return out if out.type == m.root.outputs[0].type else None

    return Rule(f"layer-norm-{square_kind}", pattern, replace,
                doc="mean/sub/square/mean/add eps/sqrt/div/mul/add -> LayerNormalization")


# --- GELU ------------------------------------------------------------------------------------

def _gelu(approximate):
    def replace(m, r):
        out = r.add(ops.Gelu, [m.x], {"approximate": approximate} if approximate != "none" else {})[0]
        return out if out.type == m.root.outputs[0].type else None
    return replace


def _gelu_erf_rules() -> list[Rule]:
    one_plus_erf = P.Add(P.Erf(P.Div(x, Const("s", _near(math.sqrt(2.0))))), Const("one", _near(1.0)))
    half = Const("half", _near(0.5))
    return [
        Rule("gelu-erf-a", P.Mul(P.Mul(x, one_plus_erf), half, name="root"), _gelu("none"),
             doc="(x * (1 + erf(x / sqrt2))) * 0.5 -> Gelu"),
        Rule("gelu-erf-b", P.Mul(P.Mul(x, half), one_plus_erf, name="root"), _gelu("none"),
             doc="(x * 0.5) * (1 + erf(x / sqrt2)) -> Gelu"),
    ]


def _gelu_tanh_rules() -> list[Rule]:
    rules = []
    cubes = {"pow": P.Pow(x, Const("three", _near(3.0))), "mul": P.Mul(P.Mul(x, x), x)}
    for name, cube in cubes.items():
        inner = P.Add(x, P.Mul(cube, Const("k", _near(0.044715))))
        t = P.Add(P.Tanh(P.Mul(inner, Const("c", _near(math.sqrt(2 / math.pi))))), Const("one", _near(1.0)))
        half = Const("half", _near(0.5))
        rules += [
            Rule(f"gelu-tanh-{name}-a", P.Mul(P.Mul(half, x), t, name="root"), _gelu("tanh")),
            Rule(f"gelu-tanh-{name}-b", P.Mul(P.Mul(x, t), half, name="root"), _gelu("tanh")),
        ]
    return rules


# --- Softmax: exp(x - max) / sum(exp(x - max)) ------------------------------------------------

def _softmax_rule() -> Rule:
    shifted = P.Exp(P.Sub(x, P.ReduceMax(x, Var("axes1"), keepdims=1, shared=True)), shared=True)
    pattern = P.Div(shifted, P.ReduceSum(shifted, Var("axes2"), keepdims=1), name="root")

    def replace(m, r):
        a1, a2 = m.axes1, m.axes2
        if not (a1.is_constant and a2.is_constant and a1.data.size == 1 and a2.data.size == 1):
            return None
        rank = m.x.type.rank
        if rank is None or int(a1.data.reshape(-1)[0]) % rank != int(a2.data.reshape(-1)[0]) % rank:
            return None
        return r.add(ops.Softmax, [m.x], {"axis": int(a1.data.reshape(-1)[0]) % rank - rank})[0]

    return Rule("softmax", pattern, replace, doc="exp(x - max) / sum(exp(x - max)) -> Softmax")


# --- linear layer: MatMul + bias -> Gemm (2-D) ----------------------------------------------

def _linear(m, r):
    a, w, bias = m.x, m.w, m.bias
    if a.type.rank != 2 or w.type.rank != 2 or not isinstance(w.type.shape[1], int):
        return None
    n = w.type.shape[1]
    if bias.type.shape not in ((n,), (1, n)):
        return None
    out = r.add(ops.Gemm, [a, w, bias])[0]
    return out if out.type == m.root.outputs[0].type else None


LINEAR = [Rule("matmul-add-gemm", P.Add(P.MatMul(x, Var("w")), Const("bias"), name="root"), _linear,
               doc="MatMul(x, W) + b with 2-D x -> Gemm(x, W, b)")]

EXPORTER_PATTERNS = ([_layer_norm_rule("pow"), _layer_norm_rule("mul")] + _gelu_erf_rules() +
                     _gelu_tanh_rules() + [_softmax_rule()] + LINEAR)


