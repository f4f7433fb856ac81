"""Algebraic rule tables: identities, involutions, shape compositions, reassociation,
distributivity and strength reduction.

Each table is a list of Rules (pattern → replacement) applied by the fixed-point driver. A rule
whose replacement would change the result for NaN, Inf or -0 is marked fast_math and runs only
with `CompileOptions(fast_math=True)`: x*0 is NaN for x = Inf, x+0 turns -0 into +0, x/c is not
x*(1/c) unless 1/c is exact. Reassociation and factoring are exact for integers and run
for them by default; for floats they change rounding, so they too wait for fast_math. Every
rule keeps the root's type (a rule never drops a broadcast that was doing work), and each has
a numeric test in tests/passes/test_simplify.py.
"""

from __future__ import annotations

import numpy as np

from ...rewrite.driver import Rule
from ...rewrite.pattern import P, Const, Var, all_equal, is_scalar

x, y, z = Var("x"), Var("y"), Var("z")


def inexact_for_floats(m) -> bool:
    """Reassociating or factoring float arithmetic changes rounding and overflow; for integers
    (wrap-around arithmetic is a ring) it is exact."""
    return m.root.outputs[0].type.dtype.is_float


def _same_type(m, root="root"):
    return m[root].outputs[0].type == m.x.type


def keep_x(m, r):
    """Replace the root by x when that keeps the root's type (no broadcast was doing work)."""
    return m.x if _same_type(m) else None


def _neg_zero(data) -> bool:
    return data.dtype.kind == "f" and data.size > 0 and bool(np.all((data == 0) & np.signbit(data)))


def _int_zero(data) -> bool:
    return data.dtype.kind in "biu" and data.size > 0 and not np.any(data)


IDENTITY_ELEMENTS = [
    Rule("add-neg-zero", P.Add(x, Const("c", _neg_zero), name="root"), keep_x,
         doc="x + (-0) = x exactly, -0 included"),
    Rule("add-int-zero", P.Add(x, Const("c", _int_zero), name="root"), keep_x),
    Rule("add-zero", P.Add(x, Const("c", all_equal(0)), name="root"), keep_x, fast_math=True,
         doc="x + 0 = x except -0 + 0 = +0"),
    Rule("sub-zero", P.Sub(x, Const("c", all_equal(0)), name="root"), keep_x),
    Rule("mul-one", P.Mul(x, Const("c", all_equal(1)), name="root"), keep_x),
    Rule("div-one", P.Div(x, Const("c", all_equal(1)), name="root"), keep_x),
    Rule("pow-one", P.Pow(x, Const("c", all_equal(1)), name="root"), keep_x),
]

INVOLUTIONS = [
    Rule("neg-neg", P.Neg(P.Neg(x), name="root"), keep_x),
    Rule("not-not", P.Not(P.Not(x), name="root"), keep_x),
    Rule("reciprocal-reciprocal", P.Reciprocal(P.Reciprocal(x), name="root"), keep_x,
         fast_math=True, doc="1/(1/x) rounds twice and overflows for tiny x"),
]


def _compose_transposes(m, r):
    inner, outer = m.inner.attr("perm"), m.root.attr("perm")
    rank = m.x.type.rank
    if rank is None:
        return None
    inner = list(inner) if inner is not None else list(range(rank))[::-1]
    outer = list(outer) if outer is not None else list(range(rank))[::-1]
    perm = [inner[i] for i in outer]
    if perm == list(range(rank)):
        return m.x
    return r.Transpose(m.x, perm=perm)


def _reshape_reshape(m, r):
    shape = m.s2
    if not shape.is_constant or m.root.attr("allowzero") or np.any(shape.data == 0):
        return None   # a 0 would copy a dim of the inner result, not of x
    return r.Reshape(m.x, shape)


def _squeeze_unsqueeze(m, r):
    a, b = m.a1, m.a2
    if a.is_constant and b.is_constant and np.array_equal(np.sort(a.data), np.sort(b.data)) \
            and np.all(a.data >= 0) and np.all(b.data >= 0):
        return keep_x(m, r)
    return None


SHAPES = [
    Rule("transpose-transpose", P.Transpose(P.Transpose(x, name="inner"), name="root"),
         _compose_transposes, doc="two transposes compose; an identity permutation vanishes"),
    Rule("reshape-reshape", P.Reshape(P.Reshape(x, Var("s1")), Var("s2"), name="root"),
         _reshape_reshape),
    Rule("squeeze-unsqueeze", P.Squeeze(P.Unsqueeze(x, Var("a1")), Var("a2"), name="root"),
         _squeeze_unsqueeze),
]


def _fold(op):
    def replace(m, r):
        with np.errstate(all="ignore"):
            c = r.constant(op(m.c1.data, m.c2.data).astype(m.c1.data.dtype))
        return r.add(m.root.op, [m.x, c])[0]
    return replace


REASSOCIATION = [
    Rule("mul-constants", P.Mul(P.Mul(x, Const("c2")), Const("c1"), name="root"), _fold(np.multiply),
         fast_math=inexact_for_floats, doc="c1*(c2*x) -> (c1*c2)*x"),
    Rule("add-constants", P.Add(P.Add(x, Const("c2")), Const("c1"), name="root"), _fold(np.add),
         fast_math=inexact_for_floats, doc="c1+(c2+x) -> (c1+c2)+x"),
]


def _factor(m, r):
    return r.Mul(m.a, r.Add(m.b, m.c))


def _reorder_scalars(m, r):
    return r.Add(r.Add(m.s1, m.s2), r.Add(m.m1, m.m2))


a = Var("a")
DISTRIBUTIVITY = [
    Rule("factor-common-multiplicand", P.Add(P.Mul(a, Var("b")), P.Mul(a, Var("c")), name="root"),
         _factor, fast_math=inexact_for_floats, doc="a*b + a*c -> a*(b+c)"),
    Rule("reorder-broadcast-scalars",
         P.Add(P.Add(Var("s1", is_scalar), Var("m1")), P.Add(Var("s2", is_scalar), Var("m2")),
               name="root"),
         _reorder_scalars, fast_math=inexact_for_floats,
         doc="(s1+M1)+(s2+M2) -> (s1+s2)+(M1+M2): the scalars add once"),
]


def _square(m, r):
    return r.Mul(m.x, m.x)


def _exact_reciprocal(data) -> bool:
    """1/c is exact: c is a power of two (so x/c == x*(1/c) bit for bit)."""
    if data.dtype.kind != "f" or data.size == 0:
        return False
    mant, _ = np.frexp(data.astype(np.float64))
    return bool(np.all(np.abs(mant) == 0.5))


def _div_to_mul(m, r):
    with np.errstate(all="ignore"):
        return r.Mul(m.x, r.constant((1 / m.c.data).astype(m.c.data.dtype)))


STRENGTH_REDUCTION = [
    Rule("pow-two", P.Pow(x, Const("c", all_equal(2)), name="root"),
         lambda m, r: _square(m, r) if m.x.type.dtype.is_float and _same_type(m) else None),
    Rule("div-by-power-of-two", P.Div(x, Const("c", _exact_reciprocal), name="root"), _div_to_mul),
    Rule("div-by-constant", P.Div(x, Const("c", lambda d: d.dtype.kind == "f"), name="root"),
         _div_to_mul, fast_math=True, doc="x/c -> x*(1/c) rounds differently unless 1/c is exact"),
]


def _zeros_like(m, r):
    if not _same_type(m) or not m.x.type.is_static:
        return None
    return r.constant(np.zeros(m.x.type.shape, m.x.type.dtype.np))


FAST_MATH_ONLY = [
    Rule("mul-zero", P.Mul(x, Const("c", all_equal(0)), name="root"), _zeros_like, fast_math=True,
         doc="x*0 is NaN for x = Inf or NaN"),
    Rule("sub-self", P.Sub(x, x, name="root"), _zeros_like, fast_math=True,
         doc="x-x is NaN for x = Inf or NaN"),
]

ALGEBRA = (IDENTITY_ELEMENTS + INVOLUTIONS + SHAPES + REASSOCIATION + DISTRIBUTIVITY +
           STRENGTH_REDUCTION + FAST_MATH_ONLY)
