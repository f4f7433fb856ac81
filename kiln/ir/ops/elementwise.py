"""Elementwise and broadcasting ops: arithmetic, comparisons, logic, bitwise and math functions.

Ops that follow one pattern are rows of a table (name, ONNX since_version, allowed dtypes, traits,
NumPy function, doc) and one loop turns each row into an OpDef, so each op's math is said once.
Ops with attributes or unusual typing (Pow, Mod, BitShift, Clip, Where, IsInf) are defined one by
one below the tables. Activation functions live in activations.py, conversions in cast.py.

Dtypes follow the ONNX schemas. Float ops keep their input dtype; float16, bfloat16 and float8
math is evaluated in float32 and rounded back. Integer overflow wraps around as in NumPy.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterable

import numpy as np

from .. import dtypes as dt
from ..dtypes import DType
from ..opdef import FusionKind, InferContext, Trait
from ..shapes import broadcast_shapes
from ..types import TensorType
from .common import INT, STRING
from .registry import define

K = FusionKind
COMMUTATIVE, ASSOCIATIVE = Trait.COMMUTATIVE, Trait.ASSOCIATIVE
IDEMPOTENT, INVOLUTION = Trait.IDEMPOTENT, Trait.INVOLUTION

# --- dtype groups (as the ONNX type constraints name them) -------------------------------------

FLOAT_TYPES = frozenset({dt.f16, dt.bf16, dt.f32, dt.f64})
FLOAT8_TYPES = frozenset({DType.float8e4m3fn, DType.float8e4m3fnuz, DType.float8e5m2,
                          DType.float8e5m2fnuz})
SIGNED_INTS = frozenset({dt.i8, dt.i16, dt.i32, dt.i64})
UNSIGNED_INTS = frozenset({dt.u8, dt.u16, dt.u32, dt.u64})
INT_TYPES = SIGNED_INTS | UNSIGNED_INTS
NUMERIC = FLOAT_TYPES | INT_TYPES
SIGNED_NUMERIC = FLOAT_TYPES | SIGNED_INTS
BOOL = frozenset({dt.boolean})

_NARROW_FLOATS = frozenset(d.np for d in dt.FLOATS if d.itemsize < 4)


# --- inference helpers shared by the elementwise families --------------------------------------

def _names(dtypes: Iterable[DType]) -> str:
    return ", ".join(sorted(d.short for d in dtypes))


def _operand(ctx: InferContext, i: int) -> str:
    slots = ctx.op.inputs
    slot = slots[min(i, len(slots) - 1)]
    return f"#{i}" if slot.variadic else slot.name


def check_dtype(ctx: InferContext, i: int, allowed: frozenset) -> DType:
    """The dtype of input i, which must be one of `allowed`."""
    t = ctx.tensor(i)
    if t.dtype not in allowed:
        ctx.fail(f"input '{_operand(ctx, i)}' has dtype {t.dtype}; {ctx.op.name} takes "
                 f"{_names(allowed)}", hint="insert a Cast to a supported dtype")
    return t.dtype


def same_dtype(ctx: InferContext, indices: Iterable[int], allowed: frozenset) -> DType:
    """All listed (present) inputs share one dtype from `allowed`; returns it."""
    indices = [i for i in indices if ctx.has_input(i)]
    first = check_dtype(ctx, indices[0], allowed)
    for i in indices[1:]:
        if ctx.tensor(i).dtype is not first:
            ctx.fail(f"operands have different dtypes: '{_operand(ctx, indices[0])}' is {first}, "
                     f"'{_operand(ctx, i)}' is {ctx.tensor(i).dtype}",
                     hint="insert a Cast so the operands agree")
    return first


def unary_infer(allowed: frozenset, out: DType | None = None):
    """Same shape as input 0; its dtype (or `out`) after checking it is allowed."""
    def infer(ctx: InferContext):
        t = ctx.tensor(0)
        check_dtype(ctx, 0, allowed)
        return [TensorType(out or t.dtype, t.shape)]
    return infer


def same_dtype_broadcast_infer(allowed: frozenset, out: DType | None = None):
    """Broadcast shape of the inputs, which share one dtype from `allowed`; that dtype or `out`."""
    def infer(ctx: InferContext):
        idx = [i for i in range(ctx.num_inputs) if ctx.has_input(i)]
        dtype = same_dtype(ctx, idx, allowed)
        shape = broadcast_shapes(*(ctx.tensor(i).shape for i in idx), node=ctx.node)
        return [TensorType(out or dtype, shape)]
    return infer


# --- reference helpers -------------------------------------------------------------------------

def widen(x: np.ndarray) -> np.ndarray:
    """x in a dtype NumPy computes math in accurately: float16/bfloat16/float8 become float32."""
    return x.astype(np.float32) if x.dtype in _NARROW_FLOATS else x


def as_dtype(y, dtype) -> np.ndarray:
    """y as an ndarray of exactly `dtype` (NumPy returns scalars for rank 0)."""
    return np.asarray(y).astype(dtype, copy=False)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function at libm precision (NumPy has none)."""
    return as_dtype(_erf_scalar(x), x.dtype)


def define_unary(name: str, since: int, allowed: frozenset, traits, fn: Callable, doc: str,
                 out: DType | None = None, attrs=()):
    """An ELEMENTWISE op Y = fn(X) (or fn(X, attrs) when it has attributes)."""
    def reference(ctx, x):
        y = fn(widen(x), ctx.attrs) if attrs else fn(widen(x))
        return as_dtype(y, out.np if out else x.dtype)
    return define(name, ["X"], ["Y"], kind=K.ELEMENTWISE, since_version=since, traits=traits,
                  attrs=attrs, infer=unary_infer(allowed, out), reference=reference, doc=doc)


# --- unary math: name, since_version, dtypes, traits, fn, doc ----------------------------------

_UNARY = [
    ("Abs", 13, NUMERIC, [IDEMPOTENT], np.abs, "Y = |X|."),
    ("Neg", 13, SIGNED_NUMERIC, [INVOLUTION], np.negative, "Y = -X."),
    ("Sign", 13, NUMERIC, [IDEMPOTENT], np.sign, "Y = -1, 0 or 1 by the sign of X."),
    ("Reciprocal", 13, FLOAT_TYPES, [INVOLUTION], np.reciprocal, "Y = 1 / X."),
    ("Ceil", 13, FLOAT_TYPES, [IDEMPOTENT], np.ceil, "Y = ceil(X)."),
    ("Floor", 13, FLOAT_TYPES, [IDEMPOTENT], np.floor, "Y = floor(X)."),
    ("Round", 22, FLOAT_TYPES, [IDEMPOTENT], np.round, "Y = X rounded to nearest, ties to even."),
    ("Sqrt", 13, FLOAT_TYPES, [], np.sqrt, "Y = sqrt(X)."),
    ("Exp", 13, FLOAT_TYPES, [], np.exp, "Y = e ** X."),
    ("Log", 13, FLOAT_TYPES, [], np.log, "Y = ln(X)."),
    ("Erf", 13, FLOAT_TYPES, [], erf, "Y = erf(X)."),
    ("Sin", 22, FLOAT_TYPES, [], np.sin, "Y = sin(X)."),
    ("Cos", 22, FLOAT_TYPES, [], np.cos, "Y = cos(X)."),
    ("Tan", 22, FLOAT_TYPES, [], np.tan, "Y = tan(X)."),
    ("Asin", 22, FLOAT_TYPES, [], np.arcsin, "Y = arcsin(X)."),
    ("Acos", 22, FLOAT_TYPES, [], np.arccos, "Y = arccos(X)."),
    ("Atan", 22, FLOAT_TYPES, [], np.arctan, "Y = arctan(X)."),
    ("Sinh", 22, FLOAT_TYPES, [], np.sinh, "Y = sinh(X)."),
    ("Cosh", 22, FLOAT_TYPES, [], np.cosh, "Y = cosh(X)."),
    ("Tanh", 13, FLOAT_TYPES, [], np.tanh, "Y = tanh(X)."),
    ("Asinh", 22, FLOAT_TYPES, [], np.arcsinh, "Y = arsinh(X)."),
    ("Acosh", 22, FLOAT_TYPES, [], np.arccosh, "Y = arcosh(X)."),
    ("Atanh", 22, FLOAT_TYPES, [], np.arctanh, "Y = artanh(X)."),
    ("Not", 1, BOOL, [INVOLUTION], np.logical_not, "Y = not X."),
    ("BitwiseNot", 18, INT_TYPES, [INVOLUTION], np.invert, "Y = ~X (every bit flipped)."),
]

for _name, _since, _allowed, _traits, _fn, _doc in _UNARY:
    globals()[_name] = define_unary(_name, _since, _allowed, _traits, _fn, _doc)

IsNaN = define_unary("IsNaN", 20, FLOAT_TYPES | FLOAT8_TYPES, [], np.isnan,
                     "Y = X is NaN.", out=dt.boolean)


def _isinf(x, a):
    return (np.isposinf(x) & bool(a.detect_positive)) | (np.isneginf(x) & bool(a.detect_negative))


IsInf = define_unary("IsInf", 20, FLOAT_TYPES | FLOAT8_TYPES, [], _isinf,
                     "Y = X is +inf (detect_positive) or -inf (detect_negative).", out=dt.boolean,
                     attrs=[INT("detect_negative", 1, choices=(0, 1)),
                            INT("detect_positive", 1, choices=(0, 1))])


# --- binary broadcasting ops: name, since_version, dtypes, output dtype, traits, fn, doc --------

def _divide(a, b):
    """Float division, or integer division truncated toward zero as in C (x / 0 gives 0)."""
    if a.dtype.kind not in "iu":
        return np.divide(a, b)
    q = np.floor_divide(a, b)
    inexact = np.remainder(a, b) != 0
    return q + (inexact & ((a < 0) != (b < 0))).astype(q.dtype)


def define_binary(name: str, since: int, allowed: frozenset, out: DType | None, traits,
                  fn: Callable, doc: str):
    """A BROADCAST op C = fn(A, B) on operands of one dtype."""
    def reference(ctx, a, b):
        return as_dtype(fn(a, b), out.np if out else a.dtype)
    return define(name, ["A", "B"], ["C"], kind=K.BROADCAST, since_version=since, traits=traits,
                  infer=same_dtype_broadcast_infer(allowed, out), reference=reference, doc=doc)


_EQUATABLE = NUMERIC | BOOL | frozenset({dt.string})
_BINARY = [
    ("Add", 14, NUMERIC, None, [COMMUTATIVE, ASSOCIATIVE], np.add, "C = A + B."),
    ("Sub", 14, NUMERIC, None, [], np.subtract, "C = A - B."),
    ("Mul", 14, NUMERIC, None, [COMMUTATIVE, ASSOCIATIVE], np.multiply, "C = A * B."),
    ("Div", 14, NUMERIC, None, [], _divide, "C = A / B; integer division truncates toward zero."),
    ("Equal", 19, _EQUATABLE, dt.boolean, [COMMUTATIVE], np.equal, "C = A == B."),
    ("Greater", 13, NUMERIC, dt.boolean, [], np.greater, "C = A > B."),
    ("GreaterOrEqual", 16, NUMERIC, dt.boolean, [], np.greater_equal, "C = A >= B."),
    ("Less", 13, NUMERIC, dt.boolean, [], np.less, "C = A < B."),
    ("LessOrEqual", 16, NUMERIC, dt.boolean, [], np.less_equal, "C = A <= B."),
    ("And", 7, BOOL, None, [COMMUTATIVE, ASSOCIATIVE], np.logical_and, "C = A and B."),
    ("Or", 7, BOOL, None, [COMMUTATIVE, ASSOCIATIVE], np.logical_or, "C = A or B."),
    ("Xor", 7, BOOL, None, [COMMUTATIVE, ASSOCIATIVE], np.logical_xor, "C = A xor B."),
    ("BitwiseAnd", 18, INT_TYPES, None, [COMMUTATIVE, ASSOCIATIVE], np.bitwise_and, "C = A & B."),
    ("BitwiseOr", 18, INT_TYPES, None, [COMMUTATIVE, ASSOCIATIVE], np.bitwise_or, "C = A | B."),
    ("BitwiseXor", 18, INT_TYPES, None, [COMMUTATIVE, ASSOCIATIVE], np.bitwise_xor, "C = A ^ B."),
]

for _name, _since, _allowed, _out, _traits, _fn, _doc in _BINARY:
    globals()[_name] = define_binary(_name, _since, _allowed, _out, _traits, _fn, _doc)


def _mod(ctx, a, b):
    rem = np.fmod if ctx.attrs.fmod else np.mod   # C's % (sign of A) or Python's % (sign of B)
    return as_dtype(rem(widen(a), widen(b)), a.dtype)


Mod = define(
    "Mod", ["A", "B"], ["C"], kind=K.BROADCAST, since_version=28,
    attrs=[INT("fmod", 0, choices=(0, 1))],
    infer=same_dtype_broadcast_infer(NUMERIC), reference=_mod,
    doc="C = A mod B: sign of B (A - floor(A/B)*B), or sign of A with fmod=1 (A - trunc(A/B)*B).")


def _shift(ctx, x, y):
    x, y = np.broadcast_arrays(x, y)
    bits = x.dtype.itemsize * 8
    out_of_range = (y < 0) | (y >= bits)
    amount = np.where(out_of_range, 0, y)
    if ctx.attrs.direction == "RIGHT":
        # arithmetic for signed X: an out-of-range shift leaves only the sign fill
        fill = np.where(x < 0, -1, 0).astype(x.dtype)
        return as_dtype(np.where(out_of_range, fill, np.right_shift(x, amount)), x.dtype)
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    shifted = np.left_shift(x.astype(unsigned), amount.astype(unsigned)).astype(x.dtype)
    return as_dtype(np.where(out_of_range, x.dtype.type(0), shifted), x.dtype)


BitShift = define(
    "BitShift", ["X", "Y"], ["Z"], kind=K.BROADCAST, since_version=28,
    attrs=[STRING("direction", choices=("LEFT", "RIGHT"))],
    infer=same_dtype_broadcast_infer(INT_TYPES), reference=_shift,
    doc="Z = X << Y or X >> Y (arithmetic for signed X); shifts of >= bit width or < 0 fill.")


def _pow_infer(ctx: InferContext):
    base = check_dtype(ctx, 0, FLOAT_TYPES | frozenset({dt.i32, dt.i64}))
    check_dtype(ctx, 1, NUMERIC)
    shape = broadcast_shapes(ctx.tensor(0).shape, ctx.tensor(1).shape, node=ctx.node)
    return [TensorType(base, shape)]


def _pow(ctx, x, y):
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        negative = y < 0
        # NumPy refuses negative integer exponents: evaluate those as C's pow(double, double)
        z = np.power(x, np.where(negative, 0, y).astype(y.dtype))
        if negative.any():
            z = np.where(negative, np.power(x.astype(np.float64), y.astype(np.float64)), z)
        return as_dtype(z, x.dtype)
    return as_dtype(np.power(widen(x), widen(y)), x.dtype)


Pow = define(
    "Pow", ["X", "Y"], ["Z"], kind=K.BROADCAST, since_version=15, infer=_pow_infer,
    reference=_pow, doc="Z = X ** Y; Y may have another numeric dtype, Z has X's dtype.")


# --- variadic broadcasting ops -----------------------------------------------------------------

def define_variadic(name: str, allowed: frozenset, traits, fn: Callable, doc: str, finish=None):
    """A BROADCAST op folding fn over one or more inputs of one dtype."""
    def reference(ctx, *xs):
        y = functools.reduce(fn, xs[1:], xs[0])
        return as_dtype(finish(y, len(xs)) if finish else y, xs[0].dtype)
    return define(name, ["data_0*"], ["result"], kind=K.BROADCAST, since_version=13,
                  traits=traits, infer=same_dtype_broadcast_infer(allowed), reference=reference,
                  doc=doc)


Max = define_variadic("Max", NUMERIC, [COMMUTATIVE, ASSOCIATIVE], np.maximum,
                      "Elementwise maximum of the inputs; NaN propagates.")
Min = define_variadic("Min", NUMERIC, [COMMUTATIVE, ASSOCIATIVE], np.minimum,
                      "Elementwise minimum of the inputs; NaN propagates.")
Sum = define_variadic("Sum", FLOAT_TYPES, [COMMUTATIVE, ASSOCIATIVE], np.add,
                      "Elementwise sum of the inputs.")
Mean = define_variadic("Mean", FLOAT_TYPES, [COMMUTATIVE], np.add,
                       "Elementwise mean of the inputs.", finish=lambda y, n: y / n)


# --- selection ---------------------------------------------------------------------------------

def _clip_infer(ctx: InferContext):
    t = ctx.tensor(0)
    same_dtype(ctx, range(ctx.num_inputs), NUMERIC)
    for i in (1, 2):
        if ctx.has_input(i):
            bound = ctx.tensor(i)
            if bound.is_static and bound.numel() != 1:
                ctx.fail(f"'{ctx.op.inputs[i].name}' must be a scalar, got shape {bound.shape}",
                         hint="pass a rank-0 tensor")
    return [t]


def _clip(ctx, x, lo=None, hi=None):
    lo = None if lo is None else lo.reshape(())
    hi = None if hi is None else hi.reshape(())
    if lo is None and hi is None:
        return x.copy()
    return as_dtype(np.clip(x, lo, hi), x.dtype)


Clip = define(
    "Clip", ["input", "min?", "max?"], ["output"], kind=K.BROADCAST, since_version=13,
    infer=_clip_infer, reference=_clip,
    doc="output = min(max(input, min), max); min > max gives max everywhere.")


def _where_infer(ctx: InferContext):
    check_dtype(ctx, 0, BOOL)
    dtype = same_dtype(ctx, (1, 2), dt.ALL)
    shape = broadcast_shapes(*(ctx.tensor(i).shape for i in range(3)), node=ctx.node)
    return [TensorType(dtype, shape)]


Where = define(
    "Where", ["condition", "X", "Y"], ["output"], kind=K.BROADCAST, since_version=16,
    infer=_where_infer, reference=lambda ctx, c, x, y: as_dtype(np.where(c, x, y), x.dtype),
    doc="output = X where condition else Y, with broadcasting.")

