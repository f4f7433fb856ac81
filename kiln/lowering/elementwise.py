"""Elementwise and broadcasting ops: one scalar definition each, on Loop IR expressions.

`SCALAR` maps an OpDef to fn(a, *xs) -> Expr, where `a` holds the node's attributes and xs are
its operands' elements, already in their compute dtype (float16/bfloat16 as float32; see
`tensor.apply`, which also broadcasts and rounds the result to the output dtype). One generic
lowering turns every row into a Tensor, so an op's math is written once and fuses by composition.
Ops that need a word more (Clip's scalar bounds, CastLike's target, the per-axis or blocked
scales of QuantizeLinear/DequantizeLinear) have small lowerings below.
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np

from ..ir import ops
from ..ir.dtypes import DType
from ..loops.expr import Expr
from . import exprs as E
from .exprs import binary, cast, gt, lt, select, unary
from .registry import register
from .tensor import Tensor, apply, compute_dtype


def _c(value, like: Expr) -> Expr:
    """A constant in the dtype of `like`."""
    return E.const(value, like.dtype)


def maximum(a, b): return binary("max", a, b)
def minimum(a, b): return binary("min", a, b)
def exp(x): return unary("exp", x)
def log(x): return unary("log", x)
def tanh(x): return unary("tanh", x)
def sigmoid(x): return unary("sigmoid", x)


def softplus(x):
    """ln(1 + e^x) without overflow: max(x, 0) + ln(1 + e^-|x|)."""
    return maximum(x, _c(0, x)) + log(1 + exp(-unary("abs", x)))


def elu(x, alpha):
    return select(gt(x, 0), x, (exp(x) - 1) * alpha)


def hard_sigmoid(x, alpha, beta):
    return minimum(maximum(x * alpha + beta, _c(0, x)), _c(1, x))


def gelu(x, approximate):
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * 0.5 * (1 + tanh(inner))
    return x * 0.5 * (1 + unary("erf", x / math.sqrt(2)))


def shrink(x, bias, lambd):
    if not x.dtype.is_float:       # integer inputs are compared and shifted in float64
        x = cast(x, DType.float64)
    return select(lt(x, -lambd), x + bias, select(gt(x, lambd), x - bias, _c(0, x)))


def is_inf(x, a):
    pos, neg = a.detect_positive, a.detect_negative
    if pos and neg:
        return unary("isinf", x)
    if pos or neg:
        return E.eq(x, _c(math.inf if pos else -math.inf, x))
    return E.const(False, DType.bool)


def mod(a, x, y):
    return binary("fmod" if a.fmod else "mod", x, y)


def bit_shift(a, x, y):
    """Shifts by >= the bit width (or < 0) fill: 0, or the sign for right shifts of negatives."""
    bits = x.dtype.itemsize * 8
    out_of_range = binary("or", lt(y, 0), E.ge(y, bits))
    amount = select(out_of_range, _c(0, y), y)
    if a.direction == "LEFT":
        return select(out_of_range, _c(0, x), binary("shl", x, amount))
    fill = select(lt(x, 0), _c(-1, x), _c(0, x)) if x.dtype.is_signed else _c(0, x)
    return select(out_of_range, fill, binary("shr", x, amount))


def power(x, y):
    """Float bases raise to y in their own dtype; integer bases go through float64 (C's pow,
    exact while the result fits in 53 bits) and truncate back."""
    if x.dtype.is_float:
        return binary("pow", x, cast(y, x.dtype))
    f64 = DType.float64
    return cast(binary("pow", cast(x, f64), cast(y, f64)), x.dtype)


_FLOAT8 = {DType.float8e4m3fn: 448.0, DType.float8e4m3fnuz: 240.0, DType.float8e5m2: 57344.0,
           DType.float8e5m2fnuz: 57344.0}


def saturate(x: Expr, to: DType) -> Expr:
    """x clamped to the finite range of float8 type `to` (NaN stays NaN): ONNX's saturate."""
    if not x.dtype.is_float:
        x = cast(x, DType.float32)
    hi = _FLOAT8[to]
    return minimum(maximum(x, _c(-hi, x)), _c(hi, x))


_BYTE_FLOATS = frozenset(_FLOAT8) | {DType.float4e2m1, DType.float8e8m0}
_NARROW_INT_BITS = {DType.int4: 4, DType.uint4: 4, DType.int2: 2, DType.uint2: 2}


def convert(x: Expr, src: DType, to: DType, a) -> Expr:
    """Cast / CastLike: x (a src value in its compute dtype) as dtype `to`, float8
    saturating unless a.saturate is 0. From float8/float4/e8m0 to an integer, NaN is 0 and
    ±Inf the integer's extremes (ml_dtypes' rule; a 2- or 4-bit integer gets a byte's,
    wrapped)."""
    if to is DType.float8e8m0:
        return to_e8m0(x, bool(a.saturate), a.round_mode)
    if to in _FLOAT8 and a.saturate:
        x = saturate(x, to)
    y = cast(x, to)
    if src in _BYTE_FLOATS and to.is_int:
        bits = 8 * to.itemsize
        hi = (1 << (bits - 1)) - 1 if to.is_signed else (1 << bits) - 1
        lo = -(1 << (bits - 1)) if to.is_signed else 0
        if to in _NARROW_INT_BITS:
            hi, lo = (int(np.array(v).astype(to.np).astype(np.int64)) for v in (hi, lo))
        y = select(E.eq(x, _c(math.inf, x)), E.const(hi, to),
                   select(E.eq(x, _c(-math.inf, x)), E.const(lo, to),
                          select(E.ne(x, x), E.const(0, to), y)))
    return y


def _unary_row(name: str):
    return lambda a, x: unary(name, x)


def _binary_row(name: str):
    return lambda a, x, y: binary(name, x, y)


def _compare_row(name: str):
    return lambda a, x, y: E.compare(name, x, y)


def _fold(name: str):
    return lambda a, *xs: reduce(lambda p, q: binary(name, p, q), xs)


SCALAR = {
    # arithmetic, comparisons, logic, bitwise
    ops.Add: _binary_row("add"), ops.Sub: _binary_row("sub"), ops.Mul: _binary_row("mul"),
    ops.Div: _binary_row("div"),
    ops.Equal: _compare_row("eq"), ops.Greater: _compare_row("gt"),
    ops.GreaterOrEqual: _compare_row("ge"), ops.Less: _compare_row("lt"),
    ops.LessOrEqual: _compare_row("le"),
    ops.And: _binary_row("and"), ops.Or: _binary_row("or"), ops.Xor: _binary_row("xor"),
    ops.BitwiseAnd: _binary_row("and"), ops.BitwiseOr: _binary_row("or"),
    ops.BitwiseXor: _binary_row("xor"),
    ops.Not: _unary_row("not"), ops.BitwiseNot: _unary_row("not"),
    ops.Mod: mod, ops.BitShift: bit_shift, ops.Pow: lambda a, x, y: power(x, y),
    ops.Max: _fold("max"), ops.Min: _fold("min"), ops.Sum: _fold("add"),
    ops.Mean: lambda a, *xs: _fold("add")(a, *xs) / len(xs),
    ops.Where: lambda a, c, x, y: select(c, x, y),
    # unary math
    ops.Abs: _unary_row("abs"), ops.Neg: _unary_row("neg"), ops.Sign: _unary_row("sign"),
    ops.Reciprocal: _unary_row("reciprocal"), ops.Ceil: _unary_row("ceil"),
    ops.Floor: _unary_row("floor"), ops.Round: _unary_row("round"), ops.Sqrt: _unary_row("sqrt"),
    ops.Exp: _unary_row("exp"), ops.Log: _unary_row("log"), ops.Erf: _unary_row("erf"),
    ops.Sin: _unary_row("sin"), ops.Cos: _unary_row("cos"), ops.Tan: _unary_row("tan"),
    ops.Asin: _unary_row("asin"), ops.Acos: _unary_row("acos"), ops.Atan: _unary_row("atan"),
    ops.Sinh: _unary_row("sinh"), ops.Cosh: _unary_row("cosh"), ops.Tanh: _unary_row("tanh"),
    ops.Asinh: _unary_row("asinh"), ops.Acosh: _unary_row("acosh"),
    ops.Atanh: _unary_row("atanh"),
    ops.IsNaN: _unary_row("isnan"), ops.IsInf: lambda a, x: is_inf(x, a),
    # activations
    ops.Relu: lambda a, x: maximum(x, _c(0, x)),
    ops.LeakyRelu: lambda a, x: select(E.ge(x, 0), x, x * a.alpha),
    ops.ThresholdedRelu: lambda a, x: select(gt(x, a.alpha), x, _c(0, x)),
    ops.Elu: lambda a, x: elu(x, a.alpha),
    ops.Selu: lambda a, x: elu(x, a.alpha) * a.gamma,
    ops.Celu: lambda a, x: maximum(x, _c(0, x)) + minimum(_c(0, x),
                                                          (exp(x / a.alpha) - 1) * a.alpha),
    ops.Sigmoid: lambda a, x: sigmoid(x),
    ops.HardSigmoid: lambda a, x: hard_sigmoid(x, a.alpha, a.beta),
    ops.HardSwish: lambda a, x: x * hard_sigmoid(x, 1 / 6, 0.5),
    ops.Softplus: lambda a, x: softplus(x),
    ops.Softsign: lambda a, x: x / (1 + unary("abs", x)),
    ops.Mish: lambda a, x: x * tanh(softplus(x)),
    ops.Swish: lambda a, x: x * sigmoid(x * a.alpha),
    ops.Gelu: lambda a, x: gelu(x, a.approximate),
    ops.Shrink: lambda a, x: shrink(x, a.bias, a.lambd),
    ops.PRelu: lambda a, x, slope: select(gt(x, 0), x, x * slope),
    ops.SwiGLU: lambda a, x, y: x * sigmoid(x * a.alpha) * y,
    ops.Binarizer: lambda a, x: gt(x if x.dtype.is_float else cast(x, DType.float64),
                                   a.threshold),
}


@register(*SCALAR)
def lower_elementwise(ctx, node, inputs):
    a = ctx.attrs(node)
    fn = SCALAR[node.op]
    return [apply(lambda *xs: fn(a, *xs), inputs, ctx.out_dtype(node))]


def scalar_operand(t: Tensor) -> Tensor:
    """A one-element operand (shape [] or [1]) as a rank-0 tensor: it does not broadcast."""
    return Tensor((), t.dtype, lambda idx: t.at((E.ZERO,) * t.rank))


@register(ops.Clip)
def lower_clip(ctx, node, inputs):
    x, lo, hi = (list(inputs) + [None, None])[:3]
    lo, hi = (None if b is None else scalar_operand(b) for b in (lo, hi))

    def clip(v, lo_v, hi_v):
        if lo_v is not None:
            v = maximum(v, lo_v)
        if hi_v is not None:
            v = minimum(v, hi_v)
        return v
    return [apply(clip, [x, lo, hi], ctx.out_dtype(node))]


def to_e8m0(x: Expr, saturate: bool, round_mode: str) -> Expr:
    """ONNX's Cast to float8e8m0, as the float32 power of two it stands for: |x|'s exponent,
    rounded up / down / to nearest (ties up) by `round_mode`; below 2^-126 the choice is
    2^-127 or 2^-126; rounding past 2^127 stays there (saturate) or is NaN; NaN and ±Inf are
    NaN. The exponent is found by a branch-free binary search in float64 (every step exact),
    so the final cast is exact."""
    f32, f64 = DType.float32, DType.float64

    def c(v):
        return E.const(v, f64)
    a = cast(unary("abs", cast(x, f32)), f64)
    p0 = c(2.0 ** -126)
    p = p0
    for s in (128, 64, 32, 16, 8, 4, 2, 1):        # the largest p0 * 2^k < a (p0 if none)
        step = p * c(2.0 ** s)
        p = select(lt(step, a), step, p)
    low = select(E.le(p * c(2.0), a), p * c(2.0), p)          # 2^floor(log2 a) when a >= p0
    if round_mode == "up":
        up, tiny_up = gt(a, low), gt(a, c(0.0))
    elif round_mode == "nearest":
        up, tiny_up = E.ge(a, low * c(1.5)), gt(a, c(2.0 ** -127))
    else:
        up, tiny_up = lt(a, c(0.0)), lt(a, c(0.0))              # never
    top = c(2.0 ** 127)
    high = select(E.eq(low, top), top if saturate else c(math.nan), low * c(2.0))
    normal = select(up, high, low)
    tiny = select(tiny_up, p0, c(2.0 ** -127))
    v = select(lt(a, p0), tiny, normal)
    v = select(E.eq(a, c(math.inf)), c(math.nan), select(E.ne(a, a), c(math.nan), v))
    return cast(cast(v, f32), DType.float8e8m0)


@register(ops.Cast, ops.CastLike)
def lower_cast(ctx, node, inputs):
    target = ctx.out_dtype(node)
    a = ctx.attrs(node)
    src = inputs[0].dtype
    return [apply(lambda x: convert(x, src, target, a), inputs[:1], target)]



# --- QuantizeLinear, DequantizeLinear ------------------------------------------------------------

_INT_RANGES = {DType.uint8: (0, 255), DType.int8: (-128, 127), DType.uint16: (0, 65535),
               DType.int16: (-32768, 32767), DType.uint4: (0, 15), DType.int4: (-8, 7),
               DType.uint2: (0, 3), DType.int2: (-2, 1)}


def quant_param(ctx, node, p: Tensor | None, x: Tensor):
    """A scale or zero point as a function of x's index: per tensor, per axis or blocked."""
    if p is None:
        return None
    if E.is_const(E.product(p.shape), 1):
        return lambda idx: p.at((E.ZERO,) * p.rank)
    a = ctx.attrs(node)
    axis = a.axis + x.rank if a.axis < 0 else a.axis
    if not a.block_size:
        return lambda idx: p.at((idx[axis],))
    return lambda idx: p.at(tuple(idx[:axis]) + (E.floordiv(idx[axis], a.block_size),) +
                            tuple(idx[axis + 1:]))


@register(ops.QuantizeLinear)
def lower_quantize_linear(ctx, node, inputs):
    x, scale, zp = (list(inputs) + [None])[:3]
    out = ctx.out_dtype(node)
    if out in _FLOAT8 or out is DType.float4e2m1:
        return [_quantize_float(ctx, node, x, scale, zp, out)]
    if out not in _INT_RANGES:
        ctx.fail(node, f"quantizing to {out.short} is not lowered", hint="use an 8/16-bit target")
    lo, hi = _INT_RANGES[out]
    precision = ctx.attrs(node).precision
    wide = compute_dtype(precision) if precision is not None else \
        DType.float64 if x.dtype.is_int else compute_dtype(x.dtype)
    scale_at, zp_at = quant_param(ctx, node, scale, x), quant_param(ctx, node, zp, x)
    i32 = DType.int32

    def at(idx):
        y = unary("round", cast(x.at(idx), wide) / cast(scale_at(idx), wide))   # half to even
        y = minimum(maximum(y, _c(-2 ** 30, y)), _c(2 ** 30, y))     # saturates below anyway
        q = cast(y, i32)
        if zp_at is not None:
            q = q + cast(zp_at(idx), i32)
        return cast(minimum(maximum(q, E.const(lo, i32)), E.const(hi, i32)), out)
    return [Tensor(x.shape, out, at)]


def _quantize_float(ctx, node, x, scale, zp, out):
    """y = x / scale as float8 (clamped to its finite range when saturating; the zero point
    is not added) or float4e2m1 (+ zero point; the conversion itself clamps)."""
    a = ctx.attrs(node)
    if a.precision is not None:
        div = a.precision
    else:                           # NumPy's promotion of x / scale
        div = DType.from_numpy(np.result_type(x.dtype.np, scale.dtype.np))
    wide = compute_dtype(div)
    scale_at, zp_at = quant_param(ctx, node, scale, x), quant_param(ctx, node, zp, x)

    def at(idx):
        y = cast(cast(x.at(idx), wide) / cast(scale_at(idx), wide), div)
        y = cast(y, wide)
        if out in _FLOAT8:
            return cast(saturate(y, out) if a.saturate else y, out)
        if zp_at is not None:
            y = y + cast(zp_at(idx), wide)
        return cast(y, out)
    return Tensor(x.shape, out, at)


@register(ops.DequantizeLinear)
def lower_dequantize_linear(ctx, node, inputs):
    x, scale, zp = (list(inputs) + [None])[:3]
    scale_at, zp_at = quant_param(ctx, node, scale, x), quant_param(ctx, node, zp, x)
    out = ctx.out_dtype(node)
    f32 = DType.float32

    def at(idx):
        v = cast(x.at(idx), f32)
        if zp_at is not None and x.dtype not in _BYTE_FLOATS:   # float8/float4: no zero point
            v = v - cast(zp_at(idx), f32)
        return cast(v * cast(scale_at(idx), f32), out)
    return [Tensor(x.shape, out, at)]
