"""Activation functions: Relu and its relatives, sigmoids, Gelu, Swish, SwiGLU.

The unary ones are rows of one table (name, ONNX since_version, dtypes, attributes, traits, math,
doc) made into ELEMENTWISE OpDefs by `define_unary`. The math sees X in float32 or float64
(float16/bfloat16 are widened and the result rounded back), and attributes through `a`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import dtypes as dt
from ..opdef import FusionKind, InferContext, Trait
from ..shapes import broadcast_shapes
from .common import FLOAT, STRING
from .elementwise import (FLOAT_TYPES, INT_TYPES, SIGNED_NUMERIC, as_dtype, define_unary, erf,
                          same_dtype, widen)
from .registry import define

K = FusionKind


def sigmoid(x):
    """1 / (1 + e^-x) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x):
    return np.logaddexp(0, x)


def gelu(x, a):
    if a.approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(x))


def hard_sigmoid(x, alpha, beta):
    return np.clip(alpha * x + beta, 0, 1)


# name, since_version, dtypes, attributes, traits, math, doc
_ACTIVATIONS = [
    ("Relu", 14, SIGNED_NUMERIC, [], [Trait.IDEMPOTENT],
     lambda x: np.maximum(x, 0), "Y = max(X, 0)."),
    ("LeakyRelu", 16, FLOAT_TYPES, [FLOAT("alpha", 0.01)], [],
     lambda x, a: np.where(x >= 0, x, x * a.alpha), "Y = X if X >= 0 else alpha * X."),
    ("ThresholdedRelu", 22, FLOAT_TYPES, [FLOAT("alpha", 1.0)], [],
     lambda x, a: np.where(x > a.alpha, x, 0), "Y = X if X > alpha else 0."),
    ("Elu", 22, FLOAT_TYPES, [FLOAT("alpha", 1.0)], [],
     lambda x, a: elu(x, a.alpha), "Y = X if X > 0 else alpha * (e^X - 1)."),
    ("Selu", 22, FLOAT_TYPES, [FLOAT("alpha", 1.67326319217681884765625),
                               FLOAT("gamma", 1.05070102214813232421875)], [],
     lambda x, a: a.gamma * elu(x, a.alpha), "Y = gamma * (X if X > 0 else alpha * (e^X - 1))."),
    ("Celu", 28, FLOAT_TYPES, [FLOAT("alpha", 1.0)], [],
     lambda x, a: np.maximum(x, 0) + np.minimum(0, a.alpha * np.expm1(x / a.alpha)),
     "Y = max(0, X) + min(0, alpha * (e^(X/alpha) - 1))."),
    ("Sigmoid", 13, FLOAT_TYPES, [], [], sigmoid, "Y = 1 / (1 + e^-X)."),
    ("HardSigmoid", 22, FLOAT_TYPES, [FLOAT("alpha", 0.2), FLOAT("beta", 0.5)], [],
     lambda x, a: hard_sigmoid(x, a.alpha, a.beta), "Y = clip(alpha * X + beta, 0, 1)."),
    ("HardSwish", 22, FLOAT_TYPES, [], [],
     lambda x: x * hard_sigmoid(x, 1 / 6, 0.5), "Y = X * clip(X / 6 + 1/2, 0, 1)."),
    ("Softplus", 22, FLOAT_TYPES, [], [], softplus, "Y = ln(1 + e^X)."),
    ("Softsign", 22, FLOAT_TYPES, [], [], lambda x: x / (1 + np.abs(x)), "Y = X / (1 + |X|)."),
    ("Mish", 22, FLOAT_TYPES, [], [], lambda x: x * np.tanh(softplus(x)),
     "Y = X * tanh(ln(1 + e^X))."),
    ("Swish", 24, FLOAT_TYPES, [FLOAT("alpha", 1.0)], [],
     lambda x, a: x * sigmoid(a.alpha * x), "Y = X * sigmoid(alpha * X)."),
    ("Gelu", 20, FLOAT_TYPES, [STRING("approximate", "none", choices=("none", "tanh"))], [],
     gelu, "Y = X * Phi(X) (Phi the normal CDF), or its tanh approximation."),
    ("Shrink", 9, FLOAT_TYPES | INT_TYPES, [FLOAT("bias", 0.0), FLOAT("lambd", 0.5)], [],
     lambda x, a: np.where(x < -a.lambd, x + a.bias, np.where(x > a.lambd, x - a.bias, 0)),
     "Y = X + bias if X < -lambd, X - bias if X > lambd, else 0."),
]

for _name, _since, _allowed, _attrs, _traits, _fn, _doc in _ACTIVATIONS:
    globals()[_name] = define_unary(_name, _since, _allowed, _traits, _fn, _doc, attrs=_attrs)


def _shapes_differ(s, t) -> bool:
    """Two known shapes that cannot be equal (different rank or different static dims)."""
    if s is None or t is None:
        return False
    return len(s) != len(t) or any(
        isinstance(p, int) and isinstance(q, int) and p != q for p, q in zip(s, t))


def _prelu_infer(ctx: InferContext):
    x, slope = ctx.tensor(0), ctx.tensor(1)
    same_dtype(ctx, (0, 1), FLOAT_TYPES | frozenset({dt.i32, dt.i64, dt.u32, dt.u64}))
    if _shapes_differ(broadcast_shapes(x.shape, slope.shape, node=ctx.node), x.shape):
        ctx.fail(f"slope of shape {slope.shape} does not broadcast to X of shape {x.shape}",
                 hint="reshape the slope so it aligns with X's trailing axes, e.g. (C, 1, 1)")
    return [x]


PRelu = define(
    "PRelu", ["X", "slope"], ["Y"], kind=K.BROADCAST, since_version=16, infer=_prelu_infer,
    reference=lambda ctx, x, s: as_dtype(np.where(x > 0, x, x * s), x.dtype),
    doc="Y = X if X > 0 else slope * X; slope broadcasts to X's shape.")


def _swiglu_infer(ctx: InferContext):
    a, b = ctx.tensor(0), ctx.tensor(1)
    same_dtype(ctx, (0, 1), FLOAT_TYPES)
    if _shapes_differ(a.shape, b.shape):
        ctx.fail(f"A and B must have the same shape, got {a}, {b}",
                 hint="SwiGLU does not broadcast; split one projection into two equal halves")
    if a.shape is None or b.shape is None:
        return [a if b.shape is None else b]
    return [a.with_shape(q if p is None else p for p, q in zip(a.shape, b.shape))]


def _swiglu(ctx, a, b):
    wa, wb = widen(a), widen(b)
    return as_dtype(wa * sigmoid(ctx.attrs.alpha * wa) * wb, a.dtype)


SwiGLU = define(
    "SwiGLU", ["A", "B"], ["Y"], kind=K.ELEMENTWISE, since_version=28,
    attrs=[FLOAT("alpha", 1.0)], infer=_swiglu_infer, reference=_swiglu,
    doc="Y = Swish_alpha(A) * B = A * sigmoid(alpha * A) * B; A and B have one shape.")
