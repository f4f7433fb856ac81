"""Loop IR expressions: scalar values computed per element, and the integer index arithmetic
that addresses buffers. One node family serves both; index expressions are i64.

Nodes are frozen dataclasses compared by structure (two `Load`s of the same buffer at the same
index are equal), so codegen and the schedule transforms can match and substitute them.

    i, n = Var("i"), Var("n")                     # a loop variable and a symbolic size
    x[i] + 1.0                                     # Load + Const, via Buffer.__getitem__
    Unary("exp", Load(x, (i,)))
    Reduce("add", Const(0.0, f32), ((k, 0, K),), a[i, k] * b[k, j])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from ..ir.dtypes import DType

if TYPE_CHECKING:
    from .buffer import Buffer

i64, f32, boolean = DType.int64, DType.float32, DType.bool

BINARY_OPS = frozenset({
    "add", "sub", "mul",
    "div",        # float division; for integers, C division (truncates toward zero)
    "floordiv", "mod",   # floor division and the matching modulo (index arithmetic)
    "fmod",       # C fmod / integer remainder with the dividend's sign
    "max", "min", "pow", "atan2",
    "and", "or", "xor", "shl", "shr",   # bitwise on integers, logical on bool
})
UNARY_OPS = frozenset({
    "neg", "abs", "not", "sign", "floor", "ceil", "round", "trunc",
    "exp", "log", "sqrt", "rsqrt", "reciprocal", "tanh", "sigmoid", "erf",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
    "isnan", "isinf",
})
COMPARE_OPS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
COMBINERS = frozenset({"add", "mul", "max", "min", "and", "or", "xor"})


class Expr:
    dtype: DType

    # arithmetic sugar for writing lowerings and tests
    def __add__(self, o): return Binary("add", self, lift(o, self.dtype))
    def __radd__(self, o): return Binary("add", lift(o, self.dtype), self)
    def __sub__(self, o): return Binary("sub", self, lift(o, self.dtype))
    def __rsub__(self, o): return Binary("sub", lift(o, self.dtype), self)
    def __mul__(self, o): return Binary("mul", self, lift(o, self.dtype))
    def __rmul__(self, o): return Binary("mul", lift(o, self.dtype), self)
    def __truediv__(self, o): return Binary("div", self, lift(o, self.dtype))
    def __floordiv__(self, o): return Binary("floordiv", self, lift(o, self.dtype))
    def __mod__(self, o): return Binary("mod", self, lift(o, self.dtype))
    def __neg__(self): return Unary("neg", self)


@dataclass(frozen=True)
class Const(Expr):
    value: Union[int, float, bool]
    dtype: DType = i64

    def __repr__(self) -> str:
        return f"Const({self.value!r}, {self.dtype.short})"


@dataclass(frozen=True)
class Var(Expr):
    """A loop variable, a symbolic size (bound when the program runs) or a local scalar."""

    name: str
    dtype: DType = i64

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Load(Expr):
    buffer: "Buffer"
    index: tuple

    @property
    def dtype(self) -> DType:  # type: ignore[override]
        return self.buffer.dtype


@dataclass(frozen=True)
class Binary(Expr):
    op: str
    a: Expr
    b: Expr

    def __post_init__(self):
        assert self.op in BINARY_OPS, self.op

    @property
    def dtype(self) -> DType:  # type: ignore[override]
        return self.a.dtype


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    a: Expr

    def __post_init__(self):
        assert self.op in UNARY_OPS, self.op

    @property
    def dtype(self) -> DType:  # type: ignore[override]
        return DType.bool if self.op in ("isnan", "isinf") else self.a.dtype


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    a: Expr
    b: Expr
    dtype: DType = boolean

    def __post_init__(self):
        assert self.op in COMPARE_OPS, self.op


@dataclass(frozen=True)
class Select(Expr):
    cond: Expr
    a: Expr
    b: Expr

    @property
    def dtype(self) -> DType:  # type: ignore[override]
        return self.a.dtype


@dataclass(frozen=True)
class Cast(Expr):
    dtype: DType
    a: Expr


@dataclass(frozen=True)
class Reduce(Expr):
    """fold(combiner, init, body over the `axes` ranges): axes are (Var, start, stop) triples."""

    combiner: str
    init: Expr
    axes: tuple
    body: Expr

    def __post_init__(self):
        assert self.combiner in COMBINERS, self.combiner

    @property
    def dtype(self) -> DType:  # type: ignore[override]
        return self.init.dtype


def lift(v, dtype: DType = i64) -> Expr:
    """Python numbers become Consts of `dtype` (index arithmetic defaults to i64)."""
    if isinstance(v, Expr):
        return v
    if isinstance(v, bool):
        return Const(v, DType.bool)
    if dtype.is_float:
        return Const(float(v), dtype)
    return Const(int(v), dtype)


def children(e: Expr) -> tuple:
    if isinstance(e, Load):
        return tuple(e.index)
    if isinstance(e, (Binary, Compare)):
        return (e.a, e.b)
    if isinstance(e, Unary):
        return (e.a,)
    if isinstance(e, Cast):
        return (e.a,)
    if isinstance(e, Select):
        return (e.cond, e.a, e.b)
    if isinstance(e, Reduce):
        return (e.init, *(x for _, s, t in e.axes for x in (s, t)), e.body)
    return ()


def substitute(e: Expr, mapping: dict) -> Expr:
    """Replace sub-expressions (usually Vars) by others, everywhere in `e`."""
    if e in mapping:
        return mapping[e]
    if isinstance(e, (Const, Var)):
        return e
    if isinstance(e, Load):
        return Load(e.buffer, tuple(substitute(i, mapping) for i in e.index))
    if isinstance(e, Binary):
        return Binary(e.op, substitute(e.a, mapping), substitute(e.b, mapping))
    if isinstance(e, Compare):
        return Compare(e.op, substitute(e.a, mapping), substitute(e.b, mapping))
    if isinstance(e, Unary):
        return Unary(e.op, substitute(e.a, mapping))
    if isinstance(e, Cast):
        return Cast(e.dtype, substitute(e.a, mapping))
    if isinstance(e, Select):
        return Select(substitute(e.cond, mapping), substitute(e.a, mapping), substitute(e.b, mapping))
    if isinstance(e, Reduce):
        axes = tuple((v, substitute(s, mapping), substitute(t, mapping)) for v, s, t in e.axes)
        return Reduce(e.combiner, substitute(e.init, mapping), axes, substitute(e.body, mapping))
    raise TypeError(f"not a Loop IR expression: {e!r}")


def free_vars(e: Expr) -> set:
    """Vars used in `e` that it does not bind itself (Reduce binds its axes)."""
    if isinstance(e, Var):
        return {e}
    out = set()
    for c in children(e):
        out |= free_vars(c)
    if isinstance(e, Reduce):
        out -= {v for v, _, _ in e.axes}
    return out


def simplify_index(e: Expr) -> Expr:
    """Fold constants and drop identities in integer index arithmetic (x*1, x+0, 0*x)."""
    if not isinstance(e, Binary) or not e.a.dtype.is_int:
        return e
    a, b = simplify_index(e.a), simplify_index(e.b)
    if isinstance(a, Const) and isinstance(b, Const):
        x, y = a.value, b.value
        folded = {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y,
                  "floordiv": lambda: x // y if y else None, "mod": lambda: x % y if y else None,
                  "max": lambda: max(x, y), "min": lambda: min(x, y)}.get(e.op, lambda: None)()
        if folded is not None:
            return Const(folded, a.dtype)
    if e.op == "add":
        if a == Const(0, a.dtype):
            return b
        if b == Const(0, b.dtype):
            return a
    if e.op == "sub" and b == Const(0, b.dtype):
        return a
    if e.op == "mul":
        if a == Const(1, a.dtype):
            return b
        if b == Const(1, b.dtype):
            return a
        if Const(0, a.dtype) in (a, b):
            return Const(0, a.dtype)
    if e.op in ("floordiv",) and b == Const(1, b.dtype):
        return a
    if e.op == "mod" and b == Const(1, b.dtype):
        return Const(0, a.dtype)
    return Binary(e.op, a, b)
