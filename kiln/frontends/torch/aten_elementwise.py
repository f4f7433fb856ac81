"""Elementwise ATen ops: arithmetic, comparisons, logic, math functions, where/clamp, casts.

Tables first (one line per op), converters built from them below. Operands follow torch's type
promotion: the node's result dtype (node.meta["val"]) is the dtype arithmetic is computed in;
comparisons compute in the promoted dtype of their operands. A Python number operand becomes a
0-d constant of that dtype.
"""

from __future__ import annotations

import math

import torch

from ...ir.dtypes import DType
from .context import kiln_dtype

aten = torch.ops.aten

# op -> kiln op, both operands in the result dtype
ARITHMETIC = {
    aten.add.Tensor: "Add", aten.add.Scalar: "Add",
    aten.sub.Tensor: "Sub", aten.sub.Scalar: "Sub",
    aten.mul.Tensor: "Mul", aten.mul.Scalar: "Mul",
    aten.div.Tensor: "Div", aten.div.Scalar: "Div",
    aten.pow.Tensor_Tensor: "Pow", aten.pow.Tensor_Scalar: "Pow", aten.pow.Scalar: "Pow",
    aten.minimum.default: "Min", aten.maximum.default: "Max",
    aten.fmin.default: "Min", aten.fmax.default: "Max",
}

# op -> (kiln op, negate the result)
COMPARISON = {
    aten.eq.Tensor: ("Equal", False), aten.eq.Scalar: ("Equal", False),
    aten.ne.Tensor: ("Equal", True), aten.ne.Scalar: ("Equal", True),
    aten.lt.Tensor: ("Less", False), aten.lt.Scalar: ("Less", False),
    aten.le.Tensor: ("LessOrEqual", False), aten.le.Scalar: ("LessOrEqual", False),
    aten.gt.Tensor: ("Greater", False), aten.gt.Scalar: ("Greater", False),
    aten.ge.Tensor: ("GreaterOrEqual", False), aten.ge.Scalar: ("GreaterOrEqual", False),
}

# op -> kiln op on booleans (operands are cast to bool first, as torch's logical_* do)
LOGICAL = {
    aten.logical_and.default: "And", aten.logical_or.default: "Or",
    aten.logical_xor.default: "Xor",
}

# bitwise ops: And/Or/Xor on bool, BitwiseAnd/... on integers
BITWISE = {
    aten.bitwise_and.Tensor: ("And", "BitwiseAnd"), aten.bitwise_and.Scalar: ("And", "BitwiseAnd"),
    aten.bitwise_or.Tensor: ("Or", "BitwiseOr"), aten.bitwise_or.Scalar: ("Or", "BitwiseOr"),
    aten.bitwise_xor.Tensor: ("Xor", "BitwiseXor"),
    aten.__and__.Tensor: ("And", "BitwiseAnd"), aten.__or__.Tensor: ("Or", "BitwiseOr"),
    aten.__xor__.Tensor: ("Xor", "BitwiseXor"),
    aten.bitwise_xor.Scalar: ("Xor", "BitwiseXor"),
}

# op -> kiln op applied to the operand cast to the result dtype (int -> float for exp(int))
UNARY = {
    aten.relu.default: "Relu", aten.sigmoid.default: "Sigmoid", aten.tanh.default: "Tanh",
    aten.exp.default: "Exp", aten.log.default: "Log", aten.sqrt.default: "Sqrt",
    aten.neg.default: "Neg", aten.abs.default: "Abs", aten.erf.default: "Erf",
    aten.sin.default: "Sin", aten.cos.default: "Cos", aten.tan.default: "Tan",
    aten.asin.default: "Asin", aten.acos.default: "Acos", aten.atan.default: "Atan",
    aten.sinh.default: "Sinh", aten.cosh.default: "Cosh", aten.asinh.default: "Asinh",
    aten.acosh.default: "Acosh", aten.atanh.default: "Atanh",
    aten.reciprocal.default: "Reciprocal", aten.floor.default: "Floor",
    aten.ceil.default: "Ceil", aten.round.default: "Round", aten.sign.default: "Sign",
}

# op -> kiln op with a bool result
PREDICATE = {aten.isnan.default: "IsNaN", aten.isinf.default: "IsInf"}


def compute_dtype(cx, *args) -> DType:
    """torch's promoted dtype of the operands (FX nodes or Python numbers)."""
    fakes = [cx.fake(a) for a in args]
    dtype = torch.result_type(fakes[0], fakes[1]) if len(fakes) == 2 else fakes[0].dtype
    return kiln_dtype(dtype, cx.node.name)


def arithmetic(kiln_op: str):
    def convert(cx, a, b, alpha=1, *_):
        dtype = cx.out_dtype()
        x, y = cx.tensor(a, dtype), cx.tensor(b, dtype)
        if alpha != 1 and kiln_op in ("Add", "Sub"):
            y = cx.b.Mul(y, cx.tensor(alpha, dtype), name=cx.name("alpha"))
        return getattr(cx.b, kiln_op)(x, y, name=cx.node.name)
    return convert


def comparison(kiln_op: str, negate: bool):
    def convert(cx, a, b, *_):
        dtype = compute_dtype(cx, a, b)
        out = getattr(cx.b, kiln_op)(cx.tensor(a, dtype), cx.tensor(b, dtype),
                                     name=cx.name("cmp") if negate else cx.node.name)
        return cx.b.Not(out, name=cx.node.name) if negate else out
    return convert


def logical(kiln_op: str):
    def convert(cx, a, b, *_):
        return getattr(cx.b, kiln_op)(cx.tensor(a, DType.bool), cx.tensor(b, DType.bool),
                                      name=cx.node.name)
    return convert


def bitwise(bool_op: str, int_op: str):
    def convert(cx, a, b, *_):
        dtype = cx.out_dtype()
        op = bool_op if dtype == DType.bool else int_op
        return getattr(cx.b, op)(cx.tensor(a, dtype), cx.tensor(b, dtype), name=cx.node.name)
    return convert


def unary(kiln_op: str):
    def convert(cx, a, *_):
        return getattr(cx.b, kiln_op)(cx.tensor(a, cx.out_dtype()), name=cx.node.name)
    return convert


def predicate(kiln_op: str):
    def convert(cx, a, *_):
        return getattr(cx.b, kiln_op)(cx.tensor(a), name=cx.node.name)
    return convert


# --- ops with their own arguments ----------------------------------------------------------

def rsub(cx, a, b, alpha=1, *_):
    return arithmetic("Sub")(cx, b, a, alpha)


def div_mode(cx, a, b, rounding_mode=None, *_):
    dtype = cx.out_dtype()
    if rounding_mode is None:
        return arithmetic("Div")(cx, a, b)
    if not dtype.is_float:
        x, y = cx.tensor(a, DType.float64), cx.tensor(b, DType.float64)
    else:
        x, y = cx.tensor(a, dtype), cx.tensor(b, dtype)
    q = cx.b.Div(x, y, name=cx.name("div"))
    if rounding_mode == "floor":
        q = cx.b.Floor(q, name=cx.name("floor"))
    else:   # trunc: round towards zero
        q = cx.b.Mul(cx.b.Sign(q, name=cx.name("sign")),
                     cx.b.Floor(cx.b.Abs(q, name=cx.name("abs")), name=cx.name("floor")),
                     name=cx.name("trunc"))
    return cx.cast(q, dtype)


def remainder(cx, a, b, *_):
    """Python's modulo (the result has the divisor's sign): a - floor(a / b) * b."""
    dtype = cx.out_dtype()
    if not dtype.is_float:
        return cx.b.Mod(cx.tensor(a, dtype), cx.tensor(b, dtype), name=cx.node.name)
    x, y = cx.tensor(a, dtype), cx.tensor(b, dtype)
    q = cx.b.Floor(cx.b.Div(x, y, name=cx.name("div")), name=cx.name("floor"))
    return cx.b.Sub(x, cx.b.Mul(q, y, name=cx.name("mul")), name=cx.node.name)


def fmod(cx, a, b, *_):
    """C's fmod: the result has the dividend's sign."""
    dtype = cx.out_dtype()
    return cx.b.Mod(cx.tensor(a, dtype), cx.tensor(b, dtype), fmod=1, name=cx.node.name)


def trunc(cx, a, *_):
    x = cx.tensor(a)
    negative = cx.b.Less(x, cx.tensor(0, x.type.dtype), name=cx.name("neg"))
    return cx.b.Where(negative, cx.b.Ceil(x, name=cx.name("ceil")),
                      cx.b.Floor(x, name=cx.name("floor")), name=cx.node.name)


def log_base(base: float):
    def convert(cx, a, *_):
        x = cx.tensor(a, cx.out_dtype())
        return cx.b.Div(cx.b.Log(x, name=cx.name("ln")), cx.tensor(math.log(base), x.type.dtype),
                        name=cx.node.name)
    return convert


def exp2(cx, a, *_):
    x = cx.tensor(a, cx.out_dtype())
    return cx.b.Pow(cx.tensor(2.0, x.type.dtype), x, name=cx.node.name)


def atan2(cx, a, b, *_):
    """atan(y / x), moved by +-pi where x < 0, and 0 where x = y = 0."""
    dtype = cx.out_dtype()
    y, x = cx.tensor(a, dtype), cx.tensor(b, dtype)
    zero = cx.tensor(0, dtype)
    r = cx.b.Atan(cx.b.Div(y, x, name=cx.name("ratio")), name=cx.name("atan"))
    turn = cx.b.Where(cx.b.GreaterOrEqual(y, zero, name=cx.name("upper")),
                      cx.tensor(math.pi, dtype), cx.tensor(-math.pi, dtype), name=cx.name("pi"))
    r = cx.b.Where(cx.b.Less(x, zero, name=cx.name("left")),
                   cx.b.Add(r, turn, name=cx.name("turned")), r, name=cx.name("quadrant"))
    origin = cx.b.And(cx.b.Equal(x, zero, name=cx.name("x0")),
                      cx.b.Equal(y, zero, name=cx.name("y0")), name=cx.name("origin"))
    return cx.b.Where(origin, zero, r, name=cx.node.name)


def rsqrt(cx, a, *_):
    s = cx.b.Sqrt(cx.tensor(a, cx.out_dtype()), name=cx.name("sqrt"))
    return cx.b.Reciprocal(s, name=cx.node.name)


def silu(cx, a, *_):
    x = cx.tensor(a)
    return cx.b.Mul(x, cx.b.Sigmoid(x, name=cx.name("sigmoid")), name=cx.node.name)


def gelu(cx, a, approximate="none", *_):
    return cx.b.Gelu(cx.tensor(a), approximate=approximate, name=cx.node.name)


def leaky_relu(cx, a, negative_slope=0.01, *_):
    return cx.b.LeakyRelu(cx.tensor(a), alpha=float(negative_slope), name=cx.node.name)


def elu(cx, a, alpha=1.0, scale=1.0, input_scale=1.0, *_):
    """scale * (x if x > 0 else alpha * (exp(input_scale * x) - 1)); SELU is elu with scales."""
    x = cx.tensor(a)
    if scale == 1 and input_scale == 1:
        return cx.b.Elu(x, alpha=float(alpha), name=cx.node.name)
    dtype = x.type.dtype
    inner = cx.b.Mul(x, cx.tensor(input_scale, dtype), name=cx.name("in"))
    neg = cx.b.Mul(cx.b.Sub(cx.b.Exp(inner, name=cx.name("exp")), cx.tensor(1, dtype),
                            name=cx.name("expm1")), cx.tensor(alpha * scale, dtype),
                   name=cx.name("neg"))
    pos = cx.b.Mul(x, cx.tensor(scale, dtype), name=cx.name("pos"))
    return cx.b.Where(cx.b.Greater(x, cx.tensor(0, dtype), name=cx.name("gt")), pos, neg,
                      name=cx.node.name)


def hardtanh(cx, a, min_val=-1.0, max_val=1.0, *_):
    return clamp(cx, a, min_val, max_val)


def hardsigmoid(cx, a, *_):
    return cx.b.HardSigmoid(cx.tensor(a), alpha=1 / 6, beta=0.5, name=cx.node.name)


def hardswish(cx, a, *_):
    return cx.b.HardSwish(cx.tensor(a), name=cx.node.name)


def softplus(cx, a, beta=1, threshold=20, *_):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    x = cx.tensor(a)
    dtype = x.type.dtype
    bx = cx.b.Mul(x, cx.tensor(beta, dtype), name=cx.name("beta")) if beta != 1 else x
    soft = cx.b.Softplus(bx, name=cx.name("softplus"))
    if beta != 1:
        soft = cx.b.Div(soft, cx.tensor(beta, dtype), name=cx.name("scale"))
    big = cx.b.Greater(bx, cx.tensor(threshold, dtype), name=cx.name("linear"))
    return cx.b.Where(big, x, soft, name=cx.node.name)


def log1p(cx, a, *_):
    x = cx.tensor(a, cx.out_dtype())
    return cx.b.Log(cx.b.Add(x, cx.tensor(1, x.type.dtype), name=cx.name("add")),
                    name=cx.node.name)


def expm1(cx, a, *_):
    x = cx.tensor(a, cx.out_dtype())
    return cx.b.Sub(cx.b.Exp(x, name=cx.name("exp")), cx.tensor(1, x.type.dtype),
                    name=cx.node.name)


def logical_not(cx, a, *_):
    return cx.b.Not(cx.tensor(a, DType.bool), name=cx.node.name)


def bitwise_not(cx, a, *_):
    x = cx.tensor(a)
    if x.type.dtype == DType.bool:
        return cx.b.Not(x, name=cx.node.name)
    return cx.b.BitwiseNot(x, name=cx.node.name)


def clamp(cx, a, lo=None, hi=None, *_):
    dtype = cx.out_dtype()
    x = cx.tensor(a, dtype)
    if isinstance(lo, torch.fx.Node) or isinstance(hi, torch.fx.Node):    # clamp.Tensor
        if lo is not None:
            x = cx.b.Max(x, cx.tensor(lo, dtype), name=cx.name("min"))
        if hi is not None:
            x = cx.b.Min(x, cx.tensor(hi, dtype), name=cx.name("max"))
        return x
    return cx.b.Clip(x, None if lo is None else cx.tensor(lo, dtype),
                     None if hi is None else cx.tensor(hi, dtype), name=cx.node.name)


def clamp_min(cx, a, lo, *_):
    return clamp(cx, a, lo, None)


def clamp_max(cx, a, hi, *_):
    return clamp(cx, a, None, hi)


def where(cx, cond, a, b, *_):
    dtype = cx.out_dtype()
    return cx.b.Where(cx.tensor(cond, DType.bool), cx.tensor(a, dtype), cx.tensor(b, dtype),
                      name=cx.node.name)


def masked_fill(cx, a, mask, value, *_):
    x = cx.tensor(a)
    return cx.b.Where(cx.tensor(mask, DType.bool), cx.tensor(value, x.type.dtype), x,
                      name=cx.node.name)


def to_copy(cx, a, *_):
    """_to_copy / to.dtype: a cast to the node's dtype (device and layout do not matter)."""
    x = cx.tensor(a)
    dtype = cx.out_dtype()
    if x.type.dtype == dtype:
        return cx.b.Identity(x, name=cx.node.name)
    return cx.b.Cast(x, to=dtype, name=cx.node.name)


def identity(cx, a, *_):
    return cx.b.Identity(cx.tensor(a), name=cx.node.name)


def copy(cx, dst, src, *_):
    """copy(self, src): src, cast to self's dtype and broadcast to self's shape."""
    d = cx.tensor(dst)
    s = cx.tensor(src, d.type.dtype)
    return cx.b.Expand(s, cx.b.Shape(d, name=cx.name("shape")), name=cx.node.name)


def lerp(cx, a, b, weight, *_):
    dtype = cx.out_dtype()
    x, y, w = cx.tensor(a, dtype), cx.tensor(b, dtype), cx.tensor(weight, dtype)
    diff = cx.b.Sub(y, x, name=cx.name("diff"))
    return cx.b.Add(x, cx.b.Mul(w, diff, name=cx.name("mul")), name=cx.node.name)


CONVERTERS = {
    **{op: arithmetic(k) for op, k in ARITHMETIC.items()},
    **{op: comparison(k, neg) for op, (k, neg) in COMPARISON.items()},
    **{op: logical(k) for op, k in LOGICAL.items()},
    **{op: bitwise(b, i) for op, (b, i) in BITWISE.items()},
    **{op: unary(k) for op, k in UNARY.items()},
    **{op: predicate(k) for op, k in PREDICATE.items()},
    aten.rsub.Tensor: rsub, aten.rsub.Scalar: rsub,
    aten.div.Tensor_mode: div_mode, aten.div.Scalar_mode: div_mode,
    aten.remainder.Tensor: remainder, aten.remainder.Scalar: remainder,
    aten.fmod.Tensor: fmod, aten.fmod.Scalar: fmod, aten.trunc.default: trunc,
    aten.log2.default: log_base(2), aten.log10.default: log_base(10), aten.exp2.default: exp2,
    aten.atan2.default: atan2,
    aten.rsqrt.default: rsqrt, aten.silu.default: silu, aten.gelu.default: gelu,
    aten.leaky_relu.default: leaky_relu, aten.elu.default: elu,
    aten.hardtanh.default: hardtanh, aten.hardsigmoid.default: hardsigmoid,
    aten.hardswish.default: hardswish, aten.softplus.default: softplus,
    aten.log1p.default: log1p, aten.expm1.default: expm1,
    aten.logical_not.default: logical_not, aten.bitwise_not.default: bitwise_not,
    aten.clamp.default: clamp, aten.clamp.Tensor: clamp,
    aten.clamp_min.default: clamp_min, aten.clamp_max.default: clamp_max,
    aten.where.self: where, aten.where.ScalarSelf: where, aten.where.ScalarOther: where,
    aten.where.Scalar: where,
    aten.masked_fill.Scalar: masked_fill, aten.masked_fill.Tensor: masked_fill,
    aten._to_copy.default: to_copy, aten.to.dtype: to_copy,
    aten.clone.default: identity, aten.alias.default: identity, aten.detach.default: identity,
    aten.lift_fresh_copy.default: identity, aten.dropout.default: identity,
    aten.copy.default: copy, aten.lerp.Scalar: lerp, aten.lerp.Tensor: lerp,
}
