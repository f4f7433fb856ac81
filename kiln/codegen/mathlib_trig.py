"""sin, cos, tan and the inverse functions asin, acos, atan, atan2.

sin/cos/tan reduce x = j pi/2 + r, |r| <= pi/4, and evaluate sin(r) = r + r^3 S(r^2) and
cos(r) = 1 - r^2/2 + r^4 C(r^2); the quadrant j mod 4 picks one of them and its sign (tan is
their quotient). Arguments below TRIG_SMALL are reduced by Cody-Waite with pi/2 in three parts
(exact first step through FMA; double keeps the rounding error of r as a second word). Larger
arguments, up to the largest finite value, go through a Payne-Hanek style reduction in
double-word arithmetic: x times the 2/pi bits that matter for x's exponent, picked from a table,
with every integer multiple of 4 dropped as soon as it appears. That path is the library's only
branch, taken when some lane of a vector needs it.

asin/acos: x + x^3 P(x^2) on |x| <= 1/2, and asin(x) = pi/2 - 2 asin(sqrt((1 - x) / 2)) above
(the square root's rounding error carried along). atan: reduced to |t| <= tan(pi/8) by
t = -1/x or (x - 1)/(x + 1), then t + t^3 P(t^2) plus pi/2 or pi/4.
"""

from __future__ import annotations

import llvmlite.ir as ir

from .mathlib_coeffs import (CHUNK_BITS, COEFFS, PI_HI, PI_LO, PIO2_1, PIO2_2, PIO2_3, PIO2_HI,
                             PIO2_LO, PIO4_HI, PIO4_LO, TAN_3PI_8, TAN_PI_8, TWO_OVER_PI,
                             TWO_OVER_PI_CHUNKS)
from .mathlib_emit import F32, F64, MathBuilder

INF, NAN = float("inf"), float("nan")
# Cody-Waite reduction is exact enough below this; above, the table-driven reduction
TRIG_SMALL = {F32: 2.0 ** 17, F64: 2.0 ** 20}
_CHUNKS_NAME = "kiln.math.two_over_pi_chunks"
_TERMS = 5   # 53-bit chunks of 2/pi used per argument: 265 bits from the first relevant one


# ---- argument reduction

def _reduce_small(m: MathBuilder, x):
    """(j, r, r_lo): x = j pi/2 + r + r_lo; r_lo is None for float."""
    fmt = m.fmt
    j = m.rint(m.mul(x, m.pick(TWO_OVER_PI)))
    r1 = m.fma(j, m.c(-PIO2_1[fmt]), x)
    r2 = m.fma(j, m.c(-PIO2_2[fmt]), r1)
    r = m.fma(j, m.c(-PIO2_3[fmt]), r2)
    if fmt is F32:
        return j, r, None
    return j, r, m.fma(j, m.c(-PIO2_3[fmt]), m.sub(r2, r))


def _chunk_table(module: ir.Module) -> ir.GlobalVariable:
    try:
        return module.get_global(_CHUNKS_NAME)
    except KeyError:
        pass
    ty = ir.ArrayType(ir.DoubleType(), len(TWO_OVER_PI_CHUNKS))
    table = ir.GlobalVariable(module, ty, _CHUNKS_NAME)
    table.initializer = ir.Constant(ty, list(TWO_OVER_PI_CHUNKS))
    table.global_constant = True
    table.linkage = "internal"
    return table


def _reduce_huge(md: MathBuilder, x):
    """(q, r, r_lo) with x = (q + 4n) pi/2 + r + r_lo, |r| <= pi/4, q in 0..3, for any finite
    double x (md is a double builder). x (2/pi) is summed from the exact products of x with
    chunks of 2/pi; chunks whose products are multiples of 4 are skipped by starting at
    chunk i0 = (E - 54) // 53 for x's exponent E, and integer parts are removed after every
    term, so the double-word fraction keeps ~100 bits even when x is within 2^-61 of a
    multiple of pi/2."""
    table = _chunk_table(md.b.module)
    e = md.isub(md.exponent(x), md.ic(md.fmt.bias + md.fmt.mant + 2))
    e = md.select(md.ilt(e, md.ic(0)), md.ic(0), e)
    i0 = md.b.udiv(e, md.ic(CHUNK_BITS))
    scaled = md.from_bits(md.isub(md.bits(x), md.shl(md.imul(i0, md.ic(CHUNK_BITS)), md.fmt.mant)))
    s, s_lo, q = md.c(0.0), md.c(0.0), md.c(0.0)
    for k in range(_TERMS):
        chunk = md.gather(table, md.iadd(i0, md.ic(k)))
        xk = md.mul(scaled, md.c(2.0 ** (-CHUNK_BITS * k)))
        for v in md.two_prod(xk, chunk):
            v = md.fma(md.rint(md.mul(v, md.c(0.25))), md.c(-4.0), v)    # v mod 4, exact
            s, t = md.two_sum(s, v)
            s_lo = md.add(s_lo, t)
            n = md.rint(s)
            s, q = md.sub(s, n), md.add(q, n)
            s, t = md.two_sum(s, s_lo)      # s may have cancelled below s_lo
            s_lo = t
    r, r_lo = md.two_prod(s, md.pick(PIO2_HI))
    r_lo = md.add(r_lo, md.fma(s, md.pick(PIO2_LO), md.mul(s_lo, md.pick(PIO2_HI))))
    r, r_lo = md.fast_two_sum(r, r_lo)
    q = md.fma(md.floor(md.mul(q, md.c(0.25))), md.c(-4.0), q)
    return q, r, r_lo


def reduce_pio2(m: MathBuilder, x):
    """(quadrant as integer lanes, r, r_lo or None) for finite x."""
    j, r, r_lo = _reduce_small(m, x)
    values = [j, r] + ([r_lo] if r_lo is not None else [])

    def huge():
        md = m.like(F64)
        q, rh, rl = _reduce_huge(md, m.convert(x, md))
        if m.fmt is F64:
            return [q, rh, rl]
        return [md.convert(q, m), md.convert(rh, m)]

    values = m.rare(m.gt(m.abs(x), m.pick(TRIG_SMALL)), values, huge)
    quadrant = m.iand(m.to_int(values[0]), m.ic(3))
    return quadrant, values[1], (values[2] if r_lo is not None else None)


def _sin_cos(m: MathBuilder, x):
    """(quadrant, (s, s_tail, sin), (c, c_tail, cos), finite) for x = quadrant pi/2 + r
    (mod 2 pi): sin r = s + s_tail and cos r = c + c_tail unevaluated, and each rounded."""
    finite = m.isfinite(x)
    q, r, r_lo = reduce_pio2(m, m.select(finite, x, m.c(0.0)))
    z = m.mul(r, r)
    rz = m.mul(r, z)
    sp = m.poly(z, COEFFS["sin"][m.fmt])
    cp = m.poly(z, COEFFS["cos"][m.fmt])
    if r_lo is None:
        s_tail = m.mul(rz, sp)
        sin = m.fma(rz, sp, r)
        tail = m.mul(m.mul(z, z), cp)
    else:
        s_tail = m.fma(rz, sp, r_lo)
        sin = m.add(r, s_tail)
        tail = m.fma(m.mul(z, z), cp, m.neg(m.mul(r, r_lo)))
    hz = m.mul(m.c(0.5), z)
    w = m.sub(m.c(1.0), hz)
    c_tail = m.add(m.sub(m.sub(m.c(1.0), w), hz), tail)
    return q, (r, s_tail, sin), (w, c_tail, m.add(w, c_tail)), finite


def _finish(m: MathBuilder, x, value, finite, keep_zero: bool):
    if keep_zero:       # odd functions: sin(-0) = -0
        value = m.select(m.eq(x, m.c(0.0)), x, value)
    return m.select(finite, value, m.c(NAN))


def _odd(m: MathBuilder, q):
    return m.ieq(m.iand(q, m.ic(1)), m.ic(1))


def sin(m: MathBuilder, x):
    q, (_, _, s), (_, _, c), finite = _sin_cos(m, x)
    v = m.select(_odd(m, q), c, s)
    v = m.select(m.ieq(m.iand(q, m.ic(2)), m.ic(2)), m.neg(v), v)
    return _finish(m, x, v, finite, True)


def cos(m: MathBuilder, x):
    q, (_, _, s), (_, _, c), finite = _sin_cos(m, x)
    v = m.select(_odd(m, q), s, c)
    flip = m.ieq(m.iand(m.iadd(q, m.ic(1)), m.ic(2)), m.ic(2))
    return _finish(m, x, m.select(flip, m.neg(v), v), finite, False)


def tan(m: MathBuilder, x):
    """sin r / cos r, or -cos r / sin r in odd quadrants, with the quotient corrected by its
    residual against the unrounded numerator and denominator."""
    q, (s, s_tail, s_full), (c, c_tail, c_full), finite = _sin_cos(m, x)
    odd = _odd(m, q)
    num, num_tail = m.select(odd, m.neg(c), s), m.select(odd, m.neg(c_tail), s_tail)
    den, den_tail = m.select(odd, s, c), m.select(odd, s_tail, c_tail)
    inv = m.div(m.c(1.0), m.select(odd, s_full, c_full))
    t = m.mul(m.select(odd, m.neg(c_full), s_full), inv)
    residual = m.add(m.fma(m.neg(t), den, num), m.fma(m.neg(t), den_tail, num_tail))
    return _finish(m, x, m.fma(residual, inv, t), finite, True)


# ---- inverse functions

def _asin_core(m: MathBuilder, a):
    """(big, p): p = asin(a) for a <= 1/2, else asin(sqrt((1 - a) / 2)); big = a > 1/2."""
    big = m.gt(a, m.c(0.5))
    z = m.fma(a, m.c(-0.5), m.c(0.5))
    s = m.sqrt(z)
    s_lo = m.div(m.fma(m.neg(s), s, z), m.add(s, s))        # sqrt(z) = s + s_lo
    s_lo = m.select(m.and_(big, m.gt(z, m.c(0.0))), s_lo, m.c(0.0))
    u = m.select(big, z, m.mul(a, a))
    t = m.select(big, s, a)
    p = m.add(t, m.fma(m.mul(t, u), m.poly(u, COEFFS["asin"][m.fmt]), s_lo))
    return big, p


def asin(m: MathBuilder, x):
    a = m.abs(x)
    big, p = _asin_core(m, a)
    far = m.sub(m.pick(PIO2_HI), m.sub(m.add(p, p), m.pick(PIO2_LO)))
    res = m.copysign(m.select(big, far, p), x)
    return m.select(m.gt(a, m.c(1.0)), m.c(NAN), res)


def acos(m: MathBuilder, x):
    a = m.abs(x)
    big, p = _asin_core(m, a)
    near = m.sub(m.pick(PIO2_HI), m.sub(m.copysign(p, x), m.pick(PIO2_LO)))
    left = m.sub(m.pick(PI_HI), m.sub(m.add(p, p), m.pick(PI_LO)))
    far = m.select(m.lt(x, m.c(0.0)), left, m.add(p, p))
    res = m.select(big, far, near)
    return m.select(m.gt(a, m.c(1.0)), m.c(NAN), res)


def _atan_pos(m: MathBuilder, a):
    """atan(a) for a >= 0 (Inf included; NaN gives NaN)."""
    big = m.gt(a, m.pick(TAN_3PI_8))
    mid = m.gt(a, m.pick(TAN_PI_8))
    one = m.c(1.0)
    num = m.select(big, m.c(-1.0), m.select(mid, m.sub(a, one), a))
    den = m.select(big, a, m.select(mid, m.add(a, one), one))
    t = m.div(num, den)
    base_hi = m.select(big, m.pick(PIO2_HI), m.select(mid, m.pick(PIO4_HI), m.c(0.0)))
    base_lo = m.select(big, m.pick(PIO2_LO), m.select(mid, m.pick(PIO4_LO), m.c(0.0)))
    z = m.mul(t, t)
    return m.add(base_hi, m.add(t, m.fma(m.mul(t, z), m.poly(z, COEFFS["atan"][m.fmt]), base_lo)))


def atan(m: MathBuilder, x):
    return m.copysign(_atan_pos(m, m.abs(x)), x)


def atan2(m: MathBuilder, y, x):
    ax, ay = m.abs(x), m.abs(y)
    r = _atan_pos(m, m.div(ay, ax))
    both_inf = m.and_(m.eq(ax, m.c(INF)), m.eq(ay, m.c(INF)))
    r = m.select(both_inf, m.pick(PIO4_HI), r)
    r = m.select(m.eq(ay, m.c(0.0)), m.c(0.0), r)
    left = m.add(m.sub(m.pick(PI_HI), r), m.pick(PI_LO))
    r = m.select(m.signbit(x), left, r)
    r = m.copysign(r, y)
    return m.select(m.or_(m.isnan(x), m.isnan(y)), m.c(NAN), r)
