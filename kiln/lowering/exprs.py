"""Building Loop IR expressions while lowering: constructors that fold what compile time knows.

Lowerings compose `at` functions, so many of the expressions they build are about constants: a
broadcast dim of size 1 read at index 0, a Slice that starts at 0, a Shape read at a constant
position. The constructors here fold such cases as they build, so kernels stay small and values
known at compile time (shape operands) come out as `Const`s.

Index arithmetic is i64. An i64 `Var` is a symbolic size or a loop index, never negative; the
folding rules rely on that (min(0, n) is 0, max(0, n) is n).
"""

from __future__ import annotations

import numpy as np

from ..ir.dtypes import DType
from ..loops.expr import (Binary, Cast, Compare, Const, Expr, Load, Reduce, Select, Unary, Var,
                          children, lift, simplify_index)
from ..loops.interpreter import Memory, evaluate

i64 = DType.int64
ZERO, ONE = Const(0), Const(1)


def const(value, dtype: DType) -> Const:
    """A Const of `dtype` holding `value` (a Python or NumPy number) as a plain Python number."""
    if dtype is DType.bool:
        return Const(bool(value), dtype)
    if dtype.is_float:
        return Const(float(value), dtype)
    return Const(int(value), dtype)


def index(v) -> Expr:
    """An i64 index expression from an int or an Expr of any integer dtype."""
    if isinstance(v, Expr):
        return v if v.dtype is i64 else cast(v, i64)
    return Const(int(v))


def is_const(e, value=None) -> bool:
    return isinstance(e, Const) and (value is None or e.value == value)


def nonnegative(e: Expr) -> bool:
    """True when an integer expression is certainly >= 0 (sizes, loop indices and sums of them)."""
    if isinstance(e, Const):
        return e.value >= 0
    if isinstance(e, Var):
        return e.dtype is i64
    if isinstance(e, Binary) and e.op in ("add", "mul", "max", "min", "floordiv", "mod"):
        if e.op == "mod":
            return nonnegative(e.b)
        if e.op == "max":
            return nonnegative(e.a) or nonnegative(e.b)
        return nonnegative(e.a) and nonnegative(e.b)
    if isinstance(e, Select):
        return nonnegative(e.a) and nonnegative(e.b)
    return False


# --- index arithmetic ----------------------------------------------------------------------------

def add(a, b) -> Expr:
    a, b = index(a), index(b)
    if isinstance(a, Const) and not isinstance(b, Const):
        a, b = b, a
    if isinstance(b, Const):
        if b.value == 0:
            return a
        if isinstance(a, Const):
            return Const(a.value + b.value)
        if isinstance(a, Binary) and a.op == "add" and isinstance(a.b, Const):
            return add(a.a, a.b.value + b.value)
    return Binary("add", a, b)


def sub(a, b) -> Expr:
    a, b = index(a), index(b)
    if isinstance(b, Const):
        return add(a, -b.value)
    if a == b:
        return ZERO
    return Binary("sub", a, b)


def mul(a, b) -> Expr:
    a, b = index(a), index(b)
    if isinstance(a, Const) and not isinstance(b, Const):
        a, b = b, a
    if isinstance(b, Const):
        if isinstance(a, Const):
            return Const(a.value * b.value)
        if b.value == 1:
            return a
        if b.value == 0:
            return ZERO
    return Binary("mul", a, b)


def floordiv(a, b) -> Expr:
    a, b = index(a), index(b)
    if is_const(b, 1):
        return a
    if isinstance(a, Const) and isinstance(b, Const) and b.value:
        return Const(a.value // b.value)
    return Binary("floordiv", a, b)


def mod(a, b) -> Expr:
    """Floor modulo (the sign of b)."""
    a, b = index(a), index(b)
    if is_const(b, 1):
        return ZERO
    if isinstance(a, Const) and isinstance(b, Const) and b.value:
        return Const(a.value % b.value)
    return Binary("mod", a, b)


def ceildiv(a, b) -> Expr:
    """ceil(a / b) for any signs (as -((-a) // b))."""
    a, b = index(a), index(b)
    if isinstance(a, Const) and isinstance(b, Const) and b.value:
        return Const(-((-a.value) // b.value))
    if isinstance(b, Const) and b.value > 0:
        return floordiv(add(a, b.value - 1), b)
    return sub(ZERO, floordiv(sub(ZERO, a), b))


def minimum(a, b) -> Expr:
    a, b = index(a), index(b)
    if a == b:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(min(a.value, b.value))
    for x, y in ((a, b), (b, a)):
        if is_const(x) and x.value <= 0 and nonnegative(y):
            return x
    return Binary("min", a, b)


def maximum(a, b) -> Expr:
    a, b = index(a), index(b)
    if a == b:
        return a
    if isinstance(a, Const) and isinstance(b, Const):
        return Const(max(a.value, b.value))
    for x, y in ((a, b), (b, a)):
        if is_const(x) and x.value <= 0 and nonnegative(y):
            return y
    return Binary("max", a, b)


def clamp(i, lo, hi) -> Expr:
    """min(max(i, lo), hi): keeps a Load in bounds even where its value is not used."""
    return minimum(maximum(i, lo), hi)


def product(dims) -> Expr:
    out: Expr = ONE
    for d in dims:
        out = mul(out, d)
    return out


def factors(e: Expr) -> tuple[int, tuple]:
    """A product as (constant factor, its other factors in a canonical order)."""
    e = simplify_index(e)
    if isinstance(e, Const):
        return e.value, ()
    if isinstance(e, Binary) and e.op == "mul":
        (ca, fa), (cb, fb) = factors(e.a), factors(e.b)
        return ca * cb, tuple(sorted(fa + fb, key=repr))
    return 1, (e,)


def same(a, b) -> bool:
    """Are two index expressions equal as products (a*n*4 and 4*a*n are)?"""
    return factors(index(a)) == factors(index(b))


# --- scalar expressions --------------------------------------------------------------------------

def _operands(a, b):
    """Lift a Python number to the dtype of the other operand."""
    if not isinstance(a, Expr):
        a = lift(a, b.dtype)
    if not isinstance(b, Expr):
        b = lift(b, a.dtype)
    return a, b


def compare(op: str, a, b) -> Expr:
    a, b = _operands(a, b)
    return fold_node(Compare(op, a, b))


def lt(a, b): return compare("lt", a, b)
def le(a, b): return compare("le", a, b)
def gt(a, b): return compare("gt", a, b)
def ge(a, b): return compare("ge", a, b)
def eq(a, b): return compare("eq", a, b)
def ne(a, b): return compare("ne", a, b)


def select(cond: Expr, a, b) -> Expr:
    a, b = _operands(a, b)
    if isinstance(cond, Const):
        return a if cond.value else b
    if a == b:
        return a
    return Select(cond, a, b)


def binary(op: str, a, b) -> Expr:
    a, b = _operands(a, b)
    return fold_node(Binary(op, a, b))


def unary(op: str, a: Expr) -> Expr:
    return fold_node(Unary(op, a))


def cast(e: Expr, dtype: DType) -> Expr:
    """e converted to dtype; to bool means e != 0 (ONNX's rule, said explicitly)."""
    if e.dtype is dtype:
        return e
    if dtype is DType.bool:
        return ne(e, lift(0, e.dtype))
    if isinstance(e, Const):
        with np.errstate(all="ignore"):
            return const(np.asarray(e.value, dtype=e.dtype.np).astype(dtype.np)[()], dtype)
    if isinstance(e, Cast) and dtype is i64 and e.a.dtype.is_int and e.dtype.is_int and \
            e.dtype.itemsize >= e.a.dtype.itemsize and e.dtype.is_signed == e.a.dtype.is_signed:
        return Cast(dtype, e.a)      # a widening chain of integer casts is one cast
    return Cast(dtype, e)


# --- folding -------------------------------------------------------------------------------------

def _value(e: Expr) -> Const:
    """Evaluate a closed expression with the Loop IR interpreter's exact semantics."""
    with np.errstate(all="ignore"):
        v = evaluate(e, {}, Memory())
    return const(np.asarray(v).astype(e.dtype.np)[()], e.dtype)


def fold_node(e: Expr) -> Expr:
    """e with its own operation folded when every operand is a Const (children as they are)."""
    if isinstance(e, (Const, Var, Load, Reduce)):
        return e
    kids = children(e)
    if isinstance(e, Select) and isinstance(e.cond, Const):
        return e.a if e.cond.value else e.b
    if kids and all(isinstance(k, Const) for k in kids):
        return _value(e)
    if isinstance(e, Binary) and e.a.dtype.is_int:
        if e.op in ("div", "floordiv") and is_const(e.b, 1):
            return e.a
        if e.a.dtype is i64:
            return simplify_index(e)
    return e


def fold(e: Expr) -> Expr:
    """Fold constants everywhere in e (Reduce bodies are left as they are)."""
    if isinstance(e, (Const, Var, Reduce)):
        return e
    if isinstance(e, Load):
        return Load(e.buffer, tuple(fold(i) for i in e.index))
    if isinstance(e, Binary):
        return fold_node(Binary(e.op, fold(e.a), fold(e.b)))
    if isinstance(e, Compare):
        return fold_node(Compare(e.op, fold(e.a), fold(e.b)))
    if isinstance(e, Unary):
        return fold_node(Unary(e.op, fold(e.a)))
    if isinstance(e, Cast):
        return cast(fold(e.a), e.dtype)
    if isinstance(e, Select):
        return select(fold(e.cond), fold(e.a), fold(e.b))
    raise TypeError(f"not a Loop IR expression: {e!r}")


def has_loads(e: Expr) -> bool:
    """Does e read memory (so its value is only known when the program runs)?"""
    if isinstance(e, (Load, Reduce)):
        return True
    return any(has_loads(c) for c in children(e))
