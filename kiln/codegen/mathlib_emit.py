"""The vocabulary kiln's math functions are written in.

A `MathBuilder` wraps an IRBuilder and one floating-point LLVM type: float or double, scalar or
vector. Every operation is lane-wise, so a function written once against a MathBuilder works for
`float`, `<16 x float>`, `double` and `<8 x double>` alike:

    m = MathBuilder(b, ir.VectorType(ir.FloatType(), 16))
    k = m.rint(m.mul(x, LOG2E[m.fmt]))
    r = m.fma(k, m.c(-LN2_HI[m.fmt]), x)

Constants are splats of the builder's type (`m.c(1.0)`); `m.fmt` (F32 or F64) picks
per-precision constants and coefficient tables. The error-free transforms (`two_sum`,
`two_prod`, ...) are the double-word arithmetic the accurate parts of the library need. Nothing
here branches except `rare`, which runs a block only when some lane needs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as ir

from .lltypes import I1, I32, const, element_type, intrinsic, lanes, with_lanes
from .options import CodegenError


@dataclass(frozen=True)
class Format:
    """An IEEE binary format: `mant` explicit mantissa bits, exponent `bias`."""

    name: str
    bits: int
    mant: int
    bias: int

    @property
    def precision(self) -> int:
        return self.mant + 1


F32 = Format("f32", 32, 23, 127)
F64 = Format("f64", 64, 52, 1023)


def format_of(t: ir.Type) -> Format:
    scalar = element_type(t)
    if isinstance(scalar, ir.FloatType):
        return F32
    if isinstance(scalar, ir.DoubleType):
        return F64
    raise CodegenError(f"math functions take float or double values, got {t}")


class MathBuilder:
    """Lane-wise float and integer operations on one float type (see the module docstring)."""

    def __init__(self, b: ir.IRBuilder, ty: ir.Type):
        self.b = b
        self.ty = ty
        self.fmt = format_of(ty)
        self.width = lanes(ty)
        self.ity = with_lanes(ir.IntType(self.fmt.bits), self.width)
        self.bty = with_lanes(I1, self.width)

    def like(self, fmt: Format) -> "MathBuilder":
        """A builder for the same lane count in another format (to compute in double)."""
        scalar = ir.FloatType() if fmt is F32 else ir.DoubleType()
        return MathBuilder(self.b, with_lanes(scalar, self.width))

    # ---- constants
    def c(self, v: float) -> ir.Constant:
        return const(self.ty, float(v))

    def ic(self, v: int) -> ir.Constant:
        return const(self.ity, int(v))

    def bc(self, v: bool) -> ir.Constant:
        return const(self.bty, int(v))

    def pick(self, table: dict) -> ir.Constant:
        """`table[self.fmt]` as a constant of this type."""
        return self.c(table[self.fmt])

    # ---- float arithmetic
    def add(self, a, c): return self.b.fadd(a, c)
    def sub(self, a, c): return self.b.fsub(a, c)
    def mul(self, a, c): return self.b.fmul(a, c)
    def div(self, a, c): return self.b.fdiv(a, c)
    def neg(self, a): return self.b.fneg(a)

    def _call(self, name: str, *args):
        fn = intrinsic(self.b.module, name, self.ty, [self.ty] * len(args))
        return self.b.call(fn, list(args))

    def fma(self, a, c, d):
        """a * c + d with one rounding: llvm.fma, one instruction on any FMA machine (on a
        host without FMA, a libm call: still correct, much slower)."""
        return self._call("fma", a, c, d)

    def abs(self, a): return self._call("fabs", a)
    def sqrt(self, a): return self._call("sqrt", a)
    def rint(self, a): return self._call("roundeven", a)
    def floor(self, a): return self._call("floor", a)
    def trunc(self, a): return self._call("trunc", a)

    def copysign(self, mag, sign):
        return self._call("copysign", mag, sign)

    def poly(self, u, coefs) -> ir.Value:
        """Horner's rule with FMAs: coefs[0] + coefs[1] u + coefs[2] u^2 + ...; a coefficient
        is a float or an already built value (a per-lane choice)."""
        coefs = [self.c(v) if isinstance(v, float) else v for v in coefs]
        p = coefs[-1]
        for cf in reversed(coefs[:-1]):
            p = self.fma(p, u, cf)
        return p

    # ---- comparisons and selection (ordered: false when a lane is NaN)
    def lt(self, a, c): return self.b.fcmp_ordered("<", a, c)
    def le(self, a, c): return self.b.fcmp_ordered("<=", a, c)
    def gt(self, a, c): return self.b.fcmp_ordered(">", a, c)
    def ge(self, a, c): return self.b.fcmp_ordered(">=", a, c)
    def eq(self, a, c): return self.b.fcmp_ordered("==", a, c)
    def ne(self, a, c): return self.b.fcmp_unordered("!=", a, c)
    def isnan(self, a): return self.b.fcmp_unordered("uno", a, a)

    def isinf(self, a):
        return self.eq(self.abs(a), self.c(float("inf")))

    def isfinite(self, a):
        # a * 0 == 0, not |a| < Inf: LLVM turns the latter (and x > 0 && x < Inf) into integer
        # range checks whose all-ones constant x86 rematerializes with vpternlog into a
        # register the loop last wrote, a false dependency that serializes iterations (3x
        # slower log on Zen 4).
        return self.eq(self.mul(a, self.c(0.0)), self.c(0.0))

    def select(self, cond, a, c): return self.b.select(cond, a, c)
    def and_(self, a, c): return self.b.and_(a, c)
    def or_(self, a, c): return self.b.or_(a, c)
    def not_(self, a): return self.b.xor(a, self.bc(True))

    def clamp(self, x, lo: float, hi: float):
        """x limited to [lo, hi]; NaN lanes stay NaN."""
        x = self.select(self.lt(x, self.c(lo)), self.c(lo), x)
        return self.select(self.gt(x, self.c(hi)), self.c(hi), x)

    def signbit(self, a):
        """True where the sign bit is set (-0.0 and -NaN included)."""
        return self.b.icmp_signed("<", self.bits(a), self.ic(0))

    # ---- the bits of a float, integers of the same width
    def bits(self, a): return self.b.bitcast(a, self.ity)
    def from_bits(self, i): return self.b.bitcast(i, self.ty)
    def iadd(self, a, c): return self.b.add(a, c)
    def isub(self, a, c): return self.b.sub(a, c)
    def imul(self, a, c): return self.b.mul(a, c)
    def iand(self, a, c): return self.b.and_(a, c)
    def shl(self, a, n): return self.b.shl(a, self.ic(n) if isinstance(n, int) else n)
    def lshr(self, a, n): return self.b.lshr(a, self.ic(n) if isinstance(n, int) else n)
    def ashr(self, a, n): return self.b.ashr(a, self.ic(n) if isinstance(n, int) else n)
    def ieq(self, a, c): return self.b.icmp_signed("==", a, c)
    def ilt(self, a, c): return self.b.icmp_signed("<", a, c)

    def to_int(self, a):
        """Float to integer of the same width; `a` must be a small integral value."""
        return self.b.fptosi(a, self.ity)

    def to_float(self, i): return self.b.sitofp(i, self.ty)

    def exponent(self, a):
        """The biased exponent field of |a| as an integer."""
        return self.iand(self.lshr(self.bits(a), self.fmt.mant), self.ic(2 * self.fmt.bias + 1))

    def pow2(self, k):
        """2^k for integer lanes k in the normal range [1 - bias, bias]."""
        return self.from_bits(self.shl(self.iadd(k, self.ic(self.fmt.bias)), self.fmt.mant))

    def ldexp(self, p, k):
        """p * 2^k for integer lanes k, |k| <= 2 * bias: in two exact-range steps, so results
        that overflow become Inf and those in the subnormal range are rounded once."""
        k1 = self.ashr(k, 1)
        return self.mul(self.mul(p, self.pow2(k1)), self.pow2(self.isub(k, k1)))

    # ---- error-free transforms: a value as an unevaluated sum hi + lo
    def two_sum(self, a, c):
        s = self.add(a, c)
        cc = self.sub(s, a)
        err = self.add(self.sub(a, self.sub(s, cc)), self.sub(c, cc))
        return s, err

    def fast_two_sum(self, a, c):
        """Exact when |a| >= |c| (or a is zero)."""
        s = self.add(a, c)
        return s, self.sub(c, self.sub(s, a))

    def two_prod(self, a, c):
        p = self.mul(a, c)
        return p, self.fma(a, c, self.neg(p))

    # ---- control: the one kind of branch the library uses
    def any(self, cond) -> ir.Value:
        """One i1: is `cond` true in some lane."""
        if self.width == 1:
            return cond
        fn = intrinsic(self.b.module, "vector.reduce.or", I1, [self.bty], overloads=[self.bty])
        return self.b.call(fn, [cond])

    def rare(self, cond, values: list, compute) -> list:
        """`compute()` (new values for `values`) merged in the lanes where `cond` holds, run
        only when some lane needs it: a branch uniform over the vector, for slow paths almost
        no input takes (huge arguments of sin/cos/tan)."""
        b = self.b
        start = b.block
        slow = b.append_basic_block("rare")
        join = b.append_basic_block("join")
        b.cbranch(self.any(cond), slow, join)
        b.position_at_end(slow)
        new = compute()
        merged = [self.b.select(cond, n, v) for n, v in zip(new, values)]
        slow_end = b.block
        b.branch(join)
        b.position_at_end(join)
        out = []
        for v, mv in zip(values, merged):
            phi = b.phi(v.type)
            phi.add_incoming(v, start)
            phi.add_incoming(mv, slow_end)
            out.append(phi)
        return out

    def gather(self, table: ir.GlobalVariable, index) -> ir.Value:
        """table[index] per lane (index: integer lanes, in bounds)."""
        b = self.b
        zero = ir.Constant(ir.IntType(64), 0)
        if self.width == 1:
            idx = b.sext(index, ir.IntType(64)) if self.fmt is F32 else index
            return b.load(b.gep(table, [zero, idx], inbounds=True))
        out = ir.Constant(self.ty, ir.Undefined)
        for lane in range(self.width):
            k = ir.Constant(I32, lane)
            idx = b.extract_element(index, k)
            if self.fmt is F32:
                idx = b.sext(idx, ir.IntType(64))
            out = b.insert_element(out, b.load(b.gep(table, [zero, idx], inbounds=True)), k)
        return out

    def convert(self, value, to: "MathBuilder"):
        """A float value of this builder as `to`'s type (fpext or fptrunc)."""
        if to.fmt is self.fmt:
            return value
        if to.fmt is F64:
            return self.b.fpext(value, to.ty)
        return self.b.fptrunc(value, to.ty)
